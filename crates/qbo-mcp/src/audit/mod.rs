//! The audit log: who did what, to whom or with which tool, in which company, when, and how
//! it ended. [`record`] writes inside the caller's transaction, so an entry commits with the
//! change it describes (or not at all); [`record_now`] writes on its own, for refusals and
//! events with no transaction. Reading: [`read`], served by `GET /api/v1/audit`
//! ([`api`]) and `qbo-mcp audit`.
//!
//! Entries are never updated, and deleted only by an operator's prune past the retention
//! ([`retention`]). Details hold a summary, never a secret (no passwords, no tokens, no full
//! tool arguments that could carry them).

pub mod api;
pub mod retention;

use serde::Serialize;

use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::time::{now, time_text};
use crate::{on_db, on_tx};

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Refused by a rule (permission, invariant, bad input).
    Refused,
    /// Failed for another reason (upstream, server).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }
}

/// An entry to write. Build with [`NewEntry::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Who acted: a username, or `console` for the command line, or `None` for the system.
    pub username: Option<String>,
    /// What happened, e.g. `user.create`, `user.set_role`, `tool.call`.
    pub action: String,
    /// To whom or what (a username, an allowlist entry, a token id).
    pub target: Option<String>,
    /// The MCP tool, for tool calls.
    pub tool: Option<String>,
    /// The company's realm id, when one is concerned.
    pub company: Option<String>,
    /// That company's name, when known (tool calls record the company they resolved to).
    pub company_name: Option<String>,
    pub outcome: Outcome,
    /// A small JSON object; never secrets.
    pub details: serde_json::Value,
}

impl NewEntry {
    pub fn new(username: Option<&str>, action: &str, outcome: Outcome) -> Self {
        Self {
            username: username.map(str::to_owned),
            action: action.to_owned(),
            target: None,
            tool: None,
            company: None,
            company_name: None,
            outcome,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }

    pub fn company(mut self, realm_id: impl Into<String>) -> Self {
        self.company = Some(realm_id.into());
        self
    }

    /// The company's name besides its realm id.
    pub fn company_name(mut self, name: impl Into<String>) -> Self {
        self.company_name = Some(name.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

const INSERT: &str =
    "INSERT INTO audit_entries (at, username, action, target, tool, company, outcome, details, company_name)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Writes an entry inside a transaction: it commits (or rolls back) with the change.
pub async fn record(tx: &mut Tx, entry: &NewEntry) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        sqlx::query(INSERT)
            .bind(now())
            .bind(&entry.username)
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(&entry.tool)
            .bind(&entry.company)
            .bind(entry.outcome.as_str())
            .bind(entry.details.to_string())
            .bind(&entry.company_name)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Writes an entry on its own, durable when this returns.
pub async fn record_now(db: &Db, entry: &NewEntry) -> Result<(), AppError> {
    let mut tx = db.begin_write().await?;
    record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// An entry as read back.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub username: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub tool: Option<String>,
    pub company: Option<String>,
    pub company_name: Option<String>,
    pub outcome: String,
    pub details: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    at: i64,
    username: Option<String>,
    action: String,
    target: Option<String>,
    tool: Option<String>,
    company: Option<String>,
    company_name: Option<String>,
    outcome: String,
    details: String,
}

impl From<EntryRow> for Entry {
    fn from(r: EntryRow) -> Entry {
        Entry {
            id: r.id,
            at: time_text(r.at),
            username: r.username,
            action: r.action,
            target: r.target,
            tool: r.tool,
            company: r.company,
            company_name: r.company_name,
            outcome: r.outcome,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Which entries to read. Times are Unix seconds; `before` is an entry id (paging backwards).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub username: Option<String>,
    pub company: Option<String>,
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// Entries matching the filter, newest first.
pub async fn read(db: &Db, f: &Filter) -> Result<Vec<Entry>, AppError> {
    // NULL parameters switch a condition off, so one SQL text serves every filter; the casts
    // tell PostgreSQL the types of parameters that only `IS NULL` would otherwise see.
    let rows: Vec<EntryRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT id, at, username, action, target, tool, company, company_name, outcome, details
             FROM audit_entries
             WHERE (CAST($1 AS TEXT) IS NULL OR username = $1)
               AND (CAST($2 AS TEXT) IS NULL OR company = $2)
               AND (CAST($3 AS TEXT) IS NULL OR action = $3)
               AND (CAST($4 AS BIGINT) IS NULL OR at >= $4)
               AND (CAST($5 AS BIGINT) IS NULL OR at <= $5)
               AND (CAST($6 AS BIGINT) IS NULL OR id < $6)
             ORDER BY id DESC LIMIT $7",
        )
        .bind(&f.username)
        .bind(&f.company)
        .bind(&f.action)
        .bind(f.since)
        .bind(f.until)
        .bind(f.before)
        .bind(f.limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Entry::from).collect())
}

/// Parses a time filter: RFC 3339, a date (`2026-11-23`, midnight UTC) or Unix seconds.
pub fn parse_time(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    }
    raw.parse().ok()
}
