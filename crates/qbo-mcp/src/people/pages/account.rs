//! My account: personal access tokens (create, revoke), "Sign out everywhere", and the
//! password change (also reachable by a person who must change their password first).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::{Caller, PageCaller, SignedIn};
use crate::error::AppError;
use crate::people::{Person, access, password, tokens};
use crate::secret::Secret;
use crate::state::AppState;
use crate::web::{self, CsrfToken, PageResult, field_error};

use super::{render, see_other};
use crate::web::with_session_cookie;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_page))
        .route(
            "/account/password",
            get(password_page).post(change_password),
        )
        .route("/account/tokens", post(create_token))
        .route("/account/sign-out-everywhere", post(sign_out_everywhere))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
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
                            td { (crate::time::time_display(t.created_at)) }
                            td { (t.last_used_at.map(crate::time::time_display).unwrap_or_else(|| "never".into())) }
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
        match crate::people::api::create_token_for(&state, &caller.person, &form.name).await {
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
    crate::people::api::revoke_token_of(&state, &caller.person, id).await?;
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
