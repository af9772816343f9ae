//! Companies over JSON: `GET /api/v1/companies`, `POST /api/v1/companies/connect` and
//! `DELETE /api/v1/companies/{realm_id}`.

use axum::extract::{Path, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::AppError;
use crate::quickbooks::Company;
use crate::state::AppState;

use super::{disconnect, start, visible_companies};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/companies", get(list_api))
        .route("/api/v1/companies/connect", post(connect_api))
        .route("/api/v1/companies/{realm_id}", delete(disconnect_api))
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
