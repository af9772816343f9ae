//! The people pages in a real browser (Debian chromium driven by npm playwright-core):
//! setup, sign-in, invite, accept, change a role, deactivate with confirmation. Screenshots at
//! desktop and 360 px are written under `target/screenshots/people-<backend>/` for review.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Bearer;
use crate::harness::{Backend, TestDb, TestServer, chromium, cli, node, node_dir, run_peer};
use crate::on_both_backends;

on_both_backends!(people_pages_work_in_a_browser);

/// The Node peers' folder, once playwright-core and chromium are known to be there.
pub fn browser_peers() -> PathBuf {
    let dir = node_dir();
    chromium();
    dir
}

async fn people_pages_work_in_a_browser(backend: Backend) {
    let dir = browser_peers();
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let line = server.wait_for_line("one-time link").await;
    let link = line.rsplit(' ').next().unwrap().to_owned();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/screenshots")
        .join(format!("people-{backend:?}").to_lowercase());
    let out = run_peer(
        &node(),
        &["browser-people.mjs"],
        &dir,
        &[
            ("BASE_URL", &server.url),
            ("SETUP_LINK", &link),
            ("SCREENSHOT_DIR", shots.to_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // What the browser did is what the server holds.
    let token = cli(
        &db,
        &["token", "create", "--user", "root", "--name", "check"],
        None,
    )
    .await;
    let root = Bearer::new(&server.url, token.stdout.trim());
    let ivy: Value = root
        .call(reqwest::Method::GET, "/api/v1/users/ivy", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ivy["role"].as_str(), ivy["is_active"].as_bool()),
        (Some("viewer"), Some(false)),
        "{ivy}"
    );
    for name in ["01-setup", "05-invited", "10-confirm-deactivate"] {
        for width in ["desktop", "360"] {
            assert!(
                shots.join(format!("{name}-{width}.png")).exists(),
                "{name}-{width}.png"
            );
        }
    }
}
