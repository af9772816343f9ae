//! `companies`: a firm's worth of demo companies (`--companies N`, the config key,
//! `/_sim/config`), each with its own admin and deterministic books; the default stays the two
//! hand-written companies.

use crate::support::*;
use qbo_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

async fn companies(sim: &Sim) -> Vec<Value> {
    sim.http
        .get(sim.url("/_sim/companies"))
        .send()
        .await
        .expect("companies")
        .json::<Vec<Value>>()
        .await
        .expect("json")
}

fn admins(company: &Value) -> Vec<String> {
    company["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["role"] == "admin")
        .map(|u| u["email"].as_str().expect("email").to_owned())
        .collect()
}

/// Company `realm`'s invoices and company name, read through the API as its own admin.
async fn books_of(sim: &Sim, admin: &str, realm: &str) -> (String, Value) {
    let tokens = sim.connect_to("app", admin, realm).await;
    assert_eq!(tokens.realm, realm);
    let (status, info) = sim
        .get(
            &tokens.access,
            &format!("/v3/company/{realm}/companyinfo/{realm}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    let response = sim
        .http
        .get(sim.url(&format!("/v3/company/{realm}/query")))
        .query(&[("query", "SELECT * FROM Invoice MAXRESULTS 1000")])
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("query");
    assert_eq!(response.status(), StatusCode::OK);
    let invoices: Value = response.json().await.expect("json");
    let name = info["CompanyInfo"]["CompanyName"]
        .as_str()
        .expect("name")
        .to_owned();
    (name, invoices["QueryResponse"]["Invoice"].clone())
}

#[tokio::test]
async fn the_default_is_the_two_hand_written_companies() {
    let sim = Sim::start().await;
    let list = companies(&sim).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["realm_id"], REALM);
    assert_eq!(list[1]["realm_id"], OTHER_REALM);
    assert_eq!(sim.config(json!({})).await.1["companies"], 2);
}

#[tokio::test]
async fn many_companies_each_with_its_own_admin_and_deterministic_books() {
    let sim = Sim::with(SimConfig {
        companies: 12,
        seed: 9,
        ..SimConfig::default()
    })
    .await;
    let list = companies(&sim).await;
    assert_eq!(list.len(), 12);
    assert_eq!(
        list[0]["realm_id"], REALM,
        "the first two stay as they were"
    );
    assert_eq!(list[1]["realm_id"], OTHER_REALM);
    let realms: HashSet<&str> = list
        .iter()
        .map(|c| c["realm_id"].as_str().unwrap())
        .collect();
    let names: HashSet<&str> = list.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(realms.len(), 12, "realm ids are unique");
    assert_eq!(names.len(), 12, "names are unique");
    let mut seen_admins = HashSet::new();
    for company in &list {
        let admins = admins(company);
        assert!(!admins.is_empty(), "{company} has an admin");
        for admin in admins {
            assert!(
                seen_admins.insert(admin.clone()),
                "{admin} is admin of one company only"
            );
        }
    }

    // A generated company's admin connects it and reads its own books; another company's
    // admin cannot connect it.
    let tenth = &list[9];
    let realm = tenth["realm_id"].as_str().unwrap();
    let admin = &admins(tenth)[0];
    let (name, invoices) = books_of(&sim, admin, realm).await;
    assert_eq!(name, tenth["name"].as_str().unwrap());
    assert!(
        invoices.as_array().is_some_and(|i| i.len() > 10),
        "a year of invoices"
    );
    let (status, _) = sim.consent("app", CRAIG, realm).await;
    assert_ne!(status, StatusCode::FOUND, "Craig is no user of {realm}");

    // The same seed builds the same company whatever the number of companies around it.
    let fewer = Sim::with(SimConfig {
        companies: 10,
        seed: 9,
        ..SimConfig::default()
    })
    .await;
    assert_eq!(companies(&fewer).await[9], *tenth);
    assert_eq!(
        books_of(&fewer, admin, realm).await,
        (name, invoices.clone())
    );
    // Another seed, other books.
    let other = Sim::with(SimConfig {
        companies: 10,
        seed: 10,
        ..SimConfig::default()
    })
    .await;
    assert_ne!(books_of(&other, admin, realm).await.1, invoices);
}

#[tokio::test]
async fn the_number_changes_through_config_and_reset_restores_it() {
    let sim = Sim::start().await;
    for bad in [
        json!({"companies": 0}),
        json!({"companies": 100_000}),
        json!({"companies": "x"}),
    ] {
        let (status, body) = sim.config(bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["error"]["message"].as_str().is_some(), "{body}");
    }
    assert_eq!(
        companies(&sim).await.len(),
        2,
        "a refused change changes nothing"
    );
    let tokens = sim.connect().await;
    let (status, _) = sim
        .post(
            &tokens.access,
            &format!("/v3/company/{REALM}/customer"),
            &json!({"DisplayName": "Kept Across Growth"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = sim.config(json!({"companies": 5})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = companies(&sim).await;
    assert_eq!(list.len(), 5);
    let (_, found) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Customer WHERE DisplayName = 'Kept Across Growth'",
        )
        .await;
    assert_eq!(
        found["QueryResponse"]["Customer"].as_array().map(Vec::len),
        Some(1),
        "growing keeps the first companies' books: {found}"
    );
    let fifth = list[4]["realm_id"].as_str().unwrap().to_owned();
    books_of(&sim, &admins(&list[4])[0], &fifth).await;

    let (status, _) = sim.config(json!({"companies": 1})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(companies(&sim).await.len(), 1);
    let response = sim
        .http
        .post(sim.url("/_sim/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(companies(&sim).await.len(), 2, "reset: the number at start");
}
