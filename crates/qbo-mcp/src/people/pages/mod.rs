//! The people pages (docs/reference.md, "Pages"): sign-in, first-run setup, invitation and password links,
//! onboarding, my account (password, tokens), people (add by invitation or password, role,
//! company grants, deactivate/activate/delete with a confirmation page) and the allowlist.
//! Server-rendered, no JavaScript, every field labelled, errors next to their field. Every
//! form carries the CSRF field; every state change goes through the same functions as the API.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::{AdminPage, Caller, PageCaller, SignedIn};
use crate::error::AppError;
use crate::people::{
    self, Person, Role, access, admin, allowlist, grants, invites, parse_role, password, signin,
    tokens,
};
use crate::secret::Secret;
use crate::state::AppState;
use crate::web::{self, CsrfToken, PageResult, field_error};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/setup/{token}", get(setup_page).post(setup))
        .route("/invite/{token}", get(invite_page).post(accept_invite))
        .route("/onboarding", get(onboarding_page).post(finish_onboarding))
        .route("/account", get(account_page))
        .route(
            "/account/password",
            get(password_page).post(change_password),
        )
        .route("/account/tokens", post(create_token))
        .route("/account/sign-out-everywhere", post(sign_out_everywhere))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
        .route("/people", get(people_page).post(add_person))
        .route("/people/new", get(new_person_page))
        .route("/people/{username}", get(person_page))
        .route("/people/{username}/role", post(set_role))
        .route("/people/{username}/grants", post(add_grant))
        .route(
            "/people/{username}/grants/{realm}/remove",
            post(remove_grant),
        )
        .route(
            "/people/{username}/confirm/{action}",
            get(confirm_page).post(confirmed),
        )
        .route("/allowlist", get(allowlist_page).post(add_allowlist))
        .route(
            "/allowlist/remove",
            get(confirm_remove_allowlist).post(remove_allowlist),
        )
        .merge(super::oidc::routes())
}

/// A page in the common frame, with the admin warnings.
async fn render(
    state: &AppState,
    person: Option<&Person>,
    csrf: &CsrfToken,
    title: &str,
    body: Markup,
) -> Markup {
    let frame = web::Frame {
        title,
        viewer: person.map(Into::into),
        csrf: Some(csrf),
        warnings: match person {
            Some(p) => crate::companies::admin_warnings(state, p).await,
            None => Vec::new(),
        },
    };
    web::layout(state, &frame, body)
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn with_session_cookie(
    state: &AppState,
    mut response: Response,
    cookie: &Secret<String>,
) -> Response {
    response.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(
            state,
            &web::session_cookie_name(state),
            cookie.expose(),
            None,
        ),
    );
    response
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
        p { "You are a " strong { (caller.person.role) } ". Here is how to connect your AI assistant:" }
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

fn token_list(csrf: &CsrfToken, list: &[tokens::TokenInfo]) -> Markup {
    html! {
        @if list.is_empty() {
            p { "You have no personal access tokens." }
        } @else {
            table {
                thead { tr { th { "Name" } th { "Created" } th { "Last used" } th { span.sr-only { "Actions" } } } }
                tbody {
                    @for t in list {
                        tr {
                            td { (t.name) }
                            td { (people::time_text(t.created_at)) }
                            td { (t.last_used_at.map(people::time_text).unwrap_or_else(|| "never".into())) }
                            td {
                                form.inline method="post" action={ "/account/tokens/" (t.id) "/revoke" } {
                                    (csrf.field())
                                    button.danger type="submit" aria-label={ "Revoke " (t.name) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn account_body(
    state: &AppState,
    caller: &Caller,
    csrf: &CsrfToken,
    new_token: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, AppError> {
    let list = tokens::list(&state.db, caller.person.id).await?;
    let p = &caller.person;
    Ok(html! {
        h1 { "My account" }
        dl.facts {
            dt { "Username" } dd { (p.username) }
            dt { "Email" } dd { (p.email.as_deref().unwrap_or("—")) }
            dt { "Role" } dd { (p.role) }
        }
        p { a href="/account/password" { "Change my password" } }
        h2 { "Personal access tokens" }
        p { "For scripts and clients without OAuth: send as " code { "Authorization: Bearer …" } "." }
        @if let Some(t) = new_token {
            div.notice role="status" {
                p { strong { "Your new token — copy it now, it is shown only once:" } }
                p { code.token #new-token { (t) } }
            }
        }
        (token_list(csrf, &list))
        form method="post" action="/account/tokens" {
            (csrf.field())
            label for="token-name" { "New token name" }
            input #token-name name="name" type="text" required maxlength="100" placeholder="e.g. laptop script";
            (field_error(error))
            button type="submit" { "Create token" }
        }
        h2 { "Sign out everywhere" }
        p { "Ends all your other browser sessions, every personal access token and every assistant you connected. This browser stays signed in." }
        form method="post" action="/account/sign-out-everywhere" {
            (csrf.field())
            button.danger type="submit" { "Sign out everywhere" }
        }
    })
}

async fn account_page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    csrf: CsrfToken,
) -> PageResult<Markup> {
    let body = account_body(&state, &caller, &csrf, None, None).await?;
    Ok(render(&state, Some(&caller.person), &csrf, "My account", body).await)
}

#[derive(Deserialize)]
struct TokenForm {
    name: String,
}

async fn create_token(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    csrf: CsrfToken,
    Form(form): Form<TokenForm>,
) -> PageResult {
    // A refusal (a bad name) is shown next to the field; anything else is the error page.
    let (token, refusal) =
        match super::api::create_token_for(&state, &caller.person, &form.name).await {
            Ok((_, t)) => (Some(t), None),
            Err(e) if e.status.is_client_error() => (None, Some(e)),
            Err(e) => return Err(e.into()),
        };
    let body = account_body(
        &state,
        &caller,
        &csrf,
        token.as_ref().map(|t| t.expose().as_str()),
        refusal.as_ref().map(|e| e.message.as_str()),
    )
    .await?;
    let status = if refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        render(&state, Some(&caller.person), &csrf, "My account", body).await,
    )
        .into_response())
}

async fn revoke_token(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(id): Path<i64>,
) -> PageResult {
    super::api::revoke_token_of(&state, &caller.person, id).await?;
    Ok(see_other("/account"))
}

async fn sign_out_everywhere(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
) -> PageResult {
    let from_browser = caller.session_hash().is_some();
    Ok(
        match access::sign_out_everywhere(&state.db, &caller.person, from_browser).await? {
            Some(cookie) => with_session_cookie(&state, see_other("/account"), &cookie),
            None => see_other("/login"),
        },
    )
}

fn password_form(csrf: &CsrfToken, person: &Person, error: Option<&AppError>) -> Markup {
    let on = |codes: &[&str]| {
        error
            .filter(|e| codes.contains(&e.code))
            .map(|e| e.message.as_str())
    };
    html! {
        h1 { "Change my password" }
        @if person.force_password_change {
            p.notice role="status" { "You need to choose a new password before you continue." }
        }
        form method="post" action="/account/password" {
            (csrf.field())
            input type="hidden" name="username" value=(person.username) autocomplete="username";
            @if person.has_password {
                label for="current_password" { "Current password" }
                input #current_password name="current_password" type="password" autocomplete="current-password" required;
                (field_error(on(&["wrong_password", "rate_limited"])))
            }
            label for="new_password" { "New password (at least 12 characters)" }
            input #new_password name="new_password" type="password" autocomplete="new-password" required minlength="12";
            (field_error(on(&["password_too_short", "password_too_long", "password_link_required", "password_changed"])))
            button type="submit" { "Change password" }
        }
        p.hint { "Changing your password signs you out everywhere else, and ends your personal access tokens and your assistants' access." }
    }
}

async fn password_page(
    State(state): State<AppState>,
    who: Result<SignedIn, AppError>,
    csrf: CsrfToken,
) -> Response {
    let Ok(who) = who else {
        return see_other("/login?next=%2Faccount%2Fpassword");
    };
    render(
        &state,
        Some(&who.person),
        &csrf,
        "Change password",
        password_form(&csrf, &who.person, None),
    )
    .await
    .into_response()
}

#[derive(Deserialize)]
struct ChangePasswordForm {
    current_password: Option<Secret<String>>,
    new_password: Secret<String>,
}

async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    who: Result<SignedIn, AppError>,
    csrf: CsrfToken,
    Form(form): Form<ChangePasswordForm>,
) -> PageResult {
    let Ok(who) = who else {
        return Ok(see_other("/login?next=%2Faccount%2Fpassword"));
    };
    match password::change_own(
        &state.db,
        who.person.id,
        who.credential.password_proof(),
        form.current_password.as_ref(),
        &form.new_password,
        web::client_ip(&state, Some(peer), &headers),
    )
    .await
    {
        Ok(Some(cookie)) => Ok(with_session_cookie(&state, see_other("/account"), &cookie)),
        Ok(None) => Ok(see_other("/login")),
        Err(e) if e.status.is_client_error() => {
            let body = password_form(&csrf, &who.person, Some(&e));
            let mut r = (
                e.status,
                render(&state, Some(&who.person), &csrf, "Change password", body).await,
            )
                .into_response();
            if let Some(secs) = e.retry_after {
                r.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

fn role_select(id: &str, current: Role) -> Markup {
    html! {
        select id=(id) name="role" {
            @for role in Role::ALL {
                option value=(role.as_str()) selected[role == current] { (role.as_str()) }
            }
        }
    }
}

async fn people_page(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
) -> PageResult<Markup> {
    let list = people::list(&state.db).await?;
    let body = html! {
        h1 { "People" }
        p { a.button href="/people/new" { "Add a person" } }
        table.people {
            thead { tr { th { "Username" } th { "Email" } th { "Role" } th { "Status" } th { "Last sign-in" } } }
            tbody {
                @for p in &list {
                    tr {
                        td { a href={ "/people/" (p.username) } { (p.username) } }
                        td { (p.email.as_deref().unwrap_or("—")) }
                        td { (p.role) }
                        td { @if p.is_active { "active" } @else { span.muted { "deactivated" } } }
                        td { (p.last_login_at.map(people::time_text).unwrap_or_else(|| "never".into())) }
                    }
                }
            }
        }
    };
    Ok(render(&state, Some(&caller.person), &csrf, "People", body).await)
}

fn new_person_form(csrf: &CsrfToken, form: &NewPersonForm, error: Option<&AppError>) -> Markup {
    let on = |codes: &[&str]| {
        error
            .filter(|e| codes.contains(&e.code))
            .map(|e| e.message.as_str())
    };
    let known = [
        "invalid_username",
        "username_taken",
        "invalid_email",
        "email_taken",
        "password_too_short",
        "password_too_long",
        "invalid_role",
    ];
    let invite = form.method.as_deref() != Some("password");
    html! {
        h1 { "Add a person" }
        @if let Some(e) = error.filter(|e| !known.contains(&e.code)) { p.error role="alert" { (e.message) } }
        form method="post" action="/people" {
            (csrf.field())
            label for="username" { "Username" }
            input #username name="username" type="text" required value=(form.username);
            (field_error(on(&["invalid_username", "username_taken"])))
            label for="email" { "Email (optional)" }
            input #email name="email" type="email" value=(form.email.as_deref().unwrap_or(""));
            (field_error(on(&["invalid_email", "email_taken"])))
            label for="role" { "Role" }
            (role_select("role", form.role.as_deref().and_then(|r| r.parse().ok()).unwrap_or(Role::Viewer)))
            (field_error(on(&["invalid_role"])))
            fieldset {
                legend { "How they get in" }
                label.choice { input type="radio" name="method" value="invite" checked[invite]; " Send an invitation link (they choose their password)" }
                label.choice { input type="radio" name="method" value="password" checked[!invite]; " Set a password now (they must change it at first sign-in)" }
            }
            label for="password" { "Password (only when setting one now)" }
            input #password name="password" type="password" autocomplete="new-password";
            (field_error(on(&["password_too_short", "password_too_long", "password_link_required", "password_changed"])))
            button type="submit" { "Add person" }
        }
    }
}

async fn new_person_page(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
) -> Markup {
    let body = new_person_form(&csrf, &NewPersonForm::default(), None);
    render(&state, Some(&caller.person), &csrf, "Add a person", body).await
}

#[derive(Deserialize, Default)]
struct NewPersonForm {
    username: String,
    email: Option<String>,
    role: Option<String>,
    method: Option<String>,
    password: Option<String>,
}

async fn add_person(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Form(form): Form<NewPersonForm>,
) -> PageResult {
    let invite = form.method.as_deref() != Some("password");
    let result = async {
        let role = parse_role(form.role.as_deref().unwrap_or("viewer"))?;
        let created = admin::create(
            &state.db,
            &admin,
            admin::NewPerson {
                username: form.username.clone(),
                role,
                email: form.email.clone().filter(|e| !e.trim().is_empty()),
                password: if invite {
                    None
                } else {
                    Some(Secret::new(form.password.clone().unwrap_or_default()))
                },
                invite,
            },
            &state.public_url,
        )
        .await?;
        if !invite {
            // A password set by an admin is a temporary one.
            admin::update(
                &state.db,
                &admin,
                &created.person.username,
                admin::Changes {
                    force_password_change: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        }
        Ok::<_, AppError>(created)
    }
    .await;
    match result {
        Ok(created) => {
            let body = html! {
                h1 { "Added " (created.person.username) }
                @if let Some(link) = &created.invite_url {
                    p { "Send this one-time link to " strong { (created.person.username) } ". It works once and expires in 7 days:" }
                    p { code.token #invite-link { (link.expose()) } }
                } @else {
                    p { "They can sign in with the password you set, and must change it at their first sign-in." }
                }
                p { a href={ "/people/" (created.person.username) } { "Manage " (created.person.username) } " · " a href="/people" { "Back to people" } }
            };
            Ok((
                StatusCode::CREATED,
                render(&state, Some(&caller.person), &csrf, "Person added", body).await,
            )
                .into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let body = new_person_form(&csrf, &form, Some(&e));
            Ok((
                e.status,
                render(&state, Some(&caller.person), &csrf, "Add a person", body).await,
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn person_body(
    state: &AppState,
    csrf: &CsrfToken,
    p: &Person,
    notice: Option<&AppError>,
) -> Result<Markup, AppError> {
    let realms = grants::granted_realms(&state.db, p.id).await?;
    Ok(html! {
        h1 { (p.username) }
        @if let Some(e) = notice { p.error role="alert" { (e.message) } }
        dl.facts {
            dt { "Email" } dd { (p.email.as_deref().unwrap_or("—")) }
            dt { "Status" } dd { @if p.is_active { "active" } @else { "deactivated" } }
            dt { "Created" } dd { (people::time_text(p.created_at)) }
            dt { "Last sign-in" } dd { (p.last_login_at.map(people::time_text).unwrap_or_else(|| "never".into())) }
        }
        h2 { "Role" }
        form method="post" action={ "/people/" (p.username) "/role" } {
            (csrf.field())
            label for="role" { "Role" }
            (role_select("role", p.role))
            button type="submit" { "Change role" }
        }
        h2 { "Companies" }
        @if p.is_admin() {
            p { "Admins may use every company." }
        } @else if realms.is_empty() {
            p { "No companies granted yet." }
        } @else {
            ul.grants {
                @for realm in &realms {
                    li {
                        code { (realm) }
                        form.inline method="post" action={ "/people/" (p.username) "/grants/" (realm) "/remove" } {
                            (csrf.field())
                            button.link type="submit" aria-label={ "Remove company " (realm) } { "remove" }
                        }
                    }
                }
            }
        }
        form method="post" action={ "/people/" (p.username) "/grants" } {
            (csrf.field())
            label for="realm_id" { "Grant a company (realm id)" }
            input #realm_id name="realm_id" type="text" required pattern="[A-Za-z0-9_-]{1,64}";
            button type="submit" { "Grant" }
        }
        h2 { "Access" }
        p.actions {
            @if p.is_active {
                a.button.danger href={ "/people/" (p.username) "/confirm/deactivate" } { "Deactivate…" }
            } @else {
                a.button href={ "/people/" (p.username) "/confirm/activate" } { "Activate…" }
            }
            " "
            a.button href={ "/people/" (p.username) "/confirm/reset-password" } { "Send a password link…" }
            " "
            a.button.danger href={ "/people/" (p.username) "/confirm/delete" } { "Delete…" }
        }
    })
}

/// The person named `username`, or `404` with a sentence naming them.
async fn find_person(state: &AppState, username: &str) -> Result<Person, AppError> {
    people::find(&state.db, username)
        .await?
        .ok_or_else(|| AppError::not_found(format!("There is no person named `{username}`.")))
}

async fn show_person(
    state: &AppState,
    caller: &Caller,
    csrf: &CsrfToken,
    username: &str,
    notice: Option<AppError>,
) -> PageResult {
    let person = find_person(state, username).await?;
    let status = notice.as_ref().map_or(StatusCode::OK, |e| e.status);
    let body = person_body(state, csrf, &person, notice.as_ref()).await?;
    Ok((
        status,
        render(state, Some(&caller.person), csrf, &person.username, body).await,
    )
        .into_response())
}

async fn person_page(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
    Path(username): Path<String>,
) -> PageResult {
    show_person(&state, &caller, &csrf, &username, None).await
}

#[derive(Deserialize)]
struct RoleForm {
    role: String,
}

/// After a change: back to the person's page, or the page again with the refusal on it.
async fn after_change(
    state: &AppState,
    caller: &Caller,
    csrf: &CsrfToken,
    username: &str,
    result: Result<(), AppError>,
) -> PageResult {
    match result {
        Ok(()) => Ok(see_other(&format!("/people/{}", web::encode(username)))),
        Err(e) if e.status.is_client_error() => {
            show_person(state, caller, csrf, username, Some(e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn set_role(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Path(username): Path<String>,
    Form(form): Form<RoleForm>,
) -> PageResult {
    let result = async {
        let role = parse_role(&form.role)?;
        admin::update(
            &state.db,
            &admin,
            &username,
            admin::Changes {
                role: Some(role),
                ..Default::default()
            },
        )
        .await
        .map(drop)
    }
    .await;
    after_change(&state, &caller, &csrf, &username, result).await
}

#[derive(Deserialize)]
struct GrantForm {
    realm_id: String,
}

async fn add_grant(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Path(username): Path<String>,
    Form(form): Form<GrantForm>,
) -> PageResult {
    let result = grants::grant(&state.db, &admin, &form.realm_id, &username).await;
    after_change(&state, &caller, &csrf, &username, result).await
}

async fn remove_grant(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Path((username, realm)): Path<(String, String)>,
) -> PageResult {
    let result = grants::revoke(&state.db, &admin, &realm, &username).await;
    after_change(&state, &caller, &csrf, &username, result).await
}

/// The destructive actions that ask first, with their wording.
fn action_text(action: &str) -> Option<(&'static str, &'static str, bool)> {
    match action {
        "deactivate" => Some((
            "Deactivate",
            "They are signed out everywhere at once, and their tokens and assistants stop working. You can activate them again later, but they will need to sign in and reconnect their assistants.",
            true,
        )),
        "activate" => Some((
            "Activate",
            "They can sign in again. Their old sessions and tokens stay ended.",
            false,
        )),
        "delete" => Some((
            "Delete",
            "Their account, sessions, tokens and company grants are removed for good. The audit log keeps their name.",
            true,
        )),
        "reset-password" => Some((
            "Send a password link to",
            "Their password stops working, they are signed out everywhere (sessions, personal access tokens and assistants end for good), and they get a one-time link to choose a new password.",
            false,
        )),
        _ => None,
    }
}

/// An address under `/people/{username}/confirm/` that names no action.
fn no_such_action() -> AppError {
    AppError::not_found("There is nothing at this address.")
}

async fn confirm_page(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
    Path((username, action)): Path<(String, String)>,
) -> PageResult<Markup> {
    let (verb, consequence, danger) = action_text(&action).ok_or_else(no_such_action)?;
    let person = find_person(&state, &username).await?;
    let body = html! {
        h1 { (verb) " " (person.username) "?" }
        p { (consequence) }
        form method="post" action={ "/people/" (person.username) "/confirm/" (action) } {
            (csrf.field())
            button class=(if danger { "danger" } else { "" }) type="submit" { "Yes, " (verb.to_lowercase()) " " (person.username) }
            " "
            a href={ "/people/" (person.username) } { "Cancel" }
        }
    };
    Ok(render(&state, Some(&caller.person), &csrf, "Confirm", body).await)
}

async fn confirmed(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Path((username, action)): Path<(String, String)>,
) -> PageResult {
    let active = |on: bool| admin::Changes {
        is_active: Some(on),
        ..Default::default()
    };
    let result = match action.as_str() {
        "deactivate" => admin::update(&state.db, &admin, &username, active(false))
            .await
            .map(drop),
        "activate" => admin::update(&state.db, &admin, &username, active(true))
            .await
            .map(drop),
        "delete" => match admin::delete(&state.db, &admin, &username).await {
            Ok(()) => return Ok(see_other("/people")),
            Err(e) => Err(e),
        },
        "reset-password" => {
            match admin::reset_password(&state.db, &admin, &username, None, &state.public_url).await
            {
                Ok(link) => {
                    let body = html! {
                        h1 { "Password link for " (username) }
                        p { "Send this one-time link. It works once and expires in 24 hours:" }
                        p { code.token { (link.as_ref().map(|l| l.expose().as_str()).unwrap_or("")) } }
                        p { a href={ "/people/" (username) } { "Back" } }
                    };
                    return Ok(
                        render(&state, Some(&caller.person), &csrf, "Password link", body)
                            .await
                            .into_response(),
                    );
                }
                Err(e) => Err(e),
            }
        }
        _ => return Err(no_such_action().into()),
    };
    after_change(&state, &caller, &csrf, &username, result).await
}

async fn allowlist_body(
    state: &AppState,
    csrf: &CsrfToken,
    error: Option<&AppError>,
) -> Result<Markup, AppError> {
    let entries = allowlist::list(&state.db).await?;
    Ok(html! {
        h1 { "Sign-in allowlist" }
        @if state.config.oidc.is_none() {
            p.notice { "No identity provider is configured (QBO_MCP_OIDC_ISSUER), so the allowlist has no effect yet." }
        }
        p { "People whose identity-provider email matches an entry may sign in; their first sign-in creates their account with the entry's role." }
        @if entries.is_empty() {
            p { "The allowlist is empty." }
        } @else {
            table {
                thead { tr { th { "Entry" } th { "Role" } th { span.sr-only { "Actions" } } } }
                tbody {
                    @for e in &entries {
                        tr {
                            td { (e.entry) }
                            td { (e.role) }
                            td { a href={ "/allowlist/remove?entry=" (web::encode(&e.entry)) } { "Remove…" } }
                        }
                    }
                }
            }
        }
        h2 { "Add an entry" }
        form method="post" action="/allowlist" {
            (csrf.field())
            label for="entry" { "Email address or @domain" }
            input #entry name="entry" type="text" required placeholder="@example.com";
            (field_error(error.filter(|e| e.code == "invalid_entry").map(|e| e.message.as_str())))
            label for="role" { "Role at first sign-in" }
            (role_select("role", Role::Viewer))
            button type="submit" { "Add" }
        }
    })
}

async fn allowlist_page(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
) -> PageResult<Markup> {
    let body = allowlist_body(&state, &csrf, None).await?;
    Ok(render(&state, Some(&caller.person), &csrf, "Allowlist", body).await)
}

#[derive(Deserialize)]
struct AllowForm {
    entry: String,
    role: Option<String>,
}

async fn add_allowlist(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Form(form): Form<AllowForm>,
) -> PageResult {
    let result = async {
        let role = parse_role(form.role.as_deref().unwrap_or("viewer"))?;
        allowlist::add(&state.db, &admin, &form.entry, role).await
    }
    .await;
    match result {
        Ok(_) => Ok(see_other("/allowlist")),
        Err(e) if e.status.is_client_error() => {
            let body = allowlist_body(&state, &csrf, Some(&e)).await?;
            Ok((
                e.status,
                render(&state, Some(&caller.person), &csrf, "Allowlist", body).await,
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct EntryQuery {
    entry: String,
}

async fn confirm_remove_allowlist(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
    Query(q): Query<EntryQuery>,
) -> Markup {
    let body = html! {
        h1 { "Remove " (q.entry) "?" }
        p { "People matching it can no longer sign in through the identity provider (password sign-in is not affected)." }
        form method="post" action="/allowlist/remove" {
            (csrf.field())
            input type="hidden" name="entry" value=(q.entry);
            button.danger type="submit" { "Yes, remove " (q.entry) }
            " "
            a href="/allowlist" { "Cancel" }
        }
    };
    render(&state, Some(&caller.person), &csrf, "Confirm", body).await
}

async fn remove_allowlist(
    State(state): State<AppState>,
    AdminPage { admin, .. }: AdminPage,
    Form(form): Form<AllowForm>,
) -> PageResult {
    allowlist::remove(&state.db, &admin, &form.entry).await?;
    Ok(see_other("/allowlist"))
}
