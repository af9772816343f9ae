//! Demo mode: with no Intuit app configured, the server embeds the simulator (`qbo-sim`) and
//! mounts it at `/_demo/intuit`, so a newcomer can connect a demo company and try every tool
//! without a QuickBooks account. The simulated books live in memory: after a restart the demo
//! company shows "needs reconnect", and an admin connects it again in one click.
//!
//! Only the Intuit-facing routes are mounted (OAuth consent, token, revoke, the Accounting
//! API): the simulator's `/_sim` control routes (configuration, fault injection, reset, the
//! company list) would let any visitor steer the demo, so they are not reachable here.

use std::sync::Arc;

use url::Url;

use crate::config::{Config, IntuitApp, IntuitEnvironment};
use crate::secret::Secret;

/// Where the embedded simulator is mounted.
pub const MOUNT: &str = "/_demo/intuit";

/// The Intuit app and environment to use, and the simulator to mount in demo mode.
#[derive(Debug)]
pub struct IntuitSetup {
    pub app: IntuitApp,
    pub environment: IntuitEnvironment,
    pub demo: Option<Arc<qbo_sim::SimState>>,
}

/// The simulator as Intuit shows itself: no `/_sim` control routes.
pub fn router(sim: &Arc<qbo_sim::SimState>) -> axum::Router {
    qbo_sim::intuit_router(sim.clone())
}

pub fn setup(config: &Config, public_url: &Url) -> anyhow::Result<IntuitSetup> {
    if let Some(app) = &config.intuit {
        return Ok(IntuitSetup {
            app: app.clone(),
            environment: config.intuit_environment.clone(),
            demo: None,
        });
    }
    let sim = qbo_sim::SimState::new(qbo_sim::SimConfig {
        seed: 1,
        ..qbo_sim::SimConfig::default()
    })?;
    let base = format!("{}{MOUNT}", public_url.as_str().trim_end_matches('/'));
    sim.set_base_url(&base);
    Ok(IntuitSetup {
        app: IntuitApp {
            client_id: "qbo-mcp-demo".to_owned(),
            client_secret: Secret::new("demo-secret".to_owned()),
        },
        environment: IntuitEnvironment::Simulator(Url::parse(&base)?),
        demo: Some(sim),
    })
}
