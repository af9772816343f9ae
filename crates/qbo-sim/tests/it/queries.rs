//! The query language over HTTP: Intuit's response shape, paging, limits, errors, and the
//! `POST` form with an `application/text` body that python-quickbooks uses.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn queries_answer_intuits_shape_and_page() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (status, body) = sim
        .query(
            &tokens.access,
            "select * from Customer orderby DisplayName maxresults 5",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = &body["QueryResponse"];
    assert_eq!(response["startPosition"], 1);
    assert_eq!(response["maxResults"], 5);
    let names: Vec<&str> = response["Customer"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|c| c["DisplayName"].as_str().expect("name"))
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);
    let (_, page2) = sim
        .query(
            &tokens.access,
            "select * from Customer orderby DisplayName startposition 6 maxresults 5",
        )
        .await;
    assert_ne!(
        page2["QueryResponse"]["Customer"][0]["DisplayName"],
        response["Customer"][0]["DisplayName"]
    );
    let (_, like) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Customer WHERE DisplayName LIKE '%bird%'",
        )
        .await;
    assert_eq!(
        like["QueryResponse"]["Customer"][0]["DisplayName"],
        "Amy's Bird Sanctuary"
    );
    let (_, escaped) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Customer WHERE DisplayName = 'Amy\\'s Bird Sanctuary'",
        )
        .await;
    assert_eq!(
        escaped["QueryResponse"]["Customer"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let (_, within) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Invoice WHERE CustomerRef IN ('1', '2') AND TotalAmt > '0'",
        )
        .await;
    for invoice in within["QueryResponse"]["Invoice"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(["1", "2"].contains(&invoice["CustomerRef"]["value"].as_str().expect("ref")));
    }
    let (_, none) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Customer WHERE DisplayName = 'Nobody At All'",
        )
        .await;
    assert_eq!(none["QueryResponse"], json!({}));
    let (_, all) = sim
        .query(&tokens.access, "SELECT * FROM Invoice MAXRESULTS 1000")
        .await;
    let (_, count) = sim
        .query(&tokens.access, "SELECT COUNT(*) FROM Invoice")
        .await;
    assert_eq!(
        all["QueryResponse"]["Invoice"].as_array().map(Vec::len),
        count["QueryResponse"]["totalCount"]
            .as_u64()
            .map(|n| n as usize)
    );
    let (_, default) = sim.query(&tokens.access, "SELECT * FROM Account").await;
    assert!(
        default["QueryResponse"]["Account"]
            .as_array()
            .is_some_and(|rows| rows.len() <= 100)
    );
    let (_, projected) = sim
        .query(
            &tokens.access,
            "SELECT Id, DisplayName FROM Vendor MAXRESULTS 2",
        )
        .await;
    let vendor = &projected["QueryResponse"]["Vendor"][0];
    assert!(vendor.get("DisplayName").is_some() && vendor.get("PrimaryPhone").is_none());
    let (_, recent) = sim.query(&tokens.access, "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '2000-01-01T00:00:00-08:00' MAXRESULTS 3").await;
    assert_eq!(recent["QueryResponse"]["maxResults"], 3);
    let (_, info) = sim.query(&tokens.access, "SELECT * FROM CompanyInfo").await;
    assert!(info["QueryResponse"]["CompanyInfo"][0]["CompanyName"].is_string());
}

#[tokio::test]
async fn queries_fail_as_intuit_fails() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (status, body) = sim
        .query(&tokens.access, "SELECT * FROM Customer MAXRESULTS 1500")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&body), "4001");
    assert!(
        body["Fault"]["Error"][0]["Detail"]
            .as_str()
            .expect("detail")
            .contains("value 1500 is too large. Max allowed value is 1000")
    );
    for (query, code) in [
        ("SELECT * FROM customer", "4000"),
        ("SELECT * FROM Customer WHERE Id = '1' OR Id = '2'", "4000"),
        ("SELECT * FROM Customer WHERE Nonsense = '1'", "4001"),
        ("UPDATE Customer SET x = 1", "4000"),
    ] {
        let (status, body) = sim.query(&tokens.access, query).await;
        assert_eq!(
            (status, fault_code(&body)),
            (StatusCode::BAD_REQUEST, code),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn query_by_post_with_a_text_body() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let response = sim
        .http
        .post(sim.url(&format!("/v3/company/{REALM}/query?minorversion=75")))
        .bearer_auth(&tokens.access)
        .header("Content-Type", "application/text")
        .body("SELECT * FROM Item WHERE Name = 'Rocks'")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["QueryResponse"]["Item"][0]["Name"], "Rocks");
    assert_eq!(sim.stats().await["queries"], 1);
}

#[tokio::test]
async fn change_data_capture_lists_changes_and_deletions() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let (_, made) = sim
        .post(
            &tokens.access,
            &format!("/v3/company/{REALM}/customer"),
            &customer("Changed Lately Co"),
        )
        .await;
    let good = json!({"CustomerRef": {"value": "1"}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 10, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]});
    let (_, invoice) = sim
        .post(
            &tokens.access,
            &format!("/v3/company/{REALM}/invoice"),
            &good,
        )
        .await;
    let invoice_id = invoice["Invoice"]["Id"].clone();
    sim.post(
        &tokens.access,
        &format!("/v3/company/{REALM}/invoice?operation=delete"),
        &json!({"Id": invoice_id, "SyncToken": "0"}),
    )
    .await;
    let response = sim
        .http
        .get(sim.url(&format!("/v3/company/{REALM}/cdc")))
        .query(&[
            ("entities", "Customer,Invoice"),
            ("changedSince", &since.to_rfc3339()),
        ])
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("cdc");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    let sections = &body["CDCResponse"][0]["QueryResponse"];
    let customers = sections[0]["Customer"].as_array().expect("customers");
    assert!(customers.iter().any(|c| c["Id"] == made["Customer"]["Id"]));
    assert!(
        customers.len() < 5,
        "only recent changes: {}",
        customers.len()
    );
    let invoices = sections[1]["Invoice"].as_array().expect("invoices");
    assert!(
        invoices
            .iter()
            .any(|i| i["Id"] == invoice_id && i["status"] == "Deleted")
    );
    let old = (chrono::Utc::now() - chrono::Duration::days(31)).to_rfc3339();
    let response = sim
        .http
        .get(sim.url(&format!("/v3/company/{REALM}/cdc")))
        .query(&[("entities", "Customer"), ("changedSince", old.as_str())])
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("cdc");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
