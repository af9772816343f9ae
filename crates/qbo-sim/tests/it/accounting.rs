//! The Accounting API: reads, creates, full and sparse updates, SyncToken, delete, void,
//! deactivation, references, idempotency, sending, the gate's answers.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

fn path(rest: &str) -> String {
    format!("/v3/company/{REALM}/{rest}")
}

#[tokio::test]
async fn reads_answer_the_entity_or_610() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (status, body) = sim
        .get(&tokens.access, &path("customer/1?minorversion=75"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Customer"]["Id"], "1");
    assert!(body["time"].as_str().is_some_and(|t| t.ends_with("-08:00")));
    let (status, body) = sim.get(&tokens.access, &path("invoice/99999")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&body), "610");
    assert_eq!(body["Fault"]["type"], "ValidationFault");
    let (status, body) = sim
        .get(&tokens.access, &path(&format!("companyinfo/{REALM}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["CompanyInfo"]["CompanyName"],
        "Craig's Design and Landscaping Services"
    );
    let (status, _) = sim
        .get(&tokens.access, &path("customer/1?minorversion=abc"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_gate_checks_token_and_company() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (status, body) = sim.get("not-a-token", &path("customer/1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["fault"]["error"][0]["code"], "3200");
    let (status, body) = sim
        .get(
            &tokens.access,
            &format!("/v3/company/{OTHER_REALM}/customer/1"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["fault"]["error"][0]["code"], "3100");
}

#[tokio::test]
async fn create_fills_what_quickbooks_fills_and_checks_names() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &customer("Zed Zebra Supplies"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let created = &body["Customer"];
    assert_eq!(created["SyncToken"], "0");
    assert_eq!(created["Active"], true);
    assert_eq!(created["FullyQualifiedName"], "Zed Zebra Supplies");
    assert!(created["MetaData"]["CreateTime"].is_string());
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &customer("zed zebra supplies"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&body), "6240");
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &json!({"Notes": "no name"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&body), "2020");
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("vendor"),
            &json!({"DisplayName": "Zed Zebra Supplies"}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "6240"),
        "names are shared with vendors"
    );
}

#[tokio::test]
async fn invoices_compute_totals_and_payments_reduce_balances() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (_, created) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &customer("Balance Test Co"),
        )
        .await;
    let customer_id = created["Customer"]["Id"].as_str().expect("id").to_owned();
    let invoice = json!({
        "CustomerRef": {"value": customer_id},
        "Line": [
            {"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 2, "UnitPrice": 75}},
            {"DetailType": "SalesItemLineDetail", "Amount": 50, "SalesItemLineDetail": {"ItemRef": {"value": "2"}}},
        ],
    });
    let (status, body) = sim.post(&tokens.access, &path("invoice"), &invoice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let invoice = &body["Invoice"];
    assert_eq!(invoice["TotalAmt"], 200.0);
    assert_eq!(invoice["Balance"], 200.0);
    assert!(invoice["DocNumber"].is_string());
    assert!(invoice["DueDate"].is_string());
    let lines = invoice["Line"].as_array().expect("lines");
    assert_eq!(
        lines.last().expect("subtotal")["DetailType"],
        "SubTotalLineDetail"
    );
    let invoice_id = invoice["Id"].as_str().expect("id").to_owned();
    let payment = json!({
        "CustomerRef": {"value": customer_id}, "TotalAmt": 80,
        "Line": [{"Amount": 80, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}],
    });
    let (status, body) = sim.post(&tokens.access, &path("payment"), &payment).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, after) = sim
        .get(&tokens.access, &path(&format!("invoice/{invoice_id}")))
        .await;
    assert_eq!(after["Invoice"]["Balance"], 120.0);
    let (_, owner) = sim
        .get(&tokens.access, &path(&format!("customer/{customer_id}")))
        .await;
    assert_eq!(owner["Customer"]["Balance"], 120.0);
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("invoice?operation=delete"),
            &json!({"Id": invoice_id, "SyncToken": after["Invoice"]["SyncToken"]}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "6000"),
        "a paid invoice cannot be deleted"
    );
}

#[tokio::test]
async fn full_update_drops_omitted_fields_and_sparse_keeps_them() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (_, body) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &customer("Sparse Test LLC"),
        )
        .await;
    let id = body["Customer"]["Id"].as_str().expect("id").to_owned();
    let (status, sparse) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &json!({"Id": id, "SyncToken": "0", "sparse": true, "CompanyName": "Sparse Test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sparse["Customer"]["SyncToken"], "1");
    assert_eq!(
        sparse["Customer"]["Notes"], "keep me",
        "sparse keeps what was not sent"
    );
    assert_eq!(sparse["Customer"]["CompanyName"], "Sparse Test");
    let (status, stale) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &json!({"Id": id, "SyncToken": "0", "sparse": true, "Notes": "late"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&stale), "5010");
    let (status, full) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &json!({"Id": id, "SyncToken": "1", "DisplayName": "Sparse Test LLC"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let full = &full["Customer"];
    assert_eq!(full["SyncToken"], "2");
    assert!(
        full.get("Notes").is_none(),
        "a full update nulls omitted fields: {full}"
    );
    assert!(full.get("PrimaryPhone").is_none());
    assert!(full.get("CompanyName").is_none());
    assert_eq!(sim.stats().await["stale_object"], 1);
}

#[tokio::test]
async fn sparse_bill_update_still_needs_the_vendor() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (_, found) = sim
        .query(&tokens.access, "SELECT * FROM Bill MAXRESULTS 1")
        .await;
    let bill = &found["QueryResponse"]["Bill"][0];
    let (status, body) = sim
        .post(&tokens.access, &path("bill"), &json!({"Id": bill["Id"], "SyncToken": bill["SyncToken"], "sparse": true, "PrivateNote": "x"}))
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "2020")
    );
    let (status, _) = sim
        .post(
            &tokens.access,
            &path("bill"),
            &json!({"Id": bill["Id"], "SyncToken": bill["SyncToken"], "sparse": true, "PrivateNote": "x", "VendorRef": bill["VendorRef"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn name_lists_deactivate_and_transactions_delete_or_void() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (_, body) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &customer("Soon Inactive Inc"),
        )
        .await;
    let id = body["Customer"]["Id"].as_str().expect("id").to_owned();
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("customer?operation=delete"),
            &json!({"Id": id, "SyncToken": "0"}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "500"),
        "name lists cannot be deleted"
    );
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &json!({"Id": id, "SyncToken": "0", "sparse": true, "Active": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Customer"]["Active"], false);
    let (_, listed) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Customer WHERE DisplayName = 'Soon Inactive Inc'",
        )
        .await;
    assert_eq!(
        listed["QueryResponse"],
        json!({}),
        "inactive names are hidden by default"
    );
    let (_, listed) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Customer WHERE DisplayName = 'Soon Inactive Inc' AND Active = false",
        )
        .await;
    assert_eq!(listed["QueryResponse"]["Customer"][0]["Id"], id.as_str());
    let invoice = json!({"CustomerRef": {"value": id}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 10, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]});
    let (status, body) = sim.post(&tokens.access, &path("invoice"), &invoice).await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "610"),
        "an inactive name cannot be used"
    );
    let missing = json!({"CustomerRef": {"value": "424242"}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 10, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]});
    let (status, body) = sim.post(&tokens.access, &path("invoice"), &missing).await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "2500")
    );

    let good = json!({"CustomerRef": {"value": "1"}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 10, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]});
    let (_, made) = sim.post(&tokens.access, &path("invoice"), &good).await;
    let invoice_id = made["Invoice"]["Id"].as_str().expect("id").to_owned();
    let (status, voided) = sim
        .post(
            &tokens.access,
            &path("invoice?operation=void"),
            &json!({"Id": invoice_id, "SyncToken": "0"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(voided["Invoice"]["TotalAmt"], 0.0);
    assert_eq!(voided["Invoice"]["Balance"], 0.0);
    assert!(
        voided["Invoice"]["PrivateNote"]
            .as_str()
            .expect("note")
            .starts_with("Voided")
    );
    let (status, deleted) = sim
        .post(
            &tokens.access,
            &path("invoice?operation=delete"),
            &json!({"Id": invoice_id, "SyncToken": "1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["Invoice"]["status"], "Deleted");
    assert_eq!(
        sim.get(&tokens.access, &path(&format!("invoice/{invoice_id}")))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("bill?operation=void"),
            &json!({"Id": "1", "SyncToken": "0"}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "500"),
        "bills cannot be voided"
    );
}

#[tokio::test]
async fn journal_entries_must_balance() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let entry = json!({"Line": [
        {"Amount": 100, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": "1"}}},
        {"Amount": 90, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"value": "2"}}},
    ]});
    let (status, body) = sim
        .post(&tokens.access, &path("journalentry"), &entry)
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "6000")
    );
}

#[tokio::test]
async fn requestid_makes_a_write_happen_once_even_when_its_answer_is_lost() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (_, before) = sim
        .query(&tokens.access, "SELECT COUNT(*) FROM Customer")
        .await;
    let before = before["QueryResponse"]["totalCount"]
        .as_u64()
        .expect("count");
    let (status, first) = sim
        .post(
            &tokens.access,
            &path("customer?requestid=r-1"),
            &customer("Once Only Ltd"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, second) = sim
        .post(
            &tokens.access,
            &path("customer?requestid=r-1"),
            &customer("Once Only Ltd"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a replay is not a duplicate-name error"
    );
    assert_eq!(first, second);
    sim.config(json!({"write_error_rate": 1.0})).await;
    let (status, lost) = sim
        .post(
            &tokens.access,
            &path("customer?requestid=r-2"),
            &customer("Lost Answer Co"),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{lost}");
    sim.config(json!({"write_error_rate": 0.0})).await;
    let (status, retried) = sim
        .post(
            &tokens.access,
            &path("customer?requestid=r-2"),
            &customer("Lost Answer Co"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the retry gets the first answer");
    assert_eq!(retried["Customer"]["DisplayName"], "Lost Answer Co");
    let (_, after) = sim
        .query(&tokens.access, "SELECT COUNT(*) FROM Customer")
        .await;
    assert_eq!(
        after["QueryResponse"]["totalCount"].as_u64(),
        Some(before + 2)
    );
    let stats = sim.stats().await;
    assert_eq!(stats["idempotent_replays"], 2);
    assert_eq!(stats["faults_injected"], 1);
}

#[tokio::test]
async fn invoices_can_be_sent() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("invoice/1/send?sendTo=ap%40example.com"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Invoice"]["EmailStatus"], "EmailSent");
    assert_eq!(body["Invoice"]["BillEmail"]["Address"], "ap@example.com");
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("invoice/1/send?sendTo=nobody"),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "6000")
    );
    assert_eq!(sim.stats().await["invoices_sent"], 1);
}

#[tokio::test]
async fn every_demo_entity_type_is_there() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    for entity in [
        "Customer",
        "Vendor",
        "Employee",
        "Item",
        "Account",
        "Class",
        "Term",
        "Invoice",
        "Bill",
        "Payment",
        "BillPayment",
        "Estimate",
        "Purchase",
        "JournalEntry",
        "Deposit",
        "CreditMemo",
        "SalesReceipt",
        "Department",
        "PaymentMethod",
    ] {
        let (status, body) = sim
            .query(&tokens.access, &format!("SELECT COUNT(*) FROM {entity}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body["QueryResponse"]["totalCount"].as_u64().unwrap_or(0) > 0,
            "{entity}: {body}"
        );
    }
    let hana = sim.connect_to("app", HANA, OTHER_REALM).await;
    let (status, body) = sim
        .get(
            &hana.access,
            &format!("/v3/company/{OTHER_REALM}/customer/1"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Customer"]["DisplayName"], "Alder Street Cafe");
}

#[tokio::test]
async fn batches_answer_each_item_and_have_their_own_budget() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let batch = json!({"BatchItemRequest": [
        {"bId": "a", "operation": "create", "Customer": {"DisplayName": "Batch Made Co"}},
        {"bId": "b", "Query": "SELECT * FROM Customer WHERE DisplayName = 'Batch Made Co'"},
        {"bId": "c", "operation": "update", "Customer": {"Id": "1", "SyncToken": "99", "sparse": true, "Notes": "x"}},
    ]});
    let (status, body) = sim
        .post(&tokens.access, &path("batch?requestid=b-1"), &batch)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["BatchItemResponse"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["bId"], "a");
    assert_eq!(items[0]["Customer"]["DisplayName"], "Batch Made Co");
    assert_eq!(
        items[1]["QueryResponse"]["Customer"][0]["Id"],
        items[0]["Customer"]["Id"]
    );
    assert_eq!(items[2]["Fault"]["Error"][0]["code"], "5010");
    let (_, replay) = sim
        .post(&tokens.access, &path("batch?requestid=b-1"), &batch)
        .await;
    assert_eq!(
        replay, body,
        "a batch with the same requestid is not applied twice"
    );
    let too_big: Vec<_> = (0..31)
        .map(|n| json!({"bId": n.to_string(), "Query": "SELECT * FROM Item"}))
        .collect();
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("batch"),
            &json!({"BatchItemRequest": too_big}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "1040")
    );
    sim.config(json!({"batch_rate_limit_per_minute": 2})).await;
    let (status, _) = sim
        .post(
            &tokens.access,
            &path("batch"),
            &json!({"BatchItemRequest": []}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "three batches this minute"
    );
    assert_eq!(
        sim.get(&tokens.access, &path("customer/1")).await.0,
        StatusCode::OK
    );
    assert_eq!(sim.stats().await["batches"], 3);
}
