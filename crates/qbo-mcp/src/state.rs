//! The state every request handler and command shares: [`AppState`] (configuration,
//! database, sealer, the QuickBooks client) and [`open_state`], how the database and the key
//! are opened for the server and for every command that touches stored state. Features take
//! this state, never the router (`app.rs`).

use std::sync::Arc;

use anyhow::anyhow;
use metrics_exporter_prometheus::PrometheusHandle;
use url::Url;

use crate::audit::group_commit::GroupCommit;
use crate::config::Config;
use crate::db::{self, Db};
use crate::keys::{self, Sealer, SecretKey};
use crate::quickbooks::{self, QuickBooks};

/// Everything a request handler may need, cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub sealer: Arc<Sealer>,
    /// The URL people and clients use, without a trailing slash.
    pub public_url: Arc<Url>,
    pub metrics: Option<PrometheusHandle>,
    /// Company connections and the QuickBooks API.
    pub quickbooks: Arc<QuickBooks>,
    /// Tool calls' audit entries, committed in groups (`audit::group_commit`).
    pub audit: Arc<GroupCommit>,
    /// The simulator playing Intuit in demo mode, mounted at `quickbooks::demo::MOUNT`.
    pub demo_intuit: Option<Arc<qbo_sim::SimState>>,
}

impl AppState {
    /// Assembles the state from its parts: sets up QuickBooks (or demo mode's simulator).
    pub fn build(
        config: Config,
        db: Db,
        sealer: Sealer,
        public_url: Url,
        metrics: Option<PrometheusHandle>,
    ) -> anyhow::Result<AppState> {
        let sealer = Arc::new(sealer);
        let intuit = quickbooks::demo::setup(&config, &public_url)?;
        let quickbooks = QuickBooks::from_config(
            &config,
            db.clone(),
            sealer.clone(),
            intuit.app,
            &intuit.environment,
            &public_url,
        )?;
        let audit = Arc::new(GroupCommit::new(
            db.clone(),
            config.test_fault_point.as_deref(),
        ));
        Ok(AppState {
            config: Arc::new(config),
            audit,
            db,
            sealer,
            public_url: Arc::new(public_url),
            metrics,
            quickbooks: Arc::new(quickbooks),
            demo_intuit: intuit.demo,
        })
    }
}

/// Opens the database (migrated) and the sealer (key checked against the database): what every
/// command that touches stored state needs.
pub async fn open_state(config: &Config) -> anyhow::Result<(Db, Sealer)> {
    let db = Db::connect(config.database_url.expose()).await?;
    db::migrate(&db).await?;
    let key = SecretKey::load_or_create(config.secret_key.as_ref(), &config.data_dir)?;
    let sealer = Sealer::new(&key);
    if let Err(e) = keys::check_key(&db, &sealer).await {
        let pending = config.data_dir.join("secret.key.new");
        if config.secret_key.is_none() && pending.exists() {
            return Err(anyhow!(
                "{e} An interrupted `qbo-mcp rotate-key` left a new key in {}: if the database was rotated to it, move it to secret.key.",
                pending.display()
            ));
        }
        return Err(e);
    }
    Ok((db, sealer))
}
