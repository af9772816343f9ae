//! Group commit of tool calls' audit entries: concurrent calls share one durable commit.
//!
//! A call hands its entry to one writer task and waits; the writer takes every entry waiting
//! at that moment (up to [`MAX_BATCH`]), writes them with one multi-row `INSERT` (one
//! statement, so one transaction and one durable commit on either backend), and only then
//! tells each caller its entry is durable. While one batch commits, the next gathers, so a
//! lone call waits for nothing but its own commit and ten concurrent calls need one or two.
//!
//! Nothing is answered before its entry is durable: a caller whose entry is not committed —
//! the batch failed, or the process died (a crash, `kill -9`) before the commit — gets an
//! error or no answer at all, never its result (docs/reference.md, "Audit"). Should a batch
//! fail as a whole, its entries are tried one by one, so one bad entry cannot cost the others.

use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};

use super::{INSERT_COLUMNS, NewEntry};
use crate::db::Db;
use crate::error::AppError;
use crate::on_db;
use crate::time::now;

/// Most entries in one commit (12 parameters each, well under either backend's limit).
pub const MAX_BATCH: usize = 64;

/// Entries committed before the `audit_before_commit` fault point aborts at any batch.
const FAULT_AFTER_ENTRIES: usize = 20;

/// An entry waiting for its commit, with whom to tell.
struct Waiting {
    entry: NewEntry,
    at: i64,
    durable: oneshot::Sender<Result<(), String>>,
}

/// The writer of tool calls' audit entries, one per process (in the application state).
#[derive(Debug)]
pub struct GroupCommit {
    db: Db,
    queue: OnceLock<mpsc::UnboundedSender<Waiting>>,
    /// Test only (`QBO_MCP_TEST_FAULT_POINT=audit_before_commit`): the process aborts, as a
    /// `kill -9` would, just before committing a batch of two or more entries, or any batch
    /// once [`FAULT_AFTER_ENTRIES`] entries are committed (calls that never overlap).
    abort_before_commit: bool,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting").field("at", &self.at).finish()
    }
}

impl GroupCommit {
    pub fn new(db: Db, fault_point: Option<&str>) -> Self {
        Self {
            db,
            queue: OnceLock::new(),
            abort_before_commit: fault_point == Some("audit_before_commit"),
        }
    }

    /// Writes `entry`, durable when this returns `Ok` (committed with whatever other entries
    /// were waiting at the same time).
    pub async fn record(&self, entry: NewEntry) -> Result<(), AppError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(writer(self.db.clone(), receiver, self.abort_before_commit));
            sender
        });
        let (durable, committed) = oneshot::channel();
        let waiting = Waiting {
            entry,
            at: now(),
            durable,
        };
        let unwritten = || {
            AppError::internal(anyhow::anyhow!(
                "the audit writer stopped before the commit"
            ))
        };
        queue.send(waiting).map_err(|_| unwritten())?;
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AppError::internal(anyhow::anyhow!(e))),
            Err(_) => Err(unwritten()),
        }
    }
}

/// Takes what is waiting, commits it, tells the callers; until every sender is gone.
async fn writer(db: Db, mut queue: mpsc::UnboundedReceiver<Waiting>, abort_before_commit: bool) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut committed = 0;
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if abort_before_commit && (batch.len() >= 2 || committed >= FAULT_AFTER_ENTRIES) {
            tracing::error!(
                entries = batch.len(),
                "test fault point reached: aborting before an audit commit"
            );
            std::process::abort();
        }
        let outcome = insert(&db, &batch).await;
        metrics::counter!("audit_commits_total").increment(1);
        metrics::counter!("audit_entries_total").increment(batch.len() as u64);
        match outcome {
            Ok(()) => {
                committed += batch.len();
                for w in batch.drain(..) {
                    let _ = w.durable.send(Ok(()));
                }
            }
            Err(e) if batch.len() > 1 => {
                tracing::warn!(error = %e, entries = batch.len(), "an audit batch failed; writing its entries one by one");
                for w in batch.drain(..) {
                    let one = insert(&db, std::slice::from_ref(&w)).await;
                    let _ = w.durable.send(one.map_err(|e| e.to_string()));
                }
            }
            Err(e) => {
                for w in batch.drain(..) {
                    let _ = w.durable.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// One `INSERT … VALUES (…), (…), …` of the batch: a single statement, committed at once.
async fn insert(db: &Db, batch: &[Waiting]) -> Result<(), sqlx::Error> {
    on_db!(db, pool => {
        let mut query = sqlx::QueryBuilder::new(INSERT_COLUMNS);
        query.push_values(batch, |mut row, w| {
            let e = &w.entry;
            row.push_bind(w.at)
                .push_bind(e.username.clone())
                .push_bind(e.action.clone())
                .push_bind(e.target.clone())
                .push_bind(e.tool.clone())
                .push_bind(e.company.clone())
                .push_bind(e.outcome.as_str())
                .push_bind(e.details.to_string())
                .push_bind(e.company_name.clone())
                .push_bind(e.assistant.clone())
                .push_bind(e.duration_ms)
                .push_bind(e.intuit_tid.clone());
        });
        query.build().execute(pool).await?;
    });
    Ok(())
}
