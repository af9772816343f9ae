//! Identity-provider sign-in against a real OpenID Connect provider (npm `oidc-provider`, on
//! 127.0.0.1): the full authorization code + PKCE flow through our server.

use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use super::{Browser, PASSWORD, add_person, first_admin};
use crate::harness::{Backend, TestDb, TestServer, client, node, node_dir};
use crate::on_both_backends;

on_both_backends!(identity_provider_sign_in_follows_the_allowlist);

/// The provider process and its issuer URL.
pub struct Provider {
    pub issuer: String,
    _child: Child,
}

pub async fn start_provider() -> Provider {
    let dir = node_dir();
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "npm oidc-provider is not installed: run `npm ci` in {}",
        dir.display()
    );
    let accounts = json!({
        "s-ann": {"email": "ann@example.com", "email_verified": true},
        "s-eve": {"email": "eve@elsewhere.org", "email_verified": true},
        "s-uma": {"email": "uma@example.com", "email_verified": false},
        "s-pat": {"email": "pat@example.com", "email_verified": true},
    });
    let mut child = Command::new(node())
        .arg("oidc-provider.mjs")
        .current_dir(&dir)
        .env("ACCOUNTS", accounts.to_string())
        .env("CLIENT_ID", "qbo-mcp-test")
        .env("CLIENT_SECRET", "test-client-secret")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node oidc-provider.mjs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("provider starts within 60 s")
        .unwrap()
        .expect("provider printed its issuer");
    let issuer = line
        .strip_prefix("issuer ")
        .expect("issuer line")
        .to_owned();
    // Keep reading: the provider logs to stdout, and a closed pipe would kill it.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("oidc-provider: {line}");
        }
    });
    Provider {
        issuer,
        _child: child,
    }
}

pub async fn control(provider: &Provider, path: &str, body: Value) {
    let r = client()
        .post(format!("{}{path}", provider.issuer))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{path}");
}

/// Signs in as `sub` through the whole flow; returns the browser and our callback's answer.
async fn sign_in_as(
    server: &TestServer,
    provider: &Provider,
    sub: &str,
) -> (Browser, reqwest::Response) {
    control(provider, "/_next", json!({"sub": sub})).await;
    let b = Browser::new(&server.url);
    let mut url = reqwest::Url::parse(&b.at("/login/oidc?next=%2Faccount")).unwrap();
    for _ in 0..20 {
        let r = b.client.get(url.clone()).send().await.unwrap();
        let ours = url.as_str().starts_with(&server.url);
        if ours && url.path() == "/login/oidc/callback" {
            return (b, r);
        }
        assert!(
            r.status().is_redirection(),
            "{url}: {} {}",
            r.status(),
            r.text().await.unwrap()
        );
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        url = url.join(&location).unwrap();
    }
    panic!("no callback after 20 redirects");
}

async fn identity_provider_sign_in_follows_the_allowlist(backend: Backend) {
    let provider = start_provider().await;
    let db = TestDb::fresh(backend).await;
    let server = TestServer::builder(&db)
        .env("QBO_MCP_OIDC_ISSUER", &provider.issuer)
        .env("QBO_MCP_OIDC_CLIENT_ID", "qbo-mcp-test")
        .env("QBO_MCP_OIDC_CLIENT_SECRET", "test-client-secret")
        .start()
        .await;
    control(
        &provider,
        "/_start",
        json!({"redirect_uri": server.at("/login/oidc/callback")}),
    )
    .await;
    let root = first_admin(&server).await;
    let r = root
        .call(
            Method::POST,
            "/api/v1/allowlist",
            Some(json!({"entry": "@example.com", "role": "bookkeeper"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, html) = Browser::new(&server.url).page("/login").await;
    assert!(html.contains("/login/oidc"), "{html}");

    // Allowlisted and verified: the first sign-in creates ann with the entry's role.
    let (ann, r) = sign_in_as(&server, &provider, "s-ann").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    assert_eq!(r.headers()["location"], "/onboarding?next=%2Faccount");
    let me: Value = ann.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(
        (
            me["username"].as_str(),
            me["role"].as_str(),
            me["email"].as_str()
        ),
        (Some("ann"), Some("bookkeeper"), Some("ann@example.com"))
    );
    // The second sign-in finds the same person by issuer + subject.
    let (_, r) = sign_in_as(&server, &provider, "s-ann").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let users: Value = root.get("/api/v1/users").await.json().await.unwrap();
    assert_eq!(users["users"].as_array().unwrap().len(), 2, "{users}");

    // Not on the allowlist; unverified email.
    let (eve, r) = sign_in_as(&server, &provider, "s-eve").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("not allowed to sign in"));
    assert_eq!(
        eve.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, r) = sign_in_as(&server, &provider, "s-uma").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("not verified"));

    // An existing person is never linked by email alone.
    let r = root.call(Method::POST, "/api/v1/users", Some(json!({"username": "pat", "role": "viewer", "email": "pat@example.com", "password": PASSWORD}))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, r) = sign_in_as(&server, &provider, "s-pat").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // The subject changes its email: refused until an admin changes ann's email.
    control(
        &provider,
        "/_account",
        json!({"sub": "s-ann", "email": "ann.lee@example.com", "email_verified": true}),
    )
    .await;
    let (_, r) = sign_in_as(&server, &provider, "s-ann").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("different email"));
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/ann",
            Some(json!({"email": "ann.lee@example.com"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, r) = sign_in_as(&server, &provider, "s-ann").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // The allowlist is checked at every sign-in.
    let r = root
        .call(Method::DELETE, "/api/v1/allowlist/@example.com", None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, r) = sign_in_as(&server, &provider, "s-ann").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A stale or replayed state is refused.
    let (status, _) = Browser::new(&server.url)
        .page("/login/oidc/callback?code=x&state=forged")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let _ = add_person;
}
