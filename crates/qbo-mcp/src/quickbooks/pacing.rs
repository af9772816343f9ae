//! Upstream pacing per company, shared by every replica through the database, so that all of
//! them together stay inside Intuit's limits (500 requests a minute, 200 for reports, 10 in
//! flight) and QuickBooks never has to throttle us.
//!
//! Rate: a token bucket per company and class (`api`, `report`) in `quickbooks_budgets`, sized
//! so that no 60-second window can exceed Intuit's count (capacity + rate ≤ limit). In flight:
//! one lease row per request in `quickbooks_leases`, expiring on its own if a replica dies.
//! Both are checked and taken in one transaction under the company's pacing lock. Within a
//! process, one task per company polls the database at a time; the others queue behind it in
//! a bounded local queue, and a caller that waited too long gets a retryable error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::db::Db;
use crate::{on_db, on_tx};

/// Limits for one class of request.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Tokens added per minute.
    pub per_minute: f64,
    /// Bucket size: the burst allowed after a quiet spell.
    pub capacity: f64,
}

/// Pacing settings; defaults stay just inside Intuit's published limits.
#[derive(Debug, Clone)]
pub struct PacingConfig {
    pub api: Budget,
    pub report: Budget,
    pub max_in_flight: i64,
    /// A lease older than this is presumed dead (its request has long timed out).
    pub lease_ms: i64,
    /// Callers waiting per company in one process before new ones are turned away.
    pub max_queue: usize,
    /// Longest a caller waits for a turn.
    pub max_wait: Duration,
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            // 480/min + 20 burst ≤ 500 in any minute; 190 + 10 ≤ 200 for reports.
            api: Budget {
                per_minute: 480.0,
                capacity: 20.0,
            },
            report: Budget {
                per_minute: 190.0,
                capacity: 10.0,
            },
            max_in_flight: 10,
            lease_ms: 90_000,
            max_queue: 1_000,
            max_wait: Duration::from_secs(30),
        }
    }
}

/// The kind of request, for the budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Api,
    Report,
}

/// Why a caller did not get a turn.
#[derive(Debug, thiserror::Error)]
pub enum PacingError {
    #[error("too many requests are already waiting for this company")]
    QueueFull,
    #[error("waited too long for a turn with this company")]
    TimedOut,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A request in flight; release it when the answer is in.
#[derive(Debug)]
pub struct Lease {
    id: String,
    db: Db,
    released: bool,
}

impl Lease {
    pub async fn release(mut self) {
        self.released = true;
        release(&self.db, &self.id).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            let (db, id) = (self.db.clone(), std::mem::take(&mut self.id));
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { release(&db, &id).await });
            }
        }
    }
}

async fn release(db: &Db, id: &str) {
    let result = on_db!(db, pool => {
        sqlx::query("DELETE FROM quickbooks_leases WHERE lease_id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    });
    if let Err(e) = result {
        // The lease expires by itself; the slot is lost only until then.
        tracing::warn!(error = %e, "could not release a QuickBooks lease");
    }
}

#[derive(Debug, Default)]
struct Queue {
    waiting: usize,
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// The pacer for every company, one per process.
#[derive(Debug)]
pub struct Pacer {
    db: Db,
    config: PacingConfig,
    queues: Mutex<HashMap<String, Queue>>,
}

/// Leaves the local queue when dropped.
struct Waiting<'a> {
    pacer: &'a Pacer,
    realm_id: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut queues = self.pacer.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = queues.get_mut(self.realm_id) {
            q.waiting = q.waiting.saturating_sub(1);
        }
        metrics::gauge!("quickbooks_pacing_waiting").decrement(1.0);
    }
}

enum Attempt {
    Granted(String),
    /// Try again after this long.
    Wait(Duration),
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Pacer {
    pub fn new(db: Db, config: PacingConfig) -> Self {
        Self {
            db,
            config,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a turn to send one request of `class` to the company.
    pub async fn acquire(&self, realm_id: &str, class: Class) -> Result<Lease, PacingError> {
        let turn = {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let q = queues.entry(realm_id.to_owned()).or_default();
            if q.waiting >= self.config.max_queue {
                metrics::counter!("quickbooks_pacing_rejected_total", "reason" => "queue_full")
                    .increment(1);
                return Err(PacingError::QueueFull);
            }
            q.waiting += 1;
            metrics::gauge!("quickbooks_pacing_waiting").increment(1.0);
            q.turn.clone()
        };
        let _waiting = Waiting {
            pacer: self,
            realm_id,
        };
        let deadline = tokio::time::Instant::now() + self.config.max_wait;
        // One task per company per process talks to the database at a time; tokio's mutex is
        // fair, so callers are served in arrival order.
        let Ok(_turn) = tokio::time::timeout_at(deadline, turn.lock()).await else {
            metrics::counter!("quickbooks_pacing_rejected_total", "reason" => "timeout")
                .increment(1);
            return Err(PacingError::TimedOut);
        };
        loop {
            match self.try_acquire(realm_id, class).await? {
                Attempt::Granted(id) => {
                    return Ok(Lease {
                        id,
                        db: self.db.clone(),
                        released: false,
                    });
                }
                Attempt::Wait(pause) => {
                    let jitter = Duration::from_millis(rand::random_range(0..5));
                    let wake = tokio::time::Instant::now() + pause + jitter;
                    if wake > deadline {
                        metrics::counter!("quickbooks_pacing_rejected_total", "reason" => "timeout")
                            .increment(1);
                        return Err(PacingError::TimedOut);
                    }
                    tokio::time::sleep_until(wake).await;
                }
            }
        }
    }

    async fn try_acquire(&self, realm_id: &str, class: Class) -> Result<Attempt, sqlx::Error> {
        let now = now_ms();
        let mut tx = self
            .db
            .begin_locked(&format!("quickbooks-pacing:{realm_id}"))
            .await?;
        let in_flight: i64 = on_tx!(&mut tx, conn => {
            sqlx::query("DELETE FROM quickbooks_leases WHERE realm_id = $1 AND expires_ms < $2")
                .bind(realm_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            sqlx::query_scalar("SELECT COUNT(*) FROM quickbooks_leases WHERE realm_id = $1")
                .bind(realm_id)
                .fetch_one(&mut *conn)
                .await?
        });
        if in_flight >= self.config.max_in_flight {
            tx.rollback().await?;
            return Ok(Attempt::Wait(Duration::from_millis(10)));
        }
        let mut classes = vec![("api", self.config.api)];
        if class == Class::Report {
            classes.push(("report", self.config.report));
        }
        let mut buckets = Vec::new();
        for (name, budget) in &classes {
            let row: Option<(f64, i64)> = on_tx!(&mut tx, conn => {
                sqlx::query_as("SELECT tokens, updated_ms FROM quickbooks_budgets WHERE realm_id = $1 AND class = $2")
                    .bind(realm_id)
                    .bind(*name)
                    .fetch_optional(&mut *conn)
                    .await?
            });
            let (tokens, updated) = row.unwrap_or((budget.capacity, now));
            let per_ms = budget.per_minute / 60_000.0;
            let tokens = (tokens + (now - updated).max(0) as f64 * per_ms).min(budget.capacity);
            if tokens < 1.0 {
                tx.rollback().await?;
                let wait_ms = ((1.0 - tokens) / per_ms).ceil() as u64;
                return Ok(Attempt::Wait(Duration::from_millis(
                    wait_ms.clamp(1, 1_000),
                )));
            }
            buckets.push((*name, tokens - 1.0));
        }
        let lease_id = uuid::Uuid::new_v4().to_string();
        on_tx!(&mut tx, conn => {
            for (name, tokens) in &buckets {
                sqlx::query(
                    "INSERT INTO quickbooks_budgets (realm_id, class, tokens, updated_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (realm_id, class) DO UPDATE SET tokens = $3, updated_ms = $4",
                )
                .bind(realm_id)
                .bind(*name)
                .bind(*tokens)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query("INSERT INTO quickbooks_leases (lease_id, realm_id, expires_ms) VALUES ($1, $2, $3)")
                .bind(&lease_id)
                .bind(realm_id)
                .bind(now + self.config.lease_ms)
                .execute(&mut *conn)
                .await?;
        });
        tx.commit().await?;
        Ok(Attempt::Granted(lease_id))
    }
}
