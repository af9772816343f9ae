//! The sign-in allowlist, for admins: who may sign in through the identity provider, with
//! which role at first sign-in; removing an entry asks first.

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::AdminPage;
use crate::error::AppError;
use crate::people::{Role, allowlist, parse_role};
use crate::state::AppState;
use crate::web::{self, CsrfToken, PageResult, field_error};

use super::{render, role_select, see_other};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/allowlist", get(allowlist_page).post(add_allowlist))
        .route(
            "/allowlist/remove",
            get(confirm_remove_allowlist).post(remove_allowlist),
        )
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
