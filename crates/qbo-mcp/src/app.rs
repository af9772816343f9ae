//! The application: the router assembled from every feature's routes and the layers around
//! them. This is the only module that knows all the features; each feature exposes `routes()`
//! and owns the rest. The state the routes share is in `state.rs`.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use crate::{
    audit, companies, error, mcp, oauth, ops, people, proposals, quickbooks, telemetry, web,
};

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
        .merge(audit::api::routes())
        .merge(companies::routes())
        .merge(proposals::routes())
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
