//! The running simulator: its shared state (configuration, clock, companies, grants,
//! counters, pacing) and the server that answers on one base URL for every Intuit host.

use crate::books::{Company, seed};
use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::oauth::grants::Grants;
use crate::oauth::id_token::IdTokenSigner;
use crate::pacing::Pacing;
use crate::stats::Stats;
use axum::Router;
use axum::http::HeaderMap;
use parking_lot::{Mutex, RwLock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Everything the handlers share.
#[derive(Debug)]
pub struct SimState {
    pub config: RwLock<SimConfig>,
    start_config: SimConfig,
    pub clock: SimClock,
    pub stats: Stats,
    /// The demo companies (`SimConfig::companies` of them), replaced whole when the number
    /// changes.
    roster: RwLock<Arc<Roster>>,
    pub grants: RwLock<Grants>,
    pub pacing: Pacing,
    pub signer: IdTokenSigner,
    /// Delivers webhook notifications.
    pub webhook_client: reqwest::Client,
    base_url: RwLock<Option<String>>,
    /// A fault the next API calls answer, and how many calls are left to answer it.
    pub injected: Mutex<Option<(crate::fault::InjectedFault, u32)>>,
    dice: Mutex<StdRng>,
    demo_today: chrono::NaiveDate,
    /// Signs the temporary download links of attachments (`api::attachments`).
    pub attachment_key: [u8; 32],
}

impl SimState {
    /// Builds the state: demo companies from the seed, no grants, zero counters.
    pub fn new(config: SimConfig) -> anyhow::Result<Arc<Self>> {
        let clock = SimClock::default();
        let demo_today = config.demo_today.unwrap_or_else(|| clock.today());
        config.check()?;
        let roster = Roster::build(config.companies, config.seed, demo_today);
        Ok(Arc::new(Self {
            attachment_key: rand::random(),
            dice: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x5eed)),
            start_config: config.clone(),
            config: RwLock::new(config),
            clock,
            stats: Stats::default(),
            roster: RwLock::new(Arc::new(roster)),
            grants: RwLock::new(Grants::default()),
            pacing: Pacing::default(),
            signer: IdTokenSigner::new()?,
            webhook_client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
            base_url: RwLock::new(None),
            injected: Mutex::new(None),
            demo_today,
        }))
    }

    /// A company by realm id.
    pub fn company(&self, realm_id: &str) -> Option<Arc<Company>> {
        self.roster.read().company(realm_id)
    }

    /// Every company, in order (Craig's, Harbor's, then the generated ones).
    pub fn companies(&self) -> Arc<Roster> {
        self.roster.read().clone()
    }

    /// Grows or shrinks the roster to `count` companies: the first ones keep their books
    /// (and any changes made to them), new ones get fresh demo books.
    pub fn set_company_count(&self, count: usize) {
        let current = self.companies();
        if current.list.len() == count {
            return;
        }
        let seed = self.start_config.seed;
        let mut list: Vec<Arc<Company>> = current.list.iter().take(count).cloned().collect();
        if count > list.len() {
            list.extend(
                seed::demo_company_range(list.len()..count, seed, self.demo_today)
                    .into_iter()
                    .map(Arc::new),
            );
        }
        *self.roster.write() = Arc::new(Roster::new(list));
    }

    /// A copy of the configuration in force.
    pub fn config(&self) -> SimConfig {
        self.config.read().clone()
    }

    /// Fixes the base URL that the discovery document and redirects name.
    pub fn set_base_url(&self, url: &str) {
        *self.base_url.write() = Some(url.trim_end_matches('/').to_owned());
    }

    /// The base URL: the one set at start, else the request's own `Host`.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = self.base_url.read().as_ref() {
            return url.clone();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        format!("http://{host}")
    }

    /// Takes one call's share of an injected fault, if any is left.
    pub fn take_injected(&self) -> Option<crate::fault::InjectedFault> {
        let mut injected = self.injected.lock();
        let (fault, left) = injected.as_mut()?;
        let fault = *fault;
        *left = left.saturating_sub(1);
        if *left == 0 {
            *injected = None;
        }
        Some(fault)
    }

    /// True with the given probability, from the seeded dice.
    pub fn roll(&self, probability: f64) -> bool {
        probability > 0.0 && self.dice.lock().random::<f64>() < probability
    }

    /// Back to the start: which parts is chosen by the caller.
    pub fn reset(&self, data: bool, tokens: bool, stats: bool, config: bool) {
        if config {
            *self.config.write() = self.start_config.clone();
            *self.injected.lock() = None;
            self.clock.reset();
            self.set_company_count(self.start_config.companies);
        }
        if tokens {
            *self.grants.write() = Grants::default();
        }
        if data {
            let seed = self.start_config.seed;
            let roster = self.companies();
            for company in &roster.list {
                if let Some(books) = seed::demo_books_for(
                    &company.realm_id,
                    seed,
                    self.demo_today,
                    roster.list.len(),
                ) {
                    *company.books.write() = books;
                }
            }
        }
        if stats {
            self.stats.clear();
            self.pacing.clear();
        }
    }
}

/// The demo companies, in order, with an index by realm id.
#[derive(Debug)]
pub struct Roster {
    pub list: Vec<Arc<Company>>,
    by_realm: std::collections::HashMap<String, usize>,
}

impl Roster {
    fn new(list: Vec<Arc<Company>>) -> Self {
        let by_realm = list
            .iter()
            .enumerate()
            .map(|(index, company)| (company.realm_id.clone(), index))
            .collect();
        Self { list, by_realm }
    }

    fn build(count: usize, seed: u64, today: chrono::NaiveDate) -> Self {
        Self::new(
            seed::demo_company_range(0..count, seed, today)
                .into_iter()
                .map(Arc::new)
                .collect(),
        )
    }

    /// A company by realm id.
    pub fn company(&self, realm_id: &str) -> Option<Arc<Company>> {
        self.by_realm
            .get(realm_id)
            .and_then(|&index| self.list.get(index))
            .cloned()
    }

    /// The companies in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Arc<Company>> {
        self.list.iter()
    }
}

/// A simulator serving on a socket; it stops when shut down or dropped.
#[derive(Debug)]
pub struct Simulator {
    state: Arc<SimState>,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free port) and serves until shut down.
    pub async fn start(config: SimConfig, listen: SocketAddr) -> anyhow::Result<Simulator> {
        let state = SimState::new(config)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let local_addr = listener.local_addr()?;
        state.set_base_url(&format!("http://{local_addr}"));
        let app = crate::router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "simulator server stopped");
            }
        });
        Ok(Simulator {
            state,
            local_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The address the simulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state, for in-process inspection and control.
    pub fn state(&self) -> Arc<SimState> {
        self.state.clone()
    }

    /// Another router over the same state (to mount in a bigger server).
    pub fn router(&self) -> Router {
        crate::router(self.state.clone())
    }

    /// The `/_sim/stats` document.
    pub fn stats(&self) -> serde_json::Value {
        self.state.stats.to_json()
    }

    /// Stops serving and waits until the server has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
