//! The token endpoint (authorization code with PKCE, refresh with rotation and a reuse window,
//! see `grants`) and the revocation endpoint (RFC 7009). Clients are public: a `client_id`
//! identifies them, PKCE and the exact redirect URI protect the code; a secret sent anyway is
//! ignored.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use axum_extra::headers::authorization::Basic;
use axum_extra::headers::{Authorization, HeaderMapExt};
use serde::Deserialize;
use serde_json::json;

use super::grants::{self, CodeExchange, IssuedTokens};
use super::{OAuthError, resource};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
}

/// A token request's form fields, as sent.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    resource: Option<String>,
}

/// The client id from HTTP Basic authentication, if the client sent it that way (a missing or
/// malformed header counts as absent, so the body's `client_id` applies). RFC 6749 §2.3.1
/// form-encodes the id before base64, so it is decoded once more here.
pub fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let Authorization(basic) = headers.typed_get::<Authorization<Basic>>()?;
    let id = url::form_urlencoded::parse(format!("x={}", basic.username()).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    (!id.is_empty()).then_some(id)
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OAuthError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required.")))
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(req) = form.map_err(|e| {
        OAuthError::invalid_request(format!(
            "The token request must be application/x-www-form-urlencoded: {e}."
        ))
    })?;
    let basic = basic_client_id(&headers);
    if let (Some(a), Some(b)) = (&basic, &req.client_id)
        && a != b
    {
        return Err(OAuthError::invalid_request(
            "client_id in the body differs from the one in the Authorization header.",
        ));
    }
    let client_id = basic
        .or_else(|| req.client_id.clone())
        .filter(|c| !c.is_empty());
    let issued = match required(&req.grant_type, "grant_type")? {
        "authorization_code" => {
            let client_id = client_id
                .as_deref()
                .ok_or_else(|| OAuthError::invalid_request("`client_id` is required."))?;
            let resource = resource::check(req.resource.as_deref(), &state.public_url)?;
            grants::exchange_code(
                &state.db,
                &CodeExchange {
                    code: required(&req.code, "code")?,
                    client_id,
                    redirect_uri: required(&req.redirect_uri, "redirect_uri")?,
                    code_verifier: required(&req.code_verifier, "code_verifier")?,
                    resource: &resource,
                },
            )
            .await?
        }
        "refresh_token" => {
            resource::check(req.resource.as_deref(), &state.public_url)?;
            grants::refresh(
                &state.db,
                required(&req.refresh_token, "refresh_token")?,
                client_id.as_deref(),
                state.config.refresh_reuse_window_secs,
            )
            .await?
        }
        other => {
            return Err(OAuthError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "grant_type `{other}` is not supported; use authorization_code or refresh_token."
                ),
            ));
        }
    };
    // Tokens die with their person: a deactivated person (or a changed stamp) gets none.
    if crate::people::load_current(&state.db, issued.person_id, &issued.person_stamp)
        .await
        .map_err(|e| OAuthError::server_error(anyhow::Error::new(e)))?
        .is_none()
    {
        return Err(OAuthError::invalid_grant(
            "The person who authorized this client is no longer active.",
        ));
    }
    Ok(token_response(issued))
}

fn token_response(issued: IssuedTokens) -> Response {
    let mut response = Json(json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "refresh_token": issued.refresh_token,
        "scope": issued.scope,
    }))
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Debug, Deserialize)]
struct RevokeRequest {
    token: Option<String>,
    client_id: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// RFC 7009: 200 whether or not the token was known, so it reveals nothing.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<RevokeRequest>, axum::extract::rejection::FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(req) = form.map_err(|e| {
        OAuthError::invalid_request(format!(
            "The revocation request must be application/x-www-form-urlencoded: {e}."
        ))
    })?;
    let token = required(&req.token, "token")?;
    let client_id = basic_client_id(&headers).or(req.client_id);
    grants::revoke_token(&state.db, token, client_id.as_deref()).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], "").into_response())
}
