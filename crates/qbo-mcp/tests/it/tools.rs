//! What a model reads and gets from the tools (docs/mcp.md, "Schemas"): `tools/list` on both
//! profiles describes `company`, enumerates `entity`, `report` and `summarize_column_by`, gives
//! dates their format and `fields` an example, declares an `outputSchema` and honest
//! annotations for every tool; every result's `structuredContent` matches its tool's
//! `outputSchema`; summaries are sentences about the books; `query` pages by a cursor; names
//! with a quote or a trailing backslash survive QuickBooks' query language; and calls written
//! exactly as Intuit's server takes them run on the `intuit` profile; an update whose
//! SyncToken the server read and went stale is read again once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use qbo_mcp::config::{IntuitApp, IntuitEnvironment};
use qbo_mcp::keys::{Sealer, SecretKey};
use qbo_mcp::quickbooks::{QboError, QuickBooks};
use qbo_mcp::secret::Secret;
use serde_json::{Value, json};

use crate::companies::{call_tool, connect_demo_company};
use crate::connections::{CRAIG, admin, authorize, consent_as, simulator};
use crate::harness::{Backend, TEST_KEY, TestDb, TestServer, client, personal_token};
use crate::on_both_backends;
use crate::people::first_admin;

const REALM: &str = "9341453050298464";
const COMPANY: &str = "Craig's Design and Landscaping Services";

on_both_backends!(
    tools_list_tells_a_model_everything_on_both_profiles,
    compact_results_match_their_schemas_and_read_as_sentences,
    calls_written_for_intuits_server_run_on_the_intuit_profile
);

/// A server (with `profile`) with Craig's Design connected and root's token.
pub async fn books(backend: Backend, profile: &str) -> (TestDb, TestServer, String) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::builder(&db)
        .env("QBO_MCP_TOOLS_PROFILE", profile)
        .start()
        .await;
    let admin = first_admin(&server).await;
    connect_demo_company(&server, &admin, REALM, "craig@craigsdesign.example").await;
    let root = personal_token(&db, "root").await;
    (db, server, root)
}

pub async fn list_tools(server: &TestServer, token: &str) -> Vec<Value> {
    let r: Value = server
        .post("/mcp")
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .clone()
}

/// Calls tools and checks each result's `structuredContent` against the tool's `outputSchema`.
pub struct Checked<'a> {
    server: &'a TestServer,
    token: &'a str,
    schemas: HashMap<String, jsonschema::Validator>,
}

impl<'a> Checked<'a> {
    pub async fn new(server: &'a TestServer, token: &'a str) -> Self {
        let schemas = list_tools(server, token)
            .await
            .into_iter()
            .map(|t| {
                let name = t["name"].as_str().unwrap().to_owned();
                let schema = jsonschema::validator_for(&t["outputSchema"])
                    .unwrap_or_else(|e| panic!("{name}'s outputSchema is a schema: {e}"));
                (name, schema)
            })
            .collect();
        Checked {
            server,
            token,
            schemas,
        }
    }

    /// The call's result (not an error), its summary and structured content, checked.
    pub async fn ok(&self, name: &str, arguments: Value) -> (String, Value) {
        let r = call_tool(self.server, self.token, name, arguments.clone()).await;
        let result = &r["result"];
        assert_eq!(result["isError"], false, "{name} {arguments}: {r}");
        let content = result["content"].as_array().unwrap();
        assert_eq!(
            content.len(),
            1,
            "the JSON goes once, as structured content: {r}"
        );
        let summary = content[0]["text"].as_str().unwrap().to_owned();
        assert!(
            !summary.contains("Some(") && !summary.contains("None") && !summary.starts_with('{'),
            "{name}: a sentence, not a debug value: {summary}"
        );
        let data = result["structuredContent"].clone();
        let listed = name.replace('-', "_");
        let listed = qbo_mcp::mcp::intuit::readme_name(&listed).unwrap_or(&listed);
        let schema = self
            .schemas
            .get(listed)
            .unwrap_or_else(|| panic!("{name} is listed"));
        let errors: Vec<String> = schema.iter_errors(&data).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{name}'s structuredContent matches its outputSchema: {errors:?}\n{data}"
        );
        (summary, data)
    }

    pub async fn refused(&self, name: &str, arguments: Value) -> String {
        let r = call_tool(self.server, self.token, name, arguments).await;
        assert_eq!(r["result"]["isError"], true, "{name}: {r}");
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// The annotations a tool of this name must carry: (readOnly, destructive, idempotent,
/// openWorld).
fn expected_annotations(name: &str) -> (bool, bool, bool, bool) {
    let verb = name.split('_').next().unwrap();
    match (name, verb) {
        ("send_invoice" | "send_estimate", _) => (false, false, false, true),
        (_, "create" | "attach" | "upload") => (false, false, false, false),
        (_, "update") => (false, false, true, false),
        (_, "delete") => (false, true, true, false),
        (_, "get" | "search" | "list" | "query" | "run" | "changes" | "download") => {
            (true, false, true, false)
        }
        _ => panic!("{name}: no expectation"),
    }
}

fn check_listing(tools: &[Value], profile: &str) {
    assert!(tools.len() >= 10, "{profile}: {tools:?}");
    for t in tools {
        let name = t["name"].as_str().unwrap();
        let a = &t["annotations"];
        let (read, destructive, idempotent, open) = expected_annotations(name);
        assert_eq!(a["readOnlyHint"], read, "{profile} {name}: {a}");
        assert_eq!(a["destructiveHint"], destructive, "{profile} {name}: {a}");
        assert_eq!(a["idempotentHint"], idempotent, "{profile} {name}: {a}");
        assert_eq!(a["openWorldHint"], open, "{profile} {name}: {a}");
        let out = &t["outputSchema"];
        assert_eq!(
            out["type"], "object",
            "{profile} {name} has an outputSchema: {t}"
        );
        jsonschema::validator_for(out).unwrap();
        let props = &t["inputSchema"]["properties"];
        if let Some(company) = props.get("company") {
            let d = company["description"].as_str().unwrap_or_default();
            assert!(
                d.contains("realm id") && d.contains("name") && d.contains("Omit"),
                "{profile} {name}: company described: {company}"
            );
        }
        if let Some(entity) = props.get("entity") {
            let names = entity["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {entity}"));
            assert!(names.contains(&json!("Invoice")), "{name}: {entity}");
            let writes = !read;
            let attachments = name.contains("attach");
            assert_eq!(
                names.contains(&json!("TaxRate")),
                !writes && !attachments,
                "{name}: read-only types only on reads (attachments only on what takes them): {entity}"
            );
        }
        for date in ["start_date", "end_date"] {
            if let Some(d) = props.get(date) {
                assert_eq!(d["format"], "date", "{name}: {d}");
                assert!(d["description"].as_str().unwrap().contains("YYYY-MM-DD"));
            }
        }
        if let Some(s) = props.get("summarize_column_by") {
            assert!(
                s["enum"].as_array().unwrap().contains(&json!("Month")),
                "{s}"
            );
        }
        if let Some(f) = props.get("fields")
            && !read
        {
            assert!(f["description"].as_str().unwrap().len() > 40, "{name}: {f}");
            assert!(
                !f["examples"].as_array().unwrap_or(&vec![]).is_empty()
                    || name.contains("time_activity")
                    || name.contains("deposit")
                    || name.contains("transfer")
                    || name.contains("class")
                    || name.contains("department")
                    || name.contains("term")
                    || name.contains("payment_method")
                    || name.contains("bill_payment")
                    || name.contains("employee"),
                "{name}: an example: {f}"
            );
        }
        if name.starts_with("search_") {
            assert_eq!(out["required"], json!(["QueryResponse"]), "{name}");
        }
    }
}

async fn tools_list_tells_a_model_everything_on_both_profiles(backend: Backend) {
    let (_db, server, root) = books(backend, "compact").await;
    let tools = list_tools(&server, &root).await;
    check_listing(&tools, "compact");
    let by_name = |n: &str| tools.iter().find(|t| t["name"] == n).unwrap().clone();
    let report = by_name("run_report");
    let reports = report["inputSchema"]["properties"]["report"]["enum"]
        .as_array()
        .unwrap();
    assert!(reports.contains(&json!("ProfitAndLoss")) && reports.contains(&json!("AgedPayables")));
    let create = by_name("create_entity");
    let fields = create["inputSchema"]["properties"]["fields"]["description"]
        .as_str()
        .unwrap();
    assert!(
        fields.contains("Customer:") && fields.contains("Invoice:"),
        "{fields}"
    );
    let without_company: Vec<&str> = tools
        .iter()
        .filter(|t| t["inputSchema"]["properties"].get("company").is_none())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        without_company,
        ["list_companies", "get_proposal"],
        "every tool that works in a company takes company"
    );

    let (_db, server, root) = books(backend, "intuit").await;
    let tools = list_tools(&server, &root).await;
    check_listing(&tools, "intuit");
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for extra in [
        "send_invoice",
        "send_estimate",
        "changes_since",
        "query",
        "get_preferences",
        "get_report",
        "update_company_info",
        "update_preferences",
        "get_transaction_link",
    ] {
        assert!(names.contains(&extra), "{extra} in {names:?}");
    }
    let create = tools
        .iter()
        .find(|t| t["name"] == "create_invoice")
        .unwrap();
    assert_eq!(
        create["inputSchema"]["properties"]["fields"]["examples"][0]["CustomerRef"]["value"], "1",
        "an Invoice example on create_invoice: {create}"
    );
    assert!(
        create["inputSchema"]["properties"]["params"].is_object(),
        "{create}"
    );
}

async fn compact_results_match_their_schemas_and_read_as_sentences(backend: Backend) {
    let (_db, server, root) = books(backend, "compact").await;
    let c = Checked::new(&server, &root).await;

    let (s, _) = c.ok("list_companies", json!({})).await;
    assert_eq!(s, format!("1 company: {COMPANY} (connected)."));
    c.ok("get_company_info", json!({})).await;

    // Bounded results: 2 rows, the rest counted, a cursor to pass back.
    let q = "SELECT * FROM Customer ORDERBY Id";
    let (s, first) = c.ok("query", json!({"query": q, "limit": 2})).await;
    let rows = first["QueryResponse"]["Customer"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{first}");
    let more = first["more"].as_u64().unwrap();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, "3");
    assert!(
        s.starts_with(&format!(
            "2 Customer rows from {COMPANY}; {more} more, pass `cursor` \"3\""
        )),
        "{s}"
    );
    let (s, second) = c
        .ok("query", json!({"query": q, "limit": 2, "cursor": cursor}))
        .await;
    let next = second["QueryResponse"]["Customer"].as_array().unwrap();
    assert_ne!(next[0]["Id"], rows[0]["Id"], "the next page: {second}");
    assert!(s.contains("(from row 3)"), "{s}");
    let (_, all) = c
        .ok("query", json!({"query": "SELECT * FROM Customer"}))
        .await;
    let total = all["QueryResponse"]["Customer"].as_array().unwrap().len() as u64;
    assert_eq!(
        total,
        more + 2,
        "default cap (100) holds every demo customer"
    );
    assert!(
        all.get("next_cursor").is_none(),
        "the last page has no cursor: {all}"
    );
    let (s, _) = c
        .ok("query", json!({"query": "SELECT COUNT(*) FROM Customer"}))
        .await;
    assert_eq!(s, format!("{total} Customer records match in {COMPANY}."));
    let bad = c.refused("query", json!({"query": q, "cursor": "x"})).await;
    assert!(bad.contains("next_cursor"), "{bad}");

    // Names with a quote and a trailing backslash go through QuickBooks' query language.
    let mut ids = Vec::new();
    for name in ["O'Brien", "C:\\path\\"] {
        let (s, created) = c
            .ok(
                "create_entity",
                json!({"entity": "Customer", "fields": {"DisplayName": name}}),
            )
            .await;
        let id = created["Customer"]["Id"].as_str().unwrap().to_owned();
        assert_eq!(s, format!("Customer {id} ({name}) created in {COMPANY}."));
        let escaped = name.replace('\\', "\\\\").replace('\'', "\\'");
        let (_, found) = c
            .ok(
                "query",
                json!({"query": format!("SELECT * FROM Customer WHERE DisplayName = '{escaped}'")}),
            )
            .await;
        assert_eq!(
            found["QueryResponse"]["Customer"][0]["Id"], id,
            "{name}: {found}"
        );
        ids.push(id);
    }
    let id = &ids[0];

    let (s, _) = c
        .ok("get_entity", json!({"entity": "Customer", "id": id}))
        .await;
    assert_eq!(s, format!("Customer {id} (O'Brien) from {COMPANY}."));
    let (s, _) = c
        .ok(
            "update_entity",
            json!({"entity": "Customer", "id": id, "fields": {"CompanyName": "O'Brien & Sons"}}),
        )
        .await;
    assert_eq!(
        s,
        format!("Customer {id} (O'Brien) updated in {COMPANY} (CompanyName changed).")
    );
    let (s, dry) = c
        .ok(
            "create_entity",
            json!({"entity": "Customer", "fields": {"DisplayName": "Not Sent"}, "dry_run": true}),
        )
        .await;
    assert!(s.starts_with("Dry run: a new Customer was checked"), "{s}");
    assert_eq!(dry["dry_run"], true);

    let (_, invoices) = c
        .ok(
            "query",
            json!({"query": "SELECT * FROM Invoice", "limit": 1}),
        )
        .await;
    let invoice = &invoices["QueryResponse"]["Invoice"][0];
    let invoice_id = invoice["Id"].as_str().unwrap().to_owned();
    let (s, _) = c
        .ok(
            "send_invoice",
            json!({"id": invoice_id, "email": "ap@acme.example"}),
        )
        .await;
    assert!(
        s.starts_with(&format!("Invoice {invoice_id} (No. "))
            && s.ends_with(&format!("emailed to ap@acme.example from {COMPANY}.")),
        "{s}"
    );
    let (s, _) = c
        .ok(
            "run_report",
            json!({"report": "ProfitAndLoss", "start_date": "2026-01-01", "end_date": "2026-12-31", "summarize_column_by": "Month"}),
        )
        .await;
    assert!(
        s.starts_with(&format!("ProfitAndLoss for {COMPANY}")),
        "{s}"
    );
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    c.ok(
        "changes_since",
        json!({"entities": ["Customer"], "since": since.to_rfc3339()}),
    )
    .await;

    let (s, gone) = c
        .ok("delete_entity", json!({"entity": "Customer", "id": id}))
        .await;
    assert_eq!(gone["Customer"]["Active"], false);
    assert_eq!(
        s,
        format!("Customer {id} (O'Brien) deactivated in {COMPANY}.")
    );
    // Using the inactive customer: 610's advice says what to do.
    let r = c
        .refused(
            "create_entity",
            json!({"entity": "Invoice", "fields": {"CustomerRef": {"value": id}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 10, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}}),
        )
        .await;
    assert!(
        r.contains("code 610") && r.contains("reactivate") && r.contains("active one"),
        "{r}"
    );
    let r = c.refused("run_report", json!({"report": "Nope"})).await;
    assert!(r.contains("ProfitAndLoss"), "{r}");
}

async fn calls_written_for_intuits_server_run_on_the_intuit_profile(backend: Backend) {
    let (_db, server, root) = books(backend, "intuit").await;
    let c = Checked::new(&server, &root).await;

    // Each call below is written as Intuit's server takes it: arguments in `params`, the
    // entity object by name, its criteria forms and option names.
    c.ok("get_company_info", json!({"params": {}})).await;
    c.ok("get_preferences", json!({"params": {}})).await;
    let (s, created) = c
        .ok(
            "create_customer",
            json!({"params": {"customer": {"DisplayName": "Moved Over Ltd", "PrimaryEmailAddr": {"Address": "ap@moved.example"}}}}),
        )
        .await;
    let id = created["Customer"]["Id"].as_str().unwrap().to_owned();
    let token = created["Customer"]["SyncToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s,
        format!("Customer {id} (Moved Over Ltd) created in {COMPANY}.")
    );
    c.ok("get_customer", json!({"params": {"id": id}})).await;
    let (_, found) = c
        .ok(
            "search_customers",
            json!({"params": {"criteria": [{"field": "DisplayName", "value": "Moved Over Ltd", "operator": "="}], "fields": ["Id", "PrimaryEmailAddr.Address"]}}),
        )
        .await;
    assert_eq!(
        found["QueryResponse"]["Customer"][0],
        json!({"Id": id, "PrimaryEmailAddr.Address": "ap@moved.example"})
    );
    let (_, counted) = c
        .ok(
            "search_customers",
            json!({"params": {"criteria": [{"key": "Active", "value": true}], "count": true}}),
        )
        .await;
    assert!(
        counted["QueryResponse"]["totalCount"].as_u64().unwrap() > 1,
        "{counted}"
    );
    let (_, all) = c
        .ok(
            "search_customers",
            json!({"params": {"criteria": [], "fetchAll": true, "summary": true}}),
        )
        .await;
    let summarised = &all["QueryResponse"]["Customer"][0];
    assert!(
        summarised.get("DisplayName").is_some() && summarised.get("MetaData").is_none(),
        "{summarised}"
    );
    let (_, invoices) = c
        .ok(
            "search_invoices",
            json!({"params": {"criteria": {"filters": [{"field": "TotalAmt", "value": 0, "operator": ">"}], "desc": "TxnDate", "limit": 3}}}),
        )
        .await;
    assert_eq!(
        invoices["QueryResponse"]["Invoice"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{invoices}"
    );
    c.ok(
        "search_items",
        json!({"params": {"criteria": {"Type": "Service", "limit": 2}}}),
    )
    .await;
    let (s, updated) = c
        .ok(
            "update_customer",
            json!({"params": {"customer": {"Id": id, "SyncToken": token, "CompanyName": "Moved Over"}}}),
        )
        .await;
    assert_eq!(updated["Customer"]["CompanyName"], "Moved Over");
    assert!(s.contains("(CompanyName changed)"), "{s}");

    let (_, items) = c
        .ok(
            "search_items",
            json!({"params": {"criteria": [{"field": "Type", "value": "Service"}], "limit": 1}}),
        )
        .await;
    let item = items["QueryResponse"]["Item"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, invoice) = c
        .ok(
            "create_invoice",
            json!({"params": {"customer_ref": id, "line_items": [{"item_ref": item, "qty": 2, "unit_price": 45, "description": "Two hours"}], "txn_date": "2026-11-02"}}),
        )
        .await;
    let invoice_id = invoice["Invoice"]["Id"].as_str().unwrap().to_owned();
    assert!(s.contains("90.00"), "{s}");
    c.ok(
        "update_invoice",
        json!({"params": {"invoice_id": invoice_id, "patch": {"DueDate": "2026-12-02"}}}),
    )
    .await;
    c.ok("get_invoice", json!({"params": {"id": invoice_id}}))
        .await;
    // Intuit's code registers `read_invoice` (its README says get_invoice).
    let (_, read) = c
        .ok(
            "read_invoice",
            json!({"params": {"invoice_id": invoice_id}}),
        )
        .await;
    assert_eq!(read["Invoice"]["Id"], invoice_id.as_str());
    // Its promoted create tools take the entity's fields at the top.
    let (_, promoted) = c
        .ok(
            "create_invoice",
            json!({"CustomerRef": {"value": id}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 45, "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": 45}}], "PrivateNote": "promoted"}),
        )
        .await;
    assert_eq!(promoted["Invoice"]["PrivateNote"], "promoted");
    c.ok(
        "delete_invoice",
        json!({"params": {"invoice_id": promoted["Invoice"]["Id"]}}),
    )
    .await;
    // Its search helper's criteria list carries the options among the conditions.
    let (_, helper) = c
        .ok(
            "search_invoices",
            json!({"params": {"criteria": [{"field": "TotalAmt", "value": 0, "operator": ">"}, {"field": "desc", "value": "TxnDate"}, {"field": "limit", "value": 2}]}}),
        )
        .await;
    assert_eq!(
        helper["QueryResponse"]["Invoice"].as_array().unwrap().len(),
        2,
        "{helper}"
    );
    let (s, _) = c
        .ok(
            "send_invoice",
            json!({"params": {"invoice_id": invoice_id, "send_to": "ap@moved.example", "allow_resend": true}}),
        )
        .await;
    assert!(
        s.ends_with(&format!("emailed to ap@moved.example from {COMPANY}.")),
        "{s}"
    );
    let (s, link) = c
        .ok(
            "get_transaction_link",
            json!({"params": {"entity_type": "invoice", "id": invoice_id}}),
        )
        .await;
    assert_eq!(
        link["link"],
        format!("https://qbo.intuit.com/app/invoice?txnId={invoice_id}")
    );
    assert!(s.starts_with(&format!("[{COMPANY}] https://")), "{s}");
    let (_, estimates) = c
        .ok(
            "search_estimates",
            json!({"params": {"criteria": [], "limit": 1}}),
        )
        .await;
    let estimate = estimates["QueryResponse"]["Estimate"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, sent) = c
        .ok(
            "send-estimate",
            json!({"params": {"estimate_id": estimate, "send_to": "buyer@moved.example", "allow_resend": false}}),
        )
        .await;
    assert_eq!(sent["Estimate"]["EmailStatus"], "EmailSent");
    assert!(
        s.ends_with(&format!("emailed to buyer@moved.example from {COMPANY}.")),
        "{s}"
    );
    // The company's settings, as Intuit's update_company_info and a Preferences object take
    // them: Id and SyncToken from the read, only what changes.
    let (_, read) = c.ok("get_company_info", json!({"params": {}})).await;
    let (s, info) = c
        .ok(
            "update_company_info",
            json!({"params": {
                "id": read["CompanyInfo"]["Id"],
                "sync_token": read["CompanyInfo"]["SyncToken"],
                "legal_name": "Craig's Design LLC",
                "company_addr": {"line1": "500 Main St", "city": "Middlefield", "country_sub_division_code": "CA", "postal_code": "94303"},
                "email": "office@craigs.example",
                "web_addr": "https://craigs.example"
            }}),
        )
        .await;
    assert_eq!(info["CompanyInfo"]["LegalName"], "Craig's Design LLC");
    assert_eq!(info["CompanyInfo"]["CompanyAddr"]["Line1"], "500 Main St");
    assert_eq!(
        info["CompanyInfo"]["Email"]["Address"],
        "office@craigs.example"
    );
    assert!(
        s.contains("(CompanyAddr, Email, LegalName, WebAddr changed)"),
        "{s}"
    );
    let (_, prefs) = c.ok("get-preferences", json!({"params": {}})).await;
    let (_, saved) = c
        .ok(
            "update_preferences",
            json!({"params": {"preferences": {
                "Id": prefs["Preferences"]["Id"],
                "SyncToken": prefs["Preferences"]["SyncToken"],
                "SalesFormsPrefs": {"CustomTxnNumbers": true}
            }}}),
        )
        .await;
    assert_eq!(
        saved["Preferences"]["SalesFormsPrefs"]["CustomTxnNumbers"],
        true
    );
    assert_eq!(
        saved["Preferences"]["SalesFormsPrefs"]["AllowDeposit"], true,
        "the rest of the section stays"
    );
    let (_, entries) = c
        .ok(
            "search_journal_entries",
            json!({"params": {"criteria": [], "limit": 1}}),
        )
        .await;
    let je = entries["QueryResponse"]["JournalEntry"][0]["Id"]
        .as_str()
        .unwrap_or_else(|| panic!("the demo books have journal entries: {entries}"));
    c.ok(
        "get_journal_entry",
        json!({"params": {"journal_entry_id": je}}),
    )
    .await;
    let (_, vendor) = c
        .ok(
            "create-vendor",
            json!({"params": {"vendor": {"DisplayName": "Hyphen Supply"}}}),
        )
        .await;
    assert_eq!(vendor["Vendor"]["DisplayName"], "Hyphen Supply");
    c.ok(
        "get_profit_and_loss",
        json!({"params": {"start_date": "2026-01-01", "end_date": "2026-12-31", "accounting_method": "Accrual", "summarize_column_by": "Month"}}),
    )
    .await;
    let (_, sheet) = c
        .ok(
            "get_report",
            json!({"params": {"reportName": "BalanceSheet", "end_date": "2026-10-31"}}),
        )
        .await;
    assert_eq!(sheet["Header"]["ReportName"], "BalanceSheet");
    c.ok(
        "query",
        json!({"query": "SELECT * FROM Vendor", "limit": 5}),
    )
    .await;
    let (s, _) = c
        .ok("delete_invoice", json!({"params": {"id": invoice_id}}))
        .await;
    assert!(s.ends_with(&format!("deleted in {COMPANY}.")), "{s}");
    let (s, _) = c.ok("delete_customer", json!({"params": {"id": id}})).await;
    assert!(
        s.ends_with(&format!("(Moved Over Ltd) deactivated in {COMPANY}.")),
        "{s}"
    );
    // A typo is still refused by name.
    let r = c
        .refused(
            "create_customer",
            json!({"params": {"customr": {"DisplayName": "x"}}}),
        )
        .await;
    assert!(r.contains("customr"), "{r}");
}

on_both_backends!(company_settings_are_changed_by_admins_and_estimates_are_sent);

/// `update_company_settings` (admins) changes CompanyInfo and Preferences, which then read
/// back changed; a stale SyncToken given by the caller is QuickBooks' 5010; a bookkeeper is
/// refused before anything is sent and may not reach the settings through `update_entity`,
/// but sends an estimate with `send_estimate`; every call is audited with what it did.
async fn company_settings_are_changed_by_admins_and_estimates_are_sent(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::builder(&db).start().await;
    let admin = first_admin(&server).await;
    connect_demo_company(&server, &admin, REALM, "craig@craigsdesign.example").await;
    crate::people::add_person(&admin, "bea", "bookkeeper").await;
    let root = personal_token(&db, "root").await;
    let bea = personal_token(&db, "bea").await;
    let c = Checked::new(&server, &root).await;

    let (_, before) = c.ok("get_company_info", json!({})).await;
    let info_token = before["CompanyInfo"]["SyncToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, info) = c
        .ok(
            "update_company_settings",
            json!({"settings": "CompanyInfo", "fields": {"LegalName": "Craig's Design LLC", "PrimaryPhone": {"FreeFormNumber": "(555) 555-0199"}}}),
        )
        .await;
    assert_eq!(info["CompanyInfo"]["LegalName"], "Craig's Design LLC");
    assert_eq!(
        s,
        format!(
            "CompanyInfo 1 ({COMPANY}) updated in {COMPANY} (LegalName, PrimaryPhone changed)."
        )
    );
    let (s, prefs) = c
        .ok(
            "update_company_settings",
            json!({"settings": "Preferences", "fields": {"AccountingInfoPrefs": {"TrackDepartments": false}}}),
        )
        .await;
    assert_eq!(
        prefs["Preferences"]["AccountingInfoPrefs"]["TrackDepartments"],
        false
    );
    assert!(s.contains("(AccountingInfoPrefs changed)"), "{s}");
    let (_, after) = c.ok("get_company_info", json!({})).await;
    assert_eq!(after["CompanyInfo"]["LegalName"], "Craig's Design LLC");
    assert_eq!(
        after["CompanyInfo"]["PrimaryPhone"]["FreeFormNumber"],
        "(555) 555-0199"
    );
    assert_eq!(
        after["CompanyInfo"]["CompanyName"], COMPANY,
        "a sparse update keeps the rest"
    );
    assert_eq!(
        after["Preferences"]["AccountingInfoPrefs"]["TrackDepartments"],
        false
    );
    assert_eq!(
        after["Preferences"]["AccountingInfoPrefs"]["DepartmentTerminology"], "Location",
        "a section's other preferences stay"
    );
    let (_, changed) = c
        .ok(
            "changes_since",
            json!({"entities": ["Preferences"], "since": (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string()}),
        )
        .await;
    assert_eq!(
        changed["CDCResponse"][0]["QueryResponse"][0]["Preferences"][0]["AccountingInfoPrefs"]["TrackDepartments"],
        false,
        "{changed}"
    );

    // The caller's own SyncToken, gone stale: QuickBooks' 5010, not retried.
    let r = c
        .refused(
            "update_company_settings",
            json!({"settings": "CompanyInfo", "sync_token": info_token, "fields": {"LegalName": "Late"}}),
        )
        .await;
    assert!(r.contains("code 5010"), "{r}");
    // Read-only preferences are QuickBooks' to refuse.
    let r = c
        .refused(
            "update_company_settings",
            json!({"settings": "Preferences", "fields": {"CurrencyPrefs": {"HomeCurrency": {"value": "EUR"}}}}),
        )
        .await;
    assert!(r.contains("code 2010"), "{r}");
    let r = c
        .refused(
            "update_company_settings",
            json!({"settings": "CompanyInfo", "fields": {"Id": "1", "LegalName": "x"}}),
        )
        .await;
    assert!(r.contains("sync_token"), "{r}");

    // A bookkeeper: not the company's settings, by either tool; estimates, yes.
    let tools = list_tools(&server, &bea).await;
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"send_estimate") && !names.contains(&"update_company_settings"));
    let b = Checked::new(&server, &bea).await;
    let r = b
        .refused(
            "update_company_settings",
            json!({"settings": "CompanyInfo", "fields": {"LegalName": "Bea's"}}),
        )
        .await;
    assert!(r.contains("needs the admin role"), "{r}");
    let r = b
        .refused(
            "update_entity",
            json!({"entity": "CompanyInfo", "id": "1", "fields": {"LegalName": "Bea's"}}),
        )
        .await;
    assert!(r.contains("update_company_settings"), "{r}");
    let (_, estimates) = b
        .ok(
            "query",
            json!({"query": "SELECT * FROM Estimate", "limit": 1}),
        )
        .await;
    let estimate = estimates["QueryResponse"]["Estimate"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, sent) = b
        .ok(
            "send_estimate",
            json!({"id": estimate, "email": "buyer@example.com"}),
        )
        .await;
    assert_eq!(sent["Estimate"]["EmailStatus"], "EmailSent");
    assert!(s.starts_with(&format!("Estimate {estimate} (")), "{s}");
    assert!(
        s.ends_with(&format!("emailed to buyer@example.com from {COMPANY}.")),
        "{s}"
    );
    let r = b.refused("send_estimate", json!({"id": "99999"})).await;
    assert!(r.contains("code 610"), "{r}");

    // Each call is audited with what it did.
    let audit: Value = admin
        .call(reqwest::Method::GET, "/api/v1/audit?action=tool.call", None)
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let of = |tool: &str| {
        entries
            .iter()
            .find(|e| e["tool"] == tool && e["outcome"] == "ok")
            .unwrap_or_else(|| panic!("an ok {tool} entry in {audit}"))
    };
    let sent = of("send_estimate");
    assert_eq!(sent["details"]["entity"], "Estimate", "{sent}");
    assert_eq!(sent["details"]["id"], estimate.as_str(), "{sent}");
    assert_eq!(sent["details"]["send_to"], "buyer@example.com", "{sent}");
    let settings = entries
        .iter()
        .filter(|e| e["tool"] == "update_company_settings" && e["outcome"] == "ok")
        .map(|e| e["details"]["entity"].as_str().unwrap_or_default())
        .collect::<Vec<_>>();
    assert_eq!(settings, ["Preferences", "CompanyInfo"], "{audit}");
}

on_both_backends!(a_stale_sync_token_the_server_read_is_read_again_once);

/// The QuickBooks client with Craig's Design connected, Intuit played by whatever answers at
/// `intuit` (a proxy in front of a simulator).
pub async fn connected_through(test_db: &TestDb, intuit: &str) -> QuickBooks {
    let qb = QuickBooks::new(
        test_db.connect().await,
        Arc::new(Sealer::new(&SecretKey::from_base64(TEST_KEY).unwrap())),
        IntuitApp {
            client_id: "qbo-mcp-test-app".into(),
            client_secret: Secret::new("test-secret".into()),
        },
        &IntuitEnvironment::Simulator(url::Url::parse(intuit).unwrap()),
        &url::Url::parse("http://127.0.0.1:9").unwrap(),
        None,
    )
    .unwrap();
    let me = admin(1, "alice");
    let url = qb.start_connect(&me, None).await.unwrap();
    qb.finish_connect(&me, authorize(&url).await).await.unwrap();
    qb
}

/// A request a test proxy received, sent on to `url` as it came (but its Host and length).
pub fn forwarded(
    parts: &axum::http::request::Parts,
    body: axum::body::Bytes,
    url: &str,
) -> reqwest::RequestBuilder {
    let mut r = client().request(parts.method.clone(), url).body(body);
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            r = r.header(k, v);
        }
    }
    r
}

/// What the upstream answered, as the test proxy's own answer.
pub async fn relayed(answer: reqwest::Response) -> axum::response::Response {
    let mut out = axum::http::Response::builder().status(answer.status());
    for (k, v) in answer.headers() {
        if k != "content-length" && k != "transfer-encoding" {
            out = out.header(k, v);
        }
    }
    out.body(axum::body::Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

/// Plays a colleague who saves the same record between the server's read of its SyncToken
/// and its write: in front of the simulator, the first update of a Customer is sent twice,
/// so the server's own copy arrives stale (5010).
async fn interfering_proxy(sim: String) -> (String, Arc<AtomicUsize>) {
    let interfered = Arc::new(AtomicUsize::new(0));
    let seen = interfered.clone();
    let forward = move |request: axum::extract::Request| {
        let (sim, seen) = (sim.clone(), seen.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let url = format!("{sim}{}", parts.uri);
            // The colleague's save is another request: without this one's `requestid`, which
            // the simulator (as Intuit) answers again with its first answer.
            let mut theirs = url::Url::parse(&url).unwrap();
            let kept: Vec<(String, String)> = theirs
                .query_pairs()
                .filter(|(k, _)| k != "requestid")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            theirs.query_pairs_mut().clear().extend_pairs(kept);
            let send = |url: &str| forwarded(&parts, body.clone(), url).send();
            let update = parts.method == "POST"
                && parts.uri.path().ends_with("/customer")
                && body.windows(9).any(|w| w == b"SyncToken");
            if update && seen.fetch_add(1, Ordering::SeqCst) == 0 {
                let colleague = send(theirs.as_str()).await.unwrap();
                assert!(colleague.status().is_success(), "the colleague's save");
            }
            relayed(send(&url).await.unwrap()).await
        }
    };
    let app = axum::Router::new().fallback(forward);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (at, interfered)
}

async fn a_stale_sync_token_the_server_read_is_read_again_once(backend: Backend) {
    let test_db = TestDb::fresh(backend).await;
    let sim = simulator(consent_as(CRAIG)).await;
    let (proxy, interfered) = interfering_proxy(sim.base_url()).await;
    let qb = connected_through(&test_db, &proxy).await;

    // The server read the SyncToken itself: the stale answer is read again and sent once more.
    let changed = json!({"CompanyName": "Stale Token Co"});
    let done = qb
        .update_entity(REALM, "Customer", "1", &changed, None, false)
        .await
        .unwrap_or_else(|e| panic!("retried with a fresh SyncToken: {e}"));
    assert_eq!(
        interfered.load(Ordering::SeqCst),
        2,
        "a 5010, then the retry"
    );
    assert_eq!(done.value["Customer"]["CompanyName"], "Stale Token Co");
    // A SyncToken the caller gave is the caller's: its 5010 comes back, with no retry.
    let before = interfered.load(Ordering::SeqCst);
    let e = qb
        .update_entity(REALM, "Customer", "1", &changed, Some("0"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, QboError::Fault { fault, .. } if fault.code == "5010"),
        "{e}"
    );
    assert_eq!(interfered.load(Ordering::SeqCst), before + 1, "sent once");
}
