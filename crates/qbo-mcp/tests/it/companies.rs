//! Companies end to end in demo mode: the real server embeds the simulator; an admin connects
//! a company through the API and the (simulated) Intuit consent page, sees it listed, and
//! disconnects it; non-admins cannot connect; every step is audited.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::personal_token;
use crate::harness::{Backend, TestDb, TestServer};
use crate::on_both_backends;
use crate::people::{Browser, add_person, first_admin};

const REALM: &str = "9341453050298464";

on_both_backends!(
    an_admin_connects_a_demo_company,
    grants_decide_which_companies_a_person_uses,
    the_intuit_profile_uses_intuits_tool_names
);

async fn an_admin_connects_a_demo_company(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;

    connect_demo_company(&server, &admin, REALM, "craig@craigsdesign.example").await;

    let list: Value = admin
        .call(Method::GET, "/api/v1/companies", None)
        .await
        .json()
        .await
        .unwrap();
    let c = &list["companies"][0];
    assert_eq!(c["realm_id"], REALM);
    assert_eq!(c["status"], "connected");
    assert_eq!(c["connected_by"], "root");
    let page = admin.get("/companies").await.text().await.unwrap();
    assert!(
        page.contains("Craig&#39;s Design") || page.contains("Craig's Design"),
        "{page}"
    );
    assert!(page.contains("Demo"), "every page says it is a demo");

    // An assistant (here with a personal access token) queries the books through /mcp.
    let token: Value = admin
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(serde_json::json!({"name": "script"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let call =
        async |name: &str, arguments: Value| call_tool(&server, &token, name, arguments).await;
    let r: Value = call(
        "query",
        serde_json::json!({"query": "SELECT * FROM Customer", "fetch_all": true}),
    )
    .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert!(
        r["result"]["structuredContent"]["QueryResponse"]["Customer"]
            .as_array()
            .unwrap()
            .len()
            > 5,
        "{r}"
    );
    let r: Value = call(
        "get_entity",
        serde_json::json!({"entity": "customer", "id": "1"}),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r.to_string().contains("use `Customer`"), "{r}");

    // Intuit refuses the refresh token: the company needs reconnecting, the tool error names
    // the admin to ask, and the event is audited. A second server's simulated Intuit knows
    // none of the first one's tokens, as after a restart (the simulator's control routes are
    // not reachable through qbo-mcp).
    let restarted = TestServer::start(&db).await;
    let r: Value = call_tool(
        &restarted,
        &token,
        "get_company_info",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    let text = r["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("must be reconnected"), "{text}");
    assert!(
        text.contains("Ask an admin (root (root@example.com))"),
        "{text}"
    );
    let listed: Value = call("list_companies", serde_json::json!({})).await;
    assert_eq!(
        listed["result"]["structuredContent"]["companies"][0]["status"], "needs_reconnect",
        "{listed}"
    );

    // A bookkeeper may not connect.
    add_person(&admin, "bea", "bookkeeper").await;
    let bea = crate::people::Browser::sign_in(&server.url, "bea", crate::people::PASSWORD)
        .await
        .unwrap_or_else(|_| panic!("bea signs in"));
    let r = bea
        .call(Method::POST, "/api/v1/companies/connect", None)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = admin
        .call(Method::DELETE, &format!("/api/v1/companies/{REALM}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let audit: Value = admin
        .call(Method::GET, "/api/v1/audit?company=9341453050298464", None)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(actions.contains(&"company.connect"), "{audit}");
    assert!(actions.contains(&"company.needs_reconnect"), "{audit}");
    assert!(actions.contains(&"company.disconnect"), "{audit}");
}

/// Connects a demo company as `admin`, answering the simulated Intuit consent page as the
/// company's QuickBooks admin `email`.
pub async fn connect_demo_company(server: &TestServer, admin: &Browser, realm: &str, email: &str) {
    let r = admin
        .call(Method::POST, "/api/v1/companies/connect", None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let authorize = url::Url::parse(body["authorize_url"].as_str().unwrap()).unwrap();
    assert!(
        authorize.path().starts_with("/_demo/intuit/connect/oauth2"),
        "{authorize}"
    );

    // The simulated Intuit consent page, answered as the company's admin Craig.
    let page = admin.client.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    let account = format!("{realm}|{email}");
    let consent = admin
        .client
        .post(server.at("/_demo/intuit/connect/oauth2"))
        .form(&[
            ("client_id", q["client_id"].as_str()),
            ("redirect_uri", q["redirect_uri"].as_str()),
            ("response_type", "code"),
            ("scope", q["scope"].as_str()),
            ("state", q["state"].as_str()),
            ("account", account.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        consent.status().is_redirection(),
        "{}",
        consent.text().await.unwrap()
    );
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    finish_connect(admin, &callback).await;
}

/// The admin's browser arrives back from Intuit at `callback`: the connection is stored.
pub async fn finish_connect(admin: &Browser, callback: &str) {
    let done = admin.client.get(callback).send().await.unwrap();
    assert_eq!(
        done.status(),
        StatusCode::SEE_OTHER,
        "{}",
        done.text().await.unwrap()
    );
}

/// Calls an MCP tool over `/mcp` with a bearer token and returns the JSON-RPC answer.
pub async fn call_tool(server: &TestServer, token: &str, name: &str, arguments: Value) -> Value {
    server
        .post("/mcp")
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// With two companies connected, a viewer uses only the companies granted to them; an admin
/// uses both and must say which.
async fn grants_decide_which_companies_a_person_uses(backend: Backend) {
    const HARBOR: &str = "9341453050298465";
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;
    connect_demo_company(&server, &admin, REALM, "craig@craigsdesign.example").await;
    connect_demo_company(&server, &admin, HARBOR, "hana@harborbicycle.example").await;
    add_person(&admin, "vic", "viewer").await;
    let vic = personal_token(&db, "vic").await;
    let root = personal_token(&db, "root").await;

    let r = call_tool(&server, &vic, "list_companies", serde_json::json!({})).await;
    assert_eq!(
        r["result"]["structuredContent"]["companies"],
        serde_json::json!([]),
        "{r}"
    );
    let summary = r["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        summary.contains("Ask an admin (root (root@example.com))"),
        "{summary}"
    );
    let r = call_tool(&server, &vic, "get_company_info", serde_json::json!({})).await;
    assert_eq!(r["result"]["isError"], true, "{r}");

    let granted = admin
        .call(
            Method::PUT,
            &format!("/api/v1/companies/{HARBOR}/grants/vic"),
            None,
        )
        .await;
    assert!(
        granted.status().is_success(),
        "{}",
        granted.text().await.unwrap()
    );
    let r = call_tool(&server, &vic, "list_companies", serde_json::json!({})).await;
    let listed = &r["result"]["structuredContent"]["companies"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(listed[0]["realm_id"], HARBOR, "{r}");
    let r = call_tool(&server, &vic, "get_company_info", serde_json::json!({})).await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert!(r.to_string().contains("Harbor Bicycle Works"), "{r}");
    let r = call_tool(
        &server,
        &vic,
        "get_company_info",
        serde_json::json!({"company": REALM}),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r.to_string().contains("no company"), "{r}");

    let r = call_tool(&server, &root, "list_companies", serde_json::json!({})).await;
    assert_eq!(
        r["result"]["structuredContent"]["companies"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{r}"
    );
    let r = call_tool(&server, &root, "get_company_info", serde_json::json!({})).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r.to_string().contains("several companies"), "{r}");
    let r = call_tool(
        &server,
        &root,
        "get_company_info",
        serde_json::json!({"company": "harbor bicycle works"}),
    )
    .await;
    assert_eq!(r["result"]["isError"], false, "{r}");

    // A call names its company by realm id or by name in any case; a removed grant and a
    // disconnected company count on the very next call.
    for named in [HARBOR, "HARBOR BICYCLE WORKS", " Harbor Bicycle Works "] {
        let r = call_tool(
            &server,
            &vic,
            "get_company_info",
            serde_json::json!({"company": named}),
        )
        .await;
        assert_eq!(r["result"]["isError"], false, "{named}: {r}");
        assert!(r.to_string().contains("Harbor Bicycle Works"), "{r}");
    }
    let r = call_tool(
        &server,
        &vic,
        "get_company_info",
        serde_json::json!({"company": "Harbor"}),
    )
    .await;
    assert_eq!(
        r["result"]["isError"], true,
        "a part of a name names nothing: {r}"
    );
    let revoked = admin
        .call(
            Method::DELETE,
            &format!("/api/v1/companies/{HARBOR}/grants/vic"),
            None,
        )
        .await;
    assert!(
        revoked.status().is_success(),
        "{}",
        revoked.text().await.unwrap()
    );
    let r = call_tool(
        &server,
        &vic,
        "get_company_info",
        serde_json::json!({"company": HARBOR}),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r.to_string().contains("no company"), "{r}");
    let r = admin
        .call(Method::DELETE, &format!("/api/v1/companies/{HARBOR}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    for named in [HARBOR, "harbor bicycle works"] {
        let r = call_tool(
            &server,
            &root,
            "get_company_info",
            serde_json::json!({"company": named}),
        )
        .await;
        assert_eq!(r["result"]["isError"], true, "{named}: {r}");
        assert!(r.to_string().contains("no company"), "{r}");
    }
}

/// The tool names `tools/list` shows with `token`.
async fn tool_names(server: &TestServer, token: &str) -> Vec<String> {
    crate::tools::list_tools(server, token)
        .await
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// `QBO_MCP_TOOLS_PROFILE=intuit`: Intuit's tool names over the same handlers, roles and audit.
async fn the_intuit_profile_uses_intuits_tool_names(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::builder(&db)
        .env("QBO_MCP_TOOLS_PROFILE", "intuit")
        .start()
        .await;
    let admin = first_admin(&server).await;
    connect_demo_company(&server, &admin, REALM, "craig@craigsdesign.example").await;
    add_person(&admin, "vic", "viewer").await;
    let root = personal_token(&db, "root").await;
    let vic = personal_token(&db, "vic").await;

    let names = tool_names(&server, &root).await;
    for expected in [
        "list_companies",
        "create_customer",
        "search_invoices",
        "get_profit_and_loss",
        "delete_invoice",
    ] {
        assert!(
            names.contains(&expected.to_owned()),
            "{expected} in {names:?}"
        );
    }
    assert!(
        names.contains(&"query".to_owned()),
        "this server's extras stay: {names:?}"
    );
    let names = tool_names(&server, &vic).await;
    assert!(names.contains(&"search_customers".to_owned()), "{names:?}");
    assert!(!names.contains(&"create_customer".to_owned()), "{names:?}");

    let r = call_tool(&server, &vic, "search_customers", serde_json::json!({"criteria": [{"field": "Active", "value": true}], "limit": 3, "asc": "DisplayName"})).await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    let found = r["result"]["structuredContent"]["QueryResponse"]["Customer"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(found.len(), 3, "{r}");
    let id = found[0]["Id"].as_str().unwrap();
    let r = call_tool(&server, &vic, "get_customer", serde_json::json!({"id": id})).await;
    assert_eq!(
        r["result"]["structuredContent"]["Customer"]["Id"], id,
        "{r}"
    );
    let r = call_tool(
        &server,
        &vic,
        "create_customer",
        serde_json::json!({"fields": {"DisplayName": "Nope"}}),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "a viewer cannot create: {r}");

    let r = call_tool(
        &server,
        &root,
        "create_customer",
        serde_json::json!({"fields": {"DisplayName": "Moved From Intuit's Server"}}),
    )
    .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    let created = r["result"]["structuredContent"]["Customer"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call_tool(&server, &root, "search_customers", serde_json::json!({"criteria": [{"field": "DisplayName", "value": "Moved From Intuit's Server"}]})).await;
    assert_eq!(
        r["result"]["structuredContent"]["QueryResponse"]["Customer"][0]["Id"], created,
        "{r}"
    );
    let r = call_tool(
        &server,
        &root,
        "delete_customer",
        serde_json::json!({"id": created}),
    )
    .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert_eq!(
        r["result"]["structuredContent"]["Customer"]["Active"], false,
        "deactivated: {r}"
    );
    let r = call_tool(
        &server,
        &root,
        "get_profit_and_loss",
        serde_json::json!({"start_date": "2026-01-01", "end_date": "2026-12-31"}),
    )
    .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert_eq!(
        r["result"]["structuredContent"]["Header"]["ReportName"], "ProfitAndLoss",
        "{r}"
    );
    let r = call_tool(
        &server,
        &root,
        "search_invoices",
        serde_json::json!({"criteria": [{"field": "Id", "value": "1", "operator": "OR"}]}),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");

    let audit: Value = admin
        .call(Method::GET, "/api/v1/audit?limit=100", None)
        .await
        .json()
        .await
        .unwrap();
    let tools: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["tool"].as_str())
        .collect();
    for t in [
        "search_customers",
        "create_customer",
        "delete_customer",
        "get_profit_and_loss",
    ] {
        assert!(tools.contains(&t), "{t} audited: {audit}");
    }
}
