//! What concurrent tool calls share on their way through the server (docs/benchmarks.md,
//! "Tool calls"): identical reads of a company in flight at once cost one QuickBooks request,
//! yet each caller is checked and audited under their own name; writes are never shared; and
//! concurrent calls' audit entries share durable commits without any call being answered
//! before its entry is durable — a crash (a fault point, or `kill -9`) never loses the entry
//! of an answered call.

use std::os::unix::process::ExitStatusExt as _;

use qbo_mcp::audit::{self, Filter};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::connections::{CRAIG, consent_as, sim_config, simulator, stat};
use crate::harness::{Backend, TestDb, TestServer, client, personal_token};
use crate::on_both_backends;
use crate::people::first_admin;
use crate::replicas::{connect_company, replica, tools_call};

on_both_backends!(
    identical_reads_in_flight_cost_one_request_and_are_audited_for_each_caller,
    a_crash_before_an_audit_commit_loses_no_answered_call,
    a_killed_server_loses_no_answered_call,
);

/// Posts `tools/call`; the JSON-RPC answer, or `None` when the server gave none (the
/// connection broke: the process died).
async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    args: Value,
) -> Option<Value> {
    let r = tools_call(http, base, token, name, args)
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// Every `tool.call` entry of `tool` in the database.
async fn entries(db: &TestDb, tool: &str) -> Vec<audit::Entry> {
    let db = db.connect().await;
    let all = audit::read(
        &db,
        &Filter {
            action: Some("tool.call".into()),
            limit: 10_000,
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    db.close().await;
    all.into_iter()
        .filter(|e| e.tool.as_deref() == Some(tool))
        .collect()
}

/// Eight `get_entity` calls for the same customer at once, four by root (an admin) and four
/// by bea (a bookkeeper), while QuickBooks takes 1.5 s to answer: Intuit sees one request,
/// everyone gets the customer, and the audit log has eight entries under the right names, all
/// with that request's `intuit_tid`. A read that fails fails for those on its flight only;
/// identical writes at once are each sent.
async fn identical_reads_in_flight_cost_one_request_and_are_audited_for_each_caller(
    backend: Backend,
) {
    let crate::proposals::Team {
        db,
        sim,
        server,
        root,
        bea,
        ..
    } = crate::proposals::team(backend).await;
    let tokens = [("root", root.token), ("bea", bea.token)];
    let http = client();
    // A first read, so the access token is fresh and nothing else is sent meanwhile.
    let warm = call(
        &http,
        &server.url,
        &tokens[0].1,
        "get_company_info",
        json!({}),
    )
    .await;
    assert_eq!(
        warm.as_ref().map(|w| &w["result"]["isError"]),
        Some(&json!(false)),
        "{warm:?}"
    );
    sim_config(&sim, json!({"latency_ms": 1500})).await;

    let at_once = |args: Value| {
        let mut calls = JoinSet::new();
        for i in 0..8 {
            let (http, base, (who, token)) =
                (http.clone(), server.url.clone(), tokens[i % 2].clone());
            let args = args.clone();
            calls.spawn(async move { (who, call(&http, &base, &token, "get_entity", args).await) });
        }
        calls
    };

    let before = stat(&sim, "api_requests");
    let mut calls = at_once(json!({"entity": "Customer", "id": "1"}));
    while let Some(done) = calls.join_next().await {
        let (who, answer) = done.unwrap();
        let answer = answer.unwrap_or_else(|| panic!("{who} got no answer"));
        assert_eq!(answer["result"]["isError"], false, "{who}: {answer}");
        assert_eq!(
            answer["result"]["structuredContent"]["Customer"]["Id"], "1",
            "{who}: {answer}"
        );
    }
    assert_eq!(stat(&sim, "api_requests") - before, 1, "{}", sim.stats());
    let read = entries(&db, "get_entity").await;
    assert_eq!(read.len(), 8, "{read:?}");
    for who in ["root", "bea"] {
        assert_eq!(
            read.iter()
                .filter(|e| e.username.as_deref() == Some(who) && e.outcome == "ok")
                .count(),
            4,
            "{who}: {read:?}"
        );
    }
    let tid = read[0].intuit_tid.clone();
    assert!(tid.is_some(), "{read:?}");
    assert!(read.iter().all(|e| e.intuit_tid == tid), "{read:?}");

    // A customer that does not exist: one request, the fault for everyone on that flight.
    let before = stat(&sim, "api_requests");
    let mut calls = at_once(json!({"entity": "Customer", "id": "99999"}));
    while let Some(done) = calls.join_next().await {
        let (who, answer) = done.unwrap();
        let answer = answer.unwrap_or_else(|| panic!("{who} got no answer"));
        assert_eq!(answer["result"]["isError"], true, "{who}: {answer}");
    }
    assert_eq!(stat(&sim, "api_requests") - before, 1, "{}", sim.stats());
    // The next caller after that flight landed asks again.
    sim_config(&sim, json!({"latency_ms": 0})).await;
    let again = call(
        &http,
        &server.url,
        &tokens[1].1,
        "get_entity",
        json!({"entity": "Customer", "id": "99999"}),
    )
    .await
    .unwrap();
    assert_eq!(again["result"]["isError"], true, "{again}");
    assert_eq!(stat(&sim, "api_requests") - before, 2, "{}", sim.stats());
    let failed = entries(&db, "get_entity").await;
    assert_eq!(
        failed.iter().filter(|e| e.outcome == "error").count(),
        9,
        "{failed:?}"
    );

    // Identical writes at once are each sent.
    sim_config(&sim, json!({"latency_ms": 500})).await;
    let before = stat(&sim, "api_requests");
    let mut calls = JoinSet::new();
    for _ in 0..3 {
        let (http, base, token) = (http.clone(), server.url.clone(), tokens[0].1.clone());
        calls.spawn(async move {
            call(
                &http,
                &base,
                &token,
                "create_entity",
                json!({"entity": "Customer", "fields": {"DisplayName": "Single Flight Ltd"}}),
            )
            .await
        });
    }
    let mut created = 0;
    while let Some(done) = calls.join_next().await {
        let answer = done.unwrap().expect("an answer");
        if answer["result"]["isError"] == false {
            created += 1;
        }
    }
    assert_eq!(
        created, 1,
        "QuickBooks refuses a second customer of one name"
    );
    assert_eq!(stat(&sim, "api_requests") - before, 3, "{}", sim.stats());
}

/// A server whose process dies just before committing a batch of two or more audit entries,
/// or any batch after 20 committed entries (`QBO_MCP_TEST_FAULT_POINT=audit_before_commit`,
/// an abort as `kill -9` would): every call it answered, before and during the concurrent
/// calls whose entries were waiting, has its entry.
async fn a_crash_before_an_audit_commit_loses_no_answered_call(backend: Backend) {
    let (db, _sim, server, token) = connected(backend, Some("audit_before_commit")).await;
    let answered = calls_until_gone(&server, &token, None).await;
    let status = server.wait_exit().await;
    assert_eq!(
        status.signal(),
        Some(6),
        "aborted at the fault point: {status}"
    );
    every_answered_call_has_its_entry(&db, &answered).await;
}

/// As above, the process killed (SIGKILL) while calls are in flight.
async fn a_killed_server_loses_no_answered_call(backend: Backend) {
    let (db, _sim, mut server, token) = connected(backend, None).await;
    let pid = server.pid();
    let answered = calls_until_gone(&server, &token, Some(pid)).await;
    server.kill().await;
    every_answered_call_has_its_entry(&db, &answered).await;
}

/// A server process with the simulator's company connected, and root's token.
async fn connected(
    backend: Backend,
    fault_point: Option<&str>,
) -> (TestDb, qbo_sim::Simulator, TestServer, String) {
    let db = TestDb::fresh(backend).await;
    let sim = simulator(consent_as(CRAIG)).await;
    let server = replica(&db, &sim, fault_point).await;
    let admin = first_admin(&server).await;
    connect_company(&admin).await;
    let token = personal_token(&db, "root").await;
    (db, sim, server, token)
}

/// Three calls one after another (each its own commit), then waves of 16 concurrent calls,
/// each asking for a different id so every call is its own read, until the server stops
/// answering (it aborts at its fault point, or, with `kill` (its process id), is killed
/// when the third wave's first answer is in). The ids whose calls were answered.
async fn calls_until_gone(server: &TestServer, token: &str, kill: Option<u32>) -> Vec<String> {
    let http = client();
    let mut answered = Vec::new();
    for id in ["1", "2", "3"] {
        let a = call(
            &http,
            &server.url,
            token,
            "get_entity",
            json!({"entity": "Customer", "id": id}),
        )
        .await
        .expect("a call alone is answered");
        assert!(a.get("result").is_some(), "{a}");
        answered.push(id.to_owned());
    }
    for wave in 0..200 {
        let mut calls = JoinSet::new();
        for i in 0..16 {
            let id = format!("{}", 100 + wave * 16 + i);
            let (http, base, token) = (http.clone(), server.url.clone(), token.to_owned());
            calls.spawn(async move {
                let a = call(
                    &http,
                    &base,
                    &token,
                    "get_entity",
                    json!({"entity": "Customer", "id": id}),
                )
                .await;
                (id, a)
            });
        }
        let mut gone = false;
        while let Some(done) = calls.join_next().await {
            // Killed once the third wave's first answer is in, the rest still in flight.
            if let Some(pid) = kill.filter(|_| wave == 2 && !gone) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
                gone = true;
            }
            let (id, a) = done.unwrap();
            match a {
                Some(a) if a.get("result").is_some() => answered.push(id),
                // An answer without a result: the call was refused, not answered.
                Some(_) => {}
                None => gone = true,
            }
        }
        if gone {
            return answered;
        }
    }
    panic!("the server never stopped answering");
}

async fn every_answered_call_has_its_entry(db: &TestDb, answered: &[String]) {
    let recorded: std::collections::HashSet<String> = entries(db, "get_entity")
        .await
        .into_iter()
        .filter_map(|e| e.details["id"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "answered without an audit entry: {lost:?} (answered {}, recorded {})",
        answered.len(),
        recorded.len()
    );
    assert!(answered.len() >= 3, "{answered:?}");
    eprintln!(
        "crash: {} calls answered, {} entries recorded",
        answered.len(),
        recorded.len()
    );
}
