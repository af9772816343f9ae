//! What the write tools do before QuickBooks sees a write (docs/tools.md): references given by
//! name resolve to ids (or are refused, naming candidates, with nothing written), and entries
//! QuickBooks would refuse are refused without spending a request of the company's budget.
//! The real server against an external simulator, tools called over `/mcp`.

use serde_json::{Value, json};

use crate::connections::stat;
use crate::harness::Backend;
use crate::on_both_backends;
use crate::proposals::{customers_named, set_policy, team};

on_both_backends!(
    references_by_name_resolve_or_are_refused,
    entries_are_checked_before_quickbooks_sees_them
);

fn invoice(customer: Value, item: Value) -> Value {
    json!({"entity": "Invoice", "fields": {"CustomerRef": customer, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 75,
        "SalesItemLineDetail": {"ItemRef": item, "Qty": 1, "UnitPrice": 75}}]}})
}

async fn references_by_name_resolve_or_are_refused(backend: Backend) {
    let t = team(backend).await;
    let (root, bea) = (t.assistant(&t.root), t.assistant(&t.bea));
    let cool = customers_named(&root, "Cool Cars").await;
    let cool_id = cool[0]["Id"].as_str().unwrap().to_owned();

    // Any case, in a dry run: the resolved ids are what would be sent.
    let mut args = invoice(json!({"name": "cool cars"}), json!({"name": "DESIGN"}));
    args["dry_run"] = json!(true);
    let dry = bea.ok("create_entity", args).await;
    let body = &dry["would_send"]["body"];
    assert_eq!(body["CustomerRef"]["value"], cool_id.as_str(), "{dry}");
    assert_eq!(body["CustomerRef"]["name"], "Cool Cars", "{dry}");
    assert!(
        body["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"].is_string(),
        "{dry}"
    );

    // For real: the invoice is for Cool Cars.
    let made = bea
        .ok(
            "create_entity",
            invoice(json!({"name": "Cool Cars"}), json!({"name": "Design"})),
        )
        .await;
    assert_eq!(
        made["Invoice"]["CustomerRef"]["value"],
        cool_id.as_str(),
        "{made}"
    );

    // Unknown: refused with candidates, nothing written.
    let writes = stat(&t.sim, "writes");
    let text = bea
        .error(
            "create_entity",
            invoice(json!({"name": "Cool"}), json!({"name": "Design"})),
        )
        .await;
    assert!(
        text.contains("No active Customer is named exactly `Cool`"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Cool Cars (id {cool_id})")),
        "{text}"
    );
    let text = bea
        .error(
            "create_entity",
            invoice(
                json!({"value": cool_id}),
                json!({"name": "Nothing Like It"}),
            ),
        )
        .await;
    assert!(
        text.contains("No active Item is named `Nothing Like It`"),
        "{text}"
    );
    assert_eq!(stat(&t.sim, "writes"), writes);

    // Ambiguous: QuickBooks compares names ignoring ASCII case only, so both exist; by name
    // (any case) they are the same, and the write is refused listing both.
    for name in ["Élan Studio", "élan studio"] {
        root.ok(
            "create_entity",
            json!({"entity": "Customer", "fields": {"DisplayName": name}}),
        )
        .await;
    }
    let writes = stat(&t.sim, "writes");
    let text = bea
        .error(
            "create_entity",
            invoice(json!({"name": "ÉLAN STUDIO"}), json!({"name": "Design"})),
        )
        .await;
    assert!(
        text.contains("2 active Customer records are named"),
        "{text}"
    );
    assert_eq!(stat(&t.sim, "writes"), writes);

    // An update takes names too, and a proposal shows the resolved ref.
    set_policy(&t.root, json!({"mode": "all_writes"})).await;
    let id = made["Invoice"]["Id"].as_str().unwrap();
    let held = bea
        .ok(
            "update_entity",
            json!({"entity": "Invoice", "id": id, "fields": {"CustomerRef": {"name": "Red Rock Diner"}}}),
        )
        .await;
    assert_eq!(held["status"], "pending_approval", "{held}");
    let red = customers_named(&root, "Red Rock Diner").await;
    assert_eq!(
        held["preview"]["body"]["CustomerRef"]["value"], red[0]["Id"],
        "{held}"
    );
}

async fn entries_are_checked_before_quickbooks_sees_them(backend: Backend) {
    let t = team(backend).await;
    let bea = t.assistant(&t.bea);
    let line = |posting: &str, amount: f64, account: &str| {
        json!({"Amount": amount, "DetailType": "JournalEntryLineDetail",
               "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": account}}})
    };
    // Unbalanced: refused, and no request reaches QuickBooks at all.
    let requests = stat(&t.sim, "api_requests");
    let text = bea
        .error(
            "create_entity",
            json!({"entity": "JournalEntry", "fields": {"Line": [line("Debit", 100.0, "1"), line("Credit", 90.0, "2")]}}),
        )
        .await;
    assert!(text.contains("debits 100.00, credits 90.00"), "{text}");
    // A sales line whose Qty × UnitPrice is not its Amount; a date QuickBooks cannot read; a
    // transaction without its customer.
    let text = bea
        .error(
            "create_entity",
            json!({"entity": "Invoice", "fields": {"CustomerRef": {"value": "1"}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 500,
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 12, "UnitPrice": 50}}]}}),
        )
        .await;
    assert!(text.contains("is 600.00, but Amount is 500.00"), "{text}");
    let text = bea
        .error(
            "update_entity",
            json!({"entity": "Invoice", "id": "1", "sync_token": "0", "fields": {"DueDate": "31/01/2026"}}),
        )
        .await;
    assert!(text.contains("DueDate `31/01/2026`"), "{text}");
    let text = bea
        .error(
            "create_entity",
            json!({"entity": "Bill", "fields": {"Line": []}}),
        )
        .await;
    assert!(text.contains("needs `VendorRef`"), "{text}");
    assert_eq!(
        stat(&t.sim, "api_requests"),
        requests,
        "no request was spent on a refused entry"
    );

    // Balanced, it goes through.
    let made = bea
        .ok(
            "create_entity",
            json!({"entity": "JournalEntry", "fields": {"Line": [line("Debit", 100.0, "1"), line("Credit", 100.0, "2")]}}),
        )
        .await;
    assert!(made["JournalEntry"]["Id"].is_string(), "{made}");
}
