//! Intuit's OAuth 2.0 / OpenID Connect service at Intuit's own paths, all on the simulator's
//! base URL: discovery, the authorize endpoint with its consent page, the token endpoint
//! (HTTP Basic or form client auth, as the discovery document advertises; Intuit's error
//! bodies), revocation, userinfo and JWKS.
//! Any client id and secret are accepted; each client id is its own Intuit app.

pub mod consent;
pub mod grants;
pub mod id_token;

use crate::simulator::SimState;
use crate::stats::Counter;
use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::TypedHeader;
use axum_extra::headers::Authorization;
use axum_extra::headers::authorization::Basic;
use grants::{GrantError, Issued, Principal};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Scopes Intuit knows.
const KNOWN_SCOPES: &[&str] = &[
    "com.intuit.quickbooks.accounting",
    "com.intuit.quickbooks.payment",
    "openid",
    "profile",
    "email",
    "phone",
    "address",
];

/// The issuer path, as at Intuit (`https://oauth.platform.intuit.com/op/v1`).
pub const ISSUER_PATH: &str = "/op/v1";

/// The OAuth and OpenID routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/.well-known/openid_configuration", get(discovery))
        .route("/.well-known/openid_configuration/", get(discovery))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/op/v1/.well-known/openid-configuration", get(discovery))
        .route("/connect/oauth2", get(consent::show).post(consent::decide))
        .route("/oauth2/v1/tokens/bearer", post(token))
        .route("/v2/oauth2/tokens/revoke", post(revoke))
        .route("/v1/openid_connect/userinfo", get(userinfo))
        .route("/op/v1/jwks", get(jwks))
}

/// The discovery document; every endpoint points back at this simulator.
pub fn discovery_document(base: &str) -> Value {
    json!({
        "issuer": format!("{base}{ISSUER_PATH}"),
        "authorization_endpoint": format!("{base}/connect/oauth2"),
        "token_endpoint": format!("{base}/oauth2/v1/tokens/bearer"),
        "userinfo_endpoint": format!("{base}/v1/openid_connect/userinfo"),
        "revocation_endpoint": format!("{base}/v2/oauth2/tokens/revoke"),
        "jwks_uri": format!("{base}/op/v1/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    })
}

async fn discovery(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Json<Value> {
    Json(discovery_document(&state.base_url(&headers)))
}

async fn jwks() -> Json<Value> {
    Json(id_token::jwks())
}

/// Splits requested scopes and checks each is one Intuit knows.
pub(crate) fn parse_scopes(scope: &str) -> Result<Vec<String>, String> {
    let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() {
        return Err("scope is required".into());
    }
    match scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        Some(unknown) => Err(format!("unknown scope {unknown}")),
        None => Ok(scopes),
    }
}

/// The app calling the token or revocation endpoint: the client id from
/// `Authorization: Basic …` (any secret is accepted, but both parts must be there). Without
/// it Intuit answers 401 `invalid_client`, before looking at the request body.
struct BasicClient(String);

impl<S: Send + Sync> FromRequestParts<S> for BasicClient {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let invalid_client = || oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", None);
        let TypedHeader(Authorization(basic)) =
            TypedHeader::<Authorization<Basic>>::from_request_parts(parts, state)
                .await
                .map_err(|_| invalid_client())?;
        if basic.username().is_empty() || basic.password().is_empty() {
            return Err(invalid_client());
        }
        Ok(Self(basic.username().to_owned()))
    }
}

fn oauth_error(status: StatusCode, error: &str, description: Option<&str>) -> Response {
    let body = match description {
        Some(description) => json!({"error": error, "error_description": description}),
        None => json!({"error": error}),
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn invalid_grant(state: &SimState, realm: Option<&str>, why: &str) -> Response {
    state.stats.count(Counter::InvalidGrant, realm);
    tracing::info!(why, "token endpoint answers invalid_grant");
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        Some("Incorrect or invalid refresh token"),
    )
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    refresh_token: Option<String>,
    /// `client_secret_post` (the discovery document advertises it beside Basic).
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The header asking the token endpoint for `x_refresh_token_hard_expires_in`.
const HARD_EXPIRY_HEADER: &str = "x-include-refresh-token-hard-expires-in";

async fn token(
    State(state): State<Arc<SimState>>,
    basic: Result<BasicClient, Response>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    // HTTP Basic first; without it, the form's client_id and client_secret.
    let client_id = match (basic, &form.client_id, &form.client_secret) {
        (Ok(BasicClient(id)), _, _) => id,
        (Err(_), Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => id.clone(),
        (Err(refused), _, _) => return refused,
    };
    let config = state.config();
    let now = state.clock.now();
    // The company a presented code or token belongs to, when it is known (even if spent).
    let presented = form
        .code
        .as_deref()
        .or(form.refresh_token.as_deref())
        .unwrap_or_default();
    let realm = state.grants.read().realm_of(presented);
    let realm = realm.as_deref();
    let issued: Result<Issued, GrantError> = match form.grant_type.as_deref() {
        Some("authorization_code") => {
            let (Some(code), Some(redirect_uri)) =
                (form.code.as_deref(), form.redirect_uri.as_deref())
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    Some("code and redirect_uri are required"),
                );
            };
            state.stats.count(Counter::CodeExchanges, realm);
            if config.force_invalid_grant {
                return invalid_grant(&state, realm, "forced by configuration");
            }
            state
                .grants
                .write()
                .exchange_code(&client_id, code, redirect_uri, &config, now)
        }
        Some("refresh_token") => {
            let Some(refresh) = form.refresh_token.as_deref() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    Some("refresh_token is required"),
                );
            };
            state.stats.count(Counter::RefreshRequests, realm);
            if config.force_invalid_grant {
                return invalid_grant(&state, realm, "forced by configuration");
            }
            state
                .grants
                .write()
                .refresh(&client_id, refresh, &config, now)
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", None),
    };
    let issued = match issued {
        Ok(issued) => issued,
        Err(GrantError::InvalidGrant(why)) => return invalid_grant(&state, realm, why),
    };
    let exchange = form.grant_type.as_deref() == Some("authorization_code");
    if issued.rotated {
        state
            .stats
            .count(Counter::RefreshRotations, Some(&issued.principal.realm_id));
    }
    let mut body = json!({
        "token_type": "bearer",
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "expires_in": issued.expires_in,
        "x_refresh_token_expires_in": issued.refresh_expires_in,
    });
    if headers
        .get(HARD_EXPIRY_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        body["x_refresh_token_hard_expires_in"] = json!(issued.refresh_hard_expires_in);
    }
    if exchange && issued.principal.scopes.iter().any(|s| s == "openid") {
        match id_token_for(&state, &headers, &issued.principal) {
            Ok(token) => body["id_token"] = Value::String(token),
            Err(error) => tracing::error!(%error, "cannot sign id_token"),
        }
    }
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn id_token_for(
    state: &SimState,
    headers: &HeaderMap,
    principal: &Principal,
) -> anyhow::Result<String> {
    let now = state.clock.now().timestamp();
    let sub = state
        .company(&principal.realm_id)
        .and_then(|c| c.user(&principal.email))
        .map(|u| u.sub.clone())
        .unwrap_or_default();
    let claims = json!({
        "sub": sub,
        "aud": [principal.client_id],
        "realmid": principal.realm_id,
        "auth_time": now,
        "iss": format!("{}{ISSUER_PATH}", state.base_url(headers)),
        "exp": now + 3600,
        "iat": now,
    });
    state.signer.sign(&claims)
}

async fn revoke(
    State(state): State<Arc<SimState>>,
    BasicClient(client_id): BasicClient,
    body: axum::body::Bytes,
) -> Response {
    let token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            serde_json::from_slice::<HashMap<String, String>>(&body)
                .ok()
                .and_then(|m| m.get("token").cloned())
        })
        .or_else(|| {
            url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        });
    let Some(token) = token else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("token is required"),
        );
    };
    let revoked = state.grants.write().revoke(&client_id, &token);
    state.stats.count(
        Counter::Revocations,
        revoked.as_ref().map(|p| p.realm_id.as_str()),
    );
    // Intuit answers an unknown, spent or foreign token with a bare 400.
    if revoked.is_some() {
        StatusCode::OK.into_response()
    } else {
        StatusCode::BAD_REQUEST.into_response()
    }
}

async fn userinfo(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    _query: Query<HashMap<String, String>>,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let now = state.clock.now();
    let grants = state.grants.read();
    let Some(token) = bearer.and_then(|t| grants.access(t, now).ok()) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            Some("The access token is missing, expired or revoked"),
        );
    };
    if !token.principal.scopes.iter().any(|s| s == "openid") {
        return oauth_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            Some("The openid scope was not granted"),
        );
    }
    let Some(user) = state
        .company(&token.principal.realm_id)
        .and_then(|c| c.user(&token.principal.email))
    else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", None);
    };
    let mut body = json!({"sub": user.sub});
    let scopes = &token.principal.scopes;
    if scopes.iter().any(|s| s == "email") {
        body["email"] = json!(user.email);
        body["emailVerified"] = json!(true);
    }
    if scopes.iter().any(|s| s == "profile") {
        body["givenName"] = json!(user.given_name);
        body["familyName"] = json!(user.family_name);
    }
    Json(body).into_response()
}
