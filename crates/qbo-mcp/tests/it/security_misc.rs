//! Security findings of issue 9 that live in the shared web layer, the log, demo mode, the MCP
//! endpoint and the audit log: `next` never leaves the site, input cannot forge a log line and
//! tokens in URLs never reach the log, demo mode hides the simulator's control routes, every
//! malformed `/mcp` body gets the right JSON-RPC error, HSTS over https, and the audit entry
//! of a tool call names the company the call used.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::companies::connect_demo_company;
use crate::harness::{Backend, TestDb, TestServer, personal_token};
use crate::on_both_backends;
use crate::people::{Browser, PASSWORD, add_person, first_admin};

/// Values of `next` that would take a browser off the site (or smuggle something past it).
const HOSTILE_NEXT: &[&str] = &[
    "/\t/evil.example/x",
    "//evil.example",
    "/\\evil.example",
    "/%2F/evil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/%0d%0aSet-Cookie:x=1",
    "/%252F/evil.example",
    "https://evil.example",
    " /x",
    "/x\u{2028}",
    "/x\u{7f}",
    "people",
];

/// The path a sign-in answer sends the browser to, seen through `/onboarding?next=` too.
fn landing(location: &str) -> String {
    match location.strip_prefix("/onboarding?next=") {
        Some(encoded) => url::form_urlencoded::parse(format!("next={encoded}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default(),
        None => location.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_never_leaves_the_site() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;
    // Without HTTPS there is no HSTS: a browser would pin plain HTTP to HTTPS.
    let r = server.get("/login").send().await.unwrap();
    assert!(
        !r.headers().contains_key("strict-transport-security"),
        "{:?}",
        r.headers()
    );
    add_person(&admin, "olga", "viewer").await;

    for bad in HOSTILE_NEXT {
        // Sign-in: straight to `next`, or through onboarding with `next` carried along.
        let b = Browser::new(&server.url);
        let r = b
            .submit(
                &format!("/login?next={}", urlencode(bad)),
                "/login",
                &[("username", "olga"), ("password", PASSWORD), ("next", bad)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{bad:?}");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(
            landing(&location),
            "/",
            "sign-in with next={bad:?} → {location}"
        );

        // Onboarding's own form.
        let r = b
            .submit(
                &format!("/onboarding?next={}", urlencode(bad)),
                "/onboarding",
                &[("next", bad)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{bad:?}");
        assert_eq!(r.headers()["location"], "/", "onboarding with next={bad:?}");
        // The onboarding page itself carries only a safe `next`.
        let (_, html) = b
            .page(&format!("/onboarding?next={}", urlencode(bad)))
            .await;
        assert!(
            html.contains(r#"name="next" value="/""#),
            "onboarding page with next={bad:?}: {html}"
        );
    }

    // A same-site path still works.
    let b = Browser::new(&server.url);
    let r = b
        .submit(
            "/login",
            "/login",
            &[
                ("username", "root"),
                ("password", PASSWORD),
                ("next", "/people?x=1"),
            ],
        )
        .await;
    assert_eq!(
        landing(r.headers()["location"].to_str().unwrap()),
        "/people?x=1"
    );
}

fn urlencode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_cannot_forge_a_log_line_and_tokens_stay_out_of_the_log() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let server = TestServer::builder(&db)
        // Debug for the request spans: even then no token in a URL may be written.
        .env("QBO_MCP_LOG", "info,tower_http=debug")
        .env("QBO_MCP_LOG_FORMAT", "text")
        .capture_stderr()
        .start()
        .await;
    let setup_line = server.wait_for_line("one-time link").await;
    let setup_token = setup_line.rsplit('/').next().unwrap().trim().to_owned();
    let admin = first_admin(&server).await;
    let invited: Value = admin
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "ivy", "role": "viewer", "invite": true})),
        )
        .await
        .json()
        .await
        .unwrap();
    let invite_url = invited["invite_url"]
        .as_str()
        .expect("invite_url")
        .to_owned();
    let invite_token = invite_url.rsplit('/').next().unwrap().to_owned();
    // Fresh clients: a cookie from one page would make the next POST need a CSRF token.
    let r = crate::harness::client()
        .get(server.at(&format!("/invite/{invite_token}?x=1")))
        .header("x-request-id", "probe-invite-page")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let r = crate::harness::client()
        .post(server.at("/oauth/register"))
        .json(&json!({
            "client_name": "Helper\nFORGED line\r\nFORGED too\u{1b}[31m",
            "redirect_uris": ["http://127.0.0.1/callback"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    server.wait_for_log(&["client registered"]).await;
    server
        .wait_for_log(&["probe-invite-page", "finished processing request"])
        .await;

    let log = server.stderr();
    for line in &log {
        assert!(!line.starts_with("FORGED"), "a forged log line: {line:?}");
        assert!(!line.contains('\u{1b}'), "a raw escape sequence: {line:?}");
    }
    let registered = log
        .iter()
        .find(|l| l.contains("client registered"))
        .unwrap();
    assert!(registered.contains("FORGED line"), "{registered}");
    let all = log.join("\n");
    assert!(
        !all.contains(&setup_token),
        "the setup token reached the log:\n{all}"
    );
    assert!(
        !all.contains(&invite_token),
        "the invite token reached the log:\n{all}"
    );
    // Routes are logged by template.
    assert!(all.contains("/invite/{token}"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_hides_the_simulators_controls() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    let anonymous = crate::harness::client();
    for (method, path, body) in [
        (
            Method::POST,
            "/_demo/intuit/_sim/config",
            json!({"error_rate": 1.0}),
        ),
        (Method::GET, "/_demo/intuit/_sim/config", json!(null)),
        (Method::POST, "/_demo/intuit/_sim/reset", json!({})),
        (Method::GET, "/_demo/intuit/_sim/companies", json!(null)),
        (Method::GET, "/_demo/intuit/_sim/stats", json!(null)),
        (
            Method::POST,
            "/_demo/intuit/_sim/expire-access-tokens",
            json!({}),
        ),
        (
            Method::POST,
            "/_demo/intuit/_sim/advance-clock",
            json!({"seconds": 3600}),
        ),
    ] {
        let mut req = anonymous.request(method.clone(), server.at(path));
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    // The Intuit-facing part the connect flow needs is still there.
    let r = anonymous
        .get(server.at("/_demo/intuit/.well-known/openid_configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Posts `body` to `/mcp` as an assistant would, returning the status and the JSON answer.
async fn post_mcp(server: &TestServer, token: &str, body: &str) -> (StatusCode, Value) {
    let r = server
        .post("/mcp")
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not a JSON answer to {body:?} ({status}): {e}: {text}"));
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mcp_bodies_get_json_rpc_errors() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    first_admin(&server).await;
    let token = personal_token(&db, "root").await;

    // (body, HTTP status, JSON-RPC code, id in the answer)
    let cases: &[(&str, StatusCode, i64, Value)] = &[
        (
            "this is not json",
            StatusCode::BAD_REQUEST,
            -32700,
            Value::Null,
        ),
        (
            "{\"jsonrpc\": \"2.0\", ",
            StatusCode::BAD_REQUEST,
            -32700,
            Value::Null,
        ),
        ("[]", StatusCode::BAD_REQUEST, -32600, Value::Null),
        ("42", StatusCode::BAD_REQUEST, -32600, Value::Null),
        (
            "\"tools/list\"",
            StatusCode::BAD_REQUEST,
            -32600,
            Value::Null,
        ),
        ("null", StatusCode::BAD_REQUEST, -32600, Value::Null),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
            StatusCode::BAD_REQUEST,
            -32600,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":7}"#,
            StatusCode::BAD_REQUEST,
            -32600,
            json!(7),
        ),
        (
            r#"{"jsonrpc":"2.0","id":"a","method":12}"#,
            StatusCode::BAD_REQUEST,
            -32600,
            json!("a"),
        ),
        (
            r#"{"jsonrpc":"1.0","id":3,"method":"tools/list"}"#,
            StatusCode::BAD_REQUEST,
            -32600,
            json!(3),
        ),
        (
            r#"{"id":4,"method":"tools/list"}"#,
            StatusCode::BAD_REQUEST,
            -32600,
            json!(4),
        ),
        (
            r#"{"jsonrpc":"2.0","id":{"x":1},"method":"tools/list"}"#,
            StatusCode::BAD_REQUEST,
            -32600,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":"list_companies"}"#,
            StatusCode::OK,
            -32602,
            json!(5),
        ),
        (
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"list_companies","arguments":"x"}}"#,
            StatusCode::OK,
            -32602,
            json!(6),
        ),
        (
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"list_companies","arguments":[1,2]}}"#,
            StatusCode::OK,
            -32602,
            json!(8),
        ),
        (
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"arguments":{}}}"#,
            StatusCode::OK,
            -32602,
            json!(9),
        ),
    ];
    for (body, status, code, id) in cases {
        let (got_status, answer) = post_mcp(&server, &token, body).await;
        assert_eq!(got_status, *status, "{body}: {answer}");
        assert_eq!(answer["jsonrpc"], "2.0", "{body}: {answer}");
        assert_eq!(answer["id"], *id, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], *code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        // A sentence a person can act on, not a library's internal message.
        assert!(
            message.ends_with('.') && message.len() > 30,
            "{body}: {message}"
        );
        for internal in ["serde", "expected", "line 1", "column", "Deserialize"] {
            assert!(!message.contains(internal), "{body}: {message}");
        }
    }

    // Well-formed requests still work.
    let (status, answer) = post_mcp(
        &server,
        &token,
        r#"{"jsonrpc":"2.0","id":10,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["result"]["tools"].as_array().is_some(), "{answer}");
    let (status, answer) = post_mcp(
        &server,
        &token,
        r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"list_companies"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_when_the_public_url_is_https() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let server = TestServer::builder(&db)
        .env("QBO_MCP_PUBLIC_URL", "https://qbo.example.test")
        .start()
        .await;
    for path in [
        "/login",
        "/healthz",
        "/no-such-page",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = server.get(path).send().await.unwrap();
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=63072000; includeSubDomains"),
            "{path}"
        );
    }
}

on_both_backends!(the_audit_names_the_company_a_call_used);

async fn the_audit_names_the_company_a_call_used(backend: Backend) {
    const REALM: &str = "9341453050298464";
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;
    connect_demo_company(&server, &admin, REALM, "craig@craigsdesign.example").await;
    let token = personal_token(&db, "root").await;

    // No `company` argument: the only company is used, and the audit says which.
    let (status, answer) = post_mcp(
        &server,
        &token,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_company_info","arguments":{}}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["result"]["isError"], false, "{answer}");

    let audit: Value = admin
        .call(Method::GET, "/api/v1/audit?action=tool.call", None)
        .await
        .json()
        .await
        .unwrap();
    let entry = &audit["entries"][0];
    assert_eq!(entry["tool"], "get_company_info", "{audit}");
    assert_eq!(entry["company"], REALM, "{audit}");
    assert_eq!(
        entry["company_name"], "Craig's Design and Landscaping Services",
        "{audit}"
    );
    // The filter by company finds it too.
    let by_company: Value = admin
        .call(
            Method::GET,
            &format!("/api/v1/audit?action=tool.call&company={REALM}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_company["entries"].as_array().map(Vec::len), Some(1));
}
