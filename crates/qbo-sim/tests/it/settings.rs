//! The company's settings and estimate sending: CompanyInfo updated with its SyncToken
//! (sparse, full, stale), read back and queried; an estimate emailed as an invoice is.
//! Preferences, with its read-only preferences, is fidelity row 12 (`fidelity.rs`).

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

fn path(rest: &str) -> String {
    format!("/v3/company/{REALM}/{rest}")
}

#[tokio::test]
async fn company_info_is_updated_with_its_sync_token() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let info_path = path(&format!("companyinfo/{REALM}"));
    let (_, before) = sim.get(&tokens.access, &info_path).await;
    let token = before["CompanyInfo"]["SyncToken"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let next = body["CompanyInfo"]["SyncToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(next, token);
    let (_, read) = sim.get(&tokens.access, &info_path).await;
    assert_eq!(read["CompanyInfo"]["LegalName"], "Craig's Design LLC");
    assert_eq!(
        read["CompanyInfo"]["CompanyName"], before["CompanyInfo"]["CompanyName"],
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
    assert_eq!(
        (status, &again["CompanyInfo"]["SyncToken"]),
        (StatusCode::OK, &json!(next))
    );
    let (status, stale) = sim
        .post(
            &tokens.access,
            &path("companyinfo"),
            &json!({"Id": "1", "SyncToken": token, "sparse": true, "LegalName": "Late"}),
        )
        .await;
    assert_eq!(
        (status, fault_code(&stale)),
        (StatusCode::BAD_REQUEST, "5010")
    );
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
    let (_, queried) = sim.query(&tokens.access, "SELECT * FROM CompanyInfo").await;
    assert_eq!(
        queried["QueryResponse"]["CompanyInfo"][0]["LegalName"],
        "Craig's Design LLC"
    );
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
    assert_eq!(
        body["Estimate"]["BillEmail"]["Address"],
        "buyer@example.com"
    );
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
