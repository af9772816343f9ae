//! The audit log end to end: a tool call's entry says what it did in the books (entity, id,
//! DocNumber, total, Intuit's request id; a read's query and row count), a write's entry is
//! pending until it ends and reads `unknown` when it never did, the `/audit` page filters and
//! pages (in a browser too), and the CSV export streams with correct quoting — each with the
//! rule that only admins read other people's entries.

use std::path::Path;

use qbo_mcp::audit::{self, NewEntry, Outcome};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::companies::{call_tool, connect_demo_company};
use crate::harness::{Backend, TestDb, TestServer, node, personal_token, run_peer};
use crate::on_both_backends;
use crate::people::browser::browser_peers;
use crate::people::{Browser, PASSWORD, add_person, first_admin};

const REALM: &str = "9341453050298464";
const COMPANY: &str = "Craig's Design and Landscaping Services";

on_both_backends!(
    tool_calls_record_what_they_did_in_the_books,
    the_audit_page_filters_pages_and_keeps_to_ones_own,
    the_csv_export_quotes_filters_and_keeps_to_ones_own,
    the_audit_page_works_in_a_browser
);

/// A JSON answer of the API, read by `reader`.
async fn get_json(reader: &Browser, path: &str) -> Value {
    reader
        .call(Method::GET, path, None)
        .await
        .json()
        .await
        .unwrap()
}

/// The newest audit entry of `tool`, as the JSON API shows it to `reader`.
async fn entry_of(reader: &Browser, tool: &str) -> Value {
    let audit = get_json(reader, "/api/v1/audit?action=tool.call").await;
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tool"] == tool)
        .cloned()
        .unwrap_or_else(|| panic!("no {tool} entry in {audit}"))
}

async fn tool_calls_record_what_they_did_in_the_books(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;
    connect_demo_company(&server, &admin, REALM, "craig@craigsdesign.example").await;
    let token = personal_token(&db, "root").await;

    // A write: the entry names the entity, its new id, DocNumber and total, and Intuit's id.
    let r = call_tool(
        &server,
        &token,
        "create_entity",
        json!({"entity": "Invoice", "fields": {
            "DocNumber": "T-1001",
            "CustomerRef": {"value": "1"},
            "Line": [{"Amount": 150.0, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]
        }}),
    )
    .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    let invoice = &r["result"]["structuredContent"]["Invoice"];
    let e = entry_of(&admin, "create_entity").await;
    assert_eq!(e["outcome"], "ok", "{e}");
    assert_eq!(e["company"], REALM, "{e}");
    assert_eq!(e["company_name"], COMPANY, "{e}");
    assert!(
        e["assistant"]
            .as_str()
            .unwrap()
            .contains("personal access token"),
        "{e}"
    );
    assert!(e["duration_ms"].is_i64(), "{e}");
    let tid = e["intuit_tid"].as_str().unwrap_or_default();
    assert!(!tid.is_empty(), "Intuit's request id is recorded: {e}");
    let d = &e["details"];
    assert_eq!(d["entity"], "Invoice", "{e}");
    assert_eq!(d["id"], invoice["Id"], "{e}");
    assert_eq!(d["doc_number"], "T-1001", "{e}");
    assert_eq!(d["total"], invoice["TotalAmt"], "{e}");
    assert!(
        d["request_id"].is_string(),
        "our requestid for the write: {e}"
    );
    // A summary, not the document: no line of the invoice is in the entry.
    assert!(!e.to_string().contains("SalesItemLineDetail"), "{e}");

    // A read: the query (as written) and the row count.
    let r = call_tool(
        &server,
        &token,
        "query",
        json!({"query": "SELECT * FROM Customer WHERE Active = true"}),
    )
    .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    let rows = r["result"]["structuredContent"]["QueryResponse"]["Customer"]
        .as_array()
        .unwrap()
        .len();
    let e = entry_of(&admin, "query").await;
    assert_eq!(e["details"]["entity"], "Customer", "{e}");
    assert_eq!(
        e["details"]["query"], "SELECT * FROM Customer WHERE Active = true",
        "{e}"
    );
    assert_eq!(e["details"]["rows"], rows, "{e}");
    assert!(e["intuit_tid"].is_string(), "{e}");

    // One entry per call, the write's included (completed, not written twice).
    let all = get_json(&admin, "/api/v1/audit?action=tool.call").await;
    assert_eq!(all["entries"].as_array().unwrap().len(), 2, "{all}");

    // A refused write (QuickBooks' fault) still names what it tried and Intuit's id.
    let r = call_tool(
        &server,
        &token,
        "update_entity",
        json!({"entity": "Customer", "id": "99999", "fields": {"Notes": "x"}}),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    let e = entry_of(&admin, "update_entity").await;
    assert_eq!(e["outcome"], "error", "{e}");
    assert_eq!(
        (e["details"]["entity"].as_str(), e["details"]["id"].as_str()),
        (Some("Customer"), Some("99999")),
        "{e}"
    );
    assert_eq!(e["details"]["changed"], "Notes", "{e}");

    // A write whose server stopped between the pending entry and its end: `pending` while
    // the call could still be running, `unknown` after (docs/reference.md, "Audit").
    let lib = db.connect().await;
    let id = audit::record_pending(
        &lib,
        &NewEntry::new(Some("root"), "tool.call", Outcome::Ok)
            .tool("delete_entity")
            .company(REALM)
            .details(json!({"entity": "Invoice", "id": "1"})),
    )
    .await
    .unwrap();
    let pending = get_json(&admin, "/api/v1/audit?outcome=pending").await;
    assert_eq!(pending["entries"][0]["id"], id, "{pending}");
    assert_eq!(pending["entries"][0]["outcome"], "pending", "{pending}");
    let hour_ago = qbo_mcp::time::now() - 3600;
    qbo_mcp::on_db!(&lib, pool => {
        sqlx::query("UPDATE audit_entries SET at = $1 WHERE id = $2")
            .bind(hour_ago)
            .bind(id)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected()
    });
    let unknown = get_json(&admin, "/api/v1/audit?outcome=unknown").await;
    assert_eq!(unknown["entries"].as_array().unwrap().len(), 1, "{unknown}");
    assert_eq!(unknown["entries"][0]["id"], id, "{unknown}");
    assert_eq!(unknown["entries"][0]["outcome"], "unknown", "{unknown}");
    let pending = get_json(&admin, "/api/v1/audit?outcome=pending").await;
    assert_eq!(pending["entries"], json!([]), "{pending}");
    let (status, page) = admin.page("/audit?outcome=unknown").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("outcome unknown"), "{page}");
}

/// Writes `n` entries for `username` straight into the log (the page's paging needs many).
async fn seed(db: &TestDb, username: &str, action: &str, n: usize) {
    let lib = db.connect().await;
    for i in 0..n {
        audit::record_now(
            &lib,
            &NewEntry::new(Some(username), action, Outcome::Ok)
                .tool("query")
                .company(REALM)
                .company_name(COMPANY)
                .details(json!({"entity": "Customer", "query": format!("SELECT * FROM Customer -- {i}"), "rows": i})),
        )
        .await
        .unwrap();
    }
}

/// The `href` values of links in `html` that contain `needle`.
fn links(html: &str, needle: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|h| h.contains(needle))
        .map(|h| h.replace("&amp;", "&"))
        .collect()
}

async fn the_audit_page_filters_pages_and_keeps_to_ones_own(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;
    add_person(&admin, "bea", "bookkeeper").await;
    seed(&db, "bea", "tool.call", 60).await;
    seed(&db, "root", "tool.call", 3).await;
    let bea = Browser::sign_in(&server.url, "bea", PASSWORD)
        .await
        .unwrap_or_else(|_| panic!("bea signs in"));

    // The navigation reaches it (and Assistants), for everyone.
    let (_, home) = bea.page("/account").await;
    assert!(home.contains("href=\"/audit\""), "{home}");
    assert!(home.contains("href=\"/assistants\""), "{home}");

    // An admin filters by user: 50 on the first page, the rest behind "Older entries",
    // which keeps the filter.
    let (status, page) = admin.page("/audit?user=bea&action=tool.call").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page.matches("<details class=\"entry\"").count(),
        50,
        "{page}"
    );
    assert!(!page.contains("<strong>root</strong>"), "{page}");
    for field in ["user", "company", "action", "outcome", "since", "until"] {
        assert!(
            page.contains(&format!("label for=\"{field}\""))
                && page.contains(&format!("name=\"{field}\"")),
            "{field} is a labelled field"
        );
    }
    let older = links(&page, "before=");
    assert_eq!(older.len(), 1, "{page}");
    assert!(
        older[0].contains("user=bea") && older[0].contains("action=tool.call"),
        "{older:?}"
    );
    let (_, second) = admin.page(&older[0]).await;
    assert_eq!(
        second.matches("<details class=\"entry\"").count(),
        10,
        "{second}"
    );
    assert!(
        links(&second, "before=").is_empty(),
        "the last page has no older link"
    );
    // Times read as people read them, with the machine time in `datetime`.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        second.contains(&format!(">{today} ")) && second.contains(" UTC</time>"),
        "{second}"
    );
    // Each entry opens on its details: the row count, the query, the request id and duration.
    assert!(
        second.contains("QuickBooks request id") && second.contains("Duration"),
        "{second}"
    );
    assert!(second.contains("SELECT * FROM Customer -- 0"), "{second}");

    // Filters: company by name (any case), outcome, a date range that includes today.
    let (_, by_name) = admin
        .page(&format!("/audit?company=craig%27s+design+and+landscaping+services&user=root&since={today}&until={today}"))
        .await;
    assert_eq!(
        by_name.matches("<details class=\"entry\"").count(),
        3,
        "{by_name}"
    );
    let (_, none) = admin.page("/audit?outcome=error").await;
    assert!(none.contains("No entries match."), "{none}");
    let (_, before_today) = admin.page("/audit?until=2000-01-01").await;
    assert!(before_today.contains("No entries match."), "{before_today}");
    let (status, bad) = admin.page("/audit?since=last+tuesday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.contains("`since` must be a date"), "{bad}");

    // A bookkeeper sees only their own entries, and may not ask for someone else's.
    let (_, own) = bea.page("/audit").await;
    assert_eq!(own.matches("<details class=\"entry\"").count(), 50, "{own}");
    assert!(!own.contains("<strong>root</strong>"), "{own}");
    assert!(
        !own.contains("name=\"user\""),
        "no user field for a non-admin"
    );
    let (status, _) = bea.page("/audit?user=root").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A person's page links to their recent activity, and grants a company by picking one of
    // the connected companies.
    let (_, person) = admin.page("/people/bea").await;
    assert!(person.contains("href=\"/audit?user=bea\""), "{person}");
    assert!(person.contains("No company is connected yet"), "{person}");
    connect_demo_company(&server, &admin, REALM, "craig@craigsdesign.example").await;
    let (_, person) = admin.page("/people/bea").await;
    assert!(
        person.contains("<select id=\"realm_id\" name=\"realm_id\"")
            && person.contains(&format!("<option value=\"{REALM}\">")),
        "{person}"
    );
    let r = admin
        .submit("/people/bea", "/people/bea/grants", &[("realm_id", REALM)])
        .await;
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    let (_, person) = admin.page("/people/bea").await;
    assert!(
        person.contains("Every connected company is granted."),
        "{person}"
    );
    assert!(
        person.contains("Craig&#39;s Design") || person.contains("Craig's Design"),
        "{person}"
    );

    // The company page shows its recent calls and links to the rest: everyone's five latest
    // for an admin, only her own for bea.
    let (_, companies) = admin.page("/companies").await;
    assert!(companies.contains("Recent calls"), "{companies}");
    let calls = |html: &str, who: &str| html.matches(&format!(" · {who} · query · ok")).count();
    assert_eq!(
        (calls(&companies, "root"), calls(&companies, "bea")),
        (3, 2),
        "{companies}"
    );
    assert!(
        companies.contains(&format!("href=\"/audit?company={REALM}\"")),
        "{companies}"
    );
    let (_, theirs) = bea.page("/companies").await;
    assert_eq!(
        (calls(&theirs, "root"), calls(&theirs, "bea")),
        (0, 5),
        "{theirs}"
    );

    // Times read as people read them on every page; the onboarding page's grammar.
    assert_eq!(
        machine_time("<td>2026-11-30T22:36:20Z</td>").as_deref(),
        Some("2026-11-30T22:36:20Z")
    );
    for path in [
        "/people",
        "/people/bea",
        "/account",
        "/assistants",
        "/companies",
    ] {
        let (_, html) = admin.page(path).await;
        let machine = machine_time(&html);
        assert!(machine.is_none(), "{path} shows {machine:?}");
    }
    let (_, welcome) = admin.page("/onboarding").await;
    assert!(
        welcome.contains("You are an <strong>admin</strong>"),
        "{welcome}"
    );
    let (_, welcome) = bea.page("/onboarding").await;
    assert!(
        welcome.contains("You are a <strong>bookkeeper</strong>"),
        "{welcome}"
    );
}

/// The first RFC 3339 time (`2026-11-30T22:36:20Z`) in a page, outside `datetime` attributes.
fn machine_time(html: &str) -> Option<String> {
    let bytes = html.as_bytes();
    (0..bytes.len().saturating_sub(20)).find_map(|i| {
        let w = &bytes[i..i + 20];
        let shape = w.iter().enumerate().all(|(k, &b)| match k {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
        // `<time datetime="…">` carries the machine time on purpose.
        (shape && !bytes[..i].ends_with(b"datetime=\""))
            .then(|| String::from_utf8_lossy(w).into_owned())
    })
}

/// Parses CSV (RFC 4180: quoted fields, doubled quotes, CRLF rows).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        !quoted && cell.is_empty() && row.is_empty(),
        "CSV ends with a row"
    );
    rows
}

async fn the_csv_export_quotes_filters_and_keeps_to_ones_own(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;
    add_person(&admin, "bea", "bookkeeper").await;
    // More rows than one database page of the export.
    seed(&db, "bea", "tool.call", 1203).await;
    // A target a spreadsheet would run as a formula, and details with quotes and commas.
    let lib = db.connect().await;
    audit::record_now(
        &lib,
        &NewEntry::new(Some("root"), "allowlist.add", Outcome::Ok)
            .target("@example.com")
            .details(json!({"note": "=HYPERLINK(\"http://x\"), \"quoted\"\nnext line"})),
    )
    .await
    .unwrap();

    let r = admin.get("/api/v1/audit?format=csv&user=root").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "{:?}",
        r.headers()
    );
    let rows = parse_csv(&r.text().await.unwrap());
    let header = &rows[0];
    assert_eq!(
        header[..9],
        [
            "at",
            "username",
            "assistant",
            "action",
            "tool",
            "company",
            "outcome",
            "duration_ms",
            "intuit_tid"
        ],
        "{header:?}"
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let added: Vec<&Vec<String>> = rows[1..]
        .iter()
        .filter(|r| r[col("action")] == "allowlist.add")
        .collect();
    assert_eq!(added.len(), 1, "{rows:?}");
    let row = added[0];
    assert_eq!(row.len(), header.len());
    assert_eq!(row[col("target")], "'@example.com", "formula guarded");
    let details: Value = serde_json::from_str(&row[col("details")]).unwrap();
    assert_eq!(
        details["note"], "=HYPERLINK(\"http://x\"), \"quoted\"\nnext line",
        "the quoted cell reads back exactly"
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(&row[col("at")]).is_ok(),
        "{row:?}"
    );

    // Every matching entry, newest first, across the export's database pages.
    let r = admin
        .get("/api/v1/audit?format=csv&user=bea&action=tool")
        .await;
    let rows = parse_csv(&r.text().await.unwrap());
    assert_eq!(rows.len(), 1 + 1203);
    let ids: Vec<i64> = rows[1..]
        .iter()
        .map(|r| r[col("id")].parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    assert!(rows[1..].iter().all(|r| r[col("username")] == "bea"));

    // A bookkeeper's export holds only their own rows; another person's is refused.
    let bea = Browser::sign_in(&server.url, "bea", PASSWORD)
        .await
        .unwrap_or_else(|_| panic!("bea signs in"));
    let r = bea.get("/api/v1/audit?format=csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    let rows = parse_csv(&r.text().await.unwrap());
    assert!(rows.len() > 1203, "{}", rows.len());
    assert!(
        rows[1..].iter().all(|r| r[col("username")] == "bea"),
        "only bea's rows"
    );
    let r = bea.get("/api/v1/audit?format=csv&user=root").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = admin.get("/api/v1/audit?format=xml").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = admin.get("/api/v1/audit?format=csv&outcome=maybe").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn the_audit_page_works_in_a_browser(backend: Backend) {
    let dir = browser_peers();
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let admin = first_admin(&server).await;
    add_person(&admin, "bea", "bookkeeper").await;
    connect_demo_company(&server, &admin, REALM, "craig@craigsdesign.example").await;
    let token = personal_token(&db, "root").await;
    let r = call_tool(
        &server,
        &token,
        "query",
        json!({"query": "SELECT * FROM Customer"}),
    )
    .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    seed(&db, "bea", "tool.call", 55).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/screenshots")
        .join(format!("audit-{backend:?}").to_lowercase());
    let out = run_peer(
        &node(),
        &["browser-audit.mjs"],
        &dir,
        &[
            ("BASE_URL", &server.url),
            ("PASSWORD", PASSWORD),
            ("SCREENSHOT_DIR", shots.to_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for name in ["01-audit", "02-filtered", "03-bookkeeper"] {
        for width in ["desktop", "375"] {
            assert!(
                shots.join(format!("{name}-{width}.png")).exists(),
                "{name}-{width}.png"
            );
        }
    }
}
