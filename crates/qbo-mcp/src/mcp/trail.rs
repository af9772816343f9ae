//! What a tool call did, gathered for its audit entry while it runs: the handler starts the
//! [`Trail`] with who is calling which tool, the tool (in `books`) notes what it read or
//! wrote — entity, id, name or DocNumber, total; query and row count — and Intuit's request
//! id, and the handler writes the entry when the call ends. A write first records a
//! `pending` entry ([`Trail::before_write`]) before its request goes to QuickBooks, so a
//! crash in between leaves an entry that later reads `unknown`; the handler then completes
//! that entry instead of writing a second one.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::tools::ToolError;
use crate::audit::{self, NewEntry};
use crate::db::Db;
use crate::quickbooks::operations::Answer;

/// Longest text kept from a query or a name; longer ones end in `…`.
const MAX_TEXT: usize = 200;

/// The audit entry of one tool call, as it is being learnt (a clone shares it).
#[derive(Debug, Default, Clone)]
pub struct Trail {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Who calls which tool, with the argument names (set by the handler).
    base: Option<NewEntry>,
    /// What the call read or wrote (`entity`, `id`, `doc_number`, `name`, `total`, `query`,
    /// `rows`, …).
    facts: Map<String, Value>,
    intuit_tid: Option<String>,
    /// The `pending` entry of a write, once recorded.
    pending: Option<i64>,
}

/// `text`, cut to [`MAX_TEXT`] characters.
pub fn shortened(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

impl Trail {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means a panic elsewhere mid-update; the facts stay usable.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    /// Starts the trail with who calls which tool.
    pub fn begin(&self, base: NewEntry) {
        self.with(|s| s.base = Some(base));
    }

    /// Notes facts about what the call did; later ones replace earlier ones of the same name
    /// (what QuickBooks answered replaces what was asked). Null values are left out.
    pub fn note(&self, facts: Value) {
        if let Value::Object(map) = facts {
            self.with(|s| {
                for (k, v) in map {
                    if !v.is_null() {
                        s.facts.insert(k, v);
                    }
                }
            });
        }
    }

    /// Notes Intuit's request id of a QuickBooks answer.
    pub fn answered(&self, answer: &Answer) {
        self.tid(answer.intuit_tid.as_deref());
        if let Some(r) = &answer.request_id {
            self.note(serde_json::json!({ "request_id": r }));
        }
    }

    /// Notes Intuit's request id (of an answer or a fault).
    pub fn tid(&self, tid: Option<&str>) {
        if let Some(t) = tid {
            self.with(|s| s.intuit_tid = Some(t.to_owned()));
        }
    }

    /// Records the `pending` entry of a write about to be sent, naming the company and what
    /// is known so far; durable when this returns. Without it the write must not be sent.
    pub async fn before_write(
        &self,
        db: &Db,
        company: Option<(&str, &str)>,
    ) -> Result<(), ToolError> {
        let Some(entry) = self.entry(company) else {
            return Ok(());
        };
        let id = audit::record_pending(db, &entry).await.map_err(|e| {
            tracing::error!(error = %e.message, "cannot record a pending write");
            ToolError(
                "Nothing was sent to QuickBooks: the write could not be recorded in the audit log first. Try again in a moment.".into(),
            )
        })?;
        self.with(|s| s.pending = Some(id));
        Ok(())
    }

    /// The entry as known now: the base with the facts and Intuit's request id, for `company`
    /// (realm id, name). `None` before [`Trail::begin`].
    pub fn entry(&self, company: Option<(&str, &str)>) -> Option<NewEntry> {
        self.with(|s| {
            let mut entry = s.base.clone()?;
            if let Value::Object(details) = &mut entry.details {
                details.extend(s.facts.clone());
            }
            entry.intuit_tid = s.intuit_tid.clone();
            if let Some((realm, name)) = company {
                entry = entry.company(realm).company_name(name);
            }
            Some(entry)
        })
    }

    /// The `pending` entry written for this call, if it wrote one.
    pub fn pending(&self) -> Option<i64> {
        self.with(|s| s.pending)
    }
}
