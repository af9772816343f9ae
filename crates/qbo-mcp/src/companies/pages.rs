//! The Companies pages (`/companies…`) and Intuit's callback (`/quickbooks/callback`), where
//! Intuit sends the admin's browser back after consent.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, NewEntry, Outcome};
use crate::auth::{AdminPage, PageCaller};
use crate::error::AppError;
use crate::people::Person;
use crate::proposals::store::Policy;
use crate::quickbooks::Status;
use crate::quickbooks::connect::Callback;
use crate::state::AppState;
use crate::time::time_display;
use crate::web::{self, CsrfToken, Frame, PageResult};

use super::{admin_ref, admin_warnings, connect_error, disconnect, start, visible_companies};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/quickbooks/callback", get(callback))
        .route("/companies", get(companies_page))
        .route("/companies/connect", post(connect_form))
        .route(
            "/companies/{realm_id}/disconnect",
            get(confirm_disconnect).post(disconnect_form),
        )
}

/// A page in the common frame, with the admin warnings.
async fn framed(
    state: &AppState,
    person: &Person,
    csrf: &CsrfToken,
    title: &str,
    body: Markup,
) -> Markup {
    let frame = Frame {
        title,
        viewer: Some(person.into()),
        csrf: Some(csrf),
        warnings: admin_warnings(state, person).await,
        pending_proposals: crate::proposals::store::pending_for(&state.db, person.is_admin()).await,
    };
    web::layout(state, &frame, body)
}

/// `GET /quickbooks/callback`: Intuit sends the admin back here.
async fn callback(
    State(state): State<AppState>,
    AdminPage { admin, .. }: AdminPage,
    Query(query): Query<Callback>,
) -> PageResult {
    let admin_ref = admin_ref(&admin)?;
    let realm_hint = query.realm_id.clone();
    match state.quickbooks.finish_connect(&admin_ref, query).await {
        Ok(done) => {
            let action = if done.replaced {
                "company.reconnect"
            } else {
                "company.connect"
            };
            audit::record_now(
                &state.db,
                &NewEntry::new(Some(admin.audit_name()), action, Outcome::Ok)
                    .company(done.realm_id.clone())
                    .details(json!({ "name": done.name })),
            )
            .await?;
            Ok(Redirect::to(&format!("/companies?connected={}", done.realm_id)).into_response())
        }
        Err(e) => {
            let _ = audit::record_now(
                &state.db,
                &NewEntry::new(Some(admin.audit_name()), "company.connect", Outcome::Error)
                    .details(json!({ "realm_id": realm_hint, "error": e.to_string() })),
            )
            .await;
            Err(connect_error(e).into())
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    connected: Option<String>,
}

fn when(t: Option<i64>) -> String {
    t.map(time_display).unwrap_or_else(|| "—".to_owned())
}

/// Tool calls shown on each company's card; the audit page has the rest.
const RECENT_CALLS: i64 = 5;

/// The latest tool calls in a company that `person` may read: everyone's for an admin, their
/// own otherwise (as on the audit page).
async fn recent_calls(
    state: &AppState,
    person: &Person,
    realm_id: &str,
) -> Result<Vec<audit::Entry>, AppError> {
    let filter = audit::Filter {
        username: (!person.is_admin()).then(|| person.username.clone()),
        company: Some(realm_id.to_owned()),
        action: Some("tool.call".to_owned()),
        limit: RECENT_CALLS,
        ..Default::default()
    };
    audit::read(&state.db, &filter).await
}

/// `GET /companies`.
async fn companies_page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    csrf: CsrfToken,
    Query(q): Query<PageQuery>,
) -> PageResult<Markup> {
    let companies = visible_companies(&state, &caller.person).await?;
    let admin = caller.person.is_admin();
    let mut recent = Vec::with_capacity(companies.len());
    let mut policies = Vec::with_capacity(companies.len());
    for c in &companies {
        recent.push(recent_calls(&state, &caller.person, &c.realm_id).await?);
        policies.push(crate::proposals::store::policy(&state.db, &c.realm_id).await?);
    }
    let body = html! {
        h1 { "Companies" }
        @if let Some(realm) = &q.connected {
            p.notice role="status" { "Company " (realm) " is connected. Everyone with access can use it now; nobody else needs to sign in to QuickBooks." }
        }
        @if companies.is_empty() {
            p { "No QuickBooks company is connected yet." }
        }
        @for ((c, calls), policy) in companies.iter().zip(&recent).zip(&policies) {
            section.card {
                h2 { (c.name) }
                dl {
                    dt { "Status" } dd { (c.status.as_str().replace('_', " ")) }
                    @if let Some(detail) = &c.status_detail { dt { "Why" } dd { (detail) } }
                    dt { "Realm id" } dd { code { (c.realm_id) } }
                    dt { "Connected by" } dd { (c.connected_by.as_deref().unwrap_or("—")) @if let Some(e) = &c.intuit_user_email { " (QuickBooks user " (e) ")" } }
                    dt { "Connected" } dd { (when(c.connected_at)) }
                    @if admin {
                        dt { "Access token expires" } dd { (when(c.access_expires_at)) }
                        dt { "Refresh token expires" } dd { (when(c.refresh_expires_at)) }
                        dt { "Last refresh" } dd { (when(c.last_refresh_at)) }
                    }
                    dt { "Approvals" } dd { (approvals_text(*policy)) }
                }
                @if admin { (approvals_form(c, *policy, &csrf)) }
                h3 { "Recent calls" }
                @if calls.is_empty() {
                    p.hint { "No tool calls yet." }
                } @else {
                    ul.recent {
                        @for e in calls {
                            li {
                                (time_display(e.at_secs)) " · " (e.username.as_deref().unwrap_or("system"))
                                " · " (e.tool.as_deref().unwrap_or(&e.action)) " · " (e.outcome)
                                @if let Some(g) = e.gist() { " — " (g) }
                            }
                        }
                    }
                }
                p { a href={ "/audit?company=" (c.realm_id) } { "All activity in " (c.name) } }
                @if admin {
                    form.inline method="post" action="/companies/connect" {
                        (csrf.field())
                        input type="hidden" name="reconnect" value=(c.realm_id);
                        button type="submit" { "Reconnect" }
                    }
                    @if c.status != Status::Disconnected {
                        " "
                        a.button.danger href={ "/companies/" (c.realm_id) "/disconnect" } { "Disconnect…" }
                    }
                }
            }
        }
        @if admin {
            form method="post" action="/companies/connect" {
                (csrf.field())
                button type="submit" { "Connect a QuickBooks company" }
            }
            p.hint { "You will sign in to QuickBooks as one of the company's admins. Connect each company once: everyone else uses this connection." }
        } @else if companies.is_empty() {
            p { "Ask an admin to connect a company or to grant you access." }
        }
    };
    Ok(framed(&state, &caller.person, &csrf, "Companies", body).await)
}

fn approvals_text(policy: Policy) -> String {
    match policy {
        Policy::Off => "off: writes go straight to QuickBooks".to_owned(),
        Policy::AllWrites => "every write waits for an admin's approval".to_owned(),
        Policy::AmountAtLeast { amount } => {
            format!("writes of {amount:.2} or more wait for an admin's approval")
        }
    }
}

/// The approval policy form (handled by `proposals::pages`).
fn approvals_form(c: &crate::quickbooks::Company, policy: Policy, csrf: &CsrfToken) -> Markup {
    html! {
        form.inline method="post" action={ "/companies/" (c.realm_id) "/approvals" } {
            (csrf.field())
            label { "Approvals "
                select name="mode" {
                    @for (mode, label) in [("off", "off"), ("all_writes", "all writes"), ("amount_at_least", "amount at least")] {
                        option value=(mode) selected[policy.mode() == mode] { (label) }
                    }
                }
            }
            " "
            input type="number" name="amount" min="0" step="0.01" aria-label="Amount" value=[policy.amount()];
            " "
            button type="submit" { "Save" }
        }
    }
}

#[derive(Debug, Deserialize)]
struct ConnectForm {
    reconnect: Option<String>,
}

/// `POST /companies/connect`: start Intuit's flow from the page.
async fn connect_form(
    State(state): State<AppState>,
    AdminPage { admin, .. }: AdminPage,
    axum::Form(form): axum::Form<ConnectForm>,
) -> PageResult {
    let url = start(
        &state,
        &admin,
        form.reconnect.as_deref().filter(|r| !r.is_empty()),
    )
    .await?;
    Ok(Redirect::to(&url).into_response())
}

/// `GET /companies/{realm_id}/disconnect`: ask before disconnecting.
async fn confirm_disconnect(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
    Path(realm_id): Path<String>,
) -> PageResult<Markup> {
    let company = state
        .quickbooks
        .company(&realm_id)
        .await?
        .ok_or_else(|| AppError::not_found("There is no such company."))?;
    let body = html! {
        h1 { "Disconnect " (company.name) "?" }
        p { "The connection is revoked at QuickBooks and its tokens are deleted. Every assistant loses access to this company until an admin connects it again." }
        form method="post" action={ "/companies/" (company.realm_id) "/disconnect" } {
            (csrf.field())
            button.danger type="submit" { "Disconnect" }
            " "
            a href="/companies" { "Cancel" }
        }
    };
    Ok(framed(&state, &caller.person, &csrf, "Disconnect company", body).await)
}

async fn disconnect_form(
    State(state): State<AppState>,
    AdminPage { admin, .. }: AdminPage,
    Path(realm_id): Path<String>,
) -> PageResult {
    disconnect(&state, &admin, &realm_id).await?;
    Ok(Redirect::to("/companies").into_response())
}
