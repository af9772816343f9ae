//! The company's settings and estimate sending: CompanyInfo and Preferences updated with their
//! SyncToken (sparse, full, stale, read-only preferences refused), read back, Preferences in
//! change data capture; an estimate emailed as an invoice is.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn path(rest: &str) -> String {
    format!("/v3/company/{REALM}/{rest}")
}

async fn changes(sim: &Sim, token: &str, since: &str) -> Value {
    let response = sim
        .http
        .get(sim.url(&path("cdc")))
        .query(&[("entities", "Preferences,Customer"), ("changedSince", since)])
        .bearer_auth(token)
        .send()
        .await
        .expect("cdc");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test]
async fn company_info_is_updated_with_its_sync_token() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let info_path = path(&format!("companyinfo/{REALM}"));
    let (_, before) = sim.get(&tokens.access, &info_path).await;
    let token = before["CompanyInfo"]["SyncToken"].as_str().unwrap().to_owned();
    let (status, body) = sim
        .post(
            &tokens.access,
            &path("companyinfo?requestid=info-1"),
            &json!({"Id": "1", "SyncToken": token, "sparse": true, "LegalName": "Craig's Design LLC", "Country": "FR"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["CompanyInfo"]["LegalName"], "Craig's Design LLC");
    assert_eq!(body["CompanyInfo"]["Country"], "US", "read-only: ignored");
    let next = body["CompanyInfo"]["SyncToken"].as_str().unwrap().to_owned();
    assert_ne!(next, token);
    let (_, read) = sim.get(&tokens.access, &info_path).await;
    assert_eq!(read["CompanyInfo"]["LegalName"], "Craig's Design LLC");
    assert_eq!(
        read["CompanyInfo"]["CompanyName"],
        before["CompanyInfo"]["CompanyName"],
        "a sparse update keeps the rest"
    );
    // The same requestid again is answered as the first time, not applied twice.
    let (status, again) = sim
        .post(
            &tokens.access,
            &path("companyinfo?requestid=info-1"),
            &json!({"Id": "1", "SyncToken": token, "sparse": true, "LegalName": "Craig's Design LLC"}),
        )
        .await;
    assert_eq!((status, &again["CompanyInfo"]["SyncToken"]), (StatusCode::OK, &json!(next)));
    let (status, stale) = sim
        .post(
            &tokens.access,
            &path("companyinfo"),
            &json!({"Id": "1", "SyncToken": token, "sparse": true, "LegalName": "Late"}),
        )
        .await;
    assert_eq!((status, fault_code(&stale)), (StatusCode::BAD_REQUEST, "5010"));
    let (_, missing) = sim
        .post(
            &tokens.access,
            &path("companyinfo"),
            &json!({"Id": "1", "sparse": true, "LegalName": "No token"}),
        )
        .await;
    assert_eq!(fault_code(&missing), "2020");
    let (_, unknown) = sim
        .post(
            &tokens.access,
            &path("companyinfo"),
            &json!({"Id": "1", "SyncToken": next, "sparse": true, "Motto": "x"}),
        )
        .await;
    assert_eq!(fault_code(&unknown), "2010");
    let (_, queried) = sim
        .query(&tokens.access, "SELECT * FROM CompanyInfo")
        .await;
    assert_eq!(
        queried["QueryResponse"]["CompanyInfo"][0]["LegalName"],
        "Craig's Design LLC"
    );
}

#[tokio::test]
async fn preferences_are_updated_and_read_only_ones_refused() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let since = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let before = changes(&sim, &tokens.access, &since).await;
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
    assert_eq!(again["Preferences"]["AccountingInfoPrefs"]["TrackDepartments"], false);
    let after = changes(&sim, &tokens.access, &since).await;
    assert_eq!(
        after["CDCResponse"][0]["QueryResponse"][0]["Preferences"][0]["AccountingInfoPrefs"]
            ["TrackDepartments"],
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
    assert_eq!((status, fault_code(&refused)), (StatusCode::BAD_REQUEST, "2010"));
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
    assert_eq!((status, fault_code(&stale)), (StatusCode::BAD_REQUEST, "5010"));
}

#[tokio::test]
async fn estimates_can_be_sent() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (_, found) = sim
        .query(&tokens.access, "SELECT * FROM Estimate MAXRESULTS 1")
        .await;
    let id = found["QueryResponse"]["Estimate"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = sim
        .post(
            &tokens.access,
            &path(&format!("estimate/{id}/send?sendTo=buyer%40example.com")),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Estimate"]["EmailStatus"], "EmailSent");
    assert_eq!(body["Estimate"]["BillEmail"]["Address"], "buyer@example.com");
    assert_eq!(body["Estimate"]["DeliveryInfo"]["DeliveryType"], "Email");
    let (_, made) = sim
        .post(
            &tokens.access,
            &path("estimate"),
            &json!({"CustomerRef": {"value": "1"}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 10, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}),
        )
        .await;
    assert_eq!(made["Estimate"]["EmailStatus"], "NotSet", "{made}");
}
