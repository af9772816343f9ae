//! Audit retention (docs/operations.md, "Audit retention"): [`prune`] removes entries older
//! than a cut-off, never one younger than the configured retention, and records that it did so
//! in the same transaction, so the log always says who removed what.

use serde_json::json;

use super::{NewEntry, Outcome, record};
use crate::db::Db;
use crate::error::AppError;
use crate::on_tx;
use crate::time::{now, time_text};

const DAY: i64 = 24 * 60 * 60;

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Entries removed.
    pub removed: u64,
    /// Entries before this time (Unix seconds) were removed.
    pub before: i64,
}

/// Removes the entries older than `before` (Unix seconds; `None`: everything older than the
/// retention), as `actor`, and audits it. A cut-off inside the retention is refused.
pub async fn prune(
    db: &Db,
    actor: &str,
    before: Option<i64>,
    retention_days: u32,
) -> Result<Pruned, AppError> {
    let oldest_allowed = now() - i64::from(retention_days) * DAY;
    let before = before.unwrap_or(oldest_allowed);
    if before > oldest_allowed {
        return Err(AppError::bad_request(
            "inside_retention",
            format!(
                "Entries younger than the audit retention ({retention_days} days, QBO_MCP_AUDIT_RETENTION_DAYS) are kept: the latest cut-off allowed now is {}, not {}.",
                time_text(oldest_allowed),
                time_text(before)
            ),
        ));
    }
    let mut tx = db.begin_write().await?;
    let removed = on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM audit_entries WHERE at < $1")
            .bind(before)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    record(
        &mut tx,
        &NewEntry::new(Some(actor), "audit.prune", Outcome::Ok).details(json!({
            "before": time_text(before),
            "removed": removed,
            "retention_days": retention_days,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(Pruned { removed, before })
}
