//! Upstream pacing per company, so that every replica together stays inside Intuit's limits
//! (500 requests a minute, 200 for reports, 10 in flight) and QuickBooks never has to throttle
//! us.
//!
//! Rate: a token bucket per company and class (`api`, `report`), sized so that no 60-second
//! window can exceed Intuit's count (capacity + rate ≤ limit). In flight: a count of requests
//! sent and not yet answered. Where that state lives depends on the backend
//! (docs/benchmarks.md, "Pacing"):
//! - SQLite: in this process's memory. SQLite is the one-server setup (replicas need
//!   PostgreSQL), so its count is the whole truth, and pacing costs no database work.
//! - PostgreSQL: shared by every replica in `quickbooks_budgets` and `quickbooks_leases` (a
//!   company's slots: a request takes a free row, released or expired, and updates it in place,
//!   so a replica that dies only holds its slots until they expire, and the table never fills
//!   with dead rows), checked and taken under the company's advisory lock by one call of the
//!   function `qbo_pacing_acquire` (migrations 0402, 0403): one round trip per acquire, and one
//!   (`qbo_pacing_release`) per release. The limits stay here (`PacingConfig`) and go as
//!   arguments; the bucket rule is stated once, at [`refilled`], and a test holds the SQL to it. Both functions set `synchronous_commit = off` for their
//!   statement's transaction: pacing rows are not worth a wait for the disk (a database crash
//!   loses at most the last fraction of a second of them).
//!
//! Within a process, one task per company checks at a time; the others queue behind it in a
//! bounded local queue, and a caller that waited too long gets a retryable error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::Postgres;

use crate::db::{Db, Pool};

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
    held: Held,
    released: bool,
}

#[derive(Debug)]
enum Held {
    /// A slot of this process's own count (SQLite).
    Local { realm_id: String, local: Local },
    /// A row of the company's in `quickbooks_leases`, held under this id (PostgreSQL).
    Row {
        realm_id: String,
        id: String,
        pool: Pool<Postgres>,
    },
}

impl Lease {
    pub async fn release(mut self) {
        self.released = true;
        match &self.held {
            Held::Local { realm_id, local } => release_local(local, realm_id),
            Held::Row { realm_id, id, pool } => release(pool, realm_id, id).await,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        match &mut self.held {
            Held::Local { realm_id, local } => release_local(local, realm_id),
            Held::Row { realm_id, id, pool } => {
                let (pool, realm_id, id) =
                    (pool.clone(), std::mem::take(realm_id), std::mem::take(id));
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(async move { release(&pool, &realm_id, &id).await });
                }
            }
        }
    }
}

/// Frees the company's row this lease holds, in one round trip (`qbo_pacing_release`, migration
/// 0403), without waiting for the commit to reach the disk: a release lost in a database crash
/// only frees the slot early, after the request it counted has long ended.
async fn release(pool: &Pool<Postgres>, realm_id: &str, id: &str) {
    let result = sqlx::query("SELECT qbo_pacing_release($1, $2)")
        .bind(realm_id)
        .bind(id)
        .execute(pool)
        .await;
    if let Err(e) = result {
        // The lease expires by itself; the slot is lost only until then.
        tracing::warn!(error = %e, "could not release a QuickBooks lease");
    }
}

/// This process's own pacing state, per company: requests in flight and the two buckets.
type Local = Arc<Mutex<HashMap<String, LocalCompany>>>;

#[derive(Debug, Default)]
struct LocalCompany {
    in_flight: i64,
    /// (tokens, updated_ms) of `api` and `report`; `None` until first used (full bucket).
    buckets: [Option<(f64, i64)>; 2],
}

fn release_local(local: &Local, realm_id: &str) {
    let mut all = local.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = all.get_mut(realm_id) {
        c.in_flight = (c.in_flight - 1).max(0);
    }
}

/// The bucket rule, stated once for both backends (PostgreSQL's `qbo_pacing_refilled`, migration
/// 0402, is the same arithmetic, and the test `pacing::postgres_function_agrees_with_rust` holds
/// the two to each other): the tokens in a bucket at `now`, given `stored` = (tokens, time of
/// the last spend). A bucket never spent is full; otherwise it gains `per_minute / 60000`
/// tokens a millisecond since then (never for a negative span: a clock behind the bucket's),
/// up to its capacity. A request takes one token from each bucket it spends (`api`, and
/// `report` for reports) when every one holds at least one; the bucket's time becomes the later
/// of `now` and its time (never moved back, so no span is refilled twice). When one holds less,
/// the wait is [`refill_wait`] of the first such bucket.
pub fn refilled(budget: &Budget, stored: Option<(f64, i64)>, now: i64) -> f64 {
    let (tokens, updated) = stored.unwrap_or((budget.capacity, now));
    let per_ms = budget.per_minute / 60_000.0;
    (tokens + (now - updated).max(0) as f64 * per_ms).min(budget.capacity)
}

/// How long until a bucket holding `tokens` has one (1 ms to 1 s: a longer wait is taken in
/// steps).
pub fn refill_wait(budget: &Budget, tokens: f64) -> Duration {
    let per_ms = budget.per_minute / 60_000.0;
    let wait_ms = ((1.0 - tokens) / per_ms).ceil() as u64;
    Duration::from_millis(wait_ms.clamp(1, 1_000))
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
    local: Local,
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
    Granted(Held),
    /// Try again after this long.
    Wait(Duration),
}

/// How long to wait when every in-flight slot of a company is taken.
const SLOT_WAIT: Duration = Duration::from_millis(10);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Pacer {
    pub fn new(db: Db, config: PacingConfig) -> Self {
        Self {
            db,
            config,
            queues: Mutex::new(HashMap::new()),
            local: Local::default(),
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
                Attempt::Granted(held) => {
                    return Ok(Lease {
                        held,
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
        match &self.db {
            Db::Sqlite(_) => Ok(self.try_local(realm_id, class)),
            Db::Postgres(pool) => self.try_row(pool, realm_id, class).await,
        }
    }

    /// The budgets that a request of `class` spends: `api` always, `report` too for reports.
    fn classes(&self, class: Class) -> Vec<(&'static str, Budget)> {
        let mut classes = vec![("api", self.config.api)];
        if class == Class::Report {
            classes.push(("report", self.config.report));
        }
        classes
    }

    /// SQLite: the one-server setup, so this process's own count is the whole truth and
    /// nothing touches the database.
    fn try_local(&self, realm_id: &str, class: Class) -> Attempt {
        let now = now_ms();
        let mut all = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let company = all.entry(realm_id.to_owned()).or_default();
        if company.in_flight >= self.config.max_in_flight {
            return Attempt::Wait(SLOT_WAIT);
        }
        let mut spent = company.buckets;
        for (i, (_, budget)) in self.classes(class).iter().enumerate() {
            let tokens = refilled(budget, spent[i], now);
            if tokens < 1.0 {
                return Attempt::Wait(refill_wait(budget, tokens));
            }
            let at = spent[i].map_or(now, |(_, updated)| updated.max(now));
            spent[i] = Some((tokens - 1.0, at));
        }
        company.buckets = spent;
        company.in_flight += 1;
        Attempt::Granted(Held::Local {
            realm_id: realm_id.to_owned(),
            local: self.local.clone(),
        })
    }

    /// PostgreSQL: shared by every replica, in one round trip: `qbo_pacing_acquire` (migration
    /// 0403) takes the company's advisory lock, counts the rows in flight, refills, decides and
    /// takes a free row, with `synchronous_commit = off` (docs/benchmarks.md, "Pacing"). The limits
    /// come from `PacingConfig` as arguments; the wait is computed here, as on SQLite.
    async fn try_row(
        &self,
        pool: &Pool<Postgres>,
        realm_id: &str,
        class: Class,
    ) -> Result<Attempt, sqlx::Error> {
        let lock = crate::db::lock_id(&format!("quickbooks-pacing:{realm_id}"));
        let classes = self.classes(class);
        let names: Vec<&str> = classes.iter().map(|(name, _)| *name).collect();
        let capacities: Vec<f64> = classes.iter().map(|(_, b)| b.capacity).collect();
        let per_minute: Vec<f64> = classes.iter().map(|(_, b)| b.per_minute).collect();
        let lease_id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let (granted, empty_class, empty_tokens): (bool, Option<String>, Option<f64>) =
            sqlx::query_as(
                "SELECT granted, empty_class, empty_tokens
                 FROM qbo_pacing_acquire($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(realm_id)
            .bind(lock)
            .bind(now)
            .bind(self.config.max_in_flight)
            .bind(&lease_id)
            .bind(now + self.config.lease_ms)
            .bind(&names)
            .bind(&capacities)
            .bind(&per_minute)
            .fetch_one(pool)
            .await?;
        if granted {
            return Ok(Attempt::Granted(Held::Row {
                realm_id: realm_id.to_owned(),
                id: lease_id,
                pool: pool.clone(),
            }));
        }
        let empty = empty_class.and_then(|name| classes.iter().find(|(n, _)| *n == name));
        Ok(match (empty, empty_tokens) {
            (Some((_, budget)), Some(tokens)) => Attempt::Wait(refill_wait(budget, tokens)),
            // Every slot is taken.
            _ => Attempt::Wait(SLOT_WAIT),
        })
    }
}
