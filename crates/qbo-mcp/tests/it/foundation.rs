//! The server's frame: operations endpoints, error shape, limits, start-up failures, shutdown.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Backend, TestDb, TestServer, cli, cli_with_env};
use crate::on_both_backends;

on_both_backends!(operations_endpoints_answer, start_up_refuses_a_foreign_key);

async fn operations_endpoints_answer(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    // A process: `/metrics` reads the process-wide recorder `serve` installs.
    let server = TestServer::process(&db).await;

    let r = server.get("/healthz").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"));

    let r = server
        .get("/readyz")
        .header("x-request-id", "given-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "given-id-1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");

    let r = server.get("/no/such/page/12345").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());

    let metrics = server
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="/readyz",status="200"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"route="unmatched""#), "{metrics}");
    assert!(
        !metrics.contains("12345"),
        "raw paths must not become labels:\n{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "{metrics}"
    );
}

async fn start_up_refuses_a_foreign_key(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let first = TestServer::start(&db).await;
    assert_eq!(
        first.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
    // Another replica with another key must stop instead of failing later on a token.
    let err = TestServer::builder(&db)
        .env(
            "QBO_MCP_SECRET_KEY",
            "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMTI=",
        )
        .process()
        .try_start()
        .await
        .unwrap_err();
    assert!(err.contains("exited"), "{err}");
    let out = cli_with_env(
        with(
            &db,
            "QBO_MCP_SECRET_KEY",
            "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMTI=",
        ),
        db.data_dir(),
        &["serve"],
        None,
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("is not the key this database was sealed with"),
        "{}",
        out.stderr
    );
    // The same key keeps working.
    let second = TestServer::start(&db).await;
    assert_eq!(
        second.get("/readyz").send().await.unwrap().status(),
        StatusCode::OK
    );
}

fn with(db: &TestDb, key: &str, value: &str) -> Vec<(String, String)> {
    let mut env = db.env();
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value.to_owned()));
    env
}

#[tokio::test]
async fn first_run_needs_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder(&TestDb::fresh(Backend::Sqlite).await)
        .cwd(dir.path())
        .without_env("QBO_MCP_DATABASE_URL")
        .without_env("QBO_MCP_DATA_DIR")
        .without_env("QBO_MCP_SECRET_KEY")
        .start()
        .await;
    assert_eq!(
        server.get("/readyz").send().await.unwrap().status(),
        StatusCode::OK
    );
    let data = dir.path().join("qbo-mcp-data");
    assert!(data.join("qbo-mcp.db").is_file());
    let key = data.join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secret.key must be private");
        // The database holds password hashes and sealed QuickBooks tokens: private too, with
        // its write-ahead log (SQLite gives it the database file's permissions).
        for file in ["qbo-mcp.db", "qbo-mcp.db-wal"] {
            let mode = std::fs::metadata(data.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file} must be private");
        }
    }
    let status = server.terminate().await;
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
}

#[tokio::test]
async fn bad_settings_stop_start_up_with_one_sentence() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let cases: &[(&str, &str, i32, &str)] = &[
        (
            "QBO_MCP_DATABASE_URL",
            "mysql://localhost/x",
            2,
            "QBO_MCP_DATABASE_URL",
        ),
        (
            "QBO_MCP_DATABASE_URL",
            "postgres://postgres:pw-secret@127.0.0.1:1/nothing",
            1,
            "Cannot connect to the database at postgres://postgres:redacted@127.0.0.1:1/nothing",
        ),
        ("QBO_MCP_SECRET_KEY", "not-base64!", 2, "QBO_MCP_SECRET_KEY"),
        ("QBO_MCP_LISTEN", "localhost", 2, "QBO_MCP_LISTEN"),
        ("QBO_MCP_PUBLIC_URL", "ftp://x", 2, "QBO_MCP_PUBLIC_URL"),
        ("QBO_MCP_LOG_FORMAT", "xml", 2, "QBO_MCP_LOG_FORMAT"),
    ];
    for (key, value, code, needle) in cases {
        let out = cli_with_env(with(&db, key, value), db.data_dir(), &["serve"], None).await;
        assert_eq!(out.code, *code, "{key}={value}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{key}={value}: {}", out.stderr);
        assert!(
            !out.stderr.contains("pw-secret"),
            "password leaked: {}",
            out.stderr
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
}

#[tokio::test]
async fn an_unreadable_key_file_stops_start_up() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    // Tests may run as root, who reads any file: make the key path unreadable as a file.
    std::fs::create_dir(db.data_dir().join("secret.key")).unwrap();
    let mut env = db.env();
    env.retain(|(k, _)| k != "QBO_MCP_SECRET_KEY");
    let out = cli_with_env(env.clone(), db.data_dir(), &["serve"], None).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("Cannot read the secret key file"),
        "{}",
        out.stderr
    );

    std::fs::remove_dir(db.data_dir().join("secret.key")).unwrap();
    std::fs::write(db.data_dir().join("secret.key"), "garbage").unwrap();
    let out = cli_with_env(env, db.data_dir(), &["serve"], None).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("does not hold 32 bytes"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let server = TestServer::builder(&db)
        .env("QBO_MCP_BODY_LIMIT_BYTES", "4096")
        .start()
        .await;
    let r = server
        .post("/healthz")
        .body(vec![b'x'; 10_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn help_and_version() {
    let db = TestDb::fresh(Backend::Sqlite).await;
    let out = cli(&db, &["--help"], None).await;
    assert_eq!(out.code, 0);
    for word in ["serve", "migrate"] {
        assert!(out.stdout.contains(word), "{}", out.stdout);
    }
    let out = cli(&db, &["--version"], None).await;
    assert!(out.stdout.starts_with("qbo-mcp "), "{}", out.stdout);
    let out = cli(&db, &["frobnicate"], None).await;
    assert_ne!(out.code, 0);
}
