//! Discovery documents: protected-resource metadata (RFC 9728) at the root and at the
//! path-inserted location for `/mcp`, and authorization-server metadata (RFC 8414) under both
//! `oauth-authorization-server` and `openid-configuration`, with one issuer. Everything is
//! derived from the public URL, so what clients see matches what they must send back.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{SCOPE, issuer, mcp_resource};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server),
        )
        .route(
            "/.well-known/oauth-authorization-server/mcp",
            get(authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(authorization_server),
        )
        .route(
            "/.well-known/openid-configuration/mcp",
            get(authorization_server),
        )
}

/// RFC 9728: which authorization server protects `/mcp`.
async fn protected_resource(State(state): State<AppState>) -> Response {
    let iss = issuer(&state.public_url);
    cacheable(json!({
        "resource": mcp_resource(&state.public_url),
        "authorization_servers": [iss],
        "scopes_supported": [SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": "qbo-mcp (QuickBooks Online)",
        "resource_documentation": format!("{iss}/"),
    }))
}

/// RFC 8414 (also served as the OpenID configuration: some clients only look there).
async fn authorization_server(State(state): State<AppState>) -> Response {
    cacheable(authorization_server_metadata(&issuer(&state.public_url)))
}

pub fn authorization_server_metadata(iss: &str) -> Value {
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "registration_endpoint": format!("{iss}/oauth/register"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "scopes_supported": [SCOPE],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
        "service_documentation": format!("{iss}/"),
    })
}

fn cacheable(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
