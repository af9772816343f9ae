//! The QuickBooks client: everything that talks to Intuit, and nothing that knows who is
//! asking (routes, pages and commands are the companies feature's, `crate::companies`).
//!
//! One shared connection per company, connected once by an admin through Intuit's
//! authorization code flow (`connect`), its tokens sealed in the database (`store`), refreshed
//! exactly once at a time across every replica (`tokens`), and used by every tool through one
//! paced, retrying API client (`api`, `pacing`). Nobody but an admin is ever sent to Intuit,
//! so QuickBooks never offers "Change Admin" and the connection never moves.

pub mod api;
pub mod attachments;
pub mod checks;
pub mod connect;
pub mod demo;
pub mod entities;
pub mod intuit;
pub mod names;
pub mod operations;
pub mod pacing;
pub mod single_flight;
pub mod store;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use crate::audit::{self, NewEntry, Outcome};
use crate::config::{Config, IntuitApp, IntuitEnvironment};
use crate::db::Db;
use crate::error::AppError;
use crate::keys::Sealer;
use crate::time::now;

pub use api::{ApiRequest, ApiResponse, Fault};
pub use store::{Company, Status};

/// What went wrong using a company's connection; each variant says what a person can do.
#[derive(Debug, thiserror::Error)]
pub enum QboError {
    /// An argument cannot be sent to QuickBooks as given.
    #[error("{message}")]
    InvalidArgument { message: String },
    #[error("there is no company {company}")]
    UnknownCompany { company: String },
    #[error("company {realm_id} is not connected to QuickBooks")]
    NotConnected { realm_id: String },
    #[error("company {realm_id} must be reconnected to QuickBooks by an admin")]
    NeedsReconnect { realm_id: String },
    /// Our own pacing queue is full or the wait was too long: retry shortly.
    #[error("QuickBooks is busy for this company: {detail}")]
    Busy { detail: String },
    /// Intuit did not answer usefully after retries: retry later.
    #[error("QuickBooks is not answering: {detail}")]
    Unavailable { detail: String },
    /// QuickBooks answered with a fault (validation, stale object, not found, …).
    #[error("QuickBooks fault {}: {}", .fault.code, .fault.message)]
    Fault {
        fault: Box<Fault>,
        intuit_tid: Option<String>,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for QboError {
    fn from(e: sqlx::Error) -> Self {
        QboError::Internal(e.into())
    }
}

impl QboError {
    /// Whether calling again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, QboError::Busy { .. } | QboError::Unavailable { .. })
    }
}

fn audit_error(e: AppError) -> QboError {
    QboError::Internal(anyhow::anyhow!("cannot write the audit log: {}", e.message))
}

/// Test-only crash points in the refresh path (`QBO_MCP_TEST_FAULT_POINT`): the process aborts
/// there, as a `kill -9` would, so tests can prove no step loses the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    RefreshBeforeIntuit,
    RefreshAfterIntuit,
    RefreshAfterCommit,
}

impl FaultPoint {
    pub fn parse(s: &str) -> Option<FaultPoint> {
        match s {
            "refresh_before_intuit" => Some(FaultPoint::RefreshBeforeIntuit),
            "refresh_after_intuit" => Some(FaultPoint::RefreshAfterIntuit),
            "refresh_after_commit" => Some(FaultPoint::RefreshAfterCommit),
            _ => None,
        }
    }
}

/// The QuickBooks side of the server, one per process.
#[derive(Debug)]
pub struct QuickBooks {
    db: Db,
    sealer: Arc<Sealer>,
    oauth: intuit::IntuitOAuth,
    http: reqwest::Client,
    pacer: pacing::Pacer,
    /// Identical reads in flight, shared (`single_flight`).
    flights: single_flight::Flights,
    /// Opened access tokens by realm id (`tokens`).
    access_cache: tokens::Cache,
    /// `{public_url}/quickbooks/callback`.
    redirect_uri: String,
    fault_point: Option<FaultPoint>,
}

impl QuickBooks {
    pub fn new(
        db: Db,
        sealer: Arc<Sealer>,
        app: IntuitApp,
        environment: &IntuitEnvironment,
        public_url: &url::Url,
        fault_point: Option<FaultPoint>,
    ) -> anyhow::Result<Self> {
        let oauth = intuit::IntuitOAuth::new(app, intuit::Endpoints::for_environment(environment))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .user_agent(concat!("qbo-mcp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            pacer: pacing::Pacer::new(db.clone(), pacing::PacingConfig::default()),
            access_cache: tokens::Cache::default(),
            flights: single_flight::Flights::default(),
            db,
            sealer,
            oauth,
            http,
            redirect_uri: format!(
                "{}/quickbooks/callback",
                public_url.as_str().trim_end_matches('/')
            ),
            fault_point,
        })
    }

    /// Built from the configuration (the demo simulator's app when in demo mode).
    pub fn from_config(
        config: &Config,
        db: Db,
        sealer: Arc<Sealer>,
        app: IntuitApp,
        environment: &IntuitEnvironment,
        public_url: &url::Url,
    ) -> anyhow::Result<Self> {
        let fault = config
            .test_fault_point
            .as_deref()
            .and_then(FaultPoint::parse);
        Self::new(db, sealer, app, environment, public_url, fault)
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    fn fault(&self, point: FaultPoint) {
        if self.fault_point == Some(point) {
            tracing::error!(?point, "test fault point reached: aborting");
            std::process::abort();
        }
    }

    /// Marks the connection `needs_reconnect` (unless generation `seen` was replaced
    /// meanwhile) and audits it in the same transaction. `cause` is a short code for the audit
    /// log (`invalid_grant`, `error_120`); `detail` is what admins read on every page.
    async fn needs_reconnect(
        &self,
        realm_id: &str,
        seen: i64,
        cause: &str,
        detail: &str,
    ) -> Result<bool, QboError> {
        let mut tx = self.db.begin_write().await?;
        let marked = store::mark_needs_reconnect(&mut tx, realm_id, seen, detail, now()).await?;
        self.access_cache.forget(realm_id);
        if marked {
            audit::record(
                &mut tx,
                &NewEntry::new(None, "company.needs_reconnect", Outcome::Error)
                    .company(realm_id)
                    .details(serde_json::json!({ "cause": cause, "detail": detail })),
            )
            .await
            .map_err(audit_error)?;
        }
        tx.commit().await?;
        if marked {
            metrics::counter!("quickbooks_needs_reconnect_total").increment(1);
            tracing::warn!(
                realm_id,
                cause,
                "company connection needs an admin to reconnect"
            );
        }
        Ok(marked)
    }

    /// Audits a refresh that failed without losing the connection (Intuit unreachable, or the
    /// app's credentials refused): the company stays connected and the next call tries again.
    async fn refresh_failed(&self, realm_id: &str, cause: &str, detail: &str) {
        tracing::warn!(realm_id, cause, detail, "QuickBooks token refresh failed");
        let entry = NewEntry::new(None, "company.refresh", Outcome::Error)
            .company(realm_id)
            .details(serde_json::json!({ "cause": cause, "detail": detail }));
        if let Err(e) = audit::record_now(&self.db, &entry).await {
            tracing::error!(realm_id, error = %e.message, "cannot audit a failed refresh");
        }
    }

    /// Every company. What the rows say of each connection also checks the token cache: an
    /// entry whose generation moved on (refresh, reconnect, disconnect) is dropped.
    pub async fn companies(&self) -> Result<Vec<Company>, sqlx::Error> {
        let all = store::list(&self.db).await?;
        self.access_cache.check(&all, true);
        Ok(all)
    }

    /// The companies `wanted` names (`store::named`), checking the token cache of each found.
    pub async fn companies_named(&self, wanted: &str) -> Result<Vec<Company>, sqlx::Error> {
        let found = store::named(&self.db, wanted).await?;
        self.access_cache.check(&found, false);
        Ok(found)
    }

    pub async fn company(&self, realm_id: &str) -> Result<Option<Company>, sqlx::Error> {
        let company = store::get(&self.db, realm_id).await?;
        match &company {
            Some(c) => self.access_cache.check(std::slice::from_ref(c), false),
            None => self.access_cache.forget(realm_id),
        }
        Ok(company)
    }
}
