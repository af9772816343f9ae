//! Company connections against the simulator, at the library level: connect through Intuit's
//! code flow, shared refresh under the cross-replica lock, invalid_grant handling, rotation,
//! pacing and sealed storage. (End-to-end tests over HTTP and MCP live beside the tools.)

use std::net::SocketAddr;
use std::sync::Arc;

use qbo_mcp::config::{IntuitApp, IntuitEnvironment};
use qbo_mcp::keys::{Sealer, SecretKey};
use qbo_mcp::quickbooks::connect::{AdminRef, Callback, ConnectError};
use qbo_mcp::quickbooks::{ApiRequest, QboError, QuickBooks, Status};
use qbo_mcp::secret::Secret;
use qbo_sim::{AutoConsent, SimConfig, Simulator};
use serde_json::{Value, json};

use crate::harness::{Backend, Db, TEST_KEY, TestDb, cli, cli_with_env, client};
use crate::on_both_backends;

pub const CRAIG: &str = "craig@craigsdesign.example";
pub const REALM: &str = "9341453050298464";

pub async fn simulator(config: SimConfig) -> Simulator {
    Simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts")
}

pub fn consent_as(email: &str) -> SimConfig {
    SimConfig {
        auto_consent: Some(AutoConsent {
            email: email.to_owned(),
            realm_id: Some(REALM.to_owned()),
        }),
        ..SimConfig::default()
    }
}

pub async fn sim_config(sim: &Simulator, patch: Value) {
    let r = client()
        .post(format!("{}/_sim/config", sim.base_url()))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

pub async fn sim_post(sim: &Simulator, path: &str, body: Value) {
    let r = client()
        .post(format!("{}{path}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{path}: {}",
        r.text().await.unwrap()
    );
}

pub fn stat(sim: &Simulator, name: &str) -> i64 {
    sim.stats()[name]
        .as_i64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

struct Setup {
    db: TestDb,
    qb: Arc<QuickBooks>,
    sim: Simulator,
    db_url: String,
    backend: Backend,
    dir: std::path::PathBuf,
}

async fn setup(backend: Backend, sim_config: SimConfig) -> Setup {
    let test_db = TestDb::fresh(backend).await;
    let db = test_db.connect().await;
    let sim = simulator(sim_config).await;
    let qb = quickbooks(db, &test_key(), &sim);
    Setup {
        db_url: test_db.url.clone(),
        dir: test_db.dir.path().to_owned(),
        db: test_db,
        qb: Arc::new(qb),
        sim,
        backend,
    }
}

/// The QuickBooks side of a server on `db` with `key`, talking to `sim` as Intuit.
fn quickbooks(db: Db, key: &SecretKey, sim: &Simulator) -> QuickBooks {
    QuickBooks::new(
        db,
        Arc::new(Sealer::new(key)),
        IntuitApp {
            client_id: "qbo-mcp-test-app".into(),
            client_secret: Secret::new("test-secret".into()),
        },
        &IntuitEnvironment::Simulator(url::Url::parse(&sim.base_url()).unwrap()),
        &url::Url::parse("http://127.0.0.1:9").unwrap(),
        None,
    )
    .unwrap()
}

/// The key the CLI and servers get (`harness::TEST_KEY`), so they open what tests sealed.
fn test_key() -> SecretKey {
    SecretKey::from_base64(TEST_KEY).unwrap()
}

pub fn admin(id: i64, name: &str) -> AdminRef {
    AdminRef {
        person_id: id,
        username: name.into(),
    }
}

/// Follows Intuit's authorize URL (the simulator consents at once) and returns the callback.
pub async fn authorize(url: &url::Url) -> Callback {
    let r = client().get(url.as_str()).send().await.unwrap();
    assert!(r.status().is_redirection(), "authorize: {}", r.status());
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    Callback {
        code: q.get("code").cloned(),
        state: q.get("state").cloned(),
        realm_id: q.get("realmId").cloned(),
        error: q.get("error").cloned(),
    }
}

async fn connect(s: &Setup) {
    let me = admin(1, "alice");
    let url = s.qb.start_connect(&me, None).await.unwrap();
    let done =
        s.qb.finish_connect(&me, authorize(&url).await)
            .await
            .unwrap();
    assert_eq!(done.realm_id, REALM);
    assert_eq!(done.name, "Craig's Design and Landscaping Services");
}

async fn count_customers(qb: &QuickBooks) -> Result<i64, QboError> {
    let r = qb
        .call(
            REALM,
            ApiRequest::get("query").param("query", "SELECT COUNT(*) FROM Customer"),
        )
        .await?;
    Ok(r.body["QueryResponse"]["totalCount"].as_i64().unwrap_or(-1))
}

on_both_backends!(
    connect_and_call,
    one_refresh_for_many_callers,
    invalid_grant_marks_needs_reconnect,
    a_day_of_rotations_keeps_the_newest_token,
    one_connect_flow_at_a_time,
    tokens_are_never_stored_in_clear,
    operations_on_the_books,
    writes_are_never_duplicated_by_retries,
    company_commands_and_key_rotation,
    rotating_the_key_file,
    quickbooks_client_reads_every_intuit_error_shape,
);

/// Intuit's error answers in every shape it sends them (see docs/simulator.md's fidelity
/// table): both 401s, JSON or XML, are refreshed once and then mean "reconnect"; an XML fault
/// is a typed fault; the 003100 403 marks the company for an admin to reconnect.
async fn quickbooks_client_reads_every_intuit_error_shape(backend: Backend) {
    let s = setup(backend, consent_as(CRAIG)).await;
    connect(&s).await;
    let inject = |fault: &'static str, count: u32| {
        sim_post(
            &s.sim,
            "/_sim/inject-fault",
            json!({"fault": fault, "count": count}),
        )
    };
    let shapes = [
        "authentication_failed",
        "authentication_fault",
        "authentication_fault_xml",
    ];
    for shape in shapes {
        let refreshes = stat(&s.sim, "refresh_requests");
        inject(shape, 1).await;
        let answer = count_customers(&s.qb).await;
        assert!(
            answer.is_ok_and(|n| n > 0),
            "{shape}: refreshed and retried"
        );
        assert_eq!(stat(&s.sim, "refresh_requests") - refreshes, 1, "{shape}");
    }
    for shape in shapes {
        inject(shape, 2).await;
        let err = count_customers(&s.qb).await.unwrap_err();
        assert!(
            matches!(err, QboError::NeedsReconnect { .. }),
            "{shape}: {err:?}"
        );
    }
    inject("validation_xml", 1).await;
    match count_customers(&s.qb).await.unwrap_err() {
        QboError::Fault { fault, intuit_tid } => {
            assert_eq!(
                (fault.kind.as_str(), fault.code.as_str()),
                ("ValidationFault", "2010")
            );
            assert!(fault.message.contains("invalid or unsupported property"));
            assert!(intuit_tid.is_some_and(|t| t.starts_with("1-")));
        }
        other => panic!("an XML fault is a typed fault: {other:?}"),
    }
    inject("system_xml", 1).await;
    match count_customers(&s.qb).await.unwrap_err() {
        QboError::Fault { fault, .. } => assert_eq!(fault.kind, "SystemFault"),
        other => panic!("an XML system fault is a typed fault: {other:?}"),
    }
    assert!(
        count_customers(&s.qb).await.is_ok(),
        "the company still works"
    );
    inject("authorization_failed", 1).await;
    let err = count_customers(&s.qb).await.unwrap_err();
    assert!(matches!(err, QboError::NeedsReconnect { .. }), "{err:?}");
    let company = s.qb.company(REALM).await.unwrap().unwrap();
    assert_eq!(company.status, Status::NeedsReconnect);
}

async fn connect_and_call(backend: Backend) {
    let s = setup(backend, consent_as(CRAIG)).await;
    connect(&s).await;
    let company = s.qb.company(REALM).await.unwrap().unwrap();
    assert_eq!(company.status, Status::Connected);
    assert_eq!(company.connected_by.as_deref(), Some("alice"));
    assert_eq!(company.intuit_user_email.as_deref(), Some(CRAIG));
    assert!(count_customers(&s.qb).await.unwrap() > 0);
    // A write carries a requestid and minorversion; the answer is the entity.
    let created =
        s.qb.call(
            REALM,
            ApiRequest::post("customer", json!({"DisplayName": "Acme Test Ltd"})),
        )
        .await
        .unwrap();
    assert_eq!(created.body["Customer"]["DisplayName"], "Acme Test Ltd");
    assert!(created.request_id.is_some());
    // A QuickBooks fault becomes a typed error.
    let err =
        s.qb.call(
            REALM,
            ApiRequest::get("query").param("query", "SELECT * FROM Nope"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, QboError::Fault { .. }), "{err:?}");
    assert_eq!(stat(&s.sim, "authorize_requests"), 1);
    assert_eq!(stat(&s.sim, "code_exchanges"), 1);
}

async fn one_refresh_for_many_callers(backend: Backend) {
    let s = setup(backend, consent_as(CRAIG)).await;
    connect(&s).await;
    sim_post(&s.sim, "/_sim/expire-access-tokens", json!({})).await;
    let before = stat(&s.sim, "refresh_requests");
    let mut calls = Vec::new();
    for _ in 0..40 {
        let qb = s.qb.clone();
        calls.push(tokio::spawn(async move { count_customers(&qb).await }));
    }
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(stat(&s.sim, "refresh_requests") - before, 1);
    assert_eq!(stat(&s.sim, "throttled"), 0);
    assert!(stat(&s.sim, "max_in_flight") <= 10);
}

async fn invalid_grant_marks_needs_reconnect(backend: Backend) {
    let s = setup(backend, consent_as(CRAIG)).await;
    connect(&s).await;
    sim_config(&s.sim, json!({"force_invalid_grant": true})).await;
    sim_post(&s.sim, "/_sim/expire-access-tokens", json!({})).await;
    let err = count_customers(&s.qb).await.unwrap_err();
    assert!(matches!(err, QboError::NeedsReconnect { .. }), "{err:?}");
    // Re-read and retried once: two refusals, then no more attempts.
    assert_eq!(stat(&s.sim, "invalid_grant"), 2);
    let company = s.qb.company(REALM).await.unwrap().unwrap();
    assert_eq!(company.status, Status::NeedsReconnect);
    assert!(count_customers(&s.qb).await.is_err());
    assert_eq!(stat(&s.sim, "invalid_grant"), 2, "no refresh once marked");
    // An admin reconnects and all is well again.
    sim_config(&s.sim, json!({"force_invalid_grant": false})).await;
    let me = admin(1, "alice");
    let url = s.qb.start_connect(&me, Some(REALM)).await.unwrap();
    s.qb.finish_connect(&me, authorize(&url).await)
        .await
        .unwrap();
    let after = count_customers(&s.qb).await;
    assert!(after.is_ok(), "{after:?} {}", s.sim.stats());
}

async fn a_day_of_rotations_keeps_the_newest_token(backend: Backend) {
    let mut config = consent_as(CRAIG);
    config.refresh_grace_s = 0;
    let s = setup(backend, config).await;
    connect(&s).await;
    for _hour in 0..30 {
        sim_post(&s.sim, "/_sim/advance-clock", json!({"seconds": 3600})).await;
        sim_post(&s.sim, "/_sim/expire-access-tokens", json!({})).await;
        count_customers(&s.qb).await.unwrap();
    }
    assert!(stat(&s.sim, "refresh_rotations") >= 1, "{}", s.sim.stats());
    assert_eq!(stat(&s.sim, "invalid_grant"), 0);
    assert_eq!(stat(&s.sim, "refresh_requests"), 30);
}

async fn one_connect_flow_at_a_time(backend: Backend) {
    let s = setup(backend, consent_as(CRAIG)).await;
    let (alice, bob) = (admin(1, "alice"), admin(2, "bob"));
    let (a, b) = tokio::join!(
        s.qb.start_connect(&alice, None),
        s.qb.start_connect(&bob, None)
    );
    let started = [a.is_ok(), b.is_ok()];
    assert_eq!(
        started.iter().filter(|ok| **ok).count(),
        1,
        "exactly one flow"
    );
    let (winner, loser, url, refused) = match (a, b) {
        (Ok(u), Err(e)) => (&alice, &bob, u, e),
        (Err(e), Ok(u)) => (&bob, &alice, u, e),
        _ => unreachable!(),
    };
    assert!(
        matches!(refused, ConnectError::InProgress { .. }),
        "{refused:?}"
    );
    let callback = authorize(&url).await;
    // The other admin cannot finish it, and a replay is refused.
    let stolen =
        s.qb.finish_connect(
            loser,
            Callback {
                code: callback.code.clone(),
                state: callback.state.clone(),
                realm_id: callback.realm_id.clone(),
                error: None,
            },
        )
        .await;
    assert!(
        matches!(stolen, Err(ConnectError::WrongPerson)),
        "{stolen:?}"
    );
    let replay = Callback {
        code: callback.code.clone(),
        state: callback.state.clone(),
        realm_id: callback.realm_id.clone(),
        error: None,
    };
    s.qb.finish_connect(winner, callback).await.unwrap();
    assert!(matches!(
        s.qb.finish_connect(winner, replay).await,
        Err(ConnectError::InvalidState)
    ));
    assert_eq!(stat(&s.sim, "authorize_requests"), 1);
    assert_eq!(stat(&s.sim, "admin_changes"), 0);
}

async fn tokens_are_never_stored_in_clear(backend: Backend) {
    let s = setup(backend, consent_as(CRAIG)).await;
    connect(&s).await;
    sim_post(&s.sim, "/_sim/expire-access-tokens", json!({})).await;
    count_customers(&s.qb).await.unwrap();
    let db = qbo_mcp::db::Db::connect(&s.db_url).await.unwrap();
    let stored = qbo_mcp::quickbooks::store::tokens(&db, &Sealer::new(&test_key()), REALM)
        .await
        .unwrap();
    let access = stored.access_token.expose().clone();
    let refresh = stored.refresh_token.expose().clone();
    assert!(access.len() >= 16 && refresh.len() >= 16);
    let dump: Vec<u8> = match s.backend {
        Backend::Sqlite => {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(&s.dir).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().contains("qbo-mcp.db") {
                    bytes.extend(std::fs::read(&path).unwrap());
                }
            }
            bytes
        }
        Backend::Postgres => {
            let out = std::process::Command::new("pg_dump")
                .arg(&s.db_url)
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    };
    assert!(dump.len() > 1000);
    let hay = String::from_utf8_lossy(&dump);
    assert!(hay.contains(REALM), "the dump holds the company");
    assert!(!hay.contains(&access), "an access token is stored in clear");
    assert!(
        !hay.contains(&refresh),
        "a refresh token is stored in clear"
    );
}

async fn operations_on_the_books(backend: Backend) {
    use qbo_mcp::quickbooks::operations::{DeleteMode, ReportArgs};
    let s = setup(backend, consent_as(CRAIG)).await;
    connect(&s).await;
    let qb = &s.qb;
    let info = qb.company_info(REALM).await.unwrap();
    assert_eq!(
        info.value["CompanyInfo"]["CompanyName"],
        "Craig's Design and Landscaping Services"
    );

    // fetch_all gathers every page: compare with COUNT(*).
    let total = count_customers(qb).await.unwrap() as usize;
    let all = qb
        .query(REALM, "SELECT * FROM Customer", true)
        .await
        .unwrap();
    let rows = all.value["QueryResponse"]["Customer"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(rows, total);
    let bad = qb
        .query(REALM, "DELETE FROM Customer", false)
        .await
        .unwrap_err();
    assert!(matches!(bad, QboError::InvalidArgument { .. }));

    // Create, sparse update without a SyncToken (read for us), and nothing else is nulled.
    let created = qb
        .create_entity(
            REALM,
            "Customer",
            &json!({"DisplayName": "Sparse Co", "CompanyName": "Sparse Company"}),
            false,
        )
        .await
        .unwrap();
    let id = created.value["Customer"]["Id"].as_str().unwrap().to_owned();
    let dry = qb
        .update_entity(REALM, "Customer", &id, &json!({"Notes": "x"}), None, true)
        .await
        .unwrap();
    assert_eq!(dry.value["dry_run"], true);
    assert_eq!(dry.value["would_send"]["body"]["sparse"], true);
    let updated = qb
        .update_entity(
            REALM,
            "Customer",
            &id,
            &json!({"Notes": "VIP"}),
            None,
            false,
        )
        .await
        .unwrap();
    assert_eq!(updated.value["Customer"]["Notes"], "VIP");
    assert_eq!(updated.value["Customer"]["CompanyName"], "Sparse Company");
    // A stale SyncToken is QuickBooks' 5010, as a typed fault.
    let stale = qb
        .update_entity(
            REALM,
            "Customer",
            &id,
            &json!({"Notes": "y"}),
            Some("0"),
            false,
        )
        .await
        .unwrap_err();
    match stale {
        QboError::Fault { fault, .. } => assert_eq!(fault.code, "5010"),
        other => panic!("{other:?}"),
    }
    // Name lists are deactivated, never deleted.
    let refused = qb
        .delete_entity(REALM, "Customer", &id, Some(DeleteMode::Delete))
        .await;
    assert!(matches!(refused, Err(QboError::InvalidArgument { .. })));
    let gone = qb
        .delete_entity(REALM, "Customer", &id, None)
        .await
        .unwrap();
    assert_eq!(gone.value["Customer"]["Active"], false);

    // Reports carry their own summary totals.
    let report = qb
        .run_report(
            REALM,
            &ReportArgs {
                report: "ProfitAndLoss".into(),
                ..ReportArgs::default()
            },
        )
        .await
        .unwrap();
    assert!(
        !report.value["totals"].as_array().unwrap().is_empty(),
        "{}",
        report.value
    );
    let invoices = qb
        .query(REALM, "SELECT * FROM Invoice MAXRESULTS 1", false)
        .await
        .unwrap();
    let invoice_id = invoices.value["QueryResponse"]["Invoice"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    qb.send(REALM, "Invoice", &invoice_id, Some("books@example.com"))
        .await
        .unwrap();
    let changes = qb
        .changes_since(
            REALM,
            &["Customer".to_owned()],
            &chrono::Utc::now().date_naive().to_string(),
        )
        .await
        .unwrap();
    assert!(
        changes.value.to_string().contains("Sparse Co"),
        "{}",
        changes.value
    );
}

/// 30% of writes are applied and then answered 503: the retry carries the same requestid,
/// so every entity exists exactly once.
async fn writes_are_never_duplicated_by_retries(backend: Backend) {
    let s = setup(backend, consent_as(CRAIG)).await;
    connect(&s).await;
    sim_config(&s.sim, json!({"write_error_rate": 0.3})).await;
    let mut outcomes = Vec::new();
    for i in 0..20 {
        let name = format!("Retry Customer {i}");
        outcomes.push((
            name.clone(),
            s.qb.create_entity(REALM, "Customer", &json!({"DisplayName": name}), false)
                .await,
        ));
    }
    sim_config(&s.sim, json!({"write_error_rate": 0.0})).await;
    for (name, outcome) in outcomes {
        if let Err(e) = &outcome {
            assert!(e.retryable(), "{name}: {e:?}");
        }
        let found =
            s.qb.query(
                REALM,
                &format!("SELECT COUNT(*) FROM Customer WHERE DisplayName = '{name}'"),
                false,
            )
            .await
            .unwrap();
        let n = found.value["QueryResponse"]["totalCount"].as_i64().unwrap();
        if outcome.is_ok() {
            assert_eq!(n, 1, "{name} was not created");
        }
        assert!(n <= 1, "{name} was created {n} times");
    }
    assert!(stat(&s.sim, "faults_injected") > 0, "{}", s.sim.stats());
}

/// The environment of a command-line run that uses the simulator as Intuit.
fn cli_env(s: &Setup, key: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        s.db.env()
            .into_iter()
            .filter(|(k, _)| k != "QBO_MCP_SECRET_KEY")
            .collect();
    env.extend([
        ("QBO_MCP_SECRET_KEY".into(), key.to_owned()),
        ("QBO_MCP_INTUIT_CLIENT_ID".into(), "qbo-mcp-test-app".into()),
        ("QBO_MCP_INTUIT_CLIENT_SECRET".into(), "test-secret".into()),
        ("QBO_MCP_INTUIT_ENVIRONMENT".into(), s.sim.base_url()),
    ]);
    env
}

/// `company list`, `rotate-key` (key in the environment) and `company disconnect`.
async fn company_commands_and_key_rotation(backend: Backend) {
    let s = setup(backend, consent_as(CRAIG)).await;
    connect(&s).await;
    let dir = s.db.dir.path().to_owned();

    let list = cli_with_env(cli_env(&s, TEST_KEY), &dir, &["company", "list"], None).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout.contains(REALM) && list.stdout.contains("connected"),
        "{}",
        list.stdout
    );

    let rotated = cli_with_env(cli_env(&s, TEST_KEY), &dir, &["rotate-key"], None).await;
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    let new_key = rotated.stdout.trim().to_owned();
    let new = SecretKey::from_base64(&new_key).expect("the new key alone on stdout");
    assert_ne!(new.id(), test_key().id());
    assert!(
        rotated.stderr.contains("QBO_MCP_SECRET_KEY"),
        "{}",
        rotated.stderr
    );

    // The tokens are sealed under the new key now: the old key opens nothing…
    let err = count_customers(&s.qb).await.unwrap_err();
    assert!(matches!(err, QboError::Internal(_)), "{err:?}");
    let old = cli_with_env(cli_env(&s, TEST_KEY), &dir, &["company", "list"], None).await;
    assert_ne!(old.code, 0);
    assert!(
        old.stderr
            .contains("is not the key this database was sealed with"),
        "{}",
        old.stderr
    );
    // …and a server on the new key uses and refreshes the same connection.
    let db = Db::connect(&s.db_url).await.unwrap();
    let renewed = quickbooks(db, &new, &s.sim);
    sim_post(&s.sim, "/_sim/expire-access-tokens", json!({})).await;
    assert!(count_customers(&renewed).await.unwrap() > 0);
    assert_eq!(stat(&s.sim, "invalid_grant"), 0);

    let bad = cli_with_env(
        cli_env(&s, &new_key),
        &dir,
        &["company", "disconnect", "12x"],
        None,
    )
    .await;
    assert_ne!(bad.code, 0);
    let gone = cli_with_env(
        cli_env(&s, &new_key),
        &dir,
        &["company", "disconnect", "4242"],
        None,
    )
    .await;
    assert_ne!(gone.code, 0);
    assert!(
        gone.stderr.contains("There is no company 4242"),
        "{}",
        gone.stderr
    );
    let done = cli_with_env(
        cli_env(&s, &new_key),
        &dir,
        &["company", "disconnect", REALM],
        None,
    )
    .await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(done.stderr.contains("Intuit revoked"), "{}", done.stderr);
    assert_eq!(stat(&s.sim, "revocations"), 1);
    let err = count_customers(&renewed).await.unwrap_err();
    assert!(matches!(err, QboError::NotConnected { .. }), "{err:?}");

    let list = cli_with_env(
        cli_env(&s, &new_key),
        &dir,
        &["company", "list", "--json"],
        None,
    )
    .await;
    let row: Value = serde_json::from_str(list.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(row["status"], "disconnected");
    let audit = cli_with_env(cli_env(&s, &new_key), &dir, &["audit", "--json"], None).await;
    let actions: Vec<(String, String)> = audit
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| {
            (
                e["username"].as_str().unwrap_or("-").to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("console".into(), "key.rotate".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("console".into(), "company.disconnect".into())),
        "{actions:?}"
    );
}

/// `rotate-key` with the key in the data directory's `secret.key`: the file holds the new key
/// afterwards, nothing is printed, and a malformed key on stdin changes nothing.
async fn rotating_the_key_file(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let env: Vec<(String, String)> = db
        .env()
        .into_iter()
        .filter(|(k, _)| k != "QBO_MCP_SECRET_KEY")
        .collect();
    let dir = db.dir.path().to_owned();
    let first = cli_with_env(env.clone(), &dir, &["company", "list"], None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let key_file = dir.join("secret.key");
    let before = std::fs::read_to_string(&key_file).unwrap();

    let bad = cli_with_env(
        env.clone(),
        &dir,
        &["rotate-key", "--new-key-stdin"],
        Some("short"),
    )
    .await;
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("not 32 bytes"), "{}", bad.stderr);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), before);

    let rotated = cli_with_env(env.clone(), &dir, &["rotate-key"], None).await;
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    assert_eq!(rotated.stdout, "", "the key stays in the file");
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(after, before);
    assert!(!dir.join("secret.key.new").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = cli(&db, &["company", "list"], None).await;
    assert_ne!(again.code, 0, "the test key is retired now");
    let ok = cli_with_env(env, &dir, &["company", "list"], None).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}
