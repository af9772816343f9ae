//! The authorization server for MCP clients (docs/oauth.md): metadata, client registration (dynamic,
//! or by Client ID Metadata Document), authorization with PKCE, the token and revocation
//! endpoints, and the check that turns a bearer token into a grant.
//!
//! It issues tokens only for this server's own MCP resource and never involves Intuit. It
//! stores no token in clear: codes, access and refresh tokens are kept as SHA-256 hashes.

mod assistants;
mod authorize;
mod cimd;
mod clients;
mod error;
mod grants;
mod metadata;
mod resource;
mod token;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Method, header};
use tower_http::cors::{Any, CorsLayer};
use url::Url;

use crate::state::AppState;

pub use error::OAuthError;
pub use grants::{
    AccessGrant, GrantSummary, list_grants, revoke_grant_of, revoke_grants_of_person,
    verify_access_token,
};

/// Prefixes make a leaked token recognisable (secret scanners, logs) and tell the kinds apart.
pub const ACCESS_TOKEN_PREFIX: &str = "qbo_at_";
pub const REFRESH_TOKEN_PREFIX: &str = "qbo_rt_";
pub const CODE_PREFIX: &str = "qbo_ac_";

/// The one scope: what an assistant may do follows its person's role, not the scope.
pub const SCOPE: &str = "mcp";

/// Access tokens: long enough that clients which never refresh (claude.ai often does not)
/// last a working day; revocation and deactivation still act on the very next request,
/// because every request checks the grant and the person in the database.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);
/// Refresh tokens: each rotation starts a new period.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// Authorization codes: one round trip of the client's callback.
pub const CODE_TTL: Duration = Duration::from_secs(300);
/// A dynamically registered client that never obtained a grant is deleted after this.
pub const UNUSED_REGISTRATION_TTL: Duration = Duration::from_secs(24 * 3600);
/// A Client ID Metadata Document is fetched again after this.
pub const CIMD_CACHE_TTL: Duration = Duration::from_secs(3600);
/// Dynamic registrations allowed per client address per hour (across every replica).
pub const REGISTRATIONS_PER_HOUR: i64 = 30;

/// The issuer: the public URL without a trailing slash.
pub fn issuer(public_url: &Url) -> String {
    public_url.as_str().trim_end_matches('/').to_owned()
}

/// The MCP endpoint, the only resource tokens are ever issued for.
pub fn mcp_resource(public_url: &Url) -> String {
    format!("{}/mcp", issuer(public_url))
}

/// The protected-resource metadata URL named in a 401 from `/mcp` (the path-inserted form).
pub fn resource_metadata_url(public_url: &Url) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        issuer(public_url)
    )
}

/// The routes of the authorization server. Metadata, registration, token and revocation are
/// called from browsers by web-based clients, so they answer CORS (preflight needs no token).
pub fn routes() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .max_age(Duration::from_secs(86400));
    let cross_origin = Router::new()
        .merge(metadata::routes())
        .merge(clients::routes())
        .merge(token::routes())
        .layer(cors);
    Router::new()
        .merge(cross_origin)
        .merge(authorize::routes())
        .merge(assistants::routes())
}

/// The JSON API of this feature (the assistants a person authorized), with its OpenAPI
/// description.
pub fn api_routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    assistants::api_routes()
}

/// The authorization server's pure parsers and checks, named here for the fuzz targets
/// (`fuzz/`) and property tests; the handlers call them where they live.
pub mod checks {
    pub use super::authorize::AuthorizeParams;
    pub use super::cimd::{address_allowed, looks_like_document_url, parse_client_id_url};
    pub use super::clients::{
        check_redirect_uri, check_registration, client_from_document, redirect_matches,
    };
    pub use super::resource::check as check_resource;
    pub use super::token::{TokenRequest, basic_client_id};
}
