//! The break-glass command line: people, tokens, allowlist and audit, with the server stopped
//! and running, through the same rules as the API.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Bearer, Browser, PASSWORD};
use crate::harness::{Backend, TestDb, TestServer, cli};
use crate::on_both_backends;

on_both_backends!(console_administers_people);

async fn console_administers_people(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    // Server stopped: the first admin comes from the console; no setup link afterwards.
    let out = cli(
        &db,
        &["user", "add", "Root", "--role", "admin", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let out = cli(
        &db,
        &["user", "add", "x", "--role", "admin", "--password-stdin"],
        Some(PASSWORD),
    )
    .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("A username is 3 to 64 characters"),
        "{}",
        out.stderr
    );
    let out = cli(&db, &["user", "add", "nobody", "--role", "admin"], None).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("--invite"), "{}", out.stderr);
    // A process: what it prints on stdout is tested.
    let server = TestServer::process(&db).await;
    assert_eq!(server.stdout().len(), 1, "{:?}", server.stdout());

    // Server running: invitation link on stdout alone, and it works.
    let out = cli(
        &db,
        &[
            "user",
            "add",
            "ann",
            "--role",
            "bookkeeper",
            "--email",
            "Ann@Example.com",
            "--invite",
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let link = out.stdout.trim().to_owned();
    assert_eq!(out.stdout.lines().count(), 1);
    let path = format!("/invite/{}", link.rsplit('/').next().unwrap());
    let ann = Browser::new(&server.url);
    let r = ann.submit(&path, &path, &[("password", "short")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = ann.submit(&path, &path, &[("password", PASSWORD)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let me: Value = ann.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(
        (me["username"].as_str(), me["email"].as_str()),
        (Some("ann"), Some("ann@example.com"))
    );
    let (status, _) = Browser::new(&server.url).page(&path).await;
    assert_eq!(status, StatusCode::GONE);

    // Token: alone on stdout, usable at once.
    let out = cli(
        &db,
        &["token", "create", "--user", "root", "--name", "ci"],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let token = out.stdout.trim();
    assert!(
        token.starts_with("qbo_pat_") && out.stdout.lines().count() == 1,
        "{}",
        out.stdout
    );
    let root = Bearer::new(&server.url, token);
    let users: Value = root
        .call(Method::GET, "/api/v1/users", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"].as_array().unwrap().len(), 2);

    // The invariants hold for the console too.
    let out = cli(&db, &["user", "set-role", "root", "viewer"], None).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no active admin"), "{}", out.stderr);
    let out = cli(&db, &["user", "set-role", "ann", "owner"], None).await;
    assert!(
        out.code != 0 && out.stderr.contains("not a role"),
        "{}",
        out.stderr
    );
    let out = cli(&db, &["user", "deactivate", "ann"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        ann.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let out = cli(&db, &["user", "activate", "ann"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = cli(&db, &["user", "list"], None).await;
    assert!(
        out.stdout.contains("ann")
            && out.stdout.contains("bookkeeper")
            && out.stdout.contains("active"),
        "{}",
        out.stdout
    );

    // A locked-out admin: the console sets a temporary password that must be changed.
    let out = cli(
        &db,
        &["user", "reset-password", "root", "--password-stdin"],
        Some("temporary password 1\n"),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A reset ends every session of the person.
    assert_eq!(
        root.call(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let b = Browser::sign_in(&server.url, "root", "temporary password 1")
        .await
        .unwrap();
    let r = b.call(Method::GET, "/api/v1/users", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let out = cli(&db, &["user", "reset-password", "ann"], None).await;
    assert!(
        out.code == 0 && out.stdout.trim().contains("/invite/"),
        "{}",
        out.stderr
    );

    // Allowlist.
    let out = cli(
        &db,
        &["allowlist", "add", "@Example.com", "--role", "bookkeeper"],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = cli(
        &db,
        &["allowlist", "add", "example.com", "--role", "viewer"],
        None,
    )
    .await;
    assert!(
        out.code != 0 && out.stderr.contains("@example.com"),
        "{}",
        out.stderr
    );
    let out = cli(&db, &["allowlist", "list"], None).await;
    assert!(
        out.stdout.contains("@example.com") && out.stdout.contains("bookkeeper"),
        "{}",
        out.stdout
    );
    let out = cli(&db, &["allowlist", "remove", "@example.com"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = cli(&db, &["allowlist", "remove", "@example.com"], None).await;
    assert_ne!(out.code, 0);

    // The audit log names the console and the outcome.
    let out = cli(&db, &["audit", "--user", "console", "--json"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let entries: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |action: &str, outcome: &str| {
        entries
            .iter()
            .any(|e| e["action"] == action && e["outcome"] == outcome)
    };
    assert!(
        has("user.create", "ok")
            && has("user.set_role", "refused")
            && has("user.deactivate", "ok")
            && has("allowlist.add", "ok"),
        "{}",
        out.stdout
    );
    let out = cli(&db, &["audit", "--since", "yesterday"], None).await;
    assert!(
        out.code != 0 && out.stderr.contains("--since"),
        "{}",
        out.stderr
    );
}
