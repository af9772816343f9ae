//! The gate in front of `/mcp`: a request without a valid bearer token gets 401 with
//! `WWW-Authenticate: Bearer resource_metadata="…", scope="mcp"` before anything else looks at
//! it — that 401 is where every MCP client starts discovery. A valid token (OAuth access token
//! or personal access token) becomes a [`ToolCaller`] in the request's extensions. Browser
//! cookies are never accepted here: a page must not drive an assistant's endpoint.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Assistant, ToolCaller};
use crate::oauth;
use crate::people::tokens;
use crate::state::AppState;

pub async fn require_bearer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return challenge(&state, None);
    };
    match caller(&state, &token).await {
        Ok(Some(caller)) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(None) => challenge(
            &state,
            Some("The access token is unknown, expired or revoked, or its person was deactivated."),
        ),
        Err(e) => {
            tracing::error!(error = ?e, "cannot check a bearer token");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                axum::Json(json!({"error": {"code": "unavailable", "message": "The server cannot check credentials right now; please try again."}})),
            )
                .into_response()
        }
    }
}

/// The person and assistant behind a bearer token: one indexed query that checks the token
/// and its person (stamp and active flag) together, nothing cached.
async fn caller(state: &AppState, token: &str) -> anyhow::Result<Option<ToolCaller>> {
    if token.starts_with(oauth::ACCESS_TOKEN_PREFIX) {
        // A person who must change their password can do nothing else (docs/people.md, "Invariants").
        return Ok(oauth::verify_access_token(&state.db, token)
            .await?
            .filter(|grant| !grant.person.force_password_change)
            .map(|grant| ToolCaller {
                person: grant.person,
                assistant: Assistant::OAuthClient {
                    grant_id: grant.grant_id,
                    client_id: grant.client_id,
                    client_name: grant.client_name,
                },
            }));
    }
    Ok(tokens::find(&state.db, token)
        .await?
        .filter(|(_, person)| !person.force_password_change)
        .map(|(id, person)| ToolCaller {
            person,
            assistant: Assistant::PersonalToken { id },
        }))
}

/// 401 with the discovery pointer (RFC 9728 §5.1) and, for a bad token, `invalid_token`.
fn challenge(state: &AppState, problem: Option<&str>) -> Response {
    let metadata = oauth::resource_metadata_url(&state.public_url);
    let mut value = format!(
        "Bearer resource_metadata=\"{metadata}\", scope=\"{}\"",
        oauth::SCOPE
    );
    if let Some(problem) = problem {
        value.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{problem}\""
        ));
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": {
            "code": if problem.is_some() { "invalid_token" } else { "unauthorized" },
            "message": problem.unwrap_or("This endpoint needs an access token: connect your assistant through OAuth, or send `Authorization: Bearer <personal access token>`."),
        }})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    // The request's body was never read, so the connection cannot carry another request;
    // say so, or a client that pools connections may send its next request (discovery, the
    // retry with a token) on a connection the server is closing, and see it reset.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
