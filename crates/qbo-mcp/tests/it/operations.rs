//! Running qbo-mcp for years (docs/operations.md): `migrate --check`, refusing a database a
//! newer build migrated, upgrading a database the first release left, `backup` and `restore`
//! on SQLite (under concurrent writes, into a new data directory), and the `pg_dump` /
//! `pg_restore` recipe on PostgreSQL, each followed by a server that still serves everything.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use qbo_mcp::db;
use qbo_mcp::keys::{Sealer, SecretKey};
use qbo_mcp::on_db;
use qbo_sim::Simulator;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Row as _;

use crate::connections::{CRAIG, consent_as, simulator};
use crate::harness::{Backend, Db, TEST_KEY, TestDb, TestServer, cli, personal_token, run_peer};
use crate::on_both_backends;
use crate::people::{Bearer, Browser, add_person, first_admin};
use crate::replicas::{Answer, call_tool, connect_company, count_customers, replica};

/// The first release, 0.1.0, shipped the migrations up to and including this version
/// (docs/operations.md, "Upgrades").
const FIRST_RELEASE_LAST_MIGRATION: i64 = 400;

/// The rows the upgrade test writes with the first release's schema.
const FIRST_RELEASE_ROWS: &str = include_str!("../fixtures/release-0.1.0-rows.sql");

/// A migration version no build has: what a newer qbo-mcp would have applied.
const FUTURE_VERSION: i64 = 99_999;

/// Records a migration this build does not know, as a newer qbo-mcp would.
async fn apply_future_migration(db: &Db) {
    on_db!(db, pool => {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, $2, TRUE, $3, 0)",
        )
        .bind(FUTURE_VERSION)
        .bind("from a newer qbo-mcp")
        .bind(vec![0u8; 48])
        .execute(pool)
        .await
        .expect("record a future migration");
    });
}

on_both_backends!(
    migrate_check_lists_pending_migrations_without_applying,
    a_database_from_a_newer_build_is_refused,
    an_edited_migration_is_named,
    upgrading_from_the_first_release_keeps_every_row
);

async fn migrate_check_lists_pending_migrations_without_applying(backend: Backend) {
    let test = TestDb::fresh(backend).await;
    let all = db::Status::all_known(backend);

    let out = cli(&test, &["migrate", "--check"], None).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let listed: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(listed.len(), all.len(), "{}", out.stdout);
    assert!(listed[0].starts_with("0001 "), "{}", out.stdout);
    assert!(out.stderr.contains("pending"), "{}", out.stderr);
    // Nothing was applied (on SQLite, not even the file was made).
    match backend {
        Backend::Sqlite => assert!(!test.data_dir().join("qbo-mcp.db").exists()),
        Backend::Postgres => {
            let handle = Db::connect(&test.url).await.unwrap();
            assert!(db::status(&handle).await.unwrap().applied.is_empty());
            handle.close().await;
        }
    }

    // Half-way: only the newer ones are listed.
    let handle = Db::connect(&test.url).await.unwrap();
    db::migrate_to(&handle, 100).await.unwrap();
    let out = cli(&test, &["migrate", "--check"], None).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let listed: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(listed.len(), all.len() - 2, "{}", out.stdout);
    assert!(
        !out.stdout.contains("0001 ") && !out.stdout.contains("0100 "),
        "{}",
        out.stdout
    );
    assert_eq!(db::status(&handle).await.unwrap().applied, vec![1, 100]);

    let out = cli(&test, &["migrate"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = cli(&test, &["migrate", "--check"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("up to date"), "{}", out.stderr);
    handle.close().await;
}

/// An applied migration whose text differs from this build's is named, not a riddle.
async fn an_edited_migration_is_named(backend: Backend) {
    let test = TestDb::fresh(backend).await;
    let handle = test.connect().await;
    on_db!(&handle, pool => {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 1")
            .bind(vec![1u8; 48])
            .execute(pool)
            .await
            .unwrap();
    });
    handle.close().await;
    let out = cli(&test, &["migrate"], None).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Migration 1 was applied to this database from a different text"),
        "{}",
        out.stderr
    );
}

async fn a_database_from_a_newer_build_is_refused(backend: Backend) {
    let test = TestDb::fresh(backend).await;
    let handle = test.connect().await;
    apply_future_migration(&handle).await;
    handle.close().await;

    for args in [&["migrate", "--check"][..], &["migrate"], &["serve"]] {
        let out = cli(&test, args, None).await;
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("migrated by a newer qbo-mcp")
                && out.stderr.contains(&FUTURE_VERSION.to_string()),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// Every table of the database but sqlx's own, by name.
async fn tables(db: &Db) -> Vec<String> {
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

async fn columns(db: &Db, table: &str) -> Vec<String> {
    match db {
        Db::Sqlite(pool) => {
            sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(pool)
                .await
                .unwrap()
        }
        Db::Postgres(pool) => sqlx::query_scalar(
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

/// Every row of `table`, the given columns as text, in a stable order.
async fn rows(db: &Db, table: &str, columns: &[String]) -> Vec<Vec<Option<String>>> {
    let select = columns
        .iter()
        .map(|c| format!("CAST({c} AS TEXT)"))
        .collect::<Vec<_>>()
        .join(", ");
    let order = (1..=columns.len())
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {select} FROM {table} ORDER BY {order}");
    on_db!(db, pool => {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| {
                (0..columns.len())
                    .map(|i| row.try_get::<Option<String>, _>(i).unwrap())
                    .collect()
            })
            .collect()
    })
}

/// The first release's schema with a row (or more) in every table, upgraded to this build's:
/// every row is still there with every value it had, and a server on the upgraded database
/// serves the people it holds.
async fn upgrading_from_the_first_release_keeps_every_row(backend: Backend) {
    let test = TestDb::fresh(backend).await;
    let handle = Db::connect(&test.url).await.unwrap();
    db::migrate_to(&handle, FIRST_RELEASE_LAST_MIGRATION)
        .await
        .unwrap();
    on_db!(&handle, pool => {
        sqlx::raw_sql(FIRST_RELEASE_ROWS).execute(pool).await.unwrap();
    });
    let sealer = Sealer::new(&SecretKey::from_base64(TEST_KEY).unwrap());
    qbo_mcp::keys::check_key(&handle, &sealer).await.unwrap();

    let mut before = Vec::new();
    for table in tables(&handle).await {
        let cols = columns(&handle, &table).await;
        let content = rows(&handle, &table, &cols).await;
        assert!(
            !content.is_empty(),
            "the fixture leaves the first release's table {table} empty: add a row to tests/fixtures/release-0.1.0-rows.sql"
        );
        before.push((table, cols, content));
    }
    handle.close().await;

    let out = cli(&test, &["migrate"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let handle = Db::connect(&test.url).await.unwrap();
    assert!(db::status(&handle).await.unwrap().pending.is_empty());
    let now = tables(&handle).await;
    for (table, cols, content) in &before {
        assert!(now.contains(table), "the upgrade dropped the table {table}");
        let after = rows(&handle, table, cols).await;
        assert_eq!(&after, content, "rows of {table} changed in the upgrade");
    }
    handle.close().await;

    let server = TestServer::start(&test).await;
    let token = personal_token(&test, "ada").await;
    let users: Value = Bearer::new(&server.url, &token)
        .call(Method::GET, "/api/v1/users", None)
        .await
        .json()
        .await
        .unwrap();
    let text = users.to_string();
    assert!(
        text.contains("\"ada\"") && text.contains("\"bob\""),
        "{text}"
    );
}

/// Usernames the users API lists.
async fn usernames(server: &TestServer, token: &str) -> Vec<String> {
    let r = Bearer::new(&server.url, token)
        .call(Method::GET, "/api/v1/users", None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users in {v}"))
        .iter()
        .filter_map(|u| u["username"].as_str().map(str::to_owned))
        .collect()
}

/// A server whose admin `root` connected the company, with root's personal access token.
struct Connected {
    test: TestDb,
    sim: Simulator,
    server: TestServer,
    admin: Browser,
    token: String,
}

async fn connected(backend: Backend) -> Connected {
    let test = TestDb::fresh(backend).await;
    let sim = simulator(consent_as(CRAIG)).await;
    let server = replica(&test, &sim, None).await;
    let admin = first_admin(&server).await;
    connect_company(&admin).await;
    let token = personal_token(&test, "root").await;
    Connected {
        test,
        sim,
        server,
        admin,
        token,
    }
}

/// A `query` tool call on `server` with `token` answers from the company's books.
async fn query_works(server: &TestServer, token: &str) {
    match call_tool(
        &crate::harness::client(),
        &server.url,
        token,
        "query",
        count_customers(),
    )
    .await
    {
        Answer::Ok(v) => assert!(
            v["QueryResponse"]["totalCount"].as_i64().unwrap_or(0) > 0,
            "{v}"
        ),
        other => panic!("a tool call on {}: {other:?}", server.url),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A backup taken while people are being added, restored into a new data directory: a server
/// there has everyone added before the backup began, and the personal access token and the
/// company connection (sealed with the same secret key) still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_writes_restores_into_a_new_data_directory() {
    let Connected {
        test,
        sim,
        server: _server,
        admin,
        token,
    } = connected(Backend::Sqlite).await;

    // A writer adds people one after another and reports how many it has added.
    let (done_tx, mut done) = tokio::sync::watch::channel(0usize);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let writer = {
        let admin = admin.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !*stop.borrow() {
                add_person(&admin, &format!("writer-{n}"), "viewer").await;
                n += 1;
                done_tx.send_replace(n);
            }
            n
        })
    };
    done.wait_for(|n| *n >= 3).await.unwrap();
    let committed_before = *done.borrow();
    let file = test.data_dir().join("backups/qbo-mcp-backup.db");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    let out = cli(&test, &["backup", file.to_str().unwrap()], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("secret key"), "{}", out.stderr);
    assert_eq!(mode(&file), 0o600);
    // The writer goes on after the backup, then stops.
    let after_backup = *done.borrow();
    done.wait_for(|n| *n >= after_backup + 2).await.unwrap();
    stop_tx.send_replace(true);
    let written = writer.await.unwrap();

    let elsewhere = TestDb::fresh(Backend::Sqlite).await;
    let out = cli(&elsewhere, &["restore", file.to_str().unwrap()], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("Restored"), "{}", out.stderr);
    assert_eq!(mode(&elsewhere.data_dir().join("qbo-mcp.db")), 0o600);

    let restored = replica(&elsewhere, &sim, None).await;
    let names = usernames(&restored, &token).await;
    for n in 0..committed_before {
        assert!(
            names.contains(&format!("writer-{n}")),
            "writer-{n} was added before the backup began but is missing: {names:?}"
        );
    }
    assert!(names.contains(&"root".to_owned()), "{names:?}");
    let in_backup = names.iter().filter(|n| n.starts_with("writer-")).count();
    assert!(
        in_backup < written,
        "the backup holds {in_backup} of {written} people, some added after it finished"
    );
    query_works(&restored, &token).await;
}

/// `restore` checks the file before touching anything, refuses while a server uses the
/// database, and keeps the database it replaces; `backup` never overwrites.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_checks_the_file_and_refuses_a_running_server() {
    let test = TestDb::fresh(Backend::Sqlite).await;
    let server = TestServer::process(&test).await;
    let admin = first_admin(&server).await;
    add_person(&admin, "before", "viewer").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("good.db");
    let path = file.to_str().unwrap();
    assert_eq!(cli(&test, &["backup", path], None).await.code, 0);
    let out = cli(&test, &["backup", path], None).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);

    let out = cli(&test, &["restore", path], None).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("server is using the database"),
        "{}",
        out.stderr
    );
    add_person(&admin, "after", "viewer").await;

    // Files that are not a backup this build can restore, each refused with nothing changed.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).unwrap();
    let truncated = dir.path().join("truncated.db");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let empty = dir.path().join("empty.db");
    let handle = Db::connect(&format!("sqlite://{}", empty.display()))
        .await
        .unwrap();
    handle.close().await;
    let newer = dir.path().join("newer.db");
    std::fs::copy(&file, &newer).unwrap();
    let handle = Db::connect(&format!("sqlite://{}", newer.display()))
        .await
        .unwrap();
    apply_future_migration(&handle).await;
    handle.close().await;
    server.terminate().await;
    for (bad, why) in [
        (&garbage, "not a qbo-mcp backup"),
        (&truncated, "not a qbo-mcp backup"),
        (&empty, "no qbo-mcp schema version"),
        (&newer, "migrated by a newer qbo-mcp"),
    ] {
        let out = cli(&test, &["restore", bad.to_str().unwrap()], None).await;
        assert_eq!(out.code, 1, "{}: {}", bad.display(), out.stderr);
        assert!(
            out.stderr.contains(why),
            "{}: {}",
            bad.display(),
            out.stderr
        );
    }
    // Another key than the backup's.
    let mut env = test.env();
    env.retain(|(k, _)| k != "QBO_MCP_SECRET_KEY");
    env.push((
        "QBO_MCP_SECRET_KEY".into(),
        "YW5vdGhlci1rZXktZm9yLXFiby1tY3AtdGVzdHMtMzI=".into(),
    ));
    let out = crate::harness::cli_with_env(env, test.data_dir(), &["restore", path], None).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("secret key id"), "{}", out.stderr);
    let listed = std::fs::read_dir(test.data_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(!listed.iter().any(|n| n.contains("replaced")), "{listed:?}");

    let out = cli(&test, &["restore", path], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let aside = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("The database it replaced is kept at "))
        .unwrap_or_else(|| panic!("{}", out.stderr))
        .trim_end_matches('.')
        .to_owned();
    let server = TestServer::start(&test).await;
    let token = personal_token(&test, "root").await;
    let names = usernames(&server, &token).await;
    assert!(names.contains(&"before".to_owned()), "{names:?}");
    assert!(!names.contains(&"after".to_owned()), "{names:?}");
    // The replaced database is whole, with what was added after the backup.
    let kept = Db::connect(&format!("sqlite://{aside}")).await.unwrap();
    let after: i64 = on_db!(&kept, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE username = 'after'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(after, 1);
    kept.close().await;
}

/// The PostgreSQL recipe of docs/operations.md ("Backup and restore"): `pg_dump` of the live
/// database, `pg_restore` into an empty one, and a server there serves everyone, the token and
/// the company connection. `qbo-mcp backup` points PostgreSQL users at the recipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pg_dump_recipe_restores_everything() {
    let Connected {
        test,
        sim,
        server,
        admin,
        token,
    } = connected(Backend::Postgres).await;
    add_person(&admin, "dana", "bookkeeper").await;

    let out = cli(&test, &["backup", "/tmp/never-written.db"], None).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("pg_dump"), "{}", out.stderr);

    // The commands below are the ones docs/operations.md gives.
    let guide = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md"),
    )
    .unwrap();
    for recipe in [
        "pg_dump --format=custom --file ",
        "pg_restore --no-owner --exit-on-error --dbname ",
    ] {
        assert!(guide.contains(recipe), "docs/operations.md lost {recipe:?}");
    }
    let dump = test.data_dir().join("qbo-mcp.dump");
    let dump = dump.to_str().unwrap();
    let out = run_peer(
        Path::new("pg_dump"),
        &["--format=custom", "--file", dump, &test.url],
        test.data_dir(),
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "pg_dump: {}", out.stderr);
    let elsewhere = TestDb::fresh(Backend::Postgres).await;
    let out = run_peer(
        Path::new("pg_restore"),
        &[
            "--no-owner",
            "--exit-on-error",
            "--dbname",
            &elsewhere.url,
            dump,
        ],
        test.data_dir(),
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "pg_restore: {}", out.stderr);
    server.terminate().await;

    let restored = replica(&elsewhere, &sim, None).await;
    let names = usernames(&restored, &token).await;
    assert!(
        names.contains(&"dana".to_owned()) && names.contains(&"root".to_owned()),
        "{names:?}"
    );
    // Rows added after the restore get fresh ids (the identity sequences came along).
    let admin = crate::people::Browser::sign_in(&restored.url, "root", crate::people::PASSWORD)
        .await
        .expect("root signs in on the restored server");
    add_person(&admin, "erin", "viewer").await;
    query_works(&restored, &token).await;
}

on_both_backends!(audit_prune_keeps_the_retention_and_is_audited);

/// Audit entries `days` ago, one per action name.
async fn entries_aged(db: &Db, entries: &[(&str, i64)]) {
    let now = chrono::Utc::now().timestamp();
    for (action, days) in entries {
        on_db!(db, pool => {
            sqlx::query(
                "INSERT INTO audit_entries (at, username, action, outcome, details) VALUES ($1, 'root', $2, 'ok', '{}')",
            )
            .bind(now - days * 86_400)
            .bind(*action)
            .execute(pool)
            .await
            .unwrap();
        });
    }
}

/// The actions of the audit log, as `qbo-mcp audit --json` prints them (newest first).
async fn audit_actions(test: &TestDb) -> Vec<Value> {
    let out = cli(test, &["audit", "--json"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn audit_prune_keeps_the_retention_and_is_audited(backend: Backend) {
    let test = TestDb::fresh(backend).await;
    let handle = test.connect().await;
    entries_aged(
        &handle,
        &[("test.old", 400), ("test.middle", 100), ("test.recent", 1)],
    )
    .await;
    handle.close().await;
    let day = |days: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    };
    let with_retention = |days: &str| {
        let mut env = test.env();
        env.push(("QBO_MCP_AUDIT_RETENTION_DAYS".into(), days.into()));
        env
    };
    let actions = |entries: &[Value]| {
        entries
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // The default retention (365 days) refuses a cut-off 200 days ago; nothing is removed.
    let out = cli(&test, &["audit", "prune", "--before", &day(200)], None).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("365 days") && out.stderr.contains("QBO_MCP_AUDIT_RETENTION_DAYS"),
        "{}",
        out.stderr
    );
    let out = cli(&test, &["audit", "prune", "--before", "last tuesday"], None).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--before"), "{}", out.stderr);
    assert_eq!(audit_actions(&test).await.len(), 3);

    // With 30 days: a cut-off 200 days ago removes only the 400-day-old entry, and says so.
    let out = crate::harness::cli_with_env(
        with_retention("30"),
        test.data_dir(),
        &["audit", "prune", "--before", &day(200)],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("Removed 1 audit entries"),
        "{}",
        out.stderr
    );
    let entries = audit_actions(&test).await;
    assert_eq!(
        actions(&entries),
        ["audit.prune", "test.recent", "test.middle"]
    );
    assert_eq!(entries[0]["username"], "console");
    assert_eq!(entries[0]["details"]["removed"], 1);
    assert_eq!(entries[0]["details"]["retention_days"], 30);

    // Without --before: everything older than the retention; the younger entries stay.
    let out = crate::harness::cli_with_env(
        with_retention("30"),
        test.data_dir(),
        &["audit", "prune"],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        actions(&audit_actions(&test).await),
        ["audit.prune", "audit.prune", "test.recent"]
    );
}

/// Every metric the example alert rules in deploy/ use is one the server records (or
/// Prometheus' own `up`), so a renamed metric cannot leave an alert that never fires.
#[test]
fn the_alert_rules_use_metrics_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules =
        std::fs::read_to_string(root.join("../../deploy/prometheus/qbo-mcp-alerts.yml")).unwrap();
    let mut sources = String::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut used = Vec::new();
    for line in rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:") || l.starts_with("          "))
    {
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let metric = ["_total", "_seconds_bucket", "_waiting"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix).map(|stem| (stem, *suffix)));
            if let Some((stem, suffix)) = metric {
                let name = match suffix {
                    "_seconds_bucket" => format!("{stem}_seconds"),
                    _ => word.to_owned(),
                };
                used.push(name);
            }
        }
    }
    assert!(used.len() >= 6, "{used:?}");
    for name in used {
        assert!(
            sources.contains(&format!("\"{name}\"")),
            "deploy/prometheus/qbo-mcp-alerts.yml uses {name}, which nothing in src records"
        );
    }
}
