//! Companies over JSON: `GET /api/v1/companies`, `POST /api/v1/companies/connect` and
//! `DELETE /api/v1/companies/{realm_id}`.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::AppError;
use crate::quickbooks::Company;
use crate::state::AppState;
use crate::web::openapi::ErrorBody;

use super::{disconnect, start, visible_companies};

/// The routes with their OpenAPI description (`web::openapi`).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_api))
        .routes(routes!(connect_api))
        .routes(routes!(disconnect_api))
}

/// A connected company as listed (`company_json`).
#[derive(ToSchema)]
#[schema(as = Company)]
#[allow(dead_code)] // Documentation of `company_json`.
struct CompanyDoc {
    realm_id: String,
    name: String,
    #[schema(pattern = "^(connected|needs_reconnect|disconnected)$")]
    status: String,
    /// Why a company needs reconnecting.
    status_detail: Option<String>,
    /// The admin who connected it.
    connected_by: Option<String>,
    /// The Intuit identity that authorized the app.
    intuit_user_email: Option<String>,
    /// Unix seconds.
    connected_at: Option<i64>,
    /// Unix seconds.
    access_expires_at: Option<i64>,
    /// Unix seconds.
    refresh_expires_at: Option<i64>,
    /// Unix seconds.
    last_refresh_at: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only.
struct CompanyList {
    companies: Vec<CompanyDoc>,
}

/// Where to send the admin's browser to authorize at Intuit.
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only.
struct ConnectAnswer {
    authorize_url: String,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only.
struct Disconnected {
    realm_id: String,
    #[schema(example = "disconnected")]
    status: String,
    /// Whether Intuit confirmed the revocation (the tokens are deleted either way).
    revoked_at_intuit: bool,
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

/// The companies the caller may use (admins: every connected company).
#[utoipa::path(get, path = "/api/v1/companies", tag = "companies",
    responses((status = 200, description = "The companies.", body = CompanyList)))]
async fn list_api(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, AppError> {
    let companies = visible_companies(&state, &caller.person).await?;
    Ok(Json(
        json!({ "companies": companies.iter().map(company_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    /// A company whose connection is to be replaced.
    reconnect: Option<String>,
}

/// Starts connecting a company at Intuit (admins); the body is optional.
///
/// Answers `{"authorize_url"}`: send the admin's browser there.
#[utoipa::path(post, path = "/api/v1/companies/connect", tag = "companies",
    request_body(content = Option<ConnectBody>, description = "To reconnect a company: its realm id."),
    responses(
        (status = 200, description = "Where to authorize.", body = ConnectAnswer),
        (status = 409, description = "A connection flow for that company is under way.", body = ErrorBody),
    ))]
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

/// Disconnects a company (admins): revokes at Intuit, deletes the tokens.
#[utoipa::path(delete, path = "/api/v1/companies/{realm_id}", tag = "companies",
    params(("realm_id" = String, Path, description = "The company's realm id.")),
    responses((status = 200, description = "Disconnected.", body = Disconnected)))]
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
