//! Fidelity to what QuickBooks refuses, one test per item of docs/simulator.md's fidelity
//! table: write validation (2010), queryable properties and operators (4001), line
//! arithmetic (6070), duplicate DocNumber (6140), deactivation with an open balance, the
//! 401/403 shapes, `intuit_tid`, report ColKeys, the refresh token's hard cap, and the
//! smaller rules (sparse as text, void, revoke, client_secret_post, query spelling), and
//! Preferences' read-only preferences and SyncToken.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn path(rest: &str) -> String {
    format!("/v3/company/{REALM}/{rest}")
}

fn element(body: &Value) -> &str {
    body["Fault"]["Error"][0]["element"].as_str().unwrap_or("")
}

fn sales_line(qty: f64, price: f64, amount: f64) -> Value {
    json!({"DetailType": "SalesItemLineDetail", "Amount": amount,
        "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": qty, "UnitPrice": price}})
}

fn expense_line(amount: f64) -> Value {
    json!({"DetailType": "AccountBasedExpenseLineDetail", "Amount": amount,
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "1"}}})
}

#[tokio::test]
async fn item_1_writes_are_checked_against_the_schema() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let invoice = |extra: Value| {
        let mut body =
            json!({"CustomerRef": {"value": "1"}, "Line": [sales_line(1.0, 10.0, 10.0)]});
        for (key, value) in extra.as_object().expect("object") {
            body[key] = value.clone();
        }
        body
    };
    for (body, at) in [
        (invoice(json!({"Bogus": 1})), "Bogus"),
        (
            invoice(
                json!({"Line": [{"DetailType": "SalesItemLineDetail", "Amount": "abc", "SalesItemLineDetail": {}}]}),
            ),
            "Line.Amount",
        ),
        (invoice(json!({"TxnDate": "31/12/2025"})), "TxnDate"),
        (
            invoice(json!({"Line": [{"DetailType": "BogusDetail", "Amount": 1}]})),
            "Line.DetailType",
        ),
        (invoice(json!({"CustomerRef": "1"})), "CustomerRef"),
    ] {
        let (status, answer) = sim.post(&tokens.access, &path("invoice"), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(fault_code(&answer), "2010", "{answer}");
        assert_eq!(element(&answer), at, "{answer}");
        assert_eq!(
            answer["Fault"]["Error"][0]["Message"],
            "Request has invalid or unsupported property"
        );
    }
    let (status, bogus) = sim
        .post(
            &tokens.access,
            &path("invoice"),
            &invoice(json!({"Bogus": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bogus["Fault"]["Error"][0]["Detail"]
            .as_str()
            .is_some_and(|d| d.contains("Unrecognized field \"Bogus\""))
    );
    let (status, _) = sim
        .post(&tokens.access, &path("invoice"), &invoice(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "a valid invoice is stored");
    // Read-only properties are accepted and ignored, on create and on a full update.
    let mut owed = customer("Read Only Balance Co");
    owed["Balance"] = json!(500);
    owed["Level"] = json!(3);
    let (status, made) = sim.post(&tokens.access, &path("customer"), &owed).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["Customer"]["Balance"], 0.0);
    assert!(made["Customer"].get("Level").is_none());
    let mut full = made["Customer"].clone();
    full["FullyQualifiedName"] = json!("Something Else");
    let (status, updated) = sim.post(&tokens.access, &path("customer"), &full).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        updated["Customer"]["FullyQualifiedName"],
        "Read Only Balance Co"
    );
}

/// Every entity the demo books hold goes back unchanged as a full update: the schema
/// accepts everything the simulator itself answers.
#[tokio::test]
async fn item_1_every_entity_read_can_be_written_back() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    for entity in qbo_sim::books::entity_types::ENTITY_TYPES.iter() {
        let (status, found) = sim
            .query(
                &tokens.access,
                &format!("SELECT * FROM {} MAXRESULTS 3", entity.name),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{}", entity.name);
        for stored in found["QueryResponse"][entity.name]
            .as_array()
            .into_iter()
            .flatten()
        {
            let (status, answer) = sim
                .post(&tokens.access, &path(&entity.name.to_lowercase()), stored)
                .await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{} {stored} → {answer}",
                entity.name
            );
        }
    }
}

#[tokio::test]
async fn item_2_only_filterable_properties_and_their_operators_are_queryable() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    for refused in [
        "SELECT * FROM Vendor WHERE PrimaryEmailAddr = 'x@y.com'",
        "SELECT * FROM Vendor WHERE Balance > '0'",
        "SELECT * FROM Customer WHERE SyncToken = '0'",
        "SELECT * FROM Purchase WHERE AccountRef = '1'",
        "SELECT * FROM Bill WHERE DepartmentRef = '1'",
        "SELECT * FROM Customer ORDERBY BillAddr.City",
        "SELECT * FROM Customer WHERE Balance LIKE '1%'",
        "SELECT * FROM Customer WHERE Active LIKE 'tr%'",
        "SELECT * FROM Invoice WHERE Line.Amount > '0'",
        "SELECT * FROM Customer WHERE Nonsense = '1'",
    ] {
        let (status, body) = sim.query(&tokens.access, refused).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(fault_code(&body), "4001", "{refused}: {body}");
    }
    let (_, body) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Vendor WHERE PrimaryEmailAddr = 'x@y.com'",
        )
        .await;
    assert!(
        body["Fault"]["Error"][0]["Detail"]
            .as_str()
            .is_some_and(|d| d.contains("property 'PrimaryEmailAddr' is not queryable"))
    );
    for allowed in [
        "SELECT * FROM Customer WHERE Balance > '0' ORDERBY Balance DESC",
        "SELECT * FROM Invoice WHERE CustomerRef = '1' AND TxnDate >= '2000-01-01'",
        "SELECT * FROM Item WHERE Sku = 'none'",
        "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '2000-01-01T00:00:00-08:00'",
    ] {
        let (status, body) = sim.query(&tokens.access, allowed).await;
        assert_eq!(status, StatusCode::OK, "{allowed}: {body}");
    }
}

#[tokio::test]
async fn item_3_a_line_amount_must_be_unit_price_times_quantity() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let invoice = |line: Value| json!({"CustomerRef": {"value": "1"}, "Line": [line]});
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("invoice"),
            &invoice(sales_line(2.0, 10.0, 999.0)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&body), "6070", "{body}");
    // 3 × 0.335 = 1.005, rounded half-up to 1.01.
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("invoice"),
            &invoice(sales_line(3.0, 0.335, 1.01)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("invoice"),
            &invoice(sales_line(2.0, 10.0, 20.0)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Invoice"]["TotalAmt"], 20.0);
}

#[tokio::test]
async fn item_4_a_document_number_is_used_once_unless_duplicates_are_allowed() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let bill =
        json!({"VendorRef": {"value": "1"}, "DocNumber": "INV-77", "Line": [expense_line(40.0)]});
    let (status, first) = sim.post(&tokens.access, &path("bill"), &bill).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // Updating a document keeps its own number.
    let mut again = first["Bill"].clone();
    again["PrivateNote"] = json!("same number, same bill");
    let (status, body) = sim.post(&tokens.access, &path("bill"), &again).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = sim.post(&tokens.access, &path("bill"), &bill).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&body), "6140", "{body}");
    assert!(
        body["Fault"]["Error"][0]["Detail"]
            .as_str()
            .is_some_and(|d| d.contains("DocNumber=INV-77"))
    );
    let (status, _) = sim
        .post(
            &tokens.access,
            &path("bill?include=allowduplicatedocnum"),
            &bill,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Invoices share the rule, against the numbers QuickBooks assigned.
    let (_, one) = sim.get(&tokens.access, &path("invoice/1")).await;
    let taken = one["Invoice"]["DocNumber"].clone();
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("invoice"),
            &json!({"CustomerRef": {"value": "1"}, "DocNumber": taken, "Line": [sales_line(1.0, 5.0, 5.0)]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&body), "6140");
}

#[tokio::test]
async fn item_5_a_name_with_an_open_balance_cannot_be_deactivated() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (_, owing) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Customer WHERE Balance > '0' MAXRESULTS 1",
        )
        .await;
    let owing = owing["QueryResponse"]["Customer"][0].clone();
    let deactivate = |c: &Value| json!({"Id": c["Id"], "SyncToken": c["SyncToken"], "sparse": true, "Active": false});
    let (status, body) = sim
        .post(&tokens.access, &path("customer"), &deactivate(&owing))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&body), "6000", "{body}");
    assert_eq!(
        body["Fault"]["Error"][0]["Message"],
        "Delete List Has Balance Error"
    );
    let (_, fresh) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &customer("Nothing Owed Ltd"),
        )
        .await;
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &deactivate(&fresh["Customer"]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Customer"]["Active"], false);
}

#[tokio::test]
async fn item_6_authentication_and_authorization_errors_come_in_intuits_shapes() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    // Never issued: the gateway's 3200.
    let (status, body) = sim.get("not-a-token", &path("customer/1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["fault"]["error"][0]["code"], "3200");
    assert_eq!(body["fault"]["type"], "AUTHENTICATION");
    // Another company: the gateway's 003100, type SERVICE.
    let (status, body) = sim
        .get(
            &tokens.access,
            &format!("/v3/company/{OTHER_REALM}/customer/1"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["fault"]["type"], "SERVICE");
    assert_eq!(
        body["fault"]["error"][0]["message"],
        "message=AuthorizationFailed; errorCode=003100; statusCode=403"
    );
    // Issued but dead (the connection moved to another admin): AuthenticationFault 100.
    sim.connect_to("app", DANA, REALM).await;
    let (status, body) = sim.get(&tokens.access, &path("customer/1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["Fault"]["type"], "AuthenticationFault");
    assert_eq!(fault_code(&body), "100");
    // Injected: the XML form of the same fault.
    let fresh = sim.connect_to("app", DANA, REALM).await;
    let injected = sim
        .http
        .post(sim.url("/_sim/inject-fault"))
        .json(&json!({"fault": "authentication_fault_xml", "count": 1}))
        .send()
        .await
        .expect("inject");
    assert_eq!(injected.status(), StatusCode::OK);
    let response = sim
        .http
        .get(sim.url(&path("customer/1")))
        .bearer_auth(&fresh.access)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let text = response.text().await.expect("body");
    assert!(
        text.contains("<Fault type=\"AuthenticationFault\"><Error code=\"100\">"),
        "{text}"
    );
    let (status, _) = sim.get(&fresh.access, &path("customer/1")).await;
    assert_eq!(status, StatusCode::OK, "an injection lasts its count");
}

#[tokio::test]
async fn item_7_every_answer_carries_a_unique_intuit_tid() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let tid = |response: &reqwest::Response| {
        response
            .headers()
            .get("intuit_tid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .expect("intuit_tid")
    };
    let mut seen = std::collections::HashSet::new();
    for (token, at) in [
        (tokens.access.as_str(), path("customer/1")),
        (tokens.access.as_str(), path("customer/1")),
        (tokens.access.as_str(), path("invoice/99999")),
        ("not-a-token", path("customer/1")),
    ] {
        let response = sim
            .http
            .get(sim.url(&at))
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        assert!(seen.insert(tid(&response)), "unique");
    }
    let refused = sim.refresh("app", "nonsense").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(seen.insert(tid(&refused)));
    let refreshed = sim.refresh("app", &tokens.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert!(seen.insert(tid(&refreshed)));
    assert!(seen.iter().all(|t| t.starts_with("1-") && t.len() == 35));
}

#[tokio::test]
async fn item_8_report_columns_carry_their_col_key() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (status, ledger) = sim
        .get(&tokens.access, &path("reports/GeneralLedger"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let columns = ledger["Columns"]["Column"].as_array().expect("columns");
    let amount = columns
        .iter()
        .find(|c| c["ColTitle"] == "Amount")
        .expect("amount column");
    assert_eq!(amount["ColType"], "Money");
    assert_eq!(
        amount["MetaData"],
        json!([{"Name": "ColKey", "Value": "subt_nat_amount"}])
    );
    assert_eq!(columns[0]["ColType"], "Date");
    assert_eq!(columns[0]["MetaData"][0]["Value"], "tx_date");
    let (_, profit) = sim
        .get(&tokens.access, &path("reports/ProfitAndLoss"))
        .await;
    let first = &profit["Columns"]["Column"][0];
    assert_eq!(first["ColType"], "Account");
    assert_eq!(first["MetaData"][0]["Value"], "account");
    assert_eq!(
        profit["Columns"]["Column"][1]["MetaData"][0]["Value"],
        "total"
    );
}

#[tokio::test]
async fn item_9_the_refresh_token_reports_its_remaining_and_hard_lifetimes() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    assert_eq!(tokens.body["x_refresh_token_expires_in"], 8_640_000);
    assert!(tokens.body.get("x_refresh_token_hard_expires_in").is_none());
    let advanced = sim
        .http
        .post(sim.url("/_sim/advance-clock"))
        .json(&json!({"seconds": 1000}))
        .send()
        .await
        .expect("advance");
    assert_eq!(advanced.status(), StatusCode::OK);
    let response = sim
        .http
        .post(sim.url("/oauth2/v1/tokens/bearer"))
        .basic_auth("app", Some("secret"))
        .header("x-include-refresh-token-hard-expires-in", "true")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh.as_str()),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["refresh_token"],
        tokens.refresh.as_str(),
        "inside the rotation interval"
    );
    // What is left (the simulator's clock also runs on by real seconds).
    let left = |key: &str| body[key].as_i64().expect("seconds");
    assert!((8_640_000 - 1010..=8_640_000 - 1000).contains(&left("x_refresh_token_expires_in")));
    assert!(
        (157_680_000 - 1010..=157_680_000 - 1000)
            .contains(&left("x_refresh_token_hard_expires_in"))
    );
}

#[tokio::test]
async fn item_10_the_smaller_rules() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    // "sparse": "true" is a sparse update.
    let (_, made) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &customer("Sparse Text Co"),
        )
        .await;
    let made = &made["Customer"];
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("customer"),
            &json!({"Id": made["Id"], "SyncToken": made["SyncToken"], "sparse": "true", "CompanyName": "Sparse"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["Customer"]["Notes"], "keep me",
        "sparse keeps what it did not send"
    );
    // A voided invoice cannot be voided again, nor changed.
    let (_, invoice) = sim
        .post(
            &tokens.access,
            &path("invoice"),
            &json!({"CustomerRef": {"value": "2"}, "Line": [sales_line(1.0, 30.0, 30.0)]}),
        )
        .await;
    let invoice = &invoice["Invoice"];
    let (status, voided) = sim
        .post(
            &tokens.access,
            &path("invoice?operation=void"),
            &json!({"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let voided = &voided["Invoice"];
    assert!(voided.get("Voided").is_none(), "not a QuickBooks field");
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("invoice?operation=void"),
            &json!({"Id": voided["Id"], "SyncToken": voided["SyncToken"]}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "6000")
    );
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("invoice"),
            &json!({"Id": voided["Id"], "SyncToken": voided["SyncToken"], "sparse": true, "PrivateNote": "edit"}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "6000")
    );
    // Revoking a token Intuit does not know is a bare 400.
    let revoke = sim
        .http
        .post(sim.url("/v2/oauth2/tokens/revoke"))
        .basic_auth("app", Some("secret"))
        .json(&json!({"token": "nonsense"}))
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), StatusCode::BAD_REQUEST);
    // client_secret_post, as the discovery document advertises.
    let discovery: Value = sim
        .http
        .get(sim.url("/.well-known/openid_configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert!(
        discovery["token_endpoint_auth_methods_supported"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m == "client_secret_post"))
    );
    let posted = sim
        .http
        .post(sim.url("/oauth2/v1/tokens/bearer"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh.as_str()),
            ("client_id", "app"),
            ("client_secret", "secret"),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(posted.status(), StatusCode::OK);
    let anonymous = sim.refresh("", &tokens.refresh).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // Property names in any case; STARTPOSITION 0 is the first row.
    let (status, body) = sim
        .query(
            &tokens.access,
            "select * from Customer where displayname = 'Sparse Text Co' startposition 0",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["QueryResponse"]["Customer"][0]["Id"], made["Id"]);
}

/// Change data capture of Preferences (and Customer) since `since`.
async fn preferences_changed(sim: &Sim, token: &str, since: &str) -> Value {
    let response = sim
        .http
        .get(sim.url(&path("cdc")))
        .query(&[
            ("entities", "Preferences,Customer"),
            ("changedSince", since),
        ])
        .bearer_auth(token)
        .send()
        .await
        .expect("cdc");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test]
async fn item_12_preferences_refuse_read_only_changes_and_need_their_sync_token() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let since = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let before = preferences_changed(&sim, &tokens.access, &since).await;
    assert!(
        before["CDCResponse"][0]["QueryResponse"][0]
            .get("Preferences")
            .is_none(),
        "unchanged preferences are not reported: {before}"
    );
    let (_, read) = sim.get(&tokens.access, &path("preferences")).await;
    let prefs = read["Preferences"].clone();
    let token = prefs["SyncToken"].as_str().unwrap().to_owned();
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("preferences"),
            &json!({"Id": "1", "SyncToken": token, "sparse": true, "AccountingInfoPrefs": {"TrackDepartments": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let saved = &body["Preferences"];
    assert_eq!(saved["AccountingInfoPrefs"]["TrackDepartments"], false);
    assert_eq!(
        saved["AccountingInfoPrefs"]["DepartmentTerminology"],
        prefs["AccountingInfoPrefs"]["DepartmentTerminology"],
        "a sparse update keeps the rest of the section"
    );
    let (_, again) = sim.get(&tokens.access, &path("preferences")).await;
    assert_eq!(
        again["Preferences"]["AccountingInfoPrefs"]["TrackDepartments"],
        false
    );
    let after = preferences_changed(&sim, &tokens.access, &since).await;
    assert_eq!(
        after["CDCResponse"][0]["QueryResponse"][0]["Preferences"][0]["AccountingInfoPrefs"]["TrackDepartments"],
        false,
        "{after}"
    );
    let token = saved["SyncToken"].as_str().unwrap().to_owned();
    let (status, refused) = sim
        .post(
            &tokens.access,
            &path("preferences"),
            &json!({"SyncToken": token, "sparse": true, "CurrencyPrefs": {"HomeCurrency": {"value": "EUR"}}}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&refused)),
        (StatusCode::BAD_REQUEST, "2010")
    );
    assert_eq!(refused["Fault"]["Error"][0]["element"], "CurrencyPrefs");
    // What a read answers, sent back whole (a full update), is accepted.
    let mut whole = again["Preferences"].clone();
    whole["ReportPrefs"]["ReportBasis"] = json!("Cash");
    let (status, body) = sim.post(&tokens.access, &path("preferences"), &whole).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Preferences"]["ReportPrefs"]["ReportBasis"], "Cash");
    let (status, stale) = sim
        .post(
            &tokens.access,
            &path("preferences"),
            &json!({"SyncToken": token, "sparse": true, "ReportPrefs": {"ReportBasis": "Accrual"}}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&stale)),
        (StatusCode::BAD_REQUEST, "5010")
    );
}
