//! Intuit's OAuth 2.0 service as seen from our side: where its endpoints are (production,
//! sandbox, or a `qbo-sim`), the authorize URL, code exchange, refresh, revoke and userinfo.
//! Tokens pass through here as `Secret`s and are never logged. Redirects are never followed:
//! an OAuth endpoint that redirects is misconfigured, not something to chase.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::config::{IntuitApp, IntuitEnvironment};
use crate::secret::Secret;

/// The scopes a company connection asks for.
pub const SCOPES: &str = "com.intuit.quickbooks.accounting openid email";

/// Where Intuit's services live for one environment.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    pub revoke: Url,
    pub userinfo: Url,
    /// Base of the Accounting API (`…/v3/company/{realm}/…` is appended).
    pub api_base: Url,
}

fn url(s: &str) -> Url {
    // Only called with the constant URLs below and paths joined to a validated base.
    Url::parse(s).unwrap_or_else(|e| panic!("constant URL {s} is valid: {e}"))
}

impl Endpoints {
    pub fn for_environment(env: &IntuitEnvironment) -> Endpoints {
        match env {
            IntuitEnvironment::Production => Endpoints {
                authorize: url("https://appcenter.intuit.com/connect/oauth2"),
                token: url("https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"),
                revoke: url("https://developer.api.intuit.com/v2/oauth2/tokens/revoke"),
                userinfo: url("https://accounts.platform.intuit.com/v1/openid_connect/userinfo"),
                api_base: url("https://quickbooks.api.intuit.com"),
            },
            IntuitEnvironment::Sandbox => Endpoints {
                authorize: url("https://appcenter.intuit.com/connect/oauth2"),
                token: url("https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"),
                revoke: url("https://developer.api.intuit.com/v2/oauth2/tokens/revoke"),
                userinfo: url(
                    "https://sandbox-accounts.platform.intuit.com/v1/openid_connect/userinfo",
                ),
                api_base: url("https://sandbox-quickbooks.api.intuit.com"),
            },
            // The simulator serves every endpoint at Intuit's own paths under one base URL.
            IntuitEnvironment::Simulator(base) => {
                let base = base.as_str().trim_end_matches('/');
                Endpoints {
                    authorize: url(&format!("{base}/connect/oauth2")),
                    token: url(&format!("{base}/oauth2/v1/tokens/bearer")),
                    revoke: url(&format!("{base}/v2/oauth2/tokens/revoke")),
                    userinfo: url(&format!("{base}/v1/openid_connect/userinfo")),
                    api_base: url(base),
                }
            }
        }
    }
}

/// Tokens from Intuit's token endpoint.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: Secret<String>,
    pub refresh_token: Secret<String>,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// Seconds the refresh token lives.
    pub refresh_expires_in: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
    expires_in: Option<i64>,
    x_refresh_token_expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct IntuitTokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Who authorized the connection, from userinfo.
#[derive(Debug, Clone, Deserialize)]
pub struct IntuitUser {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// What can go wrong talking to Intuit's OAuth service.
#[derive(Debug, thiserror::Error)]
pub enum IntuitTokenError {
    /// The refresh token or code is dead: the connection needs an admin to reconnect.
    #[error("Intuit refused the grant (invalid_grant): {0}")]
    InvalidGrant(String),
    /// Any other OAuth error answer (bad client, bad request).
    #[error("Intuit answered {status} {error}: {description}")]
    Refused {
        status: u16,
        error: String,
        description: String,
    },
    /// Intuit is unreachable, timed out or answered 5xx: try again later.
    #[error("Intuit is not answering: {0}")]
    Unavailable(String),
}

/// A client for Intuit's OAuth endpoints, for one app.
#[derive(Debug, Clone)]
pub struct IntuitOAuth {
    http: reqwest::Client,
    app: IntuitApp,
    pub endpoints: Endpoints,
}

impl IntuitOAuth {
    pub fn new(app: IntuitApp, endpoints: Endpoints) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("qbo-mcp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            app,
            endpoints,
        })
    }

    pub fn client_id(&self) -> &str {
        &self.app.client_id
    }

    /// Where to send an admin to authorize the app.
    pub fn authorize_url(&self, state: &str, redirect_uri: &str) -> Url {
        let mut u = self.endpoints.authorize.clone();
        u.query_pairs_mut()
            .append_pair("client_id", &self.app.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPES)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        u
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, IntuitTokenError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ])
        .await
    }

    pub async fn refresh(
        &self,
        refresh_token: &Secret<String>,
    ) -> Result<TokenSet, IntuitTokenError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ])
        .await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenSet, IntuitTokenError> {
        let response = self
            .http
            .post(self.endpoints.token.clone())
            .basic_auth(&self.app.client_id, Some(self.app.client_secret.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| IntuitTokenError::Unavailable(without_url(e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| IntuitTokenError::Unavailable(without_url(e)))?;
        if status.is_success() {
            let t: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
                IntuitTokenError::Unavailable("the token answer was not the expected JSON".into())
            })?;
            return Ok(TokenSet {
                access_token: Secret::new(t.access_token),
                refresh_token: Secret::new(t.refresh_token),
                expires_in: t.expires_in.unwrap_or(3600),
                refresh_expires_in: t.x_refresh_token_expires_in.unwrap_or(100 * 24 * 3600),
            });
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(IntuitTokenError::Unavailable(format!(
                "HTTP {}",
                status.as_u16()
            )));
        }
        match serde_json::from_slice::<IntuitTokenErrorBody>(&body) {
            Ok(e) if e.error == "invalid_grant" => Err(IntuitTokenError::InvalidGrant(
                e.error_description.unwrap_or_default(),
            )),
            Ok(e) => Err(IntuitTokenError::Refused {
                status: status.as_u16(),
                error: e.error,
                description: e.error_description.unwrap_or_default(),
            }),
            Err(_) => Err(IntuitTokenError::Refused {
                status: status.as_u16(),
                error: "unexpected_answer".into(),
                description: "the error answer was not OAuth JSON".into(),
            }),
        }
    }

    /// Revokes a token (and with it the connection) at Intuit.
    pub async fn revoke(&self, token: &Secret<String>) -> Result<(), IntuitTokenError> {
        let response = self
            .http
            .post(self.endpoints.revoke.clone())
            .basic_auth(&self.app.client_id, Some(self.app.client_secret.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&serde_json::json!({ "token": token.expose() }))
            .send()
            .await
            .map_err(|e| IntuitTokenError::Unavailable(without_url(e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() {
            Err(IntuitTokenError::Unavailable(format!(
                "HTTP {}",
                status.as_u16()
            )))
        } else {
            Err(IntuitTokenError::Refused {
                status: status.as_u16(),
                error: "revoke_failed".into(),
                description: String::new(),
            })
        }
    }

    /// The Intuit user an access token belongs to.
    pub async fn userinfo(
        &self,
        access_token: &Secret<String>,
    ) -> Result<IntuitUser, IntuitTokenError> {
        let response = self
            .http
            .get(self.endpoints.userinfo.clone())
            .bearer_auth(access_token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| IntuitTokenError::Unavailable(without_url(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(IntuitTokenError::Refused {
                status: status.as_u16(),
                error: "userinfo_failed".into(),
                description: String::new(),
            });
        }
        response
            .json()
            .await
            .map_err(|_| IntuitTokenError::Unavailable("userinfo answer was not JSON".into()))
    }
}

/// A transport error's text without the URL (which may carry a code or token).
pub fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut short"
    } else {
        "request failed"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_endpoints_follow_intuit_paths() {
        let e = Endpoints::for_environment(&IntuitEnvironment::Simulator(
            Url::parse("http://127.0.0.1:9000/").unwrap(),
        ));
        assert_eq!(
            e.token.as_str(),
            "http://127.0.0.1:9000/oauth2/v1/tokens/bearer"
        );
        assert_eq!(e.api_base.as_str(), "http://127.0.0.1:9000/");
    }

    #[test]
    fn authorize_url_carries_scopes_and_state() {
        let oauth = IntuitOAuth::new(
            IntuitApp {
                client_id: "app".into(),
                client_secret: Secret::new("s".into()),
            },
            Endpoints::for_environment(&IntuitEnvironment::Sandbox),
        )
        .unwrap();
        let u = oauth.authorize_url("st4te", "https://qbo.example/quickbooks/callback");
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["scope"], SCOPES);
        assert_eq!(q["state"], "st4te");
        assert_eq!(q["response_type"], "code");
    }
}
