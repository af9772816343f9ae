//! The audit page (`GET /audit`): admins read everyone's entries, others their own. A GET form
//! filters by `user`, `company`, `action`, `outcome`, `since` and `until` (so a filtered view
//! is a link); entries come newest first, [`PAGE_SIZE`] at a time, each a `<details>` that
//! opens on what the call or change did, the assistant, QuickBooks' request id and the
//! duration. The same filters download as CSV from `GET /api/v1/audit?format=csv`.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::{Entry, FieldError, Filter, FilterQuery, OUTCOMES, read, shown};
use crate::auth::PageCaller;
use crate::error::AppError;
use crate::people::Person;
use crate::state::AppState;
use crate::time::time_display;
use crate::web::{self, Frame, PageResult, field_error};

/// Entries per page.
pub const PAGE_SIZE: i64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(audit_page))
}

/// Who may read what, for the page and the API: an admin reads any entries; anyone else only
/// their own (asking for another person's is refused).
pub(super) fn scope(filter: &mut Filter, person: &Person) -> Result<(), AppError> {
    if person.is_admin() {
        return Ok(());
    }
    match &filter.username {
        Some(u) if *u != person.username => Err(AppError::forbidden(
            "Only admins can read other people's audit entries.",
        )),
        _ => {
            filter.username = Some(person.username.clone());
            Ok(())
        }
    }
}

/// The page's own query field besides the filters.
#[derive(Debug, Default, Deserialize)]
struct Paging {
    /// Entries older than this id (the "Older entries" link).
    before: Option<String>,
}

/// `GET /audit`.
async fn audit_page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    csrf: web::CsrfToken,
    fields: Result<Query<FilterQuery>, QueryRejection>,
    paging: Result<Query<Paging>, QueryRejection>,
) -> PageResult<Response> {
    let unreadable =
        |e: QueryRejection| AppError::bad_request("invalid_query", format!("{}.", e.body_text()));
    let Query(fields) = fields.map_err(unreadable)?;
    let Query(paging) = paging.map_err(unreadable)?;
    let person = &caller.person;
    let before = match paging
        .before
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        None => Ok(None),
        Some(b) => b.parse::<i64>().map(Some).map_err(|_| FieldError {
            field: "before",
            code: "invalid_before",
            message: "`before` is an entry id.".into(),
        }),
    };
    let checked = fields.check().and_then(|f| before.map(|b| (f, b)));
    let (status, listing) = match checked {
        Ok((mut filter, before)) => {
            scope(&mut filter, person)?;
            filter.before = before;
            filter.limit = PAGE_SIZE + 1;
            let mut entries = read(&state.db, &filter).await?;
            let more = entries.len() as i64 > PAGE_SIZE;
            entries.truncate(PAGE_SIZE as usize);
            (StatusCode::OK, Ok((entries, more, before.is_some())))
        }
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Err(e)),
    };
    let error = listing.as_ref().err();
    let query = fields.to_query();
    let body = html! {
        h1 { "Audit log" }
        @if !person.is_admin() {
            p.hint { "These are your own entries: what you did, and what your assistants did for you." }
        }
        (filter_form(&fields, person, error))
        p {
            a href={ "/api/v1/audit?format=csv" @if !query.is_empty() { "&" (query) } } { "Download these entries as CSV" }
        }
        @if let Ok((entries, more, paged)) = &listing {
            @if entries.is_empty() {
                p { "No entries match." }
            } @else {
                p.hint { "Newest first. Open an entry for its details." }
                ol.entries {
                    @for e in entries {
                        li { (entry(e)) }
                    }
                }
            }
            nav.paging aria-label="Pages" {
                @if *paged {
                    a href={ "/audit" @if !query.is_empty() { "?" (query) } } { "Newest entries" }
                }
                @if let (true, Some(last)) = (*more, entries.last()) {
                    a href={ "/audit?" @if !query.is_empty() { (query) "&" } "before=" (last.id) } { "Older entries" }
                }
            }
        }
    };
    let frame = Frame {
        title: "Audit log",
        viewer: Some(person.into()),
        csrf: Some(&csrf),
        warnings: crate::companies::admin_warnings(&state, person).await,
        pending_proposals: crate::proposals::store::pending_for(&state.db, person.is_admin()).await,
    };
    Ok((status, web::layout(&state, &frame, body)).into_response())
}

/// The GET form; every field labelled, an error next to its field.
fn filter_form(fields: &FilterQuery, person: &Person, error: Option<&FieldError>) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let on = |field: &str| {
        error
            .filter(|e| e.field == field)
            .map(|e| e.message.as_str())
    };
    // A date shows in a date picker; a time given in a link stays as written.
    let date_type = |v: &Option<String>| match v.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() && chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_err() => {
            "text"
        }
        _ => "date",
    };
    let outcome = fields.outcome.as_deref().unwrap_or("");
    html! {
        form.filters method="get" action="/audit" role="search" aria-label="Filter the audit log" {
            @if person.is_admin() {
                div {
                    label for="user" { "User" }
                    input #user name="user" type="text" value=(value(&fields.user)) autocomplete="off";
                }
            }
            div {
                label for="company" { "Company" }
                input #company name="company" type="text" value=(value(&fields.company)) aria-describedby="company-hint";
                span #company-hint .hint { "Name or realm id" }
            }
            div {
                label for="action" { "Action" }
                input #action name="action" type="text" value=(value(&fields.action)) aria-describedby="action-hint";
                span #action-hint .hint { "tool.call, or user for every user.… action" }
            }
            div {
                label for="outcome" { "Outcome" }
                select #outcome name="outcome" {
                    option value="" selected[outcome.is_empty()] { "any" }
                    @for o in OUTCOMES {
                        option value=(o) selected[outcome == *o] { (o) }
                    }
                }
                (field_error(on("outcome")))
            }
            div {
                label for="since" { "Since" }
                input #since name="since" type=(date_type(&fields.since)) value=(value(&fields.since));
                (field_error(on("since")))
            }
            div {
                label for="until" { "Until" }
                input #until name="until" type=(date_type(&fields.until)) value=(value(&fields.until));
                (field_error(on("until")))
            }
            div.actions {
                button type="submit" { "Filter" }
                " "
                a href="/audit" { "Clear filters" }
            }
            (field_error(on("before")))
        }
    }
}

/// One entry: a line that says who did what, opening on the rest.
fn entry(e: &Entry) -> Markup {
    let who = e.username.as_deref().unwrap_or("system");
    let company = e.company_name.as_deref().or(e.company.as_deref());
    html! {
        details.entry {
            summary {
                time datetime=(e.at) { (time_display(e.at_secs)) }
                " · " strong { (who) }
                " · " (e.tool.as_deref().unwrap_or(&e.action))
                @if let Some(c) = company { " · " (c) }
                " · " span class={ "outcome " (e.outcome) } { (e.outcome) }
                @if let Some(g) = e.gist() { span.gist { " — " (g) } }
            }
            dl.facts {
                dt { "Action" } dd { code { (e.action) } }
                @if let Some(t) = &e.tool { dt { "Tool" } dd { code { (t) } } }
                @if let Some(a) = &e.assistant { dt { "Assistant" } dd { (a) } }
                @if let Some(t) = &e.target { dt { "Target" } dd { (t) } }
                @if let Some(c) = &e.company {
                    dt { "Company" } dd { (e.company_name.as_deref().unwrap_or("")) " " code { (c) } }
                }
                dt { "QuickBooks request id" } dd { @if let Some(t) = &e.intuit_tid { code { (t) } } @else { "—" } }
                dt { "Duration" } dd { @if let Some(d) = e.duration_ms { (d) " ms" } @else { "—" } }
                @if let Value::Object(details) = &e.details {
                    @for (key, value) in details {
                        dt { (label(key)) } dd { (shown(value)) }
                    }
                }
            }
        }
    }
}

/// A details key as a label: `doc_number` → `Doc number`.
fn label(key: &str) -> String {
    crate::error::capitalise(&key.replace('_', " "))
}
