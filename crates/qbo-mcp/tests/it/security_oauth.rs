//! The authorization server against an outside attacker (issue 9): refresh-token replay and
//! the reuse window, the authorization endpoint as a redirector, silent approval of native
//! clients, and the fetch of Client ID Metadata Documents. Everything goes through the real
//! HTTP interface of a real server process.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, TestDb, TestServer};
use crate::oauth::{CHALLENGE, serve_metadata_document};
use crate::on_both_backends;
use crate::people::{Browser, csrf_field, first_admin};

on_both_backends!(
    a_thief_replaying_after_the_window_revokes_the_grant,
    a_replay_inside_the_window_revokes_the_grant_when_the_real_successor_is_used,
    concurrent_refreshes_inside_the_window_keep_the_client_signed_in,
    a_lost_response_is_retried_inside_the_window,
    authorization_errors_are_not_redirected_to_an_untrusted_client,
    loopback_clients_are_asked_every_time,
);

/// The verifier whose S256 challenge is `CHALLENGE`.
const VERIFIER: &str = "qbo-mcp-test-verifier-0123456789-abcdefghijk";
const WINDOW: &str = "QBO_MCP_REFRESH_REUSE_WINDOW_SECS";

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Registers a client by DCR with these redirect URIs.
async fn register(server: &TestServer, redirect_uris: &[&str]) -> String {
    let r = server
        .post("/oauth/register")
        .json(&json!({"client_name": "Security test assistant", "redirect_uris": redirect_uris}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let client: Value = r.json().await.unwrap();
    client["client_id"].as_str().unwrap().to_owned()
}

fn authorize_path(client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st-9"),
    ];
    for (k, v) in extra {
        q.retain(|(key, _)| key != k);
        q.push((k, v));
    }
    format!("/oauth/authorize?{}", query(&q))
}

/// What one authorization request led to for a signed-in person.
enum Outcome {
    /// The consent page (its HTML).
    Consent(String),
    /// A redirect to the client, with the query of its location.
    Redirect(HashMap<String, String>),
}

async fn authorize(b: &Browser, path: &str) -> Outcome {
    let r = b.get(path).await;
    match r.status() {
        StatusCode::OK => Outcome::Consent(r.text().await.unwrap()),
        StatusCode::FOUND => Outcome::Redirect(location_query(&r)),
        other => panic!("authorize answered {other}: {}", r.text().await.unwrap()),
    }
}

fn location_query(r: &reqwest::Response) -> HashMap<String, String> {
    let location = r.headers()["location"].to_str().unwrap();
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Answers the consent page with Allow; returns the code from the redirect.
async fn allow(b: &Browser, consent_page: &str, path: &str) -> String {
    let params: Vec<(String, String)> = url::Url::parse(&b.at(path))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let mut form: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let csrf = csrf_field(consent_page);
    form.push(("csrf_token", &csrf));
    form.push(("decision", "allow"));
    let r = b
        .client
        .post(b.at("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    location_query(&r)["code"].clone()
}

/// Tokens as the token endpoint answers them.
#[derive(Debug, Clone)]
struct Tokens {
    access: String,
    refresh: String,
}

async fn tokens_of(r: reqwest::Response) -> Tokens {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// A signed-in admin's first tokens for a loopback client.
async fn first_tokens(server: &TestServer) -> (String, Tokens) {
    let b = first_admin(server).await;
    let redirect = "http://127.0.0.1:40001/callback";
    let client_id = register(server, &["http://127.0.0.1/callback"]).await;
    let path = authorize_path(&client_id, redirect, &[]);
    let Outcome::Consent(page) = authorize(&b, &path).await else {
        panic!("a new client gets the consent page");
    };
    let code = allow(&b, &page, &path).await;
    let r = server
        .post("/oauth/token")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    (client_id, tokens_of(r).await)
}

async fn refresh(server: &TestServer, client_id: &str, refresh_token: &str) -> reqwest::Response {
    server
        .post("/oauth/token")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap()
}

/// Refreshes and expects `invalid_grant`.
async fn refused(server: &TestServer, client_id: &str, refresh_token: &str) {
    let r = refresh(server, client_id, refresh_token).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant", "{e}");
}

/// Whether `/mcp` accepts the access token.
async fn access_works(server: &TestServer, access_token: &str) -> bool {
    let r = server
        .post("/mcp")
        .bearer_auth(access_token)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "security-test", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    r.status() != StatusCode::UNAUTHORIZED
}

async fn a_thief_replaying_after_the_window_revokes_the_grant(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    // A window of 0: every superseded token is already past it.
    let server = TestServer::builder(&db).env(WINDOW, "0").start().await;
    let (client_id, first) = first_tokens(&server).await;
    let second = tokens_of(refresh(&server, &client_id, &first.refresh).await).await;
    assert!(access_works(&server, &second.access).await);

    // The thief replays R1, whose successor R2 was never used.
    refused(&server, &client_id, &first.refresh).await;
    // The whole grant is gone: R2 and every access token.
    refused(&server, &client_id, &second.refresh).await;
    assert!(!access_works(&server, &first.access).await);
    assert!(!access_works(&server, &second.access).await);
}

async fn a_replay_inside_the_window_revokes_the_grant_when_the_real_successor_is_used(
    backend: Backend,
) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::builder(&db).env(WINDOW, "3600").start().await;
    let (client_id, first) = first_tokens(&server).await;
    let real = tokens_of(refresh(&server, &client_id, &first.refresh).await).await;
    // Inside the window the replay is served: the server cannot tell it from a retry yet.
    let thief = tokens_of(refresh(&server, &client_id, &first.refresh).await).await;
    assert!(access_works(&server, &thief.access).await);

    // The real client uses its successor: the family has forked, the grant is revoked.
    refused(&server, &client_id, &real.refresh).await;
    refused(&server, &client_id, &thief.refresh).await;
    for access in [&first.access, &real.access, &thief.access] {
        assert!(!access_works(&server, access).await);
    }
}

async fn concurrent_refreshes_inside_the_window_keep_the_client_signed_in(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::builder(&db).env(WINDOW, "3600").start().await;
    let (client_id, first) = first_tokens(&server).await;
    // The same client refreshes twice at once with the same token; both succeed.
    let mut racing: futures::stream::FuturesUnordered<_> = (0..2)
        .map(|_| refresh(&server, &client_id, &first.refresh))
        .collect();
    let mut answers = Vec::new();
    while let Some(r) = racing.next().await {
        answers.push(tokens_of(r).await);
    }
    assert_eq!(answers.len(), 2);
    assert_ne!(answers[0].refresh, answers[1].refresh);
    // The client keeps the answer it received last (what a client storing each answer ends
    // up with); that successor keeps working, and so does its access token.
    let kept = answers.pop().unwrap();
    assert!(access_works(&server, &kept.access).await);
    let next = tokens_of(refresh(&server, &client_id, &kept.refresh).await).await;
    assert!(access_works(&server, &next.access).await);
    let after = tokens_of(refresh(&server, &client_id, &next.refresh).await).await;
    assert!(access_works(&server, &after.access).await);
}

async fn a_lost_response_is_retried_inside_the_window(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::builder(&db).env(WINDOW, "3600").start().await;
    let (client_id, first) = first_tokens(&server).await;
    // The answer with R2 never reached the client; it retries with R1 and gets R3.
    let _lost = tokens_of(refresh(&server, &client_id, &first.refresh).await).await;
    let retried = tokens_of(refresh(&server, &client_id, &first.refresh).await).await;
    let next = tokens_of(refresh(&server, &client_id, &retried.refresh).await).await;
    assert!(access_works(&server, &next.access).await);
    // R1 is past use now that its successor was used: presenting it is reuse.
    refused(&server, &client_id, &first.refresh).await;
    refused(&server, &client_id, &next.refresh).await;
    assert!(!access_works(&server, &next.access).await);
}

async fn authorization_errors_are_not_redirected_to_an_untrusted_client(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let evil = "https://evil.example/cb";
    let client_id = register(&server, &[evil]).await;
    let path = authorize_path(&client_id, evil, &[("response_type", "bogus")]);

    // Nobody signed in: an error page, never a bounce to the registered redirect.
    let r = server.get(&path).send().await.unwrap();
    assert!(
        !r.status().is_redirection(),
        "{:?}",
        r.headers().get("location")
    );
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("<html") && page.contains("response_type"),
        "{page}"
    );

    // Signed in but never consented to that client: still a page.
    let b = first_admin(&server).await;
    let r = b.get(&path).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // Once the person has consented to the client, its errors go back to it (RFC 6749).
    let good = authorize_path(&client_id, evil, &[]);
    let Outcome::Consent(page) = authorize(&b, &good).await else {
        panic!("a new client gets the consent page");
    };
    allow(&b, &page, &good).await;
    let Outcome::Redirect(q) = authorize(&b, &path).await else {
        panic!("a consented client is told about its errors");
    };
    assert_eq!(q["error"], "unsupported_response_type");
    assert_eq!(q["state"], "st-9");
}

async fn loopback_clients_are_asked_every_time(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let b = first_admin(&server).await;
    let client_id = register(&server, &["http://127.0.0.1/cb"]).await;
    let path = authorize_path(&client_id, "http://127.0.0.1:43210/cb", &[]);
    let Outcome::Consent(page) = authorize(&b, &path).await else {
        panic!("a new client gets the consent page");
    };
    allow(&b, &page, &path).await;
    // Any local program may use this client id on any port: ask again, issue nothing silently.
    let again = authorize_path(&client_id, "http://127.0.0.1:43211/cb", &[]);
    match authorize(&b, &again).await {
        Outcome::Consent(page) => assert!(page.contains("decision"), "{page}"),
        Outcome::Redirect(q) => panic!("a code was issued without asking: {q:?}"),
    }

    // A client whose redirect is an https URL is recognised by it: consent is remembered.
    let web = register(&server, &["https://assistant.example/cb"]).await;
    let path = authorize_path(&web, "https://assistant.example/cb", &[]);
    let Outcome::Consent(page) = authorize(&b, &path).await else {
        panic!("a new client gets the consent page");
    };
    allow(&b, &page, &path).await;
    let Outcome::Redirect(q) = authorize(&b, &path).await else {
        panic!("consent to an https client is remembered");
    };
    assert!(q.contains_key("code"), "{q:?}");
}

/// Serves Client ID Metadata Documents on 127.0.0.1: the document at any path names that path's
/// URL; `/redirect/...` answers a redirect and `/big/...` a document over the size limit.
async fn serve_documents() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let origin = base.clone();
    let app = Router::new()
        .route(
            "/redirect/{name}",
            get(|| async {
                (AxumStatus::FOUND, [("location", "/doc/elsewhere")], "moved").into_response()
            }),
        )
        .route(
            "/{kind}/{name}",
            get(
                move |axum::extract::Path((kind, name)): axum::extract::Path<(String, String)>| {
                    let origin = origin.clone();
                    async move {
                        let mut doc = json!({
                            "client_id": format!("{origin}/{kind}/{name}"),
                            "client_name": "Document assistant",
                            "redirect_uris": ["http://127.0.0.1/callback"],
                            "token_endpoint_auth_method": "none",
                        });
                        if kind == "big" {
                            doc["padding"] = json!("x".repeat(100 * 1024));
                        }
                        axum::Json(doc)
                    }
                },
            ),
        );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    base
}

fn document_authorize(document: &str) -> String {
    authorize_path(document, "http://127.0.0.1:5555/callback", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_documents_ignore_proxies_redirects_and_oversize() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let document = serve_metadata_document(&["http://127.0.0.1/callback"]).await;
    let base = serve_documents().await;
    // A proxy in the environment would carry the fetch past the address check: it is not used
    // (this one does not exist, so using it would fail the fetch).
    let mut builder = TestServer::builder(&db).env("QBO_MCP_TEST_ALLOW_LOOPBACK_CIMD", "1");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        builder = builder.env(var, "http://127.0.0.1:9");
    }
    let server = builder.start().await;
    let r = server
        .get(&document_authorize(&document))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );

    // Redirects are not followed; documents over the limit are refused.
    for (path, needle) in [("/redirect/a.json", "302"), ("/big/a.json", "larger")] {
        let r = server
            .get(&document_authorize(&format!("{base}{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let page = r.text().await.unwrap();
        assert!(page.contains(needle), "{path}: {page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_metadata_document_fetches_are_rate_limited() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let base = serve_documents().await;
    let server = TestServer::builder(&db)
        .env("QBO_MCP_TEST_ALLOW_LOOPBACK_CIMD", "1")
        .start()
        .await;
    // Every request names a new document, so each would be a fetch; soon they are refused.
    let mut last = StatusCode::OK;
    for i in 0..100 {
        let r = server
            .get(&document_authorize(&format!("{base}/doc/{i}.json")))
            .send()
            .await
            .unwrap();
        last = r.status();
        if last == StatusCode::TOO_MANY_REQUESTS {
            let page = r.text().await.unwrap();
            assert!(page.contains("<html"), "{page}");
            break;
        }
        assert_eq!(
            last,
            StatusCode::SEE_OTHER,
            "{i}: {}",
            r.text().await.unwrap()
        );
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    // A document already fetched is served from the cache, not refused.
    let r = server
        .get(&document_authorize(&format!("{base}/doc/0.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
