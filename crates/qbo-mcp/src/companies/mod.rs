//! The companies feature: which companies a person may use, connecting (through Intuit's
//! authorization code flow), reconnecting and disconnecting them, and the warnings admins see
//! while one needs reconnecting. Surfaces: the JSON API ([`api`]), the Companies pages and
//! Intuit's callback ([`pages`]), the command line ([`cli`]). Talking to Intuit is the
//! QuickBooks client's job (`crate::quickbooks`); this feature decides who may ask it.
//!
//! Only admins connect, reconnect and disconnect (they need an `Admin`, which only the auth
//! layer makes); everyone sees the companies they may use. Every connect, reconnect and
//! disconnect lands in the audit log.

pub mod api;
pub mod cli;
pub mod pages;

use axum::Router;

use crate::auth::Admin;
use crate::error::{AppError, capitalise};
use crate::people::{Person, Role, grants};
use crate::quickbooks::connect::{AdminRef, ConnectError};
use crate::quickbooks::{Company, QboError, Status};
use crate::state::AppState;

/// The pages of the feature (its JSON API, with its OpenAPI description, is `api::routes`).
pub fn routes() -> Router<AppState> {
    pages::routes()
}

/// The companies `person` may use: all for admins; otherwise granted ones, or the only
/// company of a single-company deployment (`QBO_MCP_GRANT_SINGLE_COMPANY`).
pub async fn visible_companies(
    state: &AppState,
    person: &Person,
) -> Result<Vec<Company>, AppError> {
    let all = not_disconnected(state).await?;
    if person.role == Role::Admin || (state.config.grant_single_company && all.len() == 1) {
        return Ok(all);
    }
    let granted = grants::granted_realms(&state.db, person.id).await?;
    Ok(all
        .into_iter()
        .filter(|c| granted.contains(&c.realm_id))
        .collect())
}

/// Every company not disconnected.
async fn not_disconnected(state: &AppState) -> Result<Vec<Company>, AppError> {
    let mut all = state.quickbooks.companies().await?;
    all.retain(|c| c.status != Status::Disconnected);
    Ok(all)
}

/// The company `wanted` (a realm id, or a name in any ASCII case) names among those `person`
/// may use, by the rules of [`visible_companies`] — without reading every company: one indexed
/// query, and for others than admins the grant's (a tool call does this on every call, so a
/// deactivated person, a removed grant or a disconnected company counts on the next one).
pub async fn visible_company(
    state: &AppState,
    person: &Person,
    wanted: &str,
) -> Result<Option<Company>, AppError> {
    let named = state.quickbooks.companies_named(wanted).await?;
    for company in named
        .into_iter()
        .filter(|c| c.status != Status::Disconnected)
    {
        if grants::may_use(&state.db, person, &company.realm_id).await?
            || (state.config.grant_single_company && not_disconnected(state).await?.len() == 1)
        {
            return Ok(Some(company));
        }
    }
    Ok(None)
}

/// Warnings every admin should see on every page: companies whose connection needs an admin.
/// Pages pass them to the page frame (`web::Frame::warnings`).
pub async fn admin_warnings(state: &AppState, person: &Person) -> Vec<String> {
    if person.role != Role::Admin {
        return Vec::new();
    }
    match state.quickbooks.companies().await {
        Ok(companies) => companies
            .iter()
            .filter(|c| c.status == Status::NeedsReconnect)
            .map(|c| {
                format!(
                    "{} must be reconnected to QuickBooks: assistants cannot use it until an admin reconnects it on the Companies page.",
                    c.name
                )
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read companies for the admin warnings");
            Vec::new()
        }
    }
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

async fn disconnect(state: &AppState, admin: &Admin, realm_id: &str) -> Result<bool, AppError> {
    let realm_id = grants::parse_realm(realm_id)?;
    state
        .quickbooks
        .disconnect(&realm_id, admin.audit_name())
        .await
        .map_err(qbo_error)
}
