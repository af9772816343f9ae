//! The `approval_policies` and `proposals` tables. A proposal changes status only through a
//! conditional `UPDATE … WHERE status = …`: whoever's update touches the row owns the step, on
//! any replica, so a proposal is decided — and executed — at most once.

use serde::Serialize;
use serde_json::Value;

use crate::db::{Db, Tx};
use crate::time::time_text;
use crate::{on_db, on_tx};

/// Which writes of a company wait for an admin's approval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Policy {
    /// Writes go straight to QuickBooks (the default).
    Off,
    /// Every write waits.
    AllWrites,
    /// Writes whose amount (the transaction's total) is at least `amount` wait.
    AmountAtLeast { amount: f64 },
}

impl Policy {
    pub fn mode(&self) -> &'static str {
        match self {
            Policy::Off => "off",
            Policy::AllWrites => "all_writes",
            Policy::AmountAtLeast { .. } => "amount_at_least",
        }
    }

    pub fn amount(&self) -> Option<f64> {
        match self {
            Policy::AmountAtLeast { amount } => Some(*amount),
            _ => None,
        }
    }

    /// A policy from its stored or requested form; `Err` says what is wrong.
    pub fn parse(mode: &str, amount: Option<f64>) -> Result<Policy, String> {
        match (mode, amount) {
            ("off", None) => Ok(Policy::Off),
            ("all_writes", None) => Ok(Policy::AllWrites),
            ("off" | "all_writes", Some(_)) => Err(format!(
                "`amount` only goes with mode amount_at_least, not {mode}."
            )),
            ("amount_at_least", Some(a)) if a.is_finite() && a >= 0.0 => {
                Ok(Policy::AmountAtLeast { amount: a })
            }
            ("amount_at_least", _) => Err(
                "Mode amount_at_least needs `amount`, a number of at least 0 (in the company's currency)."
                    .into(),
            ),
            _ => Err(format!(
                "`{mode}` is not a mode; use off, all_writes or amount_at_least."
            )),
        }
    }
}

/// Where a proposal stands. `Approved` lasts while its write is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Approved,
    Rejected,
    Executed,
    Failed,
    Stale,
}

pub const STATES: &[&str] = &[
    "pending", "approved", "rejected", "executed", "failed", "stale",
];

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Rejected => "rejected",
            State::Executed => "executed",
            State::Failed => "failed",
            State::Stale => "stale",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "pending" => State::Pending,
            "approved" => State::Approved,
            "rejected" => State::Rejected,
            "executed" => State::Executed,
            "failed" => State::Failed,
            "stale" => State::Stale,
            _ => return None,
        })
    }
}

/// A proposal as the API, the page, the CLI and `get_proposal` show it.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub id: String,
    pub status: State,
    /// The company's realm id.
    pub company: String,
    pub company_name: String,
    pub tool: String,
    /// What approval sends: method, path, query, body.
    pub preview: Value,
    /// The write's amount, when it has one (what `amount_at_least` compares).
    pub amount: Option<f64>,
    pub proposed_by: String,
    #[serde(skip)]
    pub proposed_by_id: i64,
    /// The assistant it came through.
    pub assistant: String,
    pub created_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub note: Option<String>,
    /// QuickBooks' answer, or the fault, once executed.
    pub result: Option<Value>,
    #[serde(skip)]
    pub request_id: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    realm_id: String,
    company_name: String,
    tool: String,
    request: String,
    request_id: String,
    amount: Option<f64>,
    status: String,
    proposed_by_id: i64,
    proposed_by: String,
    assistant: String,
    created_at: i64,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    note: Option<String>,
    result: Option<String>,
}

impl From<Row> for Proposal {
    fn from(r: Row) -> Self {
        Proposal {
            id: r.id,
            status: State::parse(&r.status).unwrap_or(State::Failed),
            company: r.realm_id,
            company_name: r.company_name,
            tool: r.tool,
            preview: serde_json::from_str(&r.request).unwrap_or(Value::Null),
            amount: r.amount,
            proposed_by: r.proposed_by,
            proposed_by_id: r.proposed_by_id,
            assistant: r.assistant,
            created_at: time_text(r.created_at),
            decided_by: r.decided_by,
            decided_at: r.decided_at.map(time_text),
            note: r.note,
            result: r.result.and_then(|t| serde_json::from_str(&t).ok()),
            request_id: r.request_id,
        }
    }
}

const COLUMNS: &str = "id, realm_id, company_name, tool, request, request_id, amount, status, proposed_by_id, proposed_by, assistant, created_at, decided_by, decided_at, note, result";

/// A company's policy (`Off` when none was set).
pub async fn policy(db: &Db, realm_id: &str) -> Result<Policy, sqlx::Error> {
    let row: Option<(String, Option<f64>)> = on_db!(db, pool => {
        sqlx::query_as("SELECT mode, amount FROM approval_policies WHERE realm_id = $1")
            .bind(realm_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row
        .and_then(|(mode, amount)| Policy::parse(&mode, amount).ok())
        .unwrap_or(Policy::Off))
}

pub async fn set_policy(
    tx: &mut Tx,
    realm_id: &str,
    policy: Policy,
    by: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO approval_policies (realm_id, mode, amount, updated_by, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (realm_id) DO UPDATE SET mode = excluded.mode, amount = excluded.amount,
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(realm_id)
        .bind(policy.mode())
        .bind(policy.amount())
        .bind(by)
        .bind(at)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// A proposal to store.
#[derive(Debug)]
pub struct NewProposal<'a> {
    pub id: &'a str,
    pub realm_id: &'a str,
    pub company_name: &'a str,
    pub tool: &'a str,
    pub request: &'a Value,
    pub request_id: &'a str,
    pub amount: Option<f64>,
    pub proposed_by_id: i64,
    pub proposed_by: &'a str,
    pub assistant: &'a str,
    pub created_at: i64,
}

pub async fn insert(tx: &mut Tx, p: &NewProposal<'_>) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO proposals (id, realm_id, company_name, tool, request, request_id, amount, status, proposed_by_id, proposed_by, assistant, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11)",
        )
        .bind(p.id)
        .bind(p.realm_id)
        .bind(p.company_name)
        .bind(p.tool)
        .bind(p.request.to_string())
        .bind(p.request_id)
        .bind(p.amount)
        .bind(p.proposed_by_id)
        .bind(p.proposed_by)
        .bind(p.assistant)
        .bind(p.created_at)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Proposal>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM proposals WHERE id = $1");
    let row: Option<Row> = on_db!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?
    });
    Ok(row.map(Proposal::from))
}

/// Proposals, newest first (at most 500): of one status, of one proposer, or all.
pub async fn list(
    db: &Db,
    status: Option<State>,
    proposed_by_id: Option<i64>,
) -> Result<Vec<Proposal>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM proposals
         WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR proposed_by_id = $2)
         ORDER BY created_at DESC, id DESC LIMIT 500"
    );
    let status = status.map(State::as_str);
    let rows: Vec<Row> = on_db!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(status)
            .bind(proposed_by_id)
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(Proposal::from).collect())
}

/// Moves a pending proposal to `to` (approved or rejected) for `by`; `false` when it was no
/// longer pending (someone else decided first, on this replica or another).
pub async fn decide(
    tx: &mut Tx,
    id: &str,
    to: State,
    by: &str,
    note: Option<&str>,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE proposals SET status = $1, decided_by = $2, note = $3, decided_at = $4
             WHERE id = $5 AND status = 'pending'",
        )
        .bind(to.as_str())
        .bind(by)
        .bind(note)
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Records how an approved proposal's write ended.
pub async fn finish(
    tx: &mut Tx,
    id: &str,
    to: State,
    result: &Value,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE proposals SET status = $1, result = $2, finished_at = $3
             WHERE id = $4 AND status = 'approved'",
        )
        .bind(to.as_str())
        .bind(result.to_string())
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// How many proposals wait for an admin (for the navigation).
pub async fn pending_count(db: &Db) -> Result<i64, sqlx::Error> {
    on_db!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM proposals WHERE status = 'pending'")
            .fetch_one(pool)
            .await
    })
}

/// For the navigation: how many proposals wait, when the viewer is an admin (`None` for others,
/// or when the count cannot be read — the page still shows).
pub async fn pending_for(db: &Db, admin: bool) -> Option<i64> {
    if !admin {
        return None;
    }
    pending_count(db)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "cannot count pending proposals"))
        .ok()
}
