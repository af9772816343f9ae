//! The authorization server over HTTP: discovery, the 401 that starts it, registration (DCR
//! and Client ID Metadata Documents), the checks of the authorization and token endpoints,
//! revocation and CORS. The signed-in flow end to end is in `assistants` (real MCP clients).

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, TestDb, TestServer};
use crate::on_both_backends;

on_both_backends!(
    discovery_starts_with_a_401,
    dynamic_registration,
    token_endpoint_refuses_in_rfc_6749_shape,
    authorization_requests_are_checked
);

async fn discovery_starts_with_a_401(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;

    // Whatever the method or body, no credentials means 401 with the metadata pointer first.
    for request in [
        server
            .post("/mcp")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"})),
        server.get("/mcp"),
        server.post("/mcp").body("not json"),
        server.post("/mcp").bearer_auth("qbo_at_not-a-token"),
    ] {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        let expected = format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            server.url
        );
        assert!(challenge.contains(&expected), "{challenge}");
        assert!(challenge.contains("scope=\"mcp\""), "{challenge}");
        // The unread body ends the connection: the client must not pool it.
        assert_eq!(r.headers()["connection"], "close");
    }
    let r = server
        .post("/mcp")
        .bearer_auth("qbo_at_not-a-token")
        .send()
        .await
        .unwrap();
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // Protected-resource metadata at the path-inserted and the root location.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let prm: Value = server.get(path).send().await.unwrap().json().await.unwrap();
        assert_eq!(prm["resource"], format!("{}/mcp", server.url));
        assert_eq!(prm["authorization_servers"], json!([server.url]));
    }
    // Authorization-server metadata and the OpenID configuration: one issuer, S256 only.
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let r = server
            .get(path)
            .header("origin", "https://claude.ai")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let meta: Value = r.json().await.unwrap();
        assert_eq!(meta["issuer"], server.url);
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(meta["client_id_metadata_document_supported"], true);
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
        assert!(
            meta["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("none"))
        );
        assert_eq!(
            meta["token_endpoint"],
            format!("{}/oauth/token", server.url)
        );
    }
    // CORS preflight on the token and registration endpoints needs no token.
    for path in ["/oauth/token", "/oauth/register", "/oauth/revoke"] {
        let r = server
            .client
            .request(reqwest::Method::OPTIONS, server.at(path))
            .header("origin", "https://claude.ai")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
    }
}

async fn dynamic_registration(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let r = server
        .post("/oauth/register")
        .json(&json!({
            "client_name": "Claude Code",
            "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let client: Value = r.json().await.unwrap();
    assert!(client["client_id"].as_str().unwrap().starts_with("dcr_"));
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert!(client.get("client_secret").is_none());

    for (body, error) in [
        (json!({"client_name": "x"}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        let r = server
            .post("/oauth/register")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], error, "{body}");
        assert!(e["error_description"].is_string());
    }
    // Rate limited per address, across the database (so across replicas).
    let mut last = StatusCode::CREATED;
    for _ in 0..40 {
        last = server
            .post("/oauth/register")
            .json(&json!({"redirect_uris": ["https://a.example/cb"]}))
            .send()
            .await
            .unwrap()
            .status();
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

async fn token_endpoint_refuses_in_rfc_6749_shape(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let verifier = "v".repeat(43);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "invalid_request"),
        (vec![("grant_type", "password")], "unsupported_grant_type"),
        (
            vec![("grant_type", "authorization_code"), ("client_id", "c")],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", "c"),
                ("code", "qbo_ac_unknown"),
                ("redirect_uri", "http://127.0.0.1/cb"),
                ("code_verifier", &verifier),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", "c"),
                ("code", "qbo_ac_unknown"),
                ("redirect_uri", "http://127.0.0.1/cb"),
                ("code_verifier", &verifier),
                ("resource", "https://other.example/mcp"),
            ],
            "invalid_target",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "qbo_rt_unknown"),
            ],
            "invalid_grant",
        ),
    ];
    for (form, error) in cases {
        let r = server
            .post("/oauth/token")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], error, "{form:?}");
    }
    // JSON is not the token endpoint's format.
    let r = server
        .post("/oauth/token")
        .json(&json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Revocation answers 200 even for an unknown token (RFC 7009 §2.2), 400 without one.
    let r = server
        .post("/oauth/revoke")
        .form(&[("token", "qbo_rt_unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = server
        .post("/oauth/revoke")
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// Registers a client that calls back to `http://127.0.0.1/callback` on any port.
pub async fn register(server: &TestServer) -> String {
    let client: Value = server
        .post("/oauth/register")
        .json(&json!({"client_name": "Test assistant", "redirect_uris": ["http://127.0.0.1/callback"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    client["client_id"].as_str().unwrap().to_owned()
}

/// The S256 challenge of the verifier `qbo-mcp-test-verifier-0123456789-abcdefghijk`
/// (computed independently).
pub const CHALLENGE: &str = "NcN4imzGSsHZXNidEMLIM1NIIJeMqUX24HP8z8USUVI";

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn authorization_requests_are_checked(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let client_id = register(&server).await;
    let redirect = "http://127.0.0.1:49152/callback";
    let good = vec![
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", redirect),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st-1"),
    ];
    let with = |change: &[(&'static str, Option<&'static str>)]| {
        let mut q: Vec<(&str, &str)> = good.clone();
        for (k, v) in change {
            q.retain(|(key, _)| key != k);
            if let Some(v) = v {
                q.push((k, v));
            }
        }
        format!("/oauth/authorize?{}", query(&q))
    };

    // A good request from someone not signed in goes to sign-in and will come back here.
    let path = with(&[]);
    let r = server.get(&path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let expected: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    assert_eq!(location, format!("/login?next={expected}"));
    // A trailing slash or no resource at all is this server; another server's is not.
    for resource in [
        format!("{}/mcp/", server.url),
        format!("{}/mcp", server.url),
        server.url.clone(),
    ] {
        let mut q = good.clone();
        q.push(("resource", &resource));
        let r = server
            .get(&format!("/oauth/authorize?{}", query(&q)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{resource}");
    }

    // Errors the client could be told about are shown on a page while its redirect is not
    // trusted (nobody signed in here has consented to it); security_oauth covers the trusted
    // case, where they go back to the redirect URI with state and iss.
    for (change, error) in [
        (vec![("code_challenge", None)], "invalid_request"),
        (
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (vec![("code_challenge_method", None)], "invalid_request"),
        (
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (
            vec![("resource", Some("https://other.example/mcp"))],
            "invalid_target",
        ),
    ] {
        let r = server.get(&with(&change)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{change:?} ({error})");
        assert!(r.headers().get("location").is_none(), "{change:?}");
    }

    // Errors about the client or its redirect URI are shown, never redirected.
    for change in [
        vec![("client_id", Some("dcr_unknown"))],
        vec![("client_id", None)],
        vec![("redirect_uri", Some("http://127.0.0.1:49152/elsewhere"))],
        vec![("redirect_uri", Some("https://evil.example/callback"))],
    ] {
        let r = server.get(&with(&change)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{change:?}");
        assert!(r.headers().get("location").is_none());
        let page = r.text().await.unwrap();
        assert!(page.contains("<html"), "{page}");
    }
}

/// Serves a Client ID Metadata Document on 127.0.0.1 and returns its URL.
pub async fn serve_metadata_document(redirect_uris: &[&str]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/oauth/client-metadata.json");
    let doc = json!({
        "client_id": url,
        "client_name": "Metadata Document Assistant",
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    let app = Router::new().route(
        "/oauth/client-metadata.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc) }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_documents_are_fetched_only_where_allowed() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let document = serve_metadata_document(&["http://127.0.0.1/callback"]).await;
    let path = format!(
        "/oauth/authorize?{}",
        query(&[
            ("response_type", "code"),
            ("client_id", &document),
            ("redirect_uri", "http://127.0.0.1:5555/callback"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
    );
    // Production settings: a loopback (private) document URL is refused, and so is http.
    let server = TestServer::start(&db).await;
    let r = server.get(&path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("https"));
    let loopback_https = format!(
        "/oauth/authorize?client_id={}&response_type=code",
        url::form_urlencoded::byte_serialize(b"https://127.0.0.1:1/x.json").collect::<String>()
    );
    let r = server.get(&loopback_https).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("private"));
    drop(server);

    // With the test-only switch, loopback documents are fetched and their redirects honoured.
    let server = TestServer::builder(&db)
        .env("QBO_MCP_TEST_ALLOW_LOOPBACK_CIMD", "1")
        .start()
        .await;
    let r = server.get(&path).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
}
