//! The audit log: who did what, to whom or with which tool, in which company, when, and how
//! it ended. [`record`] writes inside the caller's transaction, so an entry commits with the
//! change it describes (or not at all); [`record_now`] writes on its own, for refusals and
//! events with no transaction; tool calls' entries go through [`group_commit`], where
//! concurrent calls share one durable commit. A QuickBooks write is recorded [`record_pending`] before its
//! request goes out and [`complete`]d after. Reading: [`read`], served by `GET /api/v1/audit`
//! ([`api`], also as CSV: [`csv`]), the `/audit` page ([`pages`]) and `qbo-mcp audit`.
//!
//! The application changes an entry only once: from `pending` to how the write ended; entries
//! are deleted only by an operator's prune past the retention ([`retention`]). Details hold a
//! summary, never a secret (no passwords, no tokens, no whole documents or tool arguments that
//! could carry them).

pub mod api;
pub mod csv;
pub mod group_commit;
pub mod pages;
pub mod retention;

use serde::Serialize;
use serde_json::Value;

use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::time::{now, time_text};

/// How long a pending write may still be running: a QuickBooks request cannot outlast it (4
/// attempts of at most a 30 s pacing wait, a 60 s request and a 20 s `Retry-After` each, twice
/// for an update that reads first). A `pending` entry older than this reads as `unknown`: the
/// server stopped (crash, restart) or could not record the end, and whether QuickBooks applied
/// the write is not known (docs/reference.md, "Audit").
pub const PENDING_WINDOW_SECS: i64 = 15 * 60;
use crate::{on_db, on_tx};

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Refused by a rule (permission, invariant, bad input).
    Refused,
    /// Failed for another reason (upstream, server).
    Error,
    /// A QuickBooks write under way: recorded before the request is sent, completed after.
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
            Outcome::Pending => "pending",
        }
    }
}

/// The outcomes a reader can filter by: the stored ones, and `unknown` (a `pending` entry
/// older than [`PENDING_WINDOW_SECS`]).
pub const OUTCOMES: &[&str] = &["ok", "refused", "error", "pending", "unknown"];

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
    /// The assistant a tool call came through.
    pub assistant: Option<String>,
    /// How long a tool call took.
    pub duration_ms: Option<i64>,
    /// Intuit's request id (`intuit_tid`) of the QuickBooks call a tool made.
    pub intuit_tid: Option<String>,
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
            assistant: None,
            duration_ms: None,
            intuit_tid: None,
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

    /// The assistant a tool call came through.
    pub fn assistant(mut self, label: impl Into<String>) -> Self {
        self.assistant = Some(label.into());
        self
    }
}

/// `INSERT INTO audit_entries (…columns…) `, for one entry or a batch ([`group_commit`]).
macro_rules! insert_columns {
    () => {
        "INSERT INTO audit_entries (at, username, action, target, tool, company, outcome, details, company_name, assistant, duration_ms, intuit_tid) "
    };
}
const INSERT_COLUMNS: &str = insert_columns!();
const INSERT: &str = concat!(
    insert_columns!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id"
);

/// Writes an entry inside a transaction: it commits (or rolls back) with the change.
pub async fn record(tx: &mut Tx, entry: &NewEntry) -> Result<(), AppError> {
    insert(tx, entry).await.map(drop)
}

/// `INSERT` of an entry with its values bound, for any executor.
macro_rules! bound_insert {
    ($entry:expr) => {
        sqlx::query_scalar::<_, i64>(INSERT)
            .bind(now())
            .bind(&$entry.username)
            .bind(&$entry.action)
            .bind(&$entry.target)
            .bind(&$entry.tool)
            .bind(&$entry.company)
            .bind($entry.outcome.as_str())
            .bind($entry.details.to_string())
            .bind(&$entry.company_name)
            .bind(&$entry.assistant)
            .bind($entry.duration_ms)
            .bind(&$entry.intuit_tid)
    };
}

async fn insert(tx: &mut Tx, entry: &NewEntry) -> Result<i64, AppError> {
    let id: i64 = on_tx!(tx, conn => {
        bound_insert!(entry).fetch_one(&mut *conn).await?
    });
    Ok(id)
}

/// Writes a `pending` entry for a QuickBooks write about to be sent, durable when this
/// returns; its id is for [`complete`].
pub async fn record_pending(db: &Db, entry: &NewEntry) -> Result<i64, AppError> {
    let pending = NewEntry {
        outcome: Outcome::Pending,
        ..entry.clone()
    };
    let id = on_db!(db, pool => { bound_insert!(pending).fetch_one(pool).await? });
    Ok(id)
}

/// Completes a [`record_pending`] entry with how the write ended (and what it did). Only a
/// `pending` entry changes; its `at` stays the time the write started.
pub async fn complete(db: &Db, id: i64, entry: &NewEntry) -> Result<(), AppError> {
    let changed = on_db!(db, pool => {
        sqlx::query(
            "UPDATE audit_entries SET outcome = $1, details = $2, company = $3, company_name = $4,
                 duration_ms = $5, intuit_tid = $6
             WHERE id = $7 AND outcome = 'pending'",
        )
        .bind(entry.outcome.as_str())
        .bind(entry.details.to_string())
        .bind(&entry.company)
        .bind(&entry.company_name)
        .bind(entry.duration_ms)
        .bind(&entry.intuit_tid)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
    });
    if changed == 1 {
        Ok(())
    } else {
        Err(AppError::internal(anyhow::anyhow!(
            "audit entry {id} is not pending any more"
        )))
    }
}

/// Writes an entry on its own, durable when this returns: one statement, its own
/// transaction, one round trip.
pub async fn record_now(db: &Db, entry: &NewEntry) -> Result<(), AppError> {
    on_db!(db, pool => { bound_insert!(entry).fetch_one(pool).await? });
    Ok(())
}

/// An entry as read back.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// Unix seconds, for pages that show the time as people read it.
    #[serde(skip)]
    pub at_secs: i64,
    pub username: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub tool: Option<String>,
    pub company: Option<String>,
    pub company_name: Option<String>,
    /// `ok`, `refused`, `error`, `pending`, or `unknown` (see [`PENDING_WINDOW_SECS`]).
    pub outcome: String,
    pub details: serde_json::Value,
    pub assistant: Option<String>,
    pub duration_ms: Option<i64>,
    pub intuit_tid: Option<String>,
}

/// A details value as text: strings as they are, lists joined with commas.
pub fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

impl Entry {
    /// What a tool call did in the books, in a few words, from its details
    /// (`Invoice 130, no. 1038, total 150`; `SELECT * FROM Customer, 29 rows`).
    pub fn gist(&self) -> Option<String> {
        let d = &self.details;
        let text = |k: &str| d.get(k).map(shown).filter(|s| !s.is_empty());
        let mut parts: Vec<String> = Vec::new();
        if let Some(query) = text("query") {
            parts.push(query);
        } else if let Some(entity) = text("entity") {
            parts.push(match text("id") {
                Some(id) => format!("{entity} {id}"),
                None => entity,
            });
        } else if let Some(report) = text("report") {
            parts.push(report);
        }
        if let Some(doc) = text("doc_number") {
            parts.push(format!("no. {doc}"));
        }
        if let Some(name) = text("name") {
            parts.push(name);
        }
        if let Some(total) = text("total") {
            parts.push(format!("total {total}"));
        }
        if let Some(rows) = d.get("rows").and_then(Value::as_i64) {
            parts.push(format!("{rows} row{}", if rows == 1 { "" } else { "s" }));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
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
    assistant: Option<String>,
    duration_ms: Option<i64>,
    intuit_tid: Option<String>,
}

impl EntryRow {
    /// The entry as read at `read_at`: a pending write older than the window is `unknown`.
    fn into_entry(self, read_at: i64) -> Entry {
        let outcome = if self.outcome == "pending" && self.at < read_at - PENDING_WINDOW_SECS {
            "unknown".to_owned()
        } else {
            self.outcome
        };
        Entry {
            id: self.id,
            at: time_text(self.at),
            at_secs: self.at,
            username: self.username,
            action: self.action,
            target: self.target,
            tool: self.tool,
            company: self.company,
            company_name: self.company_name,
            outcome,
            details: serde_json::from_str(&self.details).unwrap_or(serde_json::Value::Null),
            assistant: self.assistant,
            duration_ms: self.duration_ms,
            intuit_tid: self.intuit_tid,
        }
    }
}

/// Which entries to read. Times are Unix seconds; `before` is an entry id (paging backwards).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub username: Option<String>,
    /// A realm id, or a company's name (any case).
    pub company: Option<String>,
    /// An action (`user.set_role`), or the part before its dot (`user`: every `user.…`).
    pub action: Option<String>,
    /// One of [`OUTCOMES`].
    pub outcome: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// `value` as a LIKE pattern matching itself followed by `.` and anything.
fn dotted_prefix(value: &str) -> String {
    let mut p = String::with_capacity(value.len() + 3);
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push_str(".%");
    p
}

/// Entries matching the filter, newest first.
pub async fn read(db: &Db, f: &Filter) -> Result<Vec<Entry>, AppError> {
    let read_at = now();
    let action = f.action.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let prefix = action.filter(|a| !a.contains('.')).map(dotted_prefix);
    // `unknown` is a `pending` entry older than the window; `pending` one within it.
    let stale_before = read_at - PENDING_WINDOW_SECS;
    let (outcome, older, newer) = match f.outcome.as_deref() {
        Some("unknown") => (Some("pending"), Some(stale_before), None),
        Some("pending") => (Some("pending"), None, Some(stale_before)),
        other => (other, None, None),
    };
    // NULL parameters switch a condition off, so one SQL text serves every filter; the casts
    // tell PostgreSQL the types of parameters that only `IS NULL` would otherwise see.
    let rows: Vec<EntryRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT id, at, username, action, target, tool, company, company_name, outcome, details,
                    assistant, duration_ms, intuit_tid
             FROM audit_entries
             WHERE (CAST($1 AS TEXT) IS NULL OR username = $1)
               AND (CAST($2 AS TEXT) IS NULL OR company = $2 OR LOWER(company_name) = LOWER($2))
               AND (CAST($3 AS TEXT) IS NULL OR action = $3 OR action LIKE $4 ESCAPE '\\')
               AND (CAST($5 AS TEXT) IS NULL OR outcome = $5)
               AND (CAST($6 AS BIGINT) IS NULL OR at < $6)
               AND (CAST($7 AS BIGINT) IS NULL OR at >= $7)
               AND (CAST($8 AS BIGINT) IS NULL OR at >= $8)
               AND (CAST($9 AS BIGINT) IS NULL OR at <= $9)
               AND (CAST($10 AS BIGINT) IS NULL OR id < $10)
             ORDER BY id DESC LIMIT $11",
        )
        .bind(&f.username)
        .bind(f.company.as_deref().map(str::trim).filter(|c| !c.is_empty()))
        .bind(action)
        .bind(&prefix)
        .bind(outcome)
        .bind(older)
        .bind(newer)
        .bind(f.since)
        .bind(f.until)
        .bind(f.before)
        .bind(f.limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(|r| r.into_entry(read_at)).collect())
}

/// The filter fields of `GET /api/v1/audit` and of the `/audit` page, as given in the query
/// string (an empty field is no filter).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct FilterQuery {
    pub user: Option<String>,
    pub company: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// A filter field that does not parse: which, and why (a sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl FilterQuery {
    /// The filter these fields ask for (`limit` and `before` left for the caller), or the
    /// first field that does not parse. Who may read what is the caller's rule.
    pub fn check(&self) -> Result<Filter, FieldError> {
        let outcome = given(&self.outcome).map(str::to_ascii_lowercase);
        if let Some(o) = &outcome
            && !OUTCOMES.contains(&o.as_str())
        {
            return Err(FieldError {
                field: "outcome",
                code: "invalid_outcome",
                message: format!("`outcome` is one of {}.", OUTCOMES.join(", ")),
            });
        }
        Ok(Filter {
            username: given(&self.user).map(str::to_ascii_lowercase),
            company: given(&self.company).map(str::to_owned),
            action: given(&self.action).map(str::to_owned),
            outcome,
            since: time_field("since", &self.since, parse_time)?,
            until: time_field("until", &self.until, parse_until)?,
            before: None,
            limit: 0,
        })
    }

    /// The fields as a query string (`user=bob&outcome=error`), empty ones left out.
    pub fn to_query(&self) -> String {
        [
            ("user", &self.user),
            ("company", &self.company),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| format!("{k}={}", encode(v))))
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn time_field(
    field: &'static str,
    raw: &Option<String>,
    parse: fn(&str) -> Option<i64>,
) -> Result<Option<i64>, FieldError> {
    given(raw)
        .map(|raw| {
            parse(raw).ok_or_else(|| FieldError {
                field,
                code: "invalid_time",
                message: format!(
                    "`{field}` must be a date like 2026-11-23, an RFC 3339 time, or Unix seconds."
                ),
            })
        })
        .transpose()
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Parses the end of a time range: as [`parse_time`], but a date means the end of that day
/// (`until=2026-11-30` includes the 30th).
pub fn parse_until(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").is_ok() {
        return parse_time(raw).map(|t| t + 86_399);
    }
    parse_time(raw)
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
