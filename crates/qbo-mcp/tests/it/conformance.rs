//! The MCP conformance suite (npm `@modelcontextprotocol/conformance`): its
//! authorization-server metadata scenario against our issuer, and the server scenarios that
//! apply to a product server against the MCP layer. The suite sends no credentials, so the
//! server scenarios run against the same rmcp handler mounted here without the gate, with a
//! fixed caller — only in this test binary, never in the product.

use axum::Router;
use qbo_mcp::config::Config;
use qbo_mcp::keys::{Sealer, SecretKey};
use qbo_mcp::mcp::{Assistant, ToolCaller};
use qbo_mcp::people::{Person, Role};
use qbo_mcp::state::AppState;
use serde_json::Value;

use crate::harness::{Backend, TEST_KEY, TestDb, TestServer, node, node_dir, run_peer};

const SUITE: &str = "node_modules/@modelcontextprotocol/conformance/dist/index.js";

/// Runs one conformance command and returns its checks (`checks.json` of every result). Fails
/// on any failed check except those the suite itself marks "Not testable" because they need
/// its own diagnostic tools (`test_missing_capability`, …) which a product server does not have.
async fn conformance(args: &[&str]) -> Vec<Value> {
    let dir = node_dir();
    let results = tempfile::tempdir().unwrap();
    let mut all = vec![SUITE];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", results.path().to_str().unwrap()]);
    let out = run_peer(&node(), &all, &dir, &[("NO_COLOR", "1")]).await;
    let mut checks = Vec::new();
    for entry in walk(results.path()) {
        if entry.file_name().is_some_and(|n| n == "checks.json") {
            let text = std::fs::read_to_string(&entry).unwrap();
            let list: Vec<Value> = serde_json::from_str(&text).unwrap();
            checks.extend(list);
        }
    }
    assert!(
        !checks.is_empty(),
        "conformance {args:?} produced no checks (exit {}):\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c["status"] == "FAILURE")
        .filter(|c| {
            !c["errorMessage"].as_str().is_some_and(|m| {
                m.starts_with("Not testable: server does not list the diagnostic tool")
            })
        })
        .map(|c| format!("{}: {} ({})", c["id"], c["description"], c["errorMessage"]))
        .collect();
    assert!(
        failed.is_empty(),
        "conformance {args:?} failed:\n{}",
        failed.join("\n")
    );
    assert!(
        checks.iter().any(|c| c["status"] == "SUCCESS"),
        "conformance {args:?} passed nothing"
    );
    checks
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_server_metadata() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    let checks = conformance(&[
        "authorization",
        "--url",
        &server.url,
        "--scenario",
        "authorization-server-metadata-endpoint",
    ])
    .await;
    for id in [
        "authorization-server-metadata",
        "authorization-server-metadata-cimd",
    ] {
        assert!(
            checks
                .iter()
                .any(|c| c["id"] == id && c["status"] == "SUCCESS"),
            "{id}: {checks:?}"
        );
    }
}

/// The MCP handler without the gate, on port 0, for a fixed admin caller.
async fn bare_mcp(db: &TestDb) -> String {
    let config = Config::load_from(None, db.env()).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::build(
        config,
        db.connect().await,
        Sealer::new(&SecretKey::from_base64(TEST_KEY).unwrap()),
        url::Url::parse(&format!("http://{addr}")).unwrap(),
        None,
    )
    .unwrap();
    let caller = ToolCaller {
        person: Person {
            id: 1,
            username: "conformance".into(),
            email: None,
            role: Role::Admin,
            is_active: true,
            force_password_change: false,
            completed_onboarding: true,
            has_password: true,
            created_at: 0,
            last_login_at: None,
        },
        assistant: Assistant::PersonalToken { id: 1 },
    };
    let app = Router::new()
        .route_service("/mcp", qbo_mcp::mcp::service(&state))
        .layer(axum::Extension(caller));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/mcp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_scenarios() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let url = bare_mcp(&db).await;
    for scenario in SCENARIOS {
        conformance(&["server", "--url", &url, "--scenario", scenario]).await;
    }
}

/// The server scenarios that apply to a product server (the rest exercise features of the
/// suite's own example server: sample tools, prompts, resources, sampling, elicitation).
/// `server-session-lifecycle` checks nothing on a server that keeps no sessions, as ours;
/// `caching` requires prompts and resources, which this server does not offer.
const SCENARIOS: &[&str] = &[
    "server-initialize",
    "server-stateless",
    "ping",
    "tools-list",
    "dns-rebinding-protection",
    "http-header-validation",
];
