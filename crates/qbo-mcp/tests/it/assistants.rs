//! Assistants connecting as they do in real life: the official MCP SDKs (PyPI `mcp`, npm
//! `@modelcontextprotocol/client`) discover, register (dynamically or by a Client ID Metadata
//! Document this test serves), send a person through sign-in and consent (an HTTP client with a
//! cookie jar), exchange the code, list and call tools, refresh and revoke — against the real
//! server. Then every refusal docs/oauth.md promises, driven over HTTP.

use serde_json::Value;

use crate::harness::{Backend, TestDb, TestServer, node, node_dir, python, run_peer};
use crate::oauth::serve_metadata_document;
use crate::on_both_backends;
use crate::people::{PASSWORD, add_person, first_admin};

on_both_backends!(
    python_sdk_connects_with_dynamic_registration,
    typescript_sdk_connects
);

async fn python_flow(server: &TestServer, username: &str, extra: &[&str]) -> Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/oauth_flow.py");
    let mut args = vec![script.to_str().unwrap(), &server.url, username, PASSWORD];
    args.extend_from_slice(extra);
    let out = run_peer(
        &python(),
        &args,
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        &[],
    )
    .await;
    assert_eq!(
        out.code, 0,
        "python SDK flow failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    let line = out.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("no JSON report:\n{}\n{}", out.stdout, out.stderr))
}

/// What `tools/list` shows a viewer, and an admin (in the registry's order).
const VIEWER_TOOLS: &[&str] = &[
    "list_companies",
    "get_company_info",
    "query",
    "get_entity",
    "run_report",
    "changes_since",
    "get_proposal",
    "list_attachments",
    "get_attachment",
];
const ADMIN_TOOLS: &[&str] = &[
    "list_companies",
    "get_company_info",
    "query",
    "get_entity",
    "run_report",
    "changes_since",
    "get_proposal",
    "list_attachments",
    "get_attachment",
    "attach_file",
    "create_entity",
    "update_entity",
    "send_invoice",
    "send_estimate",
    "update_company_settings",
    "delete_entity",
];

/// A bookkeeper sees the viewer's tools and the writing ones, but not the company's settings
/// or `delete_entity`.
const BOOKKEEPER_TOOLS: &[&str] = ADMIN_TOOLS.split_at(ADMIN_TOOLS.len() - 2).0;

fn check_report(report: &Value, server: &TestServer, tools: &[&str]) {
    assert_eq!(report["tools"], serde_json::json!(tools), "{report}");
    assert_eq!(report["callback"]["iss"], server.url, "{report}");
    assert!(
        report["callback"]["location"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:43117/callback?"),
        "{report}"
    );
    assert_eq!(
        report["authorization_request"]["code_challenge_method"], "S256",
        "{report}"
    );
    assert_eq!(report["consent_page_names_client"], true, "{report}");
    assert_eq!(report["consent_page_names_redirect_host"], true, "{report}");
    assert_eq!(report["refreshed"], true, "{report}");
    assert_eq!(report["refresh_rotated"], true, "{report}");
    assert_eq!(report["after_revocation_status"], 401, "{report}");
    assert_eq!(
        report["companies"],
        serde_json::json!({"companies": []}),
        "{report}"
    );
}

async fn python_sdk_connects_with_dynamic_registration(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;
    add_person(&admin, "alice", "viewer").await;
    let report = python_flow(&server, "alice", &[]).await;
    check_report(&report, &server, VIEWER_TOOLS);
    assert!(
        report["client_id"].as_str().unwrap().starts_with("dcr_"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_connects_with_a_metadata_document() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let document = serve_metadata_document(&["http://127.0.0.1/callback"]).await;
    let server = TestServer::builder(&db)
        .env("QBO_MCP_TEST_ALLOW_LOOPBACK_CIMD", "1")
        .start()
        .await;
    let admin = first_admin(&server).await;
    add_person(&admin, "alice", "bookkeeper").await;
    let report = python_flow(&server, "alice", &["--cimd", &document]).await;
    check_report(&report, &server, BOOKKEEPER_TOOLS);
    assert_eq!(
        report["authorization_request"]["client_id"], document,
        "{report}"
    );
}

async fn typescript_sdk_connects(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;
    add_person(&admin, "bob", "admin").await;
    let dir = node_dir();
    let out = run_peer(
        &node(),
        &["oauth-flow.mjs", &server.url, "bob", PASSWORD],
        &dir,
        &[],
    )
    .await;
    assert_eq!(
        out.code, 0,
        "TypeScript SDK flow failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    let report: Value = serde_json::from_str(out.stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no JSON report:\n{}\n{}", out.stdout, out.stderr));
    assert_eq!(report["tools"], serde_json::json!(ADMIN_TOOLS), "{report}");
    assert_eq!(
        report["tools_after_refresh"],
        serde_json::json!(ADMIN_TOOLS),
        "{report}"
    );
    assert_eq!(report["callback_iss"], server.url, "{report}");
    assert_eq!(
        report["authorization_request"]["code_challenge_method"], "S256",
        "{report}"
    );
    assert_eq!(report["consent_page_names_client"], true, "{report}");
    assert_eq!(report["consent_page_names_redirect_host"], true, "{report}");
    assert_eq!(report["refreshed"], true, "{report}");
    assert_eq!(report["refresh_rotated"], true, "{report}");
    assert_eq!(report["after_revocation_status"], 401, "{report}");
    assert!(
        report["client_id"].as_str().unwrap().starts_with("dcr_"),
        "{report}"
    );
}
