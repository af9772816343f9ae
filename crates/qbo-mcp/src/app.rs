//! The application: shared state and the router built from every feature. This is the only
//! module that knows all the features; each feature exposes `routes()` and owns the rest.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use url::Url;

use crate::config::Config;
use crate::db::Db;
use crate::keys::Sealer;
use crate::quickbooks::{self, QuickBooks};
use crate::{audit, error, mcp, oauth, ops, people, telemetry, web};

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
        Ok(AppState {
            config: Arc::new(config),
            db,
            sealer,
            public_url: Arc::new(public_url),
            metrics,
            quickbooks: Arc::new(quickbooks),
            demo_intuit: intuit.demo,
        })
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the whole HTTP application.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit_bytes;
    let mut router = Router::new()
        .merge(ops::routes())
        .merge(oauth::routes())
        .merge(mcp::routes(&state))
        .merge(web::routes())
        .merge(people::api::routes())
        .merge(people::pages::routes())
        .merge(audit::routes())
        .merge(quickbooks::routes::routes())
        .fallback(error::not_found_fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::csrf::protect,
        ));
    if let Some(sim) = &state.demo_intuit {
        // After the CSRF layer: the simulated Intuit stands for another site, whose consent
        // form never carries our CSRF token (real Intuit never sees our cookies at all).
        router = router.nest_service(quickbooks::demo::MOUNT, quickbooks::demo::router(sim));
    }
    router
        .layer(axum::middleware::from_fn(telemetry::track_requests))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        // Outside the body limit, so its plain 413 gets the JSON shape too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::security_headers,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(120),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(telemetry::request_span::<_>))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
