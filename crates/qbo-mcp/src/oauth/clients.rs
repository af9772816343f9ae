//! OAuth clients: the assistants' applications. A client is known either by dynamic
//! registration (RFC 7591: we hand out a random `client_id`) or by its Client ID Metadata
//! Document (the `client_id` is an HTTPS URL we fetch, see `cimd`, and cache here). Either way
//! the row holds the redirect URIs an authorization may use and the name the consent page shows.
//!
//! Redirect URIs match exactly, except that loopback redirects match whatever the port
//! (RFC 8252 §7.3): native clients such as Claude Code register `http://127.0.0.1/callback`
//! and listen on an ephemeral port.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use url::Url;

use super::{
    CIMD_CACHE_TTL, OAuthError, REGISTRATIONS_PER_HOUR, SCOPE, UNUSED_REGISTRATION_TTL, cimd,
};
use crate::db::Db;
use crate::on_db;
use crate::state::AppState;
use crate::time::now;

/// How a client became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Dynamic client registration.
    Registered,
    /// A Client ID Metadata Document (the client_id is its URL).
    MetadataDocument,
}

impl ClientKind {
    fn as_str(self) -> &'static str {
        match self {
            ClientKind::Registered => "dcr",
            ClientKind::MetadataDocument => "cimd",
        }
    }
}

/// A client, as the authorization endpoint needs it.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub kind: ClientKind,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
}

impl Client {
    /// Whether `presented` may receive this client's codes.
    pub fn redirect_allowed(&self, presented: &str) -> bool {
        redirect_matches(&self.redirect_uris, presented)
    }

    /// Whether `redirect_uri` is on the host that published this client's metadata document:
    /// whoever controls the redirect controls the client's identity, so it is the client.
    pub fn redirect_on_own_host(&self, redirect_uri: &str) -> bool {
        if self.kind != ClientKind::MetadataDocument {
            return false;
        }
        match (Url::parse(&self.client_id), Url::parse(redirect_uri)) {
            (Ok(id), Ok(redirect)) => id.host().is_some() && id.host() == redirect.host(),
            _ => false,
        }
    }

    /// Whether codes sent to `redirect_uri` can only reach this client (RFC 8252 §8.6): an
    /// `https` redirect, or one on its metadata document's host. Any local program can listen
    /// on a loopback port or claim a private-use scheme, so for those the person is asked
    /// every time rather than a remembered consent being reused.
    pub fn identity_assured(&self, redirect_uri: &str) -> bool {
        self.redirect_on_own_host(redirect_uri)
            || Url::parse(redirect_uri).is_ok_and(|u| u.scheme() == "https")
    }
}

/// Who makes us look a client up: someone not signed in may only cause a limited number of
/// metadata-document fetches (per address); a signed-in person is not limited.
#[derive(Debug, Clone, Copy)]
pub enum Requester {
    Anonymous(IpAddr),
    SignedIn,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/oauth/register", post(register))
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    kind: String,
    client_name: String,
    redirect_uris: String,
    fetched_at: i64,
}

impl ClientRow {
    fn into_client(self) -> Client {
        Client {
            kind: if self.kind == "cimd" {
                ClientKind::MetadataDocument
            } else {
                ClientKind::Registered
            },
            redirect_uris: serde_json::from_str(&self.redirect_uris).unwrap_or_default(),
            client_id: self.client_id,
            client_name: self.client_name,
        }
    }
}

async fn load(db: &Db, client_id: &str) -> Result<Option<ClientRow>, sqlx::Error> {
    on_db!(db, pool => {
        sqlx::query_as::<_, ClientRow>(
            "SELECT client_id, kind, client_name, redirect_uris, fetched_at FROM oauth_clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(pool)
        .await
    })
}

/// Finds a client by id: a registered one from the database, a metadata document from the
/// cache or, when stale or unknown, by fetching it. `Ok(None)`: no such client.
pub async fn find(
    state: &AppState,
    client_id: &str,
    requester: Requester,
) -> Result<Option<Client>, OAuthError> {
    let cached = load(&state.db, client_id).await?;
    if !cimd::looks_like_document_url(client_id) {
        return Ok(cached.map(ClientRow::into_client));
    }
    if let Some(row) = cached
        && row.fetched_at + CIMD_CACHE_TTL.as_secs() as i64 > now()
    {
        return Ok(Some(row.into_client()));
    }
    let allow_loopback = state.config.test_allow_loopback_cimd;
    let url = cimd::parse_client_id_url(client_id, allow_loopback)
        .map_err(|e| OAuthError::invalid_client(e.0))?;
    if let Requester::Anonymous(address) = requester
        && !cimd::anonymous_fetch_allowed(address)
    {
        tracing::warn!(%address, "too many client metadata document fetches before sign-in");
        return Err(OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "Too many new assistants were looked up from your address; sign in first, or try again later.",
        ));
    }
    let document = cimd::fetch(&url, allow_loopback)
        .await
        .map_err(|e| OAuthError::invalid_client(e.0))?;
    let client = client_from_document(client_id, &document)?;
    store(
        &state.db,
        &client,
        &document,
        None,
        ClientKind::MetadataDocument,
    )
    .await?;
    Ok(Some(client))
}

/// Validates a Client ID Metadata Document for `client_id`.
pub fn client_from_document(client_id: &str, doc: &Value) -> Result<Client, OAuthError> {
    let bad = |why: String| {
        OAuthError::invalid_client(format!(
            "The client metadata document at {client_id} {why}."
        ))
    };
    let obj = doc
        .as_object()
        .ok_or_else(|| bad("is not a JSON object".into()))?;
    if obj.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(bad("does not name itself as its client_id".into()));
    }
    if obj.contains_key("client_secret") || obj.contains_key("client_secret_expires_at") {
        return Err(bad(
            "contains a client secret; such a document describes a public client".into(),
        ));
    }
    if let Some(method) = obj
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        && method != "none"
    {
        return Err(bad(format!(
            "asks for token_endpoint_auth_method `{method}`; only `none` is supported"
        )));
    }
    let redirect_uris = redirect_uris(obj).map_err(|e| bad(e.description))?;
    Ok(Client {
        client_id: client_id.to_owned(),
        kind: ClientKind::MetadataDocument,
        client_name: client_name(obj, client_id),
        redirect_uris,
    })
}

fn client_name(obj: &Map<String, Value>, fallback: &str) -> String {
    obj.get("client_name")
        .and_then(Value::as_str)
        .map(|n| n.trim().chars().take(100).collect::<String>())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| fallback.to_owned())
}

/// The `redirect_uris` member, each checked.
fn redirect_uris(obj: &Map<String, Value>) -> Result<Vec<String>, OAuthError> {
    let list = obj
        .get("redirect_uris")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            OAuthError::invalid_redirect_uri("redirect_uris must be a non-empty list.")
        })?;
    if list.len() > 20 {
        return Err(OAuthError::invalid_redirect_uri(
            "At most 20 redirect URIs may be registered.",
        ));
    }
    list.iter()
        .map(|v| {
            let uri = v.as_str().ok_or_else(|| {
                OAuthError::invalid_redirect_uri("Every redirect URI must be a string.")
            })?;
            check_redirect_uri(uri).map_err(OAuthError::invalid_redirect_uri)?;
            Ok(uri.to_owned())
        })
        .collect()
}

/// A redirect URI a client may register: absolute, no fragment; `https`, `http` only to a
/// loopback host, or a private-use scheme of a native app (`cursor://…`). Never a scheme
/// that runs code or reads files in a browser.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|_| format!("`{uri}` is not an absolute URI."))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` must not contain a fragment."));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(format!(
            "`{uri}` uses plain http to a host other than loopback; use https."
        )),
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "ftp" | "ws" | "wss" => {
            Err(format!(
                "`{uri}` uses a scheme that cannot be a redirect URI."
            ))
        }
        _ => Ok(()),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Exact match, or for `http` loopback redirects the same URI on any port (RFC 8252 §7.3).
pub fn redirect_matches(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(p) = Url::parse(presented) else {
        return false;
    };
    if p.scheme() != "http" || !is_loopback_host(&p) || p.fragment().is_some() {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| Url::parse(r).ok())
        .any(|r| {
            r.scheme() == "http"
                && is_loopback_host(&r)
                && r.host() == p.host()
                && r.path() == p.path()
                && r.query() == p.query()
                && r.username() == p.username()
        })
}

async fn store(
    db: &Db,
    client: &Client,
    metadata: &Value,
    registered_from: Option<&str>,
    kind: ClientKind,
) -> Result<(), sqlx::Error> {
    let redirect_uris = serde_json::to_string(&client.redirect_uris).unwrap_or_default();
    let metadata = metadata.to_string();
    let at = now();
    on_db!(db, pool => {
        sqlx::query(
            "INSERT INTO oauth_clients (client_id, kind, client_name, redirect_uris, metadata, registered_from, created_at, fetched_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name,
                 redirect_uris = excluded.redirect_uris, metadata = excluded.metadata,
                 fetched_at = excluded.fetched_at",
        )
        .bind(&client.client_id)
        .bind(kind.as_str())
        .bind(&client.client_name)
        .bind(&redirect_uris)
        .bind(&metadata)
        .bind(registered_from)
        .bind(at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Deletes dynamic registrations that are older than a day and never led to a consent or a
/// grant (claude.ai may register anew on every connect).
async fn forget_unused_registrations(db: &Db) -> Result<u64, sqlx::Error> {
    let before = now() - UNUSED_REGISTRATION_TTL.as_secs() as i64;
    on_db!(db, pool => {
        sqlx::query(
            "DELETE FROM oauth_clients WHERE kind = 'dcr' AND created_at < $1
               AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.client_id)
               AND NOT EXISTS (SELECT 1 FROM oauth_consents c WHERE c.client_id = oauth_clients.client_id)",
        )
        .bind(before)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })
}

/// The address a request came from: the peer, or what a trusted proxy reports
/// (`crate::proxy`).
pub fn client_address(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    crate::proxy::client_address(&state.config, peer.ip(), headers)
}

/// Checks the metadata of a dynamic registration (RFC 7591): its redirect URIs, which it
/// answers, and that it asks only for the grant and response types offered here.
pub fn check_registration(obj: &Map<String, Value>) -> Result<Vec<String>, OAuthError> {
    let redirect_uris = redirect_uris(obj)?;
    if let Some(types) = obj.get("grant_types") {
        let ok = types.as_array().is_some_and(|l| {
            l.iter()
                .all(|g| matches!(g.as_str(), Some("authorization_code" | "refresh_token")))
        });
        if !ok {
            return Err(OAuthError::invalid_client_metadata(
                "grant_types may only contain authorization_code and refresh_token.",
            ));
        }
    }
    if let Some(types) = obj.get("response_types") {
        let ok = types
            .as_array()
            .is_some_and(|l| l.iter().all(|t| t.as_str() == Some("code")));
        if !ok {
            return Err(OAuthError::invalid_client_metadata(
                "response_types may only contain code.",
            ));
        }
    }
    Ok(redirect_uris)
}

/// RFC 7591 dynamic client registration. Public clients only: whatever authentication
/// method is asked for, the answer says `none` (RFC 7591 lets the server replace values).
async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, OAuthError> {
    let metadata: Value = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::invalid_client_metadata(format!("The registration is not a JSON object: {e}."))
    })?;
    let obj = metadata.as_object().ok_or_else(|| {
        OAuthError::invalid_client_metadata("The registration must be a JSON object.")
    })?;
    let redirect_uris = check_registration(obj)?;
    let address = client_address(&state, peer, &headers).to_string();
    let since = now() - 3600;
    let recent: i64 = on_db!(&state.db, pool => {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM oauth_clients WHERE registered_from = $1 AND created_at > $2",
        )
        .bind(&address)
        .bind(since)
        .fetch_one(pool)
        .await
    })?;
    if recent >= REGISTRATIONS_PER_HOUR {
        let mut err = OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "Too many client registrations from this address; try again within the hour.",
        );
        err.status = StatusCode::TOO_MANY_REQUESTS;
        return Err(err);
    }
    forget_unused_registrations(&state.db).await?;

    let client_id = format!("dcr_{}", uuid::Uuid::new_v4().simple());
    let client = Client {
        client_name: client_name(obj, "Unnamed assistant"),
        client_id,
        kind: ClientKind::Registered,
        redirect_uris,
    };
    let mut answer = obj.clone();
    answer.remove("client_secret");
    answer.insert("client_id".into(), json!(client.client_id));
    answer.insert("client_id_issued_at".into(), json!(now()));
    answer.insert("client_name".into(), json!(client.client_name));
    answer.insert("redirect_uris".into(), json!(client.redirect_uris));
    answer.insert(
        "grant_types".into(),
        json!(["authorization_code", "refresh_token"]),
    );
    answer.insert("response_types".into(), json!(["code"]));
    answer.insert("token_endpoint_auth_method".into(), json!("none"));
    answer.insert("scope".into(), json!(SCOPE));
    let answer = Value::Object(answer);
    store(
        &state.db,
        &client,
        &answer,
        Some(&address),
        ClientKind::Registered,
    )
    .await?;
    tracing::info!(client_id = %client.client_id, client_name = %client.client_name, "client registered");
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn loopback_redirects_match_any_port() {
        let r = reg(&["http://127.0.0.1/callback", "http://localhost/callback"]);
        assert!(redirect_matches(&r, "http://127.0.0.1:53124/callback"));
        assert!(redirect_matches(&r, "http://localhost:9/callback"));
        assert!(!redirect_matches(&r, "http://127.0.0.1:53124/other"));
        assert!(!redirect_matches(&r, "http://[::1]:53124/callback"));
        assert!(!redirect_matches(&r, "https://127.0.0.1:53124/callback"));
    }

    #[test]
    fn other_redirects_match_exactly() {
        let r = reg(&["https://claude.ai/api/mcp/auth_callback"]);
        assert!(redirect_matches(
            &r,
            "https://claude.ai/api/mcp/auth_callback"
        ));
        assert!(!redirect_matches(
            &r,
            "https://claude.ai/api/mcp/auth_callback/"
        ));
        assert!(!redirect_matches(
            &r,
            "https://claude.ai:444/api/mcp/auth_callback"
        ));
        assert!(!redirect_matches(
            &r,
            "https://claude.ai/api/mcp/auth_callback?x=1"
        ));
    }

    #[test]
    fn registrable_redirects() {
        assert!(check_redirect_uri("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1/callback").is_ok());
        assert!(check_redirect_uri("cursor://anysphere.cursor-retrieval/oauth/callback").is_ok());
        assert!(check_redirect_uri("http://example.com/cb").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("https://a.example/cb#x").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }
}
