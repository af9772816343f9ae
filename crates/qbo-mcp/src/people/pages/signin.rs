//! Getting in: the start page, sign-in and sign-out, first-run setup, invitation and password
//! links, and the onboarding page shown after a first sign-in.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::PageCaller;
use crate::error::AppError;
use crate::people::{self, Person, Role, invites, signin};
use crate::secret::Secret;
use crate::state::AppState;
use crate::web::{self, CsrfToken, PageResult, field_error};

use super::{render, see_other};
use crate::web::with_session_cookie;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/setup/{token}", get(setup_page).post(setup))
        .route("/invite/{token}", get(invite_page).post(accept_invite))
        .route("/onboarding", get(onboarding_page).post(finish_onboarding))
}

/// Where a person goes right after signing in.
pub(crate) fn after_sign_in(person: &Person, next: &str) -> String {
    if person.force_password_change {
        "/account/password".to_owned()
    } else if !person.completed_onboarding {
        format!("/onboarding?next={}", web::encode(next))
    } else {
        next.to_owned()
    }
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed_in = match web::cookie(&headers, &web::session_cookie_name(&state)) {
        Some(c) => people::session::find(&state.db, &c).await.ok().flatten(),
        None => None,
    };
    match signed_in {
        Some(s) if s.person.is_admin() => see_other("/people"),
        Some(_) => see_other("/account"),
        None => see_other("/login"),
    }
}

#[derive(Deserialize, Default)]
struct NextQuery {
    next: Option<String>,
}

fn login_form(
    state: &AppState,
    csrf: &CsrfToken,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form method="post" action="/login" {
            (csrf.field())
            input type="hidden" name="next" value=(next);
            label for="username" { "Username" }
            input #username name="username" type="text" autocomplete="username" required value=(username);
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
        @if state.config.oidc.is_some() {
            p.alt { a.button href={ "/login/oidc?next=" (web::encode(next)) } { "Sign in with your identity provider" } }
        }
    }
}

async fn login_page(
    State(state): State<AppState>,
    csrf: CsrfToken,
    Query(q): Query<NextQuery>,
) -> Markup {
    let next = web::safe_next(q.next.as_deref());
    render(
        &state,
        None,
        &csrf,
        "Sign in",
        login_form(&state, &csrf, &next, "", None),
    )
    .await
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: Secret<String>,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    csrf: CsrfToken,
    Form(form): Form<LoginForm>,
) -> PageResult {
    csrf.require_checked()?;
    let next = web::safe_next(form.next.as_deref());
    let ip = web::client_ip(&state, Some(peer), &headers);
    match signin::with_password(&state.db, &form.username, &form.password, ip).await {
        Ok((person, cookie)) => {
            if let Some(old) = web::cookie(&headers, &web::session_cookie_name(&state)) {
                let _ = people::session::end(&state.db, &old).await;
            }
            Ok(with_session_cookie(
                &state,
                see_other(&after_sign_in(&person, &next)),
                &cookie,
            ))
        }
        Err(e) => {
            let status = e.status;
            let retry = e.retry_after;
            let body = render(
                &state,
                None,
                &csrf,
                "Sign in",
                login_form(&state, &csrf, &next, &form.username, Some(&e.message)),
            )
            .await;
            let mut r = (status, body).into_response();
            if let Some(secs) = retry {
                r.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            Ok(r)
        }
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let name = web::session_cookie_name(&state);
    if let Some(c) = web::cookie(&headers, &name) {
        let _ = people::session::end(&state.db, &c).await;
    }
    let mut r = see_other("/login");
    r.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(&state, &name, "", Some(0)),
    );
    r
}

#[derive(Deserialize)]
struct SetupForm {
    username: String,
    email: Option<String>,
    password: Secret<String>,
}

fn setup_form(
    csrf: &CsrfToken,
    token: &str,
    username: &str,
    email: &str,
    error: Option<&AppError>,
) -> Markup {
    let on = |codes: &[&str]| {
        error
            .filter(|e| codes.contains(&e.code))
            .map(|e| e.message.as_str())
    };
    let other = error.filter(|e| {
        ![
            "invalid_username",
            "invalid_email",
            "password_too_short",
            "password_too_long",
        ]
        .contains(&e.code)
    });
    html! {
        h1 { "Set up qbo-mcp" }
        p { "Create the first admin. You can add everyone else once you are signed in." }
        @if let Some(e) = other { p.error role="alert" { (e.message) } }
        form method="post" action={ "/setup/" (token) } {
            (csrf.field())
            label for="username" { "Username" }
            input #username name="username" type="text" autocomplete="username" required value=(username);
            (field_error(on(&["invalid_username"])))
            label for="email" { "Email (optional)" }
            input #email name="email" type="email" autocomplete="email" value=(email);
            (field_error(on(&["invalid_email"])))
            label for="password" { "Password (at least 12 characters)" }
            input #password name="password" type="password" autocomplete="new-password" required minlength="12";
            (field_error(on(&["password_too_short", "password_too_long", "password_link_required", "password_changed"])))
            button type="submit" { "Create admin and sign in" }
        }
    }
}

/// An invitation, password or setup link that does not exist, was used, or is for another
/// purpose.
fn link_not_valid() -> AppError {
    AppError::not_found("This link is not valid.").with_code("invite_not_found")
}

async fn setup_page(
    State(state): State<AppState>,
    csrf: CsrfToken,
    Path(token): Path<String>,
) -> PageResult<Markup> {
    let link = invites::check(&state.db, &token).await?;
    if link.purpose != invites::Purpose::Setup {
        return Err(link_not_valid().into());
    }
    Ok(render(
        &state,
        None,
        &csrf,
        "Setup",
        setup_form(&csrf, &token, "", "", None),
    )
    .await)
}

async fn setup(
    State(state): State<AppState>,
    csrf: CsrfToken,
    Path(token): Path<String>,
    Form(form): Form<SetupForm>,
) -> PageResult {
    csrf.require_checked()?;
    match invites::complete_setup(
        &state.db,
        &token,
        &form.username,
        form.email.as_deref(),
        &form.password,
    )
    .await
    {
        Ok((person, cookie)) => Ok(with_session_cookie(
            &state,
            see_other(&after_sign_in(&person, "/people")),
            &cookie,
        )),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let body = setup_form(
                &csrf,
                &token,
                &form.username,
                form.email.as_deref().unwrap_or(""),
                Some(&e),
            );
            Ok((e.status, render(&state, None, &csrf, "Setup", body).await).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    password: Secret<String>,
}

fn invite_form(csrf: &CsrfToken, token: &str, person: &Person, error: Option<&str>) -> Markup {
    html! {
        h1 { "Welcome, " (person.username) }
        p { "Choose a password to finish setting up your account." }
        form method="post" action={ "/invite/" (token) } {
            (csrf.field())
            input type="hidden" name="username" value=(person.username) autocomplete="username";
            label for="password" { "New password (at least 12 characters)" }
            input #password name="password" type="password" autocomplete="new-password" required minlength="12";
            (field_error(error))
            button type="submit" { "Set password and sign in" }
        }
    }
}

async fn invite_page(
    State(state): State<AppState>,
    csrf: CsrfToken,
    Path(token): Path<String>,
) -> PageResult<Markup> {
    let invites::Link {
        person: Some(person),
        ..
    } = invites::check(&state.db, &token).await?
    else {
        return Err(link_not_valid().into());
    };
    Ok(render(
        &state,
        None,
        &csrf,
        "Welcome",
        invite_form(&csrf, &token, &person, None),
    )
    .await)
}

async fn accept_invite(
    State(state): State<AppState>,
    csrf: CsrfToken,
    Path(token): Path<String>,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    csrf.require_checked()?;
    match invites::accept(&state.db, &token, &form.password).await {
        Ok((person, cookie)) => Ok(with_session_cookie(
            &state,
            see_other(&after_sign_in(&person, "/account")),
            &cookie,
        )),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            // The form again with the refusal, while the link still names its person.
            let Ok(invites::Link {
                person: Some(person),
                ..
            }) = invites::check(&state.db, &token).await
            else {
                return Err(e.into());
            };
            let body = invite_form(&csrf, &token, &person, Some(&e.message));
            Ok((e.status, render(&state, None, &csrf, "Welcome", body).await).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn onboarding_page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    csrf: CsrfToken,
    Query(q): Query<NextQuery>,
) -> Markup {
    let next = web::safe_next(q.next.as_deref());
    let mcp_url = format!("{}/mcp", state.public_url.as_str().trim_end_matches('/'));
    let body = html! {
        h1 { "Welcome, " (caller.person.username) }
        p {
            "You are " (if caller.person.role == Role::Admin { "an " } else { "a " })
            strong { (caller.person.role) } ". Here is how to connect your AI assistant:"
        }
        ol {
            li { "In your assistant (Claude, Claude Code, VS Code, …) add a custom MCP server (connector) with this URL:" }
            li { code.copy { (mcp_url) } }
            li { "Your assistant will ask you to sign in here and approve it. It then works as you, with your role." }
        }
        p { "Scripts and clients without OAuth can use a personal access token from " a href="/account" { "My account" } "." }
        form method="post" action="/onboarding" {
            (csrf.field())
            input type="hidden" name="next" value=(next);
            button type="submit" { "Got it, continue" }
        }
    };
    render(&state, Some(&caller.person), &csrf, "Welcome", body).await
}

#[derive(Deserialize)]
struct NextForm {
    next: Option<String>,
}

async fn finish_onboarding(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Form(form): Form<NextForm>,
) -> PageResult {
    people::mark_onboarded(&state.db, caller.person.id).await?;
    Ok(see_other(&web::safe_next(form.next.as_deref())))
}
