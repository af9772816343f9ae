//! The MCP endpoint (docs/mcp.md): Streamable HTTP at `/mcp` through rmcp, serving the
//! 2025-03-26, 2025-06-18, 2025-11-25 and 2026-07-28 revisions (`handler::VERSIONS`).
//!
//! The endpoint keeps no session state: `initialize` is answered without an `Mcp-Session-Id`,
//! so any replica can serve a client's next request and a restart strands nobody (a stale
//! session id is simply ignored). The gate (`gate`) runs before anything else and answers
//! 401 with `WWW-Authenticate` to a request without a valid bearer token; then [`jsonrpc`]
//! answers a malformed body with the right JSON-RPC error; rmcp then checks `Host` and
//! `Origin` against the public URL. Tool handlers receive the [`ToolCaller`].

pub mod approvals;
pub mod attachments;
pub mod books;
mod gate;
mod handler;
pub mod intuit;
pub mod intuit_calls;
pub mod jsonrpc;
mod results;
pub mod schemas;
pub mod tools;
pub mod trail;

use std::sync::Arc;

use axum::Router;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::people::Person;
use crate::state::AppState;

pub use handler::McpHandler;

/// Who is calling a tool: the person, and the assistant acting for them. The gate puts it in
/// the request's extensions; `McpHandler` hands it to every tool.
#[derive(Debug, Clone)]
pub struct ToolCaller {
    pub person: Person,
    pub assistant: Assistant,
}

/// The assistant (client) a request comes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assistant {
    /// An OAuth client, through one of its grants.
    OAuthClient {
        grant_id: i64,
        client_id: String,
        client_name: String,
    },
    /// A personal access token, by id.
    PersonalToken { id: i64 },
}

impl Assistant {
    /// A short label for logs and the audit log.
    pub fn label(&self) -> String {
        match self {
            Assistant::OAuthClient { client_name, .. } => client_name.clone(),
            Assistant::PersonalToken { id } => format!("personal access token #{id}"),
        }
    }
}

/// The rmcp service for `/mcp`, without authentication. The product mounts it only behind the
/// gate ([`routes`]); tests mount it bare to run the conformance suite.
pub fn service(state: &AppState) -> StreamableHttpService<McpHandler, NeverSessionManager> {
    let public = &state.public_url;
    let host = public.host_str().unwrap_or("localhost").to_owned();
    let origin = format!(
        "{}://{}:{}",
        public.scheme(),
        host,
        public.port_or_known_default().unwrap_or(443)
    );
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts([host])
        .with_allowed_origins([origin])
        .with_max_request_body_bytes(
            state
                .config
                .mcp_body_limit_bytes
                .max(state.config.body_limit_bytes),
        );
    let handler_state = state.clone();
    StreamableHttpService::new(
        move || Ok(McpHandler::new(handler_state.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// `/mcp` behind the gate, then the JSON-RPC shape check.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route_service("/mcp", service(state))
        // Inner layer: runs after the gate, so anonymous callers learn nothing from it.
        .route_layer(axum::middleware::from_fn(jsonrpc::check))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::require_bearer,
        ))
}
