//! Every refusal docs/oauth.md promises of the authorization server and `/mcp`, over HTTP against the
//! real server on both backends: wrong PKCE verifier, redirect mismatch at the token endpoint,
//! expired and replayed codes, refresh-token reuse after rotation (and the window before it),
//! denied consent, CSRF on the consent form, the token of a deactivated person, a foreign
//! `Origin`, and personal access tokens accepted where access tokens are. Also the assistants
//! page and API, and the audit entry of a tool call.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestDb, TestServer};
use crate::oauth::{CHALLENGE, register};
use crate::on_both_backends;
use crate::people::{Browser, PASSWORD, add_person, csrf_field, first_admin, token_for};
use qbo_mcp::on_tx;

pub const VERIFIER: &str = "qbo-mcp-test-verifier-0123456789-abcdefghijk";
pub const REDIRECT: &str = "http://127.0.0.1:50001/callback";

on_both_backends!(
    codes_and_refresh_tokens,
    people_consent_and_origins,
    assistants_are_listed_and_revoked
);

fn authorize_path(client_id: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "s"),
        ])
        .finish();
    format!("/oauth/authorize?{q}")
}

/// The callback a signed-in person's decision leads to (consent page submitted if shown).
async fn decide(person: &Browser, client_id: &str, decision: &str) -> url::Url {
    let path = authorize_path(client_id);
    let r = person.get(&path).await;
    let r = if r.status() == StatusCode::OK {
        let page = r.text().await.unwrap();
        assert!(
            page.contains("127.0.0.1:50001"),
            "consent names the redirect host:\n{page}"
        );
        let fields = consent_fields(&page, decision);
        let r = person
            .client
            .post(person.at("/oauth/authorize"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        r
    } else {
        assert_eq!(
            r.status(),
            StatusCode::FOUND,
            "remembered consent redirects at once"
        );
        r
    };
    url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap()
}

fn consent_fields(page: &str, decision: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for tag in page.split("<input").skip(1) {
        let attr = |name: &str| {
            let marker = format!("{name}=\"");
            tag.find(&marker).map(|i| {
                tag[i + marker.len()..]
                    .split('"')
                    .next()
                    .unwrap()
                    .replace("&amp;", "&")
                    .replace("&quot;", "\"")
            })
        };
        if let (Some(name), Some(value)) = (attr("name"), attr("value")) {
            fields.push((name, value));
        }
    }
    fields.push(("decision".into(), decision.into()));
    fields
}

fn param(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

pub async fn code_for(person: &Browser, client_id: &str) -> String {
    let callback = decide(person, client_id, "allow").await;
    assert!(callback.as_str().starts_with(REDIRECT), "{callback}");
    param(&callback, "code").expect("code")
}

async fn token(server: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = server.post("/oauth/token").form(form).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

pub async fn exchange(
    server: &TestServer,
    client_id: &str,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> (StatusCode, Value) {
    token(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect),
        ],
    )
    .await
}

async fn refresh(server: &TestServer, refresh_token: &str) -> (StatusCode, Value) {
    token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// `tools/list` with a bearer token (and an optional Origin): the status.
async fn mcp_status(server: &TestServer, bearer: &str, origin: Option<&str>) -> StatusCode {
    let mut r = server
        .post("/mcp")
        .bearer_auth(bearer)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    r.send().await.unwrap().status()
}

async fn signed_in(server: &TestServer, role: &str) -> (Browser, Browser) {
    let admin = first_admin(server).await;
    add_person(&admin, "carol", role).await;
    let carol = Browser::sign_in(&server.url, "carol", PASSWORD)
        .await
        .unwrap();
    // First sign-in goes through onboarding; finish it so pages are reachable.
    let (status, page) = carol.page("/onboarding").await;
    if status == StatusCode::OK && page.contains("action=\"/onboarding") {
        let _ = carol.submit("/onboarding", "/onboarding", &[]).await;
    }
    (admin, carol)
}

async fn codes_and_refresh_tokens(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    // A reuse window no test run can outlast, so the retry below is always inside it.
    let server = TestServer::builder(&db)
        .env("QBO_MCP_REFRESH_REUSE_WINDOW_SECS", "3600")
        .start()
        .await;
    let (_admin, carol) = signed_in(&server, "viewer").await;
    let client_id = register(&server).await;

    // Wrong verifier, another redirect URI: refused, and the code stays usable.
    let code = code_for(&carol, &client_id).await;
    let wrong = "x".repeat(43);
    let (status, e) = exchange(&server, &client_id, &code, &wrong, REDIRECT).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, e) = exchange(
        &server,
        &client_id,
        &code,
        VERIFIER,
        "http://127.0.0.1:50002/callback",
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, e) = exchange(&server, "dcr_other", &code, VERIFIER, REDIRECT).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, first) = exchange(&server, &client_id, &code, VERIFIER, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let access = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(mcp_status(&server, &access, None).await, StatusCode::OK);

    // Replay: refused, and what the first exchange issued is revoked.
    let (status, e) = exchange(&server, &client_id, &code, VERIFIER, REDIRECT).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        mcp_status(&server, &access, None).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = refresh(&server, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Expired code (time moved past its five minutes).
    let code = code_for(&carol, &client_id).await;
    let handle = db.connect().await;
    let mut tx = handle.begin_write().await.unwrap();
    on_tx!(&mut tx, conn => sqlx::query("UPDATE oauth_codes SET expires_at = 0 WHERE used_at IS NULL").execute(&mut *conn).await.unwrap().rows_affected());
    tx.commit().await.unwrap();
    let (status, e) = exchange(&server, &client_id, &code, VERIFIER, REDIRECT).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Rotation with grace, then reuse after the successor was used revokes the grant.
    let code = code_for(&carol, &client_id).await;
    let (_, t1) = exchange(&server, &client_id, &code, VERIFIER, REDIRECT).await;
    let r1 = t1["refresh_token"].as_str().unwrap().to_owned();
    let (status, t2) = refresh(&server, &r1).await;
    assert_eq!(status, StatusCode::OK, "{t2}");
    let r2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    // The client failed to save r2: r1 still works inside the reuse window, issuing r2' (r2 is
    // forked off; presenting it would revoke the grant, see security_oauth).
    let (status, t2b) = refresh(&server, &r1).await;
    assert_eq!(status, StatusCode::OK, "{t2b}");
    let r2b = t2b["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r2, r2b);
    let (status, t3) = refresh(&server, &r2b).await;
    assert_eq!(status, StatusCode::OK, "{t3}");
    let a3 = t3["access_token"].as_str().unwrap().to_owned();
    assert_eq!(mcp_status(&server, &a3, None).await, StatusCode::OK);
    // r1's successor has been used: presenting r1 now is reuse → the whole grant dies.
    let (status, e) = refresh(&server, &r1).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        mcp_status(&server, &a3, None).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = refresh(&server, t3["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn people_consent_and_origins(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let (admin, carol) = signed_in(&server, "bookkeeper").await;
    let client_id = register(&server).await;

    // CSRF: the consent form without its token, or with another session's, is refused.
    let (_, page) = carol.page(&authorize_path(&client_id)).await;
    let mut fields = consent_fields(&page, "allow");
    fields.retain(|(k, _)| k != "csrf_token");
    let r = carol
        .client
        .post(carol.at("/oauth/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, admin_page) = admin.page(&authorize_path(&client_id)).await;
    fields.push(("csrf_token".into(), csrf_field(&admin_page)));
    let r = carol
        .client
        .post(carol.at("/oauth/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A cross-site post without cookies is refused too.
    let r = server
        .post("/oauth/authorize")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    // Denied consent goes back to the client as access_denied, with iss; nothing remembered.
    let callback = decide(&carol, &client_id, "deny").await;
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        param(&callback, "iss").as_deref(),
        Some(server.url.as_str())
    );
    assert!(param(&callback, "code").is_none());
    // Allowed. This client's redirect is loopback, which any local program can listen on, so
    // the next authorization asks again (RFC 8252 §8.6; security_oauth covers the https case).
    let code = code_for(&carol, &client_id).await;
    let second = carol.get(&authorize_path(&client_id)).await;
    assert_eq!(second.status(), StatusCode::OK);
    let (_, tokens) = exchange(&server, &client_id, &code, VERIFIER, REDIRECT).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // Origin: the public URL's own origin passes, any other is refused.
    assert_eq!(
        mcp_status(&server, &access, Some(&server.url)).await,
        StatusCode::OK
    );
    assert_eq!(
        mcp_status(&server, &access, Some("https://evil.example")).await,
        StatusCode::FORBIDDEN
    );

    // Personal access tokens work on /mcp like access tokens.
    let pat = token_for(&carol, "script").await;
    assert_eq!(mcp_status(&server, &pat, None).await, StatusCode::OK);

    // Deactivation: every token of the person is refused on the very next request, refresh too.
    let r = admin
        .call(
            Method::PATCH,
            "/api/v1/users/carol",
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        mcp_status(&server, &access, None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mcp_status(&server, &pat, None).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, e) = refresh(&server, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Reactivation does not revive them.
    let r = admin
        .call(
            Method::PATCH,
            "/api/v1/users/carol",
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        mcp_status(&server, &access, None).await,
        StatusCode::UNAUTHORIZED
    );
}

/// The assistants page and API: own grants, everyone's for an admin only, revoke (which also
/// forgets the consent), and every tool call in the audit log.
async fn assistants_are_listed_and_revoked(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let (admin, carol) = signed_in(&server, "viewer").await;
    let client_id = register(&server).await;
    let code = code_for(&carol, &client_id).await;
    let (_, tokens) = exchange(&server, &client_id, &code, VERIFIER, REDIRECT).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // A tool call is recorded under the person's name before its result comes back.
    let r = server
        .post("/mcp")
        .bearer_auth(&access)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "list_companies", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let audit: Value = admin
        .call(Method::GET, "/api/v1/audit?action=tool.call", None)
        .await
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(
        text.contains("list_companies") && text.contains("carol"),
        "{text}"
    );

    let mine: Value = carol
        .call(Method::GET, "/api/v1/assistants", None)
        .await
        .json()
        .await
        .unwrap();
    let list = mine["assistants"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{mine}");
    assert_eq!(list[0]["client_name"], "Test assistant");
    let id = list[0]["id"].as_i64().unwrap();
    let r = carol
        .call(Method::GET, "/api/v1/assistants?all=true", None)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let all: Value = admin
        .call(Method::GET, "/api/v1/assistants?all=true", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["assistants"][0]["username"], "carol", "{all}");
    let (status, page) = carol.page("/assistants").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Test assistant") && page.contains("Disconnect"),
        "{page}"
    );

    // Someone else's grant is not found for a non-admin; the owner revokes it.
    let r = admin
        .call(Method::DELETE, "/api/v1/assistants/999999", None)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = carol
        .call(Method::DELETE, &format!("/api/v1/assistants/{id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        mcp_status(&server, &access, None).await,
        StatusCode::UNAUTHORIZED
    );
    // The consent went with it: the next authorization shows the page again.
    let r = carol.get(&authorize_path(&client_id)).await;
    assert_eq!(r.status(), StatusCode::OK);
}
