//! The `/proposals` page (pending proposals with Approve and Reject for admins, then the
//! history; others see their own), its two forms, and the approval policy form on the company
//! page (`POST /companies/{realm_id}/approvals`).

use axum::Router;
use axum::extract::{Path, Query, State as AxumState};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::{AdminPage, PageCaller};
use crate::companies::admin_warnings;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{self, CsrfToken, Frame, PageResult};

use super::api::{company_for, parse_status};
use super::store::{self, Policy, Proposal, State};
use super::{approve, reject, set_policy};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/proposals", get(proposals_page))
        .route("/proposals/{id}/approve", post(approve_form))
        .route("/proposals/{id}/reject", post(reject_form))
        .route("/companies/{realm_id}/approvals", post(policy_form))
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    status: Option<String>,
    done: Option<String>,
}

fn preview(p: &Proposal) -> String {
    serde_json::to_string_pretty(&p.preview).unwrap_or_default()
}

/// `GET /proposals`.
async fn proposals_page(
    AxumState(state): AxumState<AppState>,
    PageCaller(caller): PageCaller,
    csrf: CsrfToken,
    Query(q): Query<PageQuery>,
) -> PageResult<Markup> {
    let person = &caller.person;
    let admin = person.is_admin();
    let mine = (!admin).then_some(person.id);
    let pending = store::list(&state.db, Some(State::Pending), mine).await?;
    let status = parse_status(q.status.as_deref())?;
    let history: Vec<Proposal> = store::list(&state.db, status, mine)
        .await?
        .into_iter()
        .filter(|p| p.status != State::Pending)
        .collect();
    let body = html! {
        h1 { "Proposals" }
        @if let Some(done) = &q.done {
            p.notice role="status" { (done) }
        }
        p.hint { "Writes that a company's approval policy holds wait here until an admin other than the proposer approves (the write is sent at once) or rejects them." }
        h2 { "Waiting (" (pending.len()) ")" }
        @if pending.is_empty() { p { "Nothing is waiting." } }
        @for p in &pending {
            section.card {
                h3 { (p.tool) " in " (p.company_name) }
                dl {
                    dt { "Proposed by" } dd { (p.proposed_by) " through " (p.assistant) ", " (p.created_at) }
                    @if let Some(a) = p.amount { dt { "Amount" } dd { (format!("{a:.2}")) } }
                    dt { "Id" } dd { code { (p.id) } }
                }
                pre { (preview(p)) }
                @if admin && p.proposed_by_id != person.id {
                    form.inline method="post" action={ "/proposals/" (p.id) "/approve" } {
                        (csrf.field())
                        input type="text" name="note" placeholder="Note (optional)" aria-label="Approval note";
                        button type="submit" { "Approve" }
                    }
                    " "
                    form.inline method="post" action={ "/proposals/" (p.id) "/reject" } {
                        (csrf.field())
                        input type="text" name="note" required placeholder="Why (required)" aria-label="Rejection note";
                        button.danger type="submit" { "Reject" }
                    }
                } @else if admin {
                    p.hint { "Your own proposal: another admin approves it." }
                }
            }
        }
        h2 { "History" }
        @if history.is_empty() { p { "No decided proposals yet." } }
        @else {
            table {
                thead { tr { th { "When" } th { "Status" } th { "Company" } th { "Tool" } th { "Proposed by" } th { "Decided by" } th { "Note" } } }
                tbody {
                    @for p in &history {
                        tr {
                            td { (p.created_at) }
                            td { (p.status.as_str()) }
                            td { (p.company_name) }
                            td { (p.tool) }
                            td { (p.proposed_by) }
                            td { (p.decided_by.as_deref().unwrap_or("—")) }
                            td { (p.note.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    let frame = Frame {
        title: "Proposals",
        viewer: Some(person.into()),
        csrf: Some(&csrf),
        warnings: admin_warnings(&state, person).await,
        pending_proposals: store::pending_for(&state.db, admin).await,
    };
    Ok(web::layout(&state, &frame, body))
}

#[derive(Debug, Deserialize)]
struct NoteForm {
    note: Option<String>,
}

fn back(message: &str) -> Redirect {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("done", message)
        .finish();
    Redirect::to(&format!("/proposals?{query}"))
}

/// `POST /proposals/{id}/approve`.
async fn approve_form(
    AxumState(state): AxumState<AppState>,
    AdminPage { admin, .. }: AdminPage,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<NoteForm>,
) -> PageResult {
    let p = approve(
        &state.db,
        &state.quickbooks,
        &admin,
        &id,
        form.note.as_deref(),
    )
    .await?;
    let message = format!("Proposal {} approved: {}.", p.id, p.status.as_str());
    Ok(back(&message).into_response())
}

/// `POST /proposals/{id}/reject`.
async fn reject_form(
    AxumState(state): AxumState<AppState>,
    AdminPage { admin, .. }: AdminPage,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<NoteForm>,
) -> PageResult {
    let p = reject(&state.db, &admin, &id, form.note.as_deref().unwrap_or("")).await?;
    Ok(back(&format!("Proposal {} rejected.", p.id)).into_response())
}

#[derive(Debug, Deserialize)]
struct PolicyForm {
    mode: String,
    amount: Option<String>,
}

/// `POST /companies/{realm_id}/approvals`: the policy form of the company page.
async fn policy_form(
    AxumState(state): AxumState<AppState>,
    AdminPage { admin, caller }: AdminPage,
    Path(realm_id): Path<String>,
    axum::Form(form): axum::Form<PolicyForm>,
) -> PageResult {
    let company = company_for(&state, &caller, &realm_id).await?;
    let amount = match form.amount.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => Some(a.parse::<f64>().map_err(|_| {
            AppError::invalid("invalid_policy", format!("`{a}` is not an amount."))
        })?),
    };
    // The form always carries the amount field; it only counts for amount_at_least.
    let amount = amount.filter(|_| form.mode == "amount_at_least");
    let policy = Policy::parse(form.mode.trim(), amount)
        .map_err(|m| AppError::invalid("invalid_policy", m))?;
    set_policy(&state.db, &admin, &company, policy).await?;
    Ok(Redirect::to("/companies").into_response())
}
