//! Approvals over JSON: `GET/PUT /api/v1/companies/{realm_id}/approvals` (the policy),
//! `GET /api/v1/proposals?status=…`, `GET /api/v1/proposals/{id}`,
//! `POST /api/v1/proposals/{id}/approve` and `POST /api/v1/proposals/{id}/reject`.

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::companies::visible_companies;
use crate::error::AppError;
use crate::people::grants::parse_realm;
use crate::quickbooks::Company;
use crate::state::AppState;
use crate::web::openapi::ErrorBody;

use super::store::{self, Policy, STATES, State};
use super::{approve, find, may_see, reject, set_policy};

/// The routes with their OpenAPI description (`web::openapi`).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(approve_api))
        .routes(routes!(reject_api))
}

/// A company's approval policy (`policy_json`).
#[derive(ToSchema)]
#[schema(as = ApprovalPolicy)]
#[allow(dead_code)] // Documentation of `policy_json`.
struct PolicyDoc {
    realm_id: String,
    #[schema(pattern = "^(off|all_writes|amount_at_least)$")]
    mode: String,
    /// With `amount_at_least`: the smallest transaction total that needs approval.
    amount: Option<f64>,
}

/// A write held for approval (`store::Proposal`).
#[derive(ToSchema)]
#[schema(as = Proposal)]
#[allow(dead_code)] // Documentation of `store::Proposal`'s JSON form.
struct ProposalDoc {
    id: String,
    #[schema(pattern = "^(pending|approved|rejected|executed|failed|stale)$")]
    status: String,
    /// The company's realm id.
    company: String,
    company_name: String,
    /// The tool that proposed the write (`create_entity`, …).
    tool: String,
    /// What approval sends: method, path, query and body, references already resolved.
    preview: Value,
    /// The write's total, when it has one (what `amount_at_least` compares).
    amount: Option<f64>,
    proposed_by: String,
    /// The assistant it came through.
    assistant: String,
    #[schema(format = DateTime)]
    created_at: String,
    decided_by: Option<String>,
    #[schema(format = DateTime)]
    decided_at: Option<String>,
    note: Option<String>,
    /// QuickBooks' answer, or the fault, once executed.
    result: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only.
struct ProposalList {
    proposals: Vec<ProposalDoc>,
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

/// A company's approval policy: anyone who may use the company reads it.
#[utoipa::path(get, path = "/api/v1/companies/{realm_id}/approvals", tag = "approvals",
    params(("realm_id" = String, Path, description = "The company's realm id.")),
    responses(
        (status = 200, description = "The policy (`off` unless an admin set one).", body = PolicyDoc),
        (status = 404, description = "No such company, or not one the caller may use.", body = ErrorBody),
    ))]
async fn get_policy(
    AxumState(state): AxumState<AppState>,
    caller: Caller,
    Path(realm_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let company = company_for(&state, &caller, &realm_id).await?;
    let policy = store::policy(&state.db, &company.realm_id).await?;
    Ok(Json(policy_json(&company.realm_id, policy)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    /// `off`, `all_writes` or `amount_at_least`.
    mode: String,
    /// Only, and always, with `amount_at_least`.
    amount: Option<f64>,
}

/// Sets a company's approval policy (admins).
#[utoipa::path(put, path = "/api/v1/companies/{realm_id}/approvals", tag = "approvals",
    params(("realm_id" = String, Path, description = "The company's realm id.")),
    request_body = PolicyBody,
    responses(
        (status = 200, description = "The policy now in force.", body = PolicyDoc),
        (status = 404, description = "No such company.", body = ErrorBody),
        (status = 422, description = "`invalid_policy`: an unknown mode, or `amount` missing or extra.", body = ErrorBody),
    ))]
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// pending, approved, rejected, executed, failed or stale; every status when absent.
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

/// Proposals, newest first (at most 500): admins see every proposal, others their own.
#[utoipa::path(get, path = "/api/v1/proposals", tag = "approvals", params(ListQuery),
    responses(
        (status = 200, description = "The proposals.", body = ProposalList),
        (status = 422, description = "`invalid_status`: not one of the statuses.", body = ErrorBody),
    ))]
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

/// One proposal: its proposer and admins may read it.
#[utoipa::path(get, path = "/api/v1/proposals/{id}", tag = "approvals",
    params(("id" = String, Path, description = "The proposal's id.")),
    responses(
        (status = 200, description = "The proposal.", body = ProposalDoc),
        (status = 404, description = "No such proposal, or not the caller's.", body = ErrorBody),
    ))]
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

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    /// Why (required to reject).
    note: Option<String>,
}

/// Approves a proposal and sends its write at once (admins other than the proposer): the
/// answer says whether it `executed`, `failed` or went `stale`.
#[utoipa::path(post, path = "/api/v1/proposals/{id}/approve", tag = "approvals",
    params(("id" = String, Path, description = "The proposal's id.")),
    request_body(content = Option<NoteBody>, description = "An optional note."),
    responses(
        (status = 200, description = "The proposal, decided, with QuickBooks' result.", body = ProposalDoc),
        (status = 403, description = "`own_proposal`: nobody approves their own proposal.", body = ErrorBody),
        (status = 404, description = "No such proposal.", body = ErrorBody),
        (status = 409, description = "`not_pending`: already decided.", body = ErrorBody),
    ))]
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

/// Rejects a proposal (admins): nothing is sent to QuickBooks.
#[utoipa::path(post, path = "/api/v1/proposals/{id}/reject", tag = "approvals",
    params(("id" = String, Path, description = "The proposal's id.")),
    request_body(content = NoteBody, description = "Why it is rejected."),
    responses(
        (status = 200, description = "The proposal, rejected.", body = ProposalDoc),
        (status = 404, description = "No such proposal.", body = ErrorBody),
        (status = 409, description = "`not_pending`: already decided.", body = ErrorBody),
        (status = 422, description = "`note_required`: a rejection says why.", body = ErrorBody),
    ))]
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
