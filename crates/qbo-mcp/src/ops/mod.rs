//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the database answers),
//! `/metrics` (Prometheus text). None of them needs credentials or reveals anything private.
//! Also the operator's commands: `backup` and `restore` ([`backup`]), `audit prune` ([`cli`]).

pub mod backup;
pub mod cli;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::AppError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    match tokio::time::timeout(std::time::Duration::from_secs(5), state.db.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready", "database": "ok"}))),
        Ok(Err(e)) => Err(AppError::unavailable(
            "database_unavailable",
            "The database is not reachable.",
        )
        .with_source(e)),
        Err(_) => Err(AppError::unavailable(
            "database_unavailable",
            "The database did not answer within 5 seconds.",
        )),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state
        .metrics
        .as_ref()
        .map(|m| m.render())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
