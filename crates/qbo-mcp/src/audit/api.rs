//! The audit log over JSON: `GET /api/v1/audit`.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::AppError;
use crate::state::AppState;

use super::pages::scope;
use super::{Entry, FilterQuery, read};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    user: Option<String>,
    company: Option<String>,
    action: Option<String>,
    /// ok, refused, error, pending or unknown.
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
    /// `json` (default) or `csv` (every matching entry, streamed; `limit` and `before` do not apply).
    format: Option<String>,
}

#[derive(Serialize)]
struct Page {
    entries: Vec<Entry>,
    /// Pass as `before` for the next (older) page; null at the end.
    next_before: Option<i64>,
}

/// `GET /api/v1/audit`: admins read everything; others only their own entries. As CSV with
/// `format=csv` (`super::csv`).
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
