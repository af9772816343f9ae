//! The audit log over JSON: `GET /api/v1/audit`.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::AppError;
use crate::state::AppState;

use super::{Entry, Filter, parse_time, read};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    user: Option<String>,
    company: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

#[derive(Serialize)]
struct Page {
    entries: Vec<Entry>,
    /// Pass as `before` for the next (older) page; null at the end.
    next_before: Option<i64>,
}

/// `GET /api/v1/audit`: admins read everything; others only their own entries.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, AppError> {
    let Query(q) =
        query.map_err(|e| AppError::bad_request("invalid_query", format!("{}.", e.body_text())))?;
    let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, AppError> {
        v.as_deref()
            .map(|raw| {
                parse_time(raw).ok_or_else(|| {
                    AppError::invalid(
                        "invalid_time",
                        format!("`{name}` must be an RFC 3339 time, a date like 2026-11-23, or Unix seconds."),
                    )
                })
            })
            .transpose()
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::invalid(
            "invalid_limit",
            "`limit` must be between 1 and 1000.",
        ));
    }
    let mut username = q.user.map(|u| u.trim().to_ascii_lowercase());
    if !caller.person.is_admin() {
        match &username {
            Some(u) if *u != caller.person.username => {
                return Err(AppError::forbidden(
                    "Only admins can read other people's audit entries.",
                ));
            }
            _ => username = Some(caller.person.username.clone()),
        }
    }
    let filter = Filter {
        username,
        company: q.company,
        action: q.action,
        since: time("since", &q.since)?,
        until: time("until", &q.until)?,
        before: q.before,
        limit,
    };
    let entries = read(&state.db, &filter).await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(axum::Json(
        serde_json::to_value(Page {
            entries,
            next_before,
        })
        .map_err(AppError::internal)?,
    ))
}
