//! The audit log over JSON: `GET /api/v1/audit`.

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::openapi::ErrorBody;

use super::{Entry, Filter, parse_time, read};

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
    /// From this time: RFC 3339, a date like 2026-11-23, or Unix seconds.
    since: Option<String>,
    /// Up to this time, in the same forms.
    until: Option<String>,
    /// Entries older than this id: `next_before` of the previous page.
    before: Option<i64>,
    /// 1 to 1000; 100 when absent.
    limit: Option<i64>,
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
    #[schema(pattern = "^(ok|refused|error)$")]
    outcome: String,
    /// What else the action recorded (any JSON).
    details: serde_json::Value,
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

/// Audit entries, newest first: admins read everything; others only their own entries.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(ListQuery),
    responses(
        (status = 200, description = "A page of entries.", body = Page),
        (status = 422, description = "A time or `limit` out of its range.", body = ErrorBody),
    ))]
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
