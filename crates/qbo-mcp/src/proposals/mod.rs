//! Four-eyes approvals (docs/tools.md, "Approvals"): per company, an admin sets which writes
//! wait ([`store::Policy`]); a write under the policy is planned exactly (refs resolved,
//! SyncToken read) and stored as a proposal instead of being sent ([`intercept`]); an admin
//! other than the proposer approves it — which sends it at once, with the one `requestid` the
//! proposal got when it was made — or rejects it. Surfaces: the JSON API ([`api`]), the
//! `/proposals` page and the company page's policy form ([`pages`]), the command line
//! ([`cli`]), and the `get_proposal` tool (`mcp::approvals`). Every step is audited.
//!
//! At most once: approval first claims the row (`pending` → `approved`, a conditional update
//! that only one replica's request can win), and only the winner sends the write. A SyncToken
//! that moved since the proposal makes QuickBooks refuse the write (5010): the proposal ends
//! `stale` and nothing is overwritten.

pub mod api;
pub mod cli;
pub mod pages;
pub mod store;

use axum::Router;
use serde_json::{Value, json};

use crate::audit::{self, NewEntry, Outcome};
use crate::auth::Admin;
use crate::db::Db;
use crate::error::AppError;
use crate::people::Person;
use crate::quickbooks::operations::{Write, request_from, would_send};
use crate::quickbooks::{Company, QboError, QuickBooks};
use crate::state::AppState;
use crate::time::now;

pub use store::{Policy, Proposal, State};

/// The routes of the feature's pages; the JSON API ([`api::routes`]) is registered with the
/// OpenAPI document in `app::api`.
pub fn routes() -> Router<AppState> {
    pages::routes()
}

/// A write held for approval: what the tool answers instead of QuickBooks' answer.
#[derive(Debug, Clone)]
pub struct Held {
    pub proposal_id: String,
    /// What approval will send (method, path, query, body).
    pub preview: Value,
    pub amount: Option<f64>,
}

/// Who proposes a write: the person and the assistant they use.
#[derive(Debug, Clone, Copy)]
pub struct Proposer<'a> {
    pub person: &'a Person,
    pub assistant: &'a str,
}

/// The one place writes meet the approval policy. Under the company's policy, the write is
/// planned, stored as a pending proposal (audited `proposal.create`) and `Some` is returned:
/// nothing is sent. Otherwise `None`, and the caller sends the write as usual. `tool` is the
/// tool's name as the audit log and the proposals list show it.
pub async fn intercept(
    state: &AppState,
    proposer: Proposer<'_>,
    company: &Company,
    tool: &str,
    write: &Write,
) -> Result<Option<Held>, QboError> {
    let policy = store::policy(&state.db, &company.realm_id).await?;
    if policy == Policy::Off {
        return Ok(None);
    }
    let request = state.quickbooks.plan(&company.realm_id, write).await?;
    let mut amount = request
        .body
        .as_ref()
        .and_then(|b| amount_of(write.entity(), b));
    if let (Policy::AmountAtLeast { .. }, None, Some(id)) = (policy, amount, write.id()) {
        // A change that states no amount is weighed by the entity's current total.
        let current = state
            .quickbooks
            .get_entity(&company.realm_id, write.entity(), id)
            .await?;
        amount = number(&current.value[write.entity()]["TotalAmt"]);
    }
    let held = match policy {
        Policy::Off => false,
        Policy::AllWrites => true,
        Policy::AmountAtLeast { amount: at_least } => amount.is_some_and(|a| a >= at_least),
    };
    if !held {
        return Ok(None);
    }
    let id = format!("prp_{}", uuid::Uuid::new_v4().simple());
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let preview = would_send(&request);
    let mut tx = state.db.begin_write().await?;
    store::insert(
        &mut tx,
        &store::NewProposal {
            id: &id,
            realm_id: &company.realm_id,
            company_name: &company.name,
            tool,
            request: &preview,
            request_id: &request_id,
            amount,
            proposed_by_id: proposer.person.id,
            proposed_by: &proposer.person.username,
            assistant: proposer.assistant,
            created_at: now(),
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &NewEntry::new(
            Some(&proposer.person.username),
            "proposal.create",
            Outcome::Ok,
        )
        .tool(tool)
        .company(company.realm_id.clone())
        .company_name(company.name.clone())
        .target(id.clone())
        .details(json!({
            "assistant": proposer.assistant,
            "entity": write.entity(),
            "id": write.id(),
            "amount": amount,
            "policy": policy.mode(),
        })),
    )
    .await
    .map_err(|e| QboError::Internal(anyhow::anyhow!("cannot audit a proposal: {}", e.message)))?;
    tx.commit().await?;
    Ok(Some(Held {
        proposal_id: id,
        preview,
        amount,
    }))
}

/// A number QuickBooks wrote as a number or a string.
fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The amount of a write's body: its `TotalAmt`, else the sum of its lines (for a journal
/// entry, the debit side), else none (a name-list entity has no amount).
pub fn amount_of(entity: &str, body: &Value) -> Option<f64> {
    if let Some(total) = number(&body["TotalAmt"]) {
        return Some(total);
    }
    let lines = body["Line"].as_array()?;
    let mut sum = None;
    for line in lines {
        if line["DetailType"] == "SubTotalLineDetail" {
            continue;
        }
        if entity == "JournalEntry"
            && line["JournalEntryLineDetail"]["PostingType"].as_str() != Some("Debit")
        {
            continue;
        }
        if let Some(a) = number(&line["Amount"]) {
            sum = Some(sum.unwrap_or(0.0) + a);
        }
    }
    sum
}

/// Whether `person` may see proposal `p`: admins see all, others their own.
pub fn may_see(person: &Person, p: &Proposal) -> bool {
    person.is_admin() || p.proposed_by_id == person.id
}

/// A proposal by id, or 404.
pub async fn find(db: &Db, id: &str) -> Result<Proposal, AppError> {
    store::get(db, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("There is no proposal `{id}`.")))
}

fn already(p: &Proposal) -> AppError {
    AppError::conflict(
        "not_pending",
        format!(
            "Proposal {} is no longer pending: it is {}{}.",
            p.id,
            p.status.as_str(),
            p.decided_by
                .as_ref()
                .map(|by| format!(" (by {by})"))
                .unwrap_or_default()
        ),
    )
}

/// Approves a pending proposal and sends its write at once; answers the proposal as it ended
/// (`executed`, `failed` or `stale`). 403 `own_proposal` for the proposer, 409 `not_pending`
/// when it was already decided (also when another approval won the race).
pub async fn approve(
    db: &Db,
    quickbooks: &QuickBooks,
    admin: &Admin,
    id: &str,
    note: Option<&str>,
) -> Result<Proposal, AppError> {
    let p = find(db, id).await?;
    if admin.person_id() == Some(p.proposed_by_id) {
        return Err(AppError::forbidden(
            "Nobody approves their own proposal: another admin must approve it.",
        )
        .with_code("own_proposal"));
    }
    let note = clean_note(note)?;
    decide(db, &p, admin, State::Approved, note, "proposal.approve").await?;

    let (state, result, entry) = execute(quickbooks, &p).await;
    let mut tx = db.begin_write().await?;
    store::finish(&mut tx, &p.id, state, &result, now()).await?;
    audit::record(&mut tx, &entry).await?;
    tx.commit().await?;
    find(db, id).await
}

/// Sends an approved proposal's write: how it ended, QuickBooks' answer or fault, and the
/// audit entry saying so.
async fn execute(quickbooks: &QuickBooks, p: &Proposal) -> (State, Value, NewEntry) {
    let entry = NewEntry::new(None, "proposal.execute", Outcome::Ok)
        .tool(p.tool.clone())
        .company(p.company.clone())
        .company_name(p.company_name.clone())
        .target(p.id.clone());
    let Some(request) = request_from(&p.preview) else {
        let result = json!({"error": "The stored request cannot be read; nothing was sent."});
        return (State::Failed, result.clone(), failed(entry).details(result));
    };
    let request = request.with_request_id(p.request_id.clone());
    match quickbooks.call(&p.company, request).await {
        Ok(answer) => {
            // QuickBooks answers `{"Invoice": {"Id": …}}`: the entity written, by id.
            let written = answer.body.as_object().and_then(|o| {
                o.iter()
                    .find_map(|(entity, v)| v["Id"].as_str().map(|id| json!({entity: id})))
            });
            let details = json!({
                "status": "executed",
                "written": written,
                "intuit_tid": answer.intuit_tid,
                "request_id": answer.request_id,
            });
            (State::Executed, answer.body, entry.details(details))
        }
        Err(e) => {
            let (state, result) = match &e {
                QboError::Fault { fault, intuit_tid } => (
                    if fault.code == "5010" {
                        State::Stale
                    } else {
                        State::Failed
                    },
                    json!({
                        "error": e.to_string(),
                        "code": fault.code,
                        "detail": fault.detail,
                        "intuit_tid": intuit_tid,
                    }),
                ),
                QboError::Internal(cause) => {
                    tracing::error!(error = ?cause, proposal = %p.id, "a proposal's write failed");
                    (
                        State::Failed,
                        json!({"error": "Something went wrong on the server; it has been logged."}),
                    )
                }
                other => (
                    State::Failed,
                    json!({ "error": other.to_string(), "retryable": other.retryable() }),
                ),
            };
            let mut details = result.clone();
            details["status"] = json!(state.as_str());
            (state, result, failed(entry).details(details))
        }
    }
}

/// The entry, as one that records a failure.
fn failed(mut entry: NewEntry) -> NewEntry {
    entry.outcome = Outcome::Error;
    entry
}

/// The audit entry of an admin's decision on `p`.
fn decision_entry(p: &Proposal, admin: &Admin, action: &str) -> NewEntry {
    NewEntry::new(Some(admin.audit_name()), action, Outcome::Ok)
        .tool(p.tool.clone())
        .company(p.company.clone())
        .company_name(p.company_name.clone())
        .target(p.id.clone())
}

/// A note: trimmed, at most 1000 characters, none when blank.
fn clean_note(note: Option<&str>) -> Result<Option<&str>, AppError> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 1000) {
        return Err(AppError::invalid(
            "invalid_note",
            "A note is at most 1000 characters.",
        ));
    }
    Ok(note)
}

/// Rejects a pending proposal with a note (required): nothing is sent. 409 `not_pending` when
/// it was already decided.
pub async fn reject(db: &Db, admin: &Admin, id: &str, note: &str) -> Result<Proposal, AppError> {
    let p = find(db, id).await?;
    let Some(note) = clean_note(Some(note))? else {
        return Err(AppError::invalid(
            "note_required",
            "Say why in `note`: the proposer reads it.",
        ));
    };
    decide(
        db,
        &p,
        admin,
        State::Rejected,
        Some(note),
        "proposal.reject",
    )
    .await?;
    find(db, id).await
}

/// Claims the decision on a pending proposal (a conditional update, so exactly one decision
/// wins across replicas) and audits it as `action` in the same transaction; 409 `not_pending`
/// when it was already decided.
async fn decide(
    db: &Db,
    p: &Proposal,
    admin: &Admin,
    to: State,
    note: Option<&str>,
    action: &str,
) -> Result<(), AppError> {
    let mut tx = db.begin_write().await?;
    if !store::decide(&mut tx, &p.id, to, admin.audit_name(), note, now()).await? {
        drop(tx);
        return Err(already(&find(db, &p.id).await?));
    }
    audit::record(
        &mut tx,
        &decision_entry(p, admin, action).details(json!({ "note": note })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a company's policy (audited `company.approvals`).
pub async fn set_policy(
    db: &Db,
    admin: &Admin,
    company: &Company,
    policy: Policy,
) -> Result<(), AppError> {
    let mut tx = db.begin_write().await?;
    store::set_policy(
        &mut tx,
        &company.realm_id,
        policy,
        admin.audit_name(),
        now(),
    )
    .await?;
    audit::record(
        &mut tx,
        &NewEntry::new(Some(admin.audit_name()), "company.approvals", Outcome::Ok)
            .company(company.realm_id.clone())
            .company_name(company.name.clone())
            .details(json!({ "mode": policy.mode(), "amount": policy.amount() })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_come_from_the_total_or_the_lines() {
        assert_eq!(
            amount_of("Invoice", &json!({"TotalAmt": "250.5"})),
            Some(250.5)
        );
        assert_eq!(
            amount_of(
                "Invoice",
                &json!({"Line": [{"Amount": 100, "DetailType": "SalesItemLineDetail"},
                                 {"Amount": 100, "DetailType": "SubTotalLineDetail"},
                                 {"Amount": 20.25, "DetailType": "SalesItemLineDetail"}]})
            ),
            Some(120.25)
        );
        let je = json!({"Line": [
            {"Amount": 90, "JournalEntryLineDetail": {"PostingType": "Debit"}},
            {"Amount": 90, "JournalEntryLineDetail": {"PostingType": "Credit"}}]});
        assert_eq!(amount_of("JournalEntry", &je), Some(90.0));
        assert_eq!(amount_of("Customer", &json!({"DisplayName": "A"})), None);
    }

    #[test]
    fn policies_are_checked() {
        assert_eq!(Policy::parse("off", None), Ok(Policy::Off));
        assert_eq!(
            Policy::parse("amount_at_least", Some(500.0)),
            Ok(Policy::AmountAtLeast { amount: 500.0 })
        );
        assert!(Policy::parse("amount_at_least", None).is_err());
        assert!(Policy::parse("amount_at_least", Some(-1.0)).is_err());
        assert!(Policy::parse("all_writes", Some(1.0)).is_err());
        assert!(Policy::parse("sometimes", None).is_err());
    }
}
