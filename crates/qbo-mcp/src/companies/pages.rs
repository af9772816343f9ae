//! Companies over HTTP: the JSON API (`/api/v1/companies…`), Intuit's callback, and the
//! Companies page. Only admins connect, reconnect and disconnect (they need an `Admin`, which
//! only the auth layer makes); everyone sees the companies they may use. Every connect,
//! reconnect and disconnect lands in the audit log.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::audit::{self, NewEntry, Outcome};
use crate::auth::{Admin, Caller, PageCaller};
use crate::error::{AppError, capitalise};
use crate::people::{Person, Role, grants};
use crate::web::{self, CsrfToken};

use super::connect::{AdminRef, Callback, ConnectError};
use super::{Company, QboError, Status};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/companies", get(list_api))
        .route("/api/v1/companies/connect", post(connect_api))
        .route("/api/v1/companies/{realm_id}", delete(disconnect_api))
        .route("/quickbooks/callback", get(callback))
        .route("/companies", get(companies_page))
        .route("/companies/connect", post(connect_form))
        .route(
            "/companies/{realm_id}/disconnect",
            get(confirm_disconnect).post(disconnect_form),
        )
}

/// The companies `person` may use: all for admins; otherwise granted ones, or the only
/// company of a single-company deployment (`QBO_MCP_GRANT_SINGLE_COMPANY`).
pub async fn visible_companies(
    state: &AppState,
    person: &Person,
) -> Result<Vec<Company>, AppError> {
    let all: Vec<Company> = state
        .quickbooks
        .companies()
        .await?
        .into_iter()
        .filter(|c| c.status != Status::Disconnected)
        .collect();
    if person.role == Role::Admin || (state.config.grant_single_company && all.len() == 1) {
        return Ok(all);
    }
    let granted = grants::granted_realms(&state.db, person.id).await?;
    Ok(all
        .into_iter()
        .filter(|c| granted.contains(&c.realm_id))
        .collect())
}

fn admin_ref(admin: &Admin) -> Result<AdminRef, AppError> {
    let person_id = admin
        .person_id()
        .ok_or_else(|| AppError::forbidden("Connecting a company needs a signed-in admin."))?;
    Ok(AdminRef {
        person_id,
        username: admin.audit_name().to_owned(),
    })
}

fn connect_error(e: ConnectError) -> AppError {
    let message = format!("{}.", capitalise(&e.to_string()));
    match e {
        ConnectError::InProgress { .. } => AppError::conflict("connect_in_progress", message),
        ConnectError::UnknownCompany { .. } => AppError::not_found(message),
        ConnectError::InvalidState | ConnectError::WrongPerson => {
            AppError::bad_request("invalid_state", message)
        }
        ConnectError::Declined => AppError::bad_request("declined", message),
        ConnectError::MissingRealm | ConnectError::Intuit(_) => AppError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "intuit_refused",
            message,
        ),
        ConnectError::Qbo(e) => qbo_error(e),
    }
}

pub fn qbo_error(e: QboError) -> AppError {
    match e {
        QboError::Unavailable { .. } | QboError::Busy { .. } => AppError::unavailable(
            "quickbooks_unavailable",
            "QuickBooks is not answering right now; try again in a minute.",
        )
        .with_retry_after(30),
        QboError::UnknownCompany { .. } => AppError::not_found("There is no such company."),
        QboError::Internal(cause) => AppError::internal(cause),
        other => AppError::bad_request(
            "quickbooks_error",
            format!("{}.", capitalise(&other.to_string())),
        ),
    }
}

fn company_json(c: &Company) -> Value {
    json!({
        "realm_id": c.realm_id,
        "name": c.name,
        "status": c.status.as_str(),
        "status_detail": c.status_detail,
        "connected_by": c.connected_by,
        "intuit_user_email": c.intuit_user_email,
        "connected_at": c.connected_at,
        "access_expires_at": c.access_expires_at,
        "refresh_expires_at": c.refresh_expires_at,
        "last_refresh_at": c.last_refresh_at,
    })
}

/// `GET /api/v1/companies`.
async fn list_api(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, AppError> {
    let companies = visible_companies(&state, &caller.person).await?;
    Ok(Json(
        json!({ "companies": companies.iter().map(company_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    /// A company whose connection is to be replaced.
    reconnect: Option<String>,
}

async fn start(
    state: &AppState,
    admin: &Admin,
    reconnect: Option<&str>,
) -> Result<String, AppError> {
    if let Some(realm) = reconnect {
        grants::parse_realm(realm)?;
    }
    let url = state
        .quickbooks
        .start_connect(&admin_ref(admin)?, reconnect)
        .await
        .map_err(connect_error)?;
    Ok(url.to_string())
}

/// `POST /api/v1/companies/connect` → `{"authorize_url"}`; send the admin's browser there.
async fn connect_api(
    State(state): State<AppState>,
    caller: Caller,
    body: Option<Json<ConnectBody>>,
) -> Result<Json<Value>, AppError> {
    let admin = caller.admin()?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let url = start(&state, &admin, body.reconnect.as_deref()).await?;
    Ok(Json(json!({ "authorize_url": url })))
}

async fn disconnect(state: &AppState, admin: &Admin, realm_id: &str) -> Result<bool, AppError> {
    let realm_id = grants::parse_realm(realm_id)?;
    state
        .quickbooks
        .disconnect(&realm_id, admin.audit_name())
        .await
        .map_err(qbo_error)
}

/// `DELETE /api/v1/companies/{realm_id}`: revoke at Intuit, delete the tokens.
async fn disconnect_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(realm_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let admin = caller.admin()?;
    let revoked = disconnect(&state, &admin, &realm_id).await?;
    Ok(Json(
        json!({ "realm_id": realm_id, "status": "disconnected", "revoked_at_intuit": revoked }),
    ))
}

/// `GET /quickbooks/callback`: Intuit sends the admin back here.
async fn callback(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Query(query): Query<Callback>,
) -> Response {
    let admin = match caller.admin() {
        Ok(a) => a,
        Err(e) => return web::error_page(e),
    };
    let admin_ref = match admin_ref(&admin) {
        Ok(a) => a,
        Err(e) => return web::error_page(e),
    };
    let realm_hint = query.realm_id.clone();
    match state.quickbooks.finish_connect(&admin_ref, query).await {
        Ok(done) => {
            let action = if done.replaced {
                "company.reconnect"
            } else {
                "company.connect"
            };
            if let Err(e) = audit::record_now(
                &state.db,
                &NewEntry::new(Some(admin.audit_name()), action, Outcome::Ok)
                    .company(done.realm_id.clone())
                    .details(json!({ "name": done.name })),
            )
            .await
            {
                return web::error_page(e);
            }
            Redirect::to(&format!("/companies?connected={}", done.realm_id)).into_response()
        }
        Err(e) => {
            let _ = audit::record_now(
                &state.db,
                &NewEntry::new(Some(admin.audit_name()), "company.connect", Outcome::Error)
                    .details(json!({ "realm_id": realm_hint, "error": e.to_string() })),
            )
            .await;
            web::error_page(connect_error(e))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    connected: Option<String>,
}

fn when(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// `GET /companies`.
async fn companies_page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    csrf: CsrfToken,
    Query(q): Query<PageQuery>,
) -> Response {
    let companies = match visible_companies(&state, &caller.person).await {
        Ok(c) => c,
        Err(e) => return web::error_page(e),
    };
    let admin = caller.person.is_admin();
    let body = html! {
        h1 { "Companies" }
        @if let Some(realm) = &q.connected {
            p.notice role="status" { "Company " (realm) " is connected. Everyone with access can use it now; nobody else needs to sign in to QuickBooks." }
        }
        @if companies.is_empty() {
            p { "No QuickBooks company is connected yet." }
        }
        @for c in &companies {
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
                }
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
    web::framed_page(&state, Some(&caller.person), &csrf, "Companies", body)
        .await
        .into_response()
}

#[derive(Debug, Deserialize)]
struct ConnectForm {
    reconnect: Option<String>,
}

/// `POST /companies/connect`: start Intuit's flow from the page.
async fn connect_form(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    axum::Form(form): axum::Form<ConnectForm>,
) -> Response {
    let result = async {
        let admin = caller.admin()?;
        start(
            &state,
            &admin,
            form.reconnect.as_deref().filter(|r| !r.is_empty()),
        )
        .await
    }
    .await;
    match result {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => web::error_page(e),
    }
}

/// `GET /companies/{realm_id}/disconnect`: ask before disconnecting.
async fn confirm_disconnect(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    csrf: CsrfToken,
    Path(realm_id): Path<String>,
) -> Response {
    if let Err(e) = caller.admin() {
        return web::error_page(e);
    }
    let company = match state.quickbooks.company(&realm_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return web::error_page(AppError::not_found("There is no such company.")),
        Err(e) => return web::error_page(e.into()),
    };
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
    web::framed_page(
        &state,
        Some(&caller.person),
        &csrf,
        "Disconnect company",
        body,
    )
    .await
    .into_response()
}

async fn disconnect_form(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(realm_id): Path<String>,
) -> Response {
    let result = async {
        let admin = caller.admin()?;
        disconnect(&state, &admin, &realm_id).await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/companies").into_response(),
        Err(e) => web::error_page(e),
    }
}
