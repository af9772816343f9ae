//! Four-eyes approvals end to end (docs/tools.md, "Approvals"): the real server against an
//! external simulator playing QuickBooks, assistants calling tools over `/mcp`, admins deciding
//! over the JSON API, the page and the command line. A held write is absent from the books
//! until another admin approves it; approval writes it exactly once, also when two admins on
//! two replicas approve at the same moment; rejection writes nothing; a proposal whose entity
//! changed since is not applied; every step is in the audit log.

use qbo_sim::Simulator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::connections::{CRAIG, REALM, consent_as, sim_config, simulator, stat};
use crate::harness::{
    Backend, TestDb, TestServer, cli, cli_with_env, personal_token, python, run_peer,
};
use crate::on_both_backends;
use crate::people::{Bearer, add_person, error_of, first_admin};
use crate::replicas::{connect_company, replica};

on_both_backends!(
    writes_wait_for_another_admins_approval,
    stale_rejected_and_amount_based_proposals,
    company_settings_and_estimates_wait_like_every_write
);

/// An assistant: calls tools over `POST /mcp` with a person's bearer token.
pub struct Assistant {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Assistant {
    pub fn new(server: &TestServer, token: &str) -> Assistant {
        Assistant {
            base: server.url.clone(),
            token: token.to_owned(),
            http: crate::harness::client(),
        }
    }

    /// The tool's JSON-RPC `result` (`isError`, `content`, `structuredContent`).
    pub async fn call(&self, name: &str, arguments: Value) -> Value {
        let r: Value = self
            .http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": name, "arguments": arguments}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(r["result"].is_object(), "{name}: {r}");
        r["result"].clone()
    }

    /// A call that must succeed; its structured content.
    pub async fn ok(&self, name: &str, arguments: Value) -> Value {
        let r = self.call(name, arguments).await;
        assert_eq!(r["isError"], false, "{name}: {r}");
        r["structuredContent"].clone()
    }

    /// A call that must be a tool error; its text.
    pub async fn error(&self, name: &str, arguments: Value) -> String {
        let r = self.call(name, arguments).await;
        assert_eq!(r["isError"], true, "{name} should fail: {r}");
        r["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Calls tools through the official Python MCP SDK (`tests/python/call_tools.py`), in one
/// session with `token`: each call's `{"is_error", "structured", "text"}`.
pub async fn sdk_calls(server: &TestServer, token: &str, calls: Value) -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = dir.join("tests/python/call_tools.py");
    let url = format!("{}/mcp", server.url);
    let calls = calls.to_string();
    let out = run_peer(
        &python(),
        &[script.to_str().unwrap(), &url, token, &calls],
        dir,
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let line = out.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("no JSON:\n{}\n{}", out.stdout, out.stderr))
}

/// The customers named `name` in the books, read straight from the simulator's API through
/// the admin's assistant.
pub async fn customers_named(root: &Assistant, name: &str) -> Vec<Value> {
    let found = root
        .ok(
            "query",
            json!({"query": format!("SELECT * FROM Customer WHERE DisplayName = '{name}'")}),
        )
        .await;
    found["QueryResponse"]["Customer"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub async fn set_policy(admin: &Bearer, policy: Value) {
    let r = admin
        .call(
            Method::PUT,
            &format!("/api/v1/companies/{REALM}/approvals"),
            Some(policy.clone()),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["mode"], policy["mode"], "{body}");
}

async fn decide(who: &Bearer, id: &str, verb: &str, body: Value) -> reqwest::Response {
    who.call(
        Method::POST,
        &format!("/api/v1/proposals/{id}/{verb}"),
        Some(body),
    )
    .await
}

/// A company connected by `root` through a server using `sim` as Intuit; people `bea`
/// (bookkeeper) and `ada` (admin) with personal access tokens.
pub struct Team {
    pub db: TestDb,
    pub sim: Simulator,
    pub server: TestServer,
    pub root: Bearer,
    pub ada: Bearer,
    pub bea: Bearer,
}

pub async fn team(backend: Backend) -> Team {
    let db = TestDb::fresh(backend).await;
    let sim = simulator(consent_as(CRAIG)).await;
    let server = replica(&db, &sim, None).await;
    let admin = first_admin(&server).await;
    connect_company(&admin).await;
    add_person(&admin, "bea", "bookkeeper").await;
    add_person(&admin, "ada", "admin").await;
    let bearer = |t: &str| Bearer::new(&server.url, t);
    let (root, ada, bea) = (
        personal_token(&db, "root").await,
        personal_token(&db, "ada").await,
        personal_token(&db, "bea").await,
    );
    Team {
        root: bearer(&root),
        ada: bearer(&ada),
        bea: bearer(&bea),
        db,
        sim,
        server,
    }
}

impl Team {
    pub fn assistant(&self, who: &Bearer) -> Assistant {
        Assistant::new(&self.server, &who.token)
    }
}

async fn writes_wait_for_another_admins_approval(backend: Backend) {
    let t = team(backend).await;
    let (bea, root) = (t.assistant(&t.bea), t.assistant(&t.root));

    // The default is off; only admins set a policy; bad policies are refused.
    let r = t
        .bea
        .call(
            Method::GET,
            &format!("/api/v1/companies/{REALM}/approvals"),
            None,
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["mode"], "off");
    let r = t
        .bea
        .call(
            Method::PUT,
            &format!("/api/v1/companies/{REALM}/approvals"),
            Some(json!({"mode": "all_writes"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = t
        .root
        .call(
            Method::PUT,
            &format!("/api/v1/companies/{REALM}/approvals"),
            Some(json!({"mode": "amount_at_least"})),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy".into())
    );
    set_policy(&t.root, json!({"mode": "all_writes"})).await;

    // Bea's write, through the official Python SDK, is held: a result, not an error, and
    // nothing reaches QuickBooks.
    let writes = stat(&t.sim, "writes");
    let answers = sdk_calls(
        &t.server,
        &t.bea.token,
        json!([{"name": "create_entity",
                "arguments": {"entity": "Customer", "fields": {"DisplayName": "Four Eyes Ltd"}}}]),
    )
    .await;
    assert_eq!(answers[0]["is_error"], false, "{answers:?}");
    assert!(
        answers[0]["text"]
            .as_str()
            .unwrap()
            .contains("Nothing was sent"),
        "{answers:?}"
    );
    let held = answers[0]["structured"].clone();
    assert_eq!(held["status"], "pending_approval", "{held}");
    assert_eq!(
        held["preview"]["body"]["DisplayName"], "Four Eyes Ltd",
        "{held}"
    );
    let id = held["proposal_id"].as_str().unwrap().to_owned();
    assert_eq!(stat(&t.sim, "writes"), writes, "a held write sends nothing");
    assert!(customers_named(&root, "Four Eyes Ltd").await.is_empty());
    let followed = bea.ok("get_proposal", json!({"proposal_id": id})).await;
    assert_eq!(followed["status"], "pending", "{followed}");
    assert_eq!(followed["proposed_by"], "bea", "{followed}");

    // A bookkeeper cannot approve; nobody approves their own proposal.
    let r = decide(&t.bea, &id, "approve", json!({})).await;
    assert_eq!(error_of(r).await.0, StatusCode::FORBIDDEN);
    let own = root
        .ok(
            "create_entity",
            json!({"entity": "Customer", "fields": {"DisplayName": "Root Own Ltd"}}),
        )
        .await;
    let own_id = own["proposal_id"].as_str().unwrap().to_owned();
    let r = decide(&t.root, &own_id, "approve", json!({})).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::FORBIDDEN, "own_proposal".into())
    );

    // Two admins approve at the same moment, through two replicas: one executes, once.
    let second = replica(&t.db, &t.sim, None).await;
    let ada_elsewhere = Bearer::new(&second.url, &t.ada.token);
    let (a, b) = tokio::join!(
        decide(&t.root, &id, "approve", json!({"note": "ok by root"})),
        decide(&ada_elsewhere, &id, "approve", json!({"note": "ok by ada"})),
    );
    let mut statuses = vec![a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::CONFLICT]);
    let winner: Value = if a.status() == StatusCode::OK {
        a.json().await.unwrap()
    } else {
        b.json().await.unwrap()
    };
    assert_eq!(winner["status"], "executed", "{winner}");
    assert_eq!(
        winner["result"]["Customer"]["DisplayName"], "Four Eyes Ltd",
        "{winner}"
    );
    assert_eq!(customers_named(&root, "Four Eyes Ltd").await.len(), 1);
    assert_eq!(stat(&t.sim, "writes"), writes + 1, "written exactly once");
    let r = decide(&t.ada, &id, "approve", json!({})).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::CONFLICT, "not_pending".into())
    );
    let followed = bea.ok("get_proposal", json!({"proposal_id": id})).await;
    assert_eq!(followed["status"], "executed", "{followed}");
    assert!(followed["decided_by"] == "root" || followed["decided_by"] == "ada");

    // Others' proposals are not Bea's to see.
    let text = bea
        .error("get_proposal", json!({"proposal_id": own_id}))
        .await;
    assert!(text.contains("no proposal"), "{text}");
    let mine: Value = t
        .bea
        .call(Method::GET, "/api/v1/proposals", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["proposals"].as_array().unwrap().len(), 1, "{mine}");
    let pending: Value = t
        .ada
        .call(Method::GET, "/api/v1/proposals?status=pending", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["proposals"][0]["id"], own_id.as_str(), "{pending}");
    assert_eq!(pending["proposals"].as_array().unwrap().len(), 1);
    let r = t
        .ada
        .call(Method::GET, "/api/v1/proposals?status=maybe", None)
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_status".into())
    );

    // The command line lists and rejects; a rejected proposal writes nothing.
    let out = cli(
        &t.db,
        &["proposals", "list", "--status", "pending", "--json"],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stdout.contains(&own_id), "{}", out.stdout);
    let out = cli(
        &t.db,
        &["proposals", "reject", &own_id, "--note", "duplicate"],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"rejected\""), "{}", out.stdout);
    let r = decide(&t.ada, &own_id, "approve", json!({})).await;
    assert_eq!(error_of(r).await.0, StatusCode::CONFLICT);
    assert!(customers_named(&root, "Root Own Ltd").await.is_empty());

    // The command line approves too, sending the write from its own process.
    let held = bea
        .ok(
            "create_entity",
            json!({"entity": "Customer", "fields": {"DisplayName": "Console Approved Ltd"}}),
        )
        .await;
    let cli_id = held["proposal_id"].as_str().unwrap().to_owned();
    let mut env = t.db.env();
    env.extend([
        ("QBO_MCP_INTUIT_CLIENT_ID".into(), "qbo-mcp-replicas".into()),
        (
            "QBO_MCP_INTUIT_CLIENT_SECRET".into(),
            "replicas-secret".into(),
        ),
        ("QBO_MCP_INTUIT_ENVIRONMENT".into(), t.sim.base_url()),
    ]);
    let out = cli_with_env(
        env,
        t.db.dir.path(),
        &[
            "proposals",
            "approve",
            &cli_id,
            "--note",
            "from the console",
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"executed\""), "{}", out.stdout);
    assert_eq!(
        customers_named(&root, "Console Approved Ltd").await.len(),
        1
    );

    // The audit log tells the story: who proposed through which assistant, who decided.
    let audit: Value = t
        .root
        .call(Method::GET, &format!("/api/v1/audit?company={REALM}"), None)
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let of = |action: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["target"] == id.as_str())
            .collect()
    };
    let proposed = of("proposal.create");
    assert_eq!(proposed.len(), 1, "{audit}");
    assert_eq!(proposed[0]["username"], "bea", "{audit}");
    assert_eq!(
        proposed[0]["details"]["assistant"], "personal access token #3",
        "{audit}"
    );
    assert_eq!(of("proposal.approve").len(), 1, "{audit}");
    let executed = of("proposal.execute");
    assert_eq!(executed.len(), 1, "{audit}");
    assert_eq!(executed[0]["outcome"], "ok", "{audit}");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "proposal.reject" && e["username"] == "console"),
        "{audit}"
    );
    assert!(
        entries.iter().any(|e| e["action"] == "company.approvals"),
        "{audit}"
    );
}

async fn stale_rejected_and_amount_based_proposals(backend: Backend) {
    let t = team(backend).await;
    let (bea, root) = (t.assistant(&t.bea), t.assistant(&t.root));
    set_policy(&t.root, json!({"mode": "all_writes"})).await;

    // Bea proposes to rename customer 1; the SyncToken is the one read now.
    let before = root
        .ok("get_entity", json!({"entity": "Customer", "id": "1"}))
        .await;
    let held = bea
        .ok(
            "update_entity",
            json!({"entity": "Customer", "id": "1", "fields": {"CompanyName": "Proposed Name"}}),
        )
        .await;
    assert_eq!(held["status"], "pending_approval", "{held}");
    assert_eq!(
        held["preview"]["body"]["SyncToken"], before["Customer"]["SyncToken"],
        "{held}"
    );
    let stale_id = held["proposal_id"].as_str().unwrap().to_owned();

    // Meanwhile the customer changes in QuickBooks (policy off for a moment).
    set_policy(&t.root, json!({"mode": "off"})).await;
    root.ok(
        "update_entity",
        json!({"entity": "Customer", "id": "1", "fields": {"CompanyName": "Changed Meanwhile"}}),
    )
    .await;
    let r = decide(&t.ada, &stale_id, "approve", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let ended: Value = r.json().await.unwrap();
    assert_eq!(ended["status"], "stale", "{ended}");
    let now = root
        .ok("get_entity", json!({"entity": "Customer", "id": "1"}))
        .await;
    assert_eq!(now["Customer"]["CompanyName"], "Changed Meanwhile", "{now}");

    // Amount-based: a small invoice goes straight through, a large one waits.
    set_policy(&t.root, json!({"mode": "amount_at_least", "amount": 500})).await;
    let line = |amount: u32| json!({"CustomerRef": {"value": "1"}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": amount, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]});
    let small = bea
        .ok(
            "create_entity",
            json!({"entity": "Invoice", "fields": line(100)}),
        )
        .await;
    assert!(small["Invoice"]["Id"].is_string(), "{small}");
    let writes = stat(&t.sim, "writes");
    let large = bea
        .ok(
            "create_entity",
            json!({"entity": "Invoice", "fields": line(600)}),
        )
        .await;
    assert_eq!(large["status"], "pending_approval", "{large}");
    assert_eq!(large["amount"], 600.0, "{large}");
    assert_eq!(stat(&t.sim, "writes"), writes);

    // Rejection needs a note, writes nothing, and the proposer reads why.
    let large_id = large["proposal_id"].as_str().unwrap().to_owned();
    let r = decide(&t.ada, &large_id, "reject", json!({})).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "note_required".into())
    );
    let r = decide(&t.ada, &large_id, "reject", json!({"note": "split it"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(stat(&t.sim, "writes"), writes, "a rejection writes nothing");
    let followed = bea
        .ok("get_proposal", json!({"proposal_id": large_id}))
        .await;
    assert_eq!(followed["status"], "rejected", "{followed}");
    assert_eq!(followed["note"], "split it", "{followed}");

    // The page: the policy on the company page, the count in an admin's navigation.
    set_policy(&t.root, json!({"mode": "all_writes"})).await;
    let held = bea
        .ok(
            "send_invoice",
            json!({"id": small["Invoice"]["Id"], "email": "books@amys.example"}),
        )
        .await;
    assert_eq!(held["status"], "pending_approval", "{held}");
    let ada_browser =
        crate::people::Browser::sign_in(&t.server.url, "ada", crate::people::PASSWORD)
            .await
            .unwrap_or_else(|_| panic!("ada signs in"));
    let page = ada_browser.get("/proposals").await.text().await.unwrap();
    assert!(page.contains("Approve"), "{page}");
    assert!(page.contains("1 waiting"), "{page}");
    assert!(page.contains("split it"), "{page}");
    let page = ada_browser.get("/companies").await.text().await.unwrap();
    assert!(page.contains("every write waits"), "{page}");
    let send_id = held["proposal_id"].as_str().unwrap().to_owned();
    let r = ada_browser
        .submit(
            "/proposals",
            &format!("/proposals/{send_id}/approve"),
            &[("note", "send it")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let followed = bea
        .ok("get_proposal", json!({"proposal_id": send_id}))
        .await;
    assert_eq!(followed["status"], "executed", "{followed}");
    let invoice = root
        .ok(
            "get_entity",
            json!({"entity": "Invoice", "id": small["Invoice"]["Id"]}),
        )
        .await;
    assert_eq!(invoice["Invoice"]["EmailStatus"], "EmailSent", "{invoice}");
    let followed = bea
        .ok("get_proposal", json!({"proposal_id": send_id}))
        .await;
    assert_eq!(followed["status"], "executed", "{followed}");
    assert_eq!(followed["note"], "send it", "{followed}");

    // QuickBooks applies the write but its answer is lost: the client's retry carries the
    // proposal's one requestid, so QuickBooks answers it from the first write.
    sim_config(&t.sim, json!({"write_error_rate": 1.0})).await;
    let held = bea
        .ok(
            "create_entity",
            json!({"entity": "Customer", "fields": {"DisplayName": "Answer Lost Ltd"}}),
        )
        .await;
    let replays = stat(&t.sim, "idempotent_replays");
    let r = decide(
        &t.ada,
        held["proposal_id"].as_str().unwrap(),
        "approve",
        json!({}),
    )
    .await;
    let ended: Value = r.json().await.unwrap();
    sim_config(&t.sim, json!({"write_error_rate": 0.0})).await;
    assert_eq!(ended["status"], "executed", "{ended}");
    assert!(stat(&t.sim, "idempotent_replays") > replays);
    assert_eq!(customers_named(&root, "Answer Lost Ltd").await.len(), 1);

    // The intuit profile's tools are held the same way.
    let intuit = TestServer::builder(&t.db)
        .env("QBO_MCP_INTUIT_CLIENT_ID", "qbo-mcp-replicas")
        .env("QBO_MCP_INTUIT_CLIENT_SECRET", "replicas-secret")
        .env("QBO_MCP_INTUIT_ENVIRONMENT", &t.sim.base_url())
        .env("QBO_MCP_TOOLS_PROFILE", "intuit")
        .start()
        .await;
    let writes = stat(&t.sim, "writes");
    let held = Assistant::new(&intuit, &t.bea.token)
        .ok(
            "create_customer",
            json!({"fields": {"DisplayName": "Intuit Profile Ltd"}}),
        )
        .await;
    assert_eq!(held["status"], "pending_approval", "{held}");
    assert_eq!(stat(&t.sim, "writes"), writes);
}

/// Under `all_writes`, a change to the company's settings and an estimate's email wait as
/// every write does: nothing is sent until another admin approves, which sends exactly the
/// previewed request (the SyncToken read when proposed).
async fn company_settings_and_estimates_wait_like_every_write(backend: Backend) {
    let t = team(backend).await;
    let (root, bea) = (t.assistant(&t.root), t.assistant(&t.bea));
    set_policy(&t.root, json!({"mode": "all_writes"})).await;
    let writes = stat(&t.sim, "writes");

    let held = root
        .ok(
            "update_company_settings",
            json!({"settings": "CompanyInfo", "fields": {"LegalName": "Held Design LLC"}}),
        )
        .await;
    assert_eq!(held["status"], "pending_approval", "{held}");
    assert_eq!(held["preview"]["path"], "companyinfo", "{held}");
    assert_eq!(held["preview"]["body"]["sparse"], true, "{held}");
    assert!(held["preview"]["body"]["SyncToken"].is_string(), "{held}");
    let settings = held["proposal_id"].as_str().unwrap().to_owned();

    let estimates = bea
        .ok(
            "query",
            json!({"query": "SELECT * FROM Estimate", "limit": 1}),
        )
        .await;
    let estimate = estimates["QueryResponse"]["Estimate"][0]["Id"].clone();
    let held = bea
        .ok(
            "send_estimate",
            json!({"id": estimate, "email": "buyer@example.com"}),
        )
        .await;
    assert_eq!(held["status"], "pending_approval", "{held}");
    assert_eq!(
        held["preview"]["path"],
        format!("estimate/{}/send", estimate.as_str().unwrap()),
        "{held}"
    );
    let sending = held["proposal_id"].as_str().unwrap().to_owned();
    assert_eq!(stat(&t.sim, "writes"), writes, "held writes send nothing");
    let info = root.ok("get_company_info", json!({})).await;
    assert_ne!(info["CompanyInfo"]["LegalName"], "Held Design LLC");

    for id in [&settings, &sending] {
        let r = decide(&t.ada, id, "approve", json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["status"], "executed", "{p}");
    }
    let info = root.ok("get_company_info", json!({})).await;
    assert_eq!(info["CompanyInfo"]["LegalName"], "Held Design LLC");
    let sent = root
        .ok("get_entity", json!({"entity": "Estimate", "id": estimate}))
        .await;
    assert_eq!(sent["Estimate"]["EmailStatus"], "EmailSent", "{sent}");
}
