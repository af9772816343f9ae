//! Approvals over JSON: `GET/PUT /api/v1/companies/{realm_id}/approvals` (the policy),
//! `GET /api/v1/proposals?status=…`, `GET /api/v1/proposals/{id}`,
//! `POST /api/v1/proposals/{id}/approve` and `POST /api/v1/proposals/{id}/reject`.

use axum::extract::{Path, Query, State as AxumState};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::companies::visible_companies;
use crate::error::AppError;
use crate::people::grants::parse_realm;
use crate::quickbooks::Company;
use crate::state::AppState;

use super::store::{self, Policy, STATES, State};
use super::{approve, find, may_see, reject, set_policy};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/companies/{realm_id}/approvals",
            get(get_policy).put(put_policy),
        )
        .route("/api/v1/proposals", get(list))
        .route("/api/v1/proposals/{id}", get(one))
        .route("/api/v1/proposals/{id}/approve", post(approve_api))
        .route("/api/v1/proposals/{id}/reject", post(reject_api))
}

/// The company `realm_id`, when `caller` may use it (404 otherwise, as for an unknown one).
pub async fn company_for(
    state: &AppState,
    caller: &Caller,
    realm_id: &str,
) -> Result<Company, AppError> {
    let realm_id = parse_realm(realm_id)?;
    visible_companies(state, &caller.person)
        .await?
        .into_iter()
        .find(|c| c.realm_id == realm_id)
        .ok_or_else(|| AppError::not_found(format!("There is no company {realm_id}.")))
}

fn policy_json(realm_id: &str, policy: Policy) -> Value {
    json!({ "realm_id": realm_id, "mode": policy.mode(), "amount": policy.amount() })
}

/// `GET /api/v1/companies/{realm_id}/approvals`: anyone who may use the company.
async fn get_policy(
    AxumState(state): AxumState<AppState>,
    caller: Caller,
    Path(realm_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let company = company_for(&state, &caller, &realm_id).await?;
    let policy = store::policy(&state.db, &company.realm_id).await?;
    Ok(Json(policy_json(&company.realm_id, policy)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    mode: String,
    amount: Option<f64>,
}

/// `PUT /api/v1/companies/{realm_id}/approvals` (admins).
async fn put_policy(
    AxumState(state): AxumState<AppState>,
    caller: Caller,
    Path(realm_id): Path<String>,
    Json(body): Json<PolicyBody>,
) -> Result<Json<Value>, AppError> {
    let admin = caller.admin()?;
    let company = company_for(&state, &caller, &realm_id).await?;
    let policy = Policy::parse(body.mode.trim(), body.amount)
        .map_err(|m| AppError::invalid("invalid_policy", m))?;
    set_policy(&state.db, &admin, &company, policy).await?;
    Ok(Json(policy_json(&company.realm_id, policy)))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
}

/// The status a `?status=` names, or 400 listing the valid ones.
pub fn parse_status(status: Option<&str>) -> Result<Option<State>, AppError> {
    match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => State::parse(s).map(Some).ok_or_else(|| {
            AppError::invalid(
                "invalid_status",
                format!("`{s}` is not a status; use one of {}.", STATES.join(", ")),
            )
        }),
    }
}

/// `GET /api/v1/proposals?status=…`: admins see every proposal, others their own.
async fn list(
    AxumState(state): AxumState<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, AppError> {
    let status = parse_status(q.status.as_deref())?;
    let mine = (!caller.person.is_admin()).then_some(caller.person.id);
    let proposals = store::list(&state.db, status, mine).await?;
    Ok(Json(json!({ "proposals": proposals })))
}

/// `GET /api/v1/proposals/{id}`.
async fn one(
    AxumState(state): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let p = find(&state.db, &id).await?;
    if !may_see(&caller.person, &p) {
        return Err(AppError::not_found(format!("There is no proposal `{id}`.")));
    }
    Ok(Json(json!(p)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: Option<String>,
}

/// `POST /api/v1/proposals/{id}/approve` (admins, not the proposer): sends the write at once.
async fn approve_api(
    AxumState(state): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<NoteBody>>,
) -> Result<Json<Value>, AppError> {
    let admin = caller.admin()?;
    let note = body.and_then(|Json(b)| b.note);
    let p = approve(&state.db, &state.quickbooks, &admin, &id, note.as_deref()).await?;
    Ok(Json(json!(p)))
}

/// `POST /api/v1/proposals/{id}/reject` (admins) with `{"note"}`.
async fn reject_api(
    AxumState(state): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<NoteBody>>,
) -> Result<Json<Value>, AppError> {
    let admin = caller.admin()?;
    let note = body.and_then(|Json(b)| b.note).unwrap_or_default();
    let p = reject(&state.db, &admin, &id, &note).await?;
    Ok(Json(json!(p)))
}
