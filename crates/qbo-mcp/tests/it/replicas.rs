//! Company connections across server processes (docs/connections.md), over HTTP and MCP against an
//! external simulator playing Intuit: replicas on one database refresh a company's tokens once
//! for a storm of tool calls, lose nothing when one dies at any step of a refresh, stay
//! together inside Intuit's limits, and never send anyone but the connecting admin to Intuit.

use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

use qbo_sim::{SimConfig, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::connections::{CRAIG, REALM, consent_as, sim_config, sim_post, simulator, stat};
use crate::harness::{Backend, TestDb, TestServer, client, personal_token};
use crate::on_both_backends;
use crate::people::{Browser, PASSWORD, add_person, first_admin, token_for};
use crate::refusals::{REDIRECT, VERIFIER, code_for, exchange};

/// A query that costs exactly one Accounting API request.
pub fn count_customers() -> Value {
    json!({"query": "SELECT COUNT(*) FROM Customer"})
}

/// The same count as a query of its own for call `i`: identical reads in flight at once
/// share one request (docs/benchmarks.md, "Tool calls under concurrency"), and these tests
/// are about many requests.
fn count_customers_for(i: usize) -> Value {
    json!({"query": format!("SELECT COUNT(*) FROM Customer WHERE DisplayName > '0 call {i}'")})
}

/// Starts a replica that uses the simulator as its Intuit (any client id and secret do).
pub async fn replica(db: &TestDb, sim: &Simulator, fault_point: Option<&str>) -> TestServer {
    let mut builder = TestServer::builder(db)
        .env("QBO_MCP_INTUIT_CLIENT_ID", "qbo-mcp-replicas")
        .env("QBO_MCP_INTUIT_CLIENT_SECRET", "replicas-secret")
        .env("QBO_MCP_INTUIT_ENVIRONMENT", &sim.base_url());
    if let Some(point) = fault_point {
        builder = builder.env("QBO_MCP_TEST_FAULT_POINT", point);
    }
    // Replicas are processes, as in production: each with its own pools and pacing.
    builder.process().start().await
}

/// The company's row in `GET /api/v1/companies`.
async fn company(admin: &Browser) -> Value {
    let list: Value = admin
        .call(Method::GET, "/api/v1/companies", None)
        .await
        .json()
        .await
        .unwrap();
    list["companies"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["realm_id"] == REALM))
        .cloned()
        .unwrap_or_else(|| panic!("no company {REALM}: {list}"))
}

/// The admin connects the company through the server they are signed in to: the connect API,
/// Intuit's authorize URL (the simulator consents at once as Craig), then the callback.
pub async fn connect_company(admin: &Browser) {
    let r = admin
        .call(Method::POST, "/api/v1/companies/connect", None)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    let authorize = body["authorize_url"].as_str().unwrap().to_owned();
    let r = admin.client.get(&authorize).send().await.unwrap();
    assert!(
        r.status().is_redirection(),
        "Intuit authorize: {}",
        r.status()
    );
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&admin.base), "{callback}");
    crate::companies::finish_connect(admin, &callback).await;
    let c = company(admin).await;
    assert_eq!(c["status"], "connected", "{c}");
}

/// A client for many tool calls at once: a call may wait for its turn at QuickBooks twice
/// (again after a forced refresh), longer than the harness client's 60 s.
fn patient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .expect("client")
}

/// How a tool call ended.
#[derive(Debug)]
pub enum Answer {
    /// The tool's structured result.
    Ok(Value),
    /// A tool error that says to retry (our pacing queue, or QuickBooks unavailable).
    Retryable(String),
    /// Anything else: a tool error, an HTTP or JSON-RPC error, a broken connection.
    Failed(String),
}

/// `POST /mcp` `tools/call` with a bearer token (no session needed), ready to send.
pub fn tools_call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    arguments: Value,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": name, "arguments": arguments}}))
}

/// Calls an MCP tool over `POST /mcp` with a bearer token (no session needed).
pub async fn call_tool(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    arguments: Value,
) -> Answer {
    let sent = tools_call(http, base, token, name, arguments).send().await;
    let r = match sent {
        Ok(r) => r,
        Err(e) => return Answer::Failed(format!("transport: {e}")),
    };
    let status = r.status();
    let text = match r.text().await {
        Ok(t) => t,
        Err(e) => return Answer::Failed(format!("{status}, body: {e}")),
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return Answer::Failed(format!("{status}: {text}"));
    };
    match v["result"]["isError"].as_bool() {
        Some(false) => Answer::Ok(v["result"]["structuredContent"].clone()),
        Some(true) => {
            let message = v["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if message.contains("This is temporary") {
                Answer::Retryable(message)
            } else {
                Answer::Failed(message)
            }
        }
        None => Answer::Failed(format!("{status}: {text}")),
    }
}

/// Replicas on one database with the company connected once, by the admin `root` through the
/// first replica, and a personal access token of root's made with `qbo-mcp token create`.
struct Replicas {
    db: TestDb,
    sim: Simulator,
    servers: Vec<TestServer>,
    admin: Browser,
    token: String,
}

async fn replicas(backend: Backend, count: usize, config: SimConfig) -> Replicas {
    let db = TestDb::fresh(backend).await;
    let sim = simulator(config).await;
    let first = replica(&db, &sim, None).await;
    let admin = first_admin(&first).await;
    connect_company(&admin).await;
    let mut servers = vec![first];
    for _ in 1..count {
        servers.push(replica(&db, &sim, None).await);
    }
    let token = personal_token(&db, "root").await;
    Replicas {
        token,
        db,
        sim,
        servers,
        admin,
    }
}

impl Replicas {
    /// One `query` on server `i`, which must succeed.
    async fn query_ok(&self, i: usize) -> Value {
        match call_tool(
            &client(),
            &self.servers[i].url,
            &self.token,
            "query",
            count_customers(),
        )
        .await
        {
            Answer::Ok(v) => {
                assert!(
                    v["QueryResponse"]["totalCount"].as_i64().unwrap_or(0) > 0,
                    "{v}"
                );
                v
            }
            other => panic!("query on replica {i}: {other:?}\n{}", self.sim.stats()),
        }
    }
}

/// Three replicas, the access token expired at Intuit, 300 tool calls at once spread over the
/// three: one refresh in all, and every call answered. A call told "busy" by the pacing
/// queue (300 requests exceed a minute's budget at once) is retried, as an assistant would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_storm_over_three_replicas_refreshes_once() {
    let r = replicas(Backend::Postgres, 3, consent_as(CRAIG)).await;
    for i in 0..3 {
        r.query_ok(i).await;
    }
    sim_post(&r.sim, "/_sim/expire-access-tokens", json!({})).await;
    let before = stat(&r.sim, "refresh_requests");
    let http = patient_client();
    let mut calls = JoinSet::new();
    for i in 0..300 {
        let (http, base, token) = (http.clone(), r.servers[i % 3].url.clone(), r.token.clone());
        calls.spawn(async move {
            let mut busy = 0;
            loop {
                match call_tool(&http, &base, &token, "query", count_customers_for(i)).await {
                    Answer::Retryable(m) if busy < 5 && m.contains("busy") => busy += 1,
                    answer => return (answer, busy),
                }
            }
        });
    }
    let (mut failed, mut busy_total) = (Vec::new(), 0);
    while let Some(done) = calls.join_next().await {
        let (answer, busy) = done.unwrap();
        busy_total += busy;
        match answer {
            Answer::Ok(v) => assert!(v["QueryResponse"]["totalCount"].as_i64() > Some(0)),
            other => failed.push(other),
        }
    }
    let stats = r.sim.stats();
    eprintln!(
        "refresh storm: 300 calls, {busy_total} busy answers retried, {} unauthorized at Intuit, {} API requests",
        stats["unauthorized"], stats["api_requests"]
    );
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    assert_eq!(stat(&r.sim, "refresh_requests") - before, 1, "{stats}");
    assert_eq!(stat(&r.sim, "invalid_grant"), 0, "{stats}");
    assert_eq!(stat(&r.sim, "throttled"), 0, "{stats}");
    assert!(stat(&r.sim, "max_in_flight") <= 10, "{stats}");
    assert_eq!(company(&r.admin).await["status"], "connected");
}

on_both_backends!(
    a_crash_before_intuit_loses_nothing,
    a_crash_after_intuit_loses_nothing,
    a_crash_after_commit_loses_nothing,
);

async fn a_crash_before_intuit_loses_nothing(backend: Backend) {
    crash_in_refresh(backend, "refresh_before_intuit").await;
}

async fn a_crash_after_intuit_loses_nothing(backend: Backend) {
    crash_in_refresh(backend, "refresh_after_intuit").await;
}

async fn a_crash_after_commit_loses_nothing(backend: Backend) {
    crash_in_refresh(backend, "refresh_after_commit").await;
}

/// A replica dies (abort, as `kill -9` would) at `point` of its refresh; a healthy replica on
/// the same database carries on, and the connection is never lost. Every refresh rotates the
/// refresh token (the dangerous case for a crash between Intuit's answer and our commit);
/// Intuit's grace keeps the rotated one usable for a while.
async fn crash_in_refresh(backend: Backend, point: &str) {
    let mut config = consent_as(CRAIG);
    config.rotation_interval_s = 0;
    config.refresh_grace_s = 600;
    let r = replicas(backend, 1, config).await;
    let faulty = replica(&r.db, &r.sim, Some(point)).await;
    let http = client();
    // Before any refresh is due, the faulty replica serves like any other.
    let warm = call_tool(&http, &faulty.url, &r.token, "query", count_customers()).await;
    assert!(matches!(warm, Answer::Ok(_)), "{warm:?}");

    sim_post(&r.sim, "/_sim/expire-access-tokens", json!({})).await;
    let before = stat(&r.sim, "refresh_requests");
    let rotations = stat(&r.sim, "refresh_rotations");
    let crashed = call_tool(&http, &faulty.url, &r.token, "query", count_customers()).await;
    assert!(
        matches!(&crashed, Answer::Failed(e) if e.starts_with("transport")),
        "{crashed:?}"
    );
    let status = faulty.wait_exit().await;
    assert_eq!(status.signal(), Some(6), "aborted at {point}: {status}");
    let reached_intuit = point != "refresh_before_intuit";
    assert_eq!(
        stat(&r.sim, "refresh_requests") - before,
        i64::from(reached_intuit),
        "{}",
        r.sim.stats()
    );
    if reached_intuit {
        assert_eq!(
            stat(&r.sim, "refresh_rotations") - rotations,
            1,
            "Intuit rotated the refresh token: {}",
            r.sim.stats()
        );
    }

    // The healthy replica serves, refreshing as needed, and keeps refreshing afterwards.
    assert_eq!(company(&r.admin).await["status"], "connected");
    for _ in 0..3 {
        r.query_ok(0).await;
    }
    for _ in 0..2 {
        sim_post(&r.sim, "/_sim/expire-access-tokens", json!({})).await;
        r.query_ok(0).await;
    }
    let c = company(&r.admin).await;
    assert_eq!(c["status"], "connected", "{c}");
    assert_eq!(stat(&r.sim, "invalid_grant"), 0, "{}", r.sim.stats());
    assert_eq!(stat(&r.sim, "authorize_requests"), 1, "never reconnected");
}

/// 1,000 calls offered within 30 s to one company over three replicas: together they never
/// have more than 10 requests in flight at Intuit nor get throttled. Each request takes
/// QuickBooks 1.5 s, so more than 10 would be in flight without the shared leases. More than
/// a minute's budget is offered, so some callers get a retryable "busy" answer; none fails
/// otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_pace_a_thousand_calls_together() {
    let r = replicas(Backend::Postgres, 3, consent_as(CRAIG)).await;
    sim_config(&r.sim, json!({"latency_ms": 1500})).await;
    let http = patient_client();
    let mut calls = JoinSet::new();
    let mut offer = tokio::time::interval(Duration::from_millis(30));
    for i in 0..1_000 {
        offer.tick().await;
        let (http, base, token) = (http.clone(), r.servers[i % 3].url.clone(), r.token.clone());
        calls.spawn(async move {
            call_tool(&http, &base, &token, "query", count_customers_for(i)).await
        });
    }
    let (mut ok, mut busy, mut failed) = (0, 0, Vec::new());
    while let Some(done) = calls.join_next().await {
        match done.unwrap() {
            Answer::Ok(_) => ok += 1,
            Answer::Retryable(m) if m.contains("QuickBooks is busy") => busy += 1,
            other => failed.push(other),
        }
    }
    let stats = r.sim.stats();
    eprintln!(
        "pacing: 1000 calls, {ok} answered, {busy} busy (retryable), {} failed; Intuit saw {} API requests, max {} in flight",
        failed.len(),
        stats["api_requests"],
        stats["max_in_flight"]
    );
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    assert_eq!(ok + busy, 1_000);
    assert!(ok > 0, "{stats}");
    assert_eq!(stat(&r.sim, "throttled"), 0, "{stats}");
    assert!(stat(&r.sim, "max_in_flight") <= 10, "{stats}");
}

on_both_backends!(other_people_authorize_assistants_without_intuit);

/// While the company is connected, a viewer and another admin authorize assistants through
/// our own OAuth flow, and a bookkeeper makes a personal access token; all of them use the
/// books, and Intuit sees no authorization and no change of admin.
async fn other_people_authorize_assistants_without_intuit(backend: Backend) {
    let r = replicas(backend, 1, consent_as(CRAIG)).await;
    let server = &r.servers[0];
    let counters = [
        "authorize_requests",
        "consents",
        "code_exchanges",
        "admin_changes",
    ];
    let before: Vec<i64> = counters.iter().map(|c| stat(&r.sim, c)).collect();
    assert_eq!(before, [1, 1, 1, 0], "{}", r.sim.stats());

    add_person(&r.admin, "vic", "viewer").await;
    add_person(&r.admin, "ada", "admin").await;
    add_person(&r.admin, "bea", "bookkeeper").await;
    let http = client();
    for person in ["vic", "ada"] {
        let browser = Browser::sign_in(&server.url, person, PASSWORD)
            .await
            .unwrap_or_else(|_| panic!("{person} signs in"));
        let client_id = crate::oauth::register(server).await;
        let code = code_for(&browser, &client_id).await;
        let (status, tokens) = exchange(server, &client_id, &code, VERIFIER, REDIRECT).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap();
        let answer = call_tool(&http, &server.url, access, "query", count_customers()).await;
        assert!(matches!(answer, Answer::Ok(_)), "{person}: {answer:?}");
    }
    let bea = Browser::sign_in(&server.url, "bea", PASSWORD)
        .await
        .unwrap_or_else(|_| panic!("bea signs in"));
    let token = token_for(&bea, "script").await;
    let answer = call_tool(&http, &server.url, &token, "get_company_info", json!({})).await;
    assert!(matches!(answer, Answer::Ok(_)), "bea: {answer:?}");

    let after: Vec<i64> = counters.iter().map(|c| stat(&r.sim, c)).collect();
    assert_eq!(after, before, "Intuit was involved: {}", r.sim.stats());
    let c = company(&r.admin).await;
    assert_eq!(
        (c["status"].as_str(), c["connected_by"].as_str()),
        (Some("connected"), Some("root")),
        "{c}"
    );
}
