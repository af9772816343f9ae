//! qbo-sim: a stand-in for Intuit's OAuth/OIDC service and QuickBooks Online Accounting API,
//! for tests, benchmarks and demo mode. It must behave like Intuit, warts included.
//!
//! Embed it with [`Simulator::start`], or mount [`router`] over a [`SimState`] in a server of
//! your own. Everything is served from one base URL; the discovery document points there.

pub mod api;
pub mod books;
pub mod clock;
pub mod config;
pub mod control;
pub mod fault;
pub mod oauth;
pub mod pacing;
pub mod request_id;
pub mod simulator;
pub mod stats;
pub mod webhooks;

pub use config::{AutoConsent, SimConfig};
pub use simulator::{SimState, Simulator};

use std::sync::Arc;

/// The whole simulator as an axum router: OAuth, the Accounting API and `/_sim`.
pub fn router(state: Arc<SimState>) -> axum::Router {
    axum::Router::new()
        .merge(oauth::routes())
        .merge(api::routes())
        .merge(control::routes())
        .layer(axum::middleware::map_response(request_id::stamp))
        .with_state(state)
}

/// Only what Intuit itself serves: OAuth/OIDC and the Accounting API, without the `/_sim`
/// control routes. For embedding where the people reaching it must not steer the simulator
/// (qbo-mcp's demo mode).
pub fn intuit_router(state: Arc<SimState>) -> axum::Router {
    axum::Router::new()
        .merge(oauth::routes())
        .merge(api::routes())
        .layer(axum::middleware::map_response(request_id::stamp))
        .with_state(state)
}
