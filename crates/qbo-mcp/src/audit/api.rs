//! The audit log over JSON: `GET /api/v1/audit`.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::openapi::ErrorBody;

use super::pages::scope;
use super::{Entry, FilterQuery, read};

/// The routes with their OpenAPI description (`web::openapi`).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Entries of this person (non-admins: only themself).
    user: Option<String>,
    /// Entries about this company (realm id).
    company: Option<String>,
    /// Entries of this action, e.g. `token.create`.
    action: Option<String>,
    /// ok, refused, error, pending or unknown.
    outcome: Option<String>,
    /// From this time: RFC 3339, a date like 2026-11-23, or Unix seconds.
    since: Option<String>,
    /// Up to this time, in the same forms.
    until: Option<String>,
    /// Entries older than this id: `next_before` of the previous page.
    before: Option<i64>,
    /// 1 to 1000; 100 when absent.
    limit: Option<i64>,
    /// `json` (default) or `csv` (every matching entry, streamed; `limit` and `before` do not apply).
    format: Option<String>,
}

/// An audit entry (`audit::Entry`).
#[derive(ToSchema)]
#[schema(as = AuditEntry)]
#[allow(dead_code)] // Documentation of `audit::Entry`'s JSON form.
struct EntryDoc {
    id: i64,
    #[schema(format = DateTime)]
    at: String,
    username: Option<String>,
    action: String,
    target: Option<String>,
    tool: Option<String>,
    /// The realm id of the company the action concerned (for a tool call: the company it
    /// resolved to).
    company: Option<String>,
    /// That company's name when the entry was written.
    company_name: Option<String>,
    #[schema(pattern = "^(ok|refused|error|pending|unknown)$")]
    outcome: String,
    /// What else the action recorded (any JSON): for a tool call, what it did in the books.
    details: serde_json::Value,
    /// The assistant (OAuth client) that made a tool call.
    assistant: Option<String>,
    /// How long a tool call took.
    duration_ms: Option<i64>,
    /// QuickBooks' request id (`intuit_tid`) of a tool call's last QuickBooks request.
    intuit_tid: Option<String>,
}

/// A page of entries, newest first.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditPage)]
struct Page {
    #[schema(value_type = Vec<EntryDoc>)]
    entries: Vec<Entry>,
    /// Pass as `before` for the next (older) page; null at the end.
    next_before: Option<i64>,
}

/// Audit entries, newest first: admins read everything; others only their own entries. As
/// CSV (every matching entry, streamed) with `format=csv`.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(ListQuery),
    responses(
        (status = 200, description = "A page of entries; with `format=csv`, every matching entry as CSV with a header row.",
            content((Page = "application/json"), (String = "text/csv"))),
        (status = 422, description = "A time or `limit` out of its range.", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(q) =
        query.map_err(|e| AppError::bad_request("invalid_query", format!("{}.", e.body_text())))?;
    let fields = FilterQuery {
        user: q.user,
        company: q.company,
        action: q.action,
        outcome: q.outcome,
        since: q.since,
        until: q.until,
    };
    let mut filter = fields
        .check()
        .map_err(|e| AppError::invalid(e.code, e.message))?;
    scope(&mut filter, &caller.person)?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => {}
        "csv" => return Ok(super::csv::export(state.db.clone(), filter)),
        _ => {
            return Err(AppError::invalid(
                "invalid_format",
                "`format` is json or csv.",
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::invalid(
            "invalid_limit",
            "`limit` must be between 1 and 1000.",
        ));
    }
    filter.before = q.before;
    filter.limit = limit;
    let entries = read(&state.db, &filter).await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(axum::Json(Page {
        entries,
        next_before,
    })
    .into_response())
}
