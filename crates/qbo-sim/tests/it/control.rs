//! `/_sim`: counters, configuration, companies, reset; and the throttle and faults it steers.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn stats_name_every_counter_overall_and_per_realm() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    assert_eq!(tokens.realm, REALM);
    sim.get(&tokens.access, &format!("/v3/company/{REALM}/customer/1"))
        .await;
    let stats = sim.stats().await;
    for key in [
        "authorize_requests",
        "code_exchanges",
        "refresh_requests",
        "refresh_rotations",
        "invalid_grant",
        "admin_changes",
        "api_requests",
        "throttled",
        "max_in_flight",
    ] {
        assert!(stats[key].is_u64(), "{key} overall");
        assert!(stats["realms"][REALM][key].is_u64(), "{key} per realm");
    }
    assert_eq!(stats["api_requests"], 1);
    assert_eq!(stats["reads"], 1);
    assert_eq!(stats["max_in_flight"], 1);
    assert_eq!(sim.sim.stats()["api_requests"], 1, "in-process stats agree");
}

#[tokio::test]
async fn companies_list_users_with_roles() {
    let sim = Sim::start().await;
    let companies: Value = sim
        .http
        .get(sim.url("/_sim/companies"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let list = companies.as_array().expect("list");
    assert!(list.len() >= 2);
    assert_eq!(list[0]["realm_id"], REALM);
    let users = list[0]["users"].as_array().expect("users");
    assert!(
        users
            .iter()
            .any(|u| u["email"] == CRAIG && u["role"] == "admin")
    );
    assert!(
        users
            .iter()
            .any(|u| u["email"] == SAM && u["role"] == "user")
    );
}

#[tokio::test]
async fn config_refuses_unknown_keys() {
    let sim = Sim::start().await;
    let (status, _) = sim.config(json!({"rate_limit": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = sim.config(json!({"error_rate": "high"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = sim
        .config(json!({"latency_ms": 1, "concurrency_limit": 20}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["concurrency_limit"], 20);
}

#[tokio::test]
async fn the_minute_budget_throttles_with_intuits_body_and_refills() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    sim.config(json!({"rate_limit_per_minute": 5, "report_rate_limit_per_minute": 1}))
        .await;
    for _ in 0..5 {
        assert_eq!(
            sim.get(&tokens.access, &format!("/v3/company/{REALM}/customer/1"))
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, body) = sim
        .get(&tokens.access, &format!("/v3/company/{REALM}/customer/1"))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["fault"]["error"][0]["code"], "3001");
    assert_eq!(
        body["fault"]["error"][0]["message"],
        "message=ThrottleExceeded; errorCode=003001; statusCode=429"
    );
    assert_eq!(body["fault"]["type"], "SERVICE");
    sim.http
        .post(sim.url("/_sim/advance-clock"))
        .json(&json!({"seconds": 60}))
        .send()
        .await
        .expect("advance");
    assert_eq!(
        sim.get(&tokens.access, &format!("/v3/company/{REALM}/customer/1"))
            .await
            .0,
        StatusCode::OK
    );
    let report = format!("/v3/company/{REALM}/reports/ProfitAndLoss");
    sim.get(&tokens.access, &report).await;
    assert_eq!(
        sim.get(&tokens.access, &report).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "reports have their own budget"
    );
    let other = sim.connect_to("other-app", CRAIG, REALM).await;
    assert_eq!(
        sim.get(&other.access, &format!("/v3/company/{REALM}/customer/1"))
            .await
            .0,
        StatusCode::OK,
        "per app"
    );
    let stats = sim.stats().await;
    assert_eq!(stats["throttled"], 2);
    assert_eq!(stats["realms"][REALM]["throttled"], 2);
}

#[tokio::test]
async fn more_than_the_concurrency_limit_in_flight_is_refused() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    sim.config(json!({"concurrency_limit": 2, "latency_ms": 1000}))
        .await;
    let calls = (0..6).map(|_| sim.get(&tokens.access, "/v3/company/9341453050298464/customer/1"));
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let throttled = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(ok + throttled, 6);
    assert!(ok >= 2 && throttled >= 1, "ok {ok}, throttled {throttled}");
    let stats = sim.stats().await;
    assert_eq!(stats["max_in_flight"], 2);
    assert_eq!(stats["realms"][REALM]["max_in_flight"], 2);
}

#[tokio::test]
async fn faults_on_demand() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let read = format!("/v3/company/{REALM}/customer/1");
    sim.config(json!({"error_rate": 1.0})).await;
    let (status, body) = sim.get(&tokens.access, &read).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["Fault"]["Error"][0]["code"].is_string());
    sim.config(json!({"error_rate": 0.0, "drop_rate": 1.0}))
        .await;
    let dropped = async {
        sim.http
            .get(sim.url(&read))
            .bearer_auth(&tokens.access)
            .send()
            .await?
            .bytes()
            .await
    };
    assert!(dropped.await.is_err(), "the connection is dropped");
    sim.config(json!({"drop_rate": 0.0, "latency_ms": 150}))
        .await;
    let started = std::time::Instant::now();
    assert_eq!(sim.get(&tokens.access, &read).await.0, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    let stats = sim.stats().await;
    assert_eq!(stats["faults_injected"], 1);
    assert_eq!(stats["connections_dropped"], 1);
}

#[tokio::test]
async fn reset_restores_data_tokens_counters_and_config() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    sim.post(
        &tokens.access,
        &format!("/v3/company/{REALM}/customer"),
        &customer("Gone After Reset"),
    )
    .await;
    sim.config(json!({"latency_ms": 5})).await;
    let counters_only = sim
        .http
        .post(sim.url("/_sim/reset"))
        .json(&json!({"data": false, "tokens": false, "config": false}))
        .send()
        .await
        .expect("reset");
    assert_eq!(counters_only.status(), StatusCode::OK);
    assert_eq!(sim.stats().await["api_requests"], 0);
    let (_, found) = sim
        .query(
            &tokens.access,
            "SELECT * FROM Customer WHERE DisplayName = 'Gone After Reset'",
        )
        .await;
    assert!(found["QueryResponse"]["Customer"].is_array(), "data kept");
    let all = sim
        .http
        .post(sim.url("/_sim/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(all.status(), StatusCode::OK);
    assert_eq!(
        sim.get(&tokens.access, &format!("/v3/company/{REALM}/customer/1"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let fresh = sim.connect().await;
    let (_, found) = sim
        .query(
            &fresh.access,
            "SELECT * FROM Customer WHERE DisplayName = 'Gone After Reset'",
        )
        .await;
    assert_eq!(found["QueryResponse"], json!({}));
    let config: Value = sim
        .http
        .get(sim.url("/_sim/config"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(config["latency_ms"], 0);
    let bad = sim
        .http
        .post(sim.url("/_sim/reset"))
        .json(&json!({"everything": true}))
        .send()
        .await
        .expect("reset");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn webhooks_are_signed_with_the_verifier_token() {
    use hmac::Mac;
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sender = sender.clone();
            async move {
                let signature = headers
                    .get("intuit-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let _ = sender.send((signature, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move { axum::serve(listener, receiver).await });

    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    sim.config(json!({"webhook_url": hook, "webhook_verifier_token": "verifier-123"}))
        .await;
    let (_, made) = sim
        .post(
            &tokens.access,
            &format!("/v3/company/{REALM}/customer"),
            &customer("Hooked Inc"),
        )
        .await;
    let (signature, body) =
        tokio::time::timeout(std::time::Duration::from_secs(20), received.recv())
            .await
            .expect("a notification arrives")
            .expect("channel open");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"verifier-123").expect("key");
    mac.update(body.as_bytes());
    use base64::Engine;
    assert_eq!(
        signature,
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let notification: Value = serde_json::from_str(&body).expect("json");
    let event = &notification["eventNotifications"][0];
    assert_eq!(event["realmId"], REALM);
    let entity = &event["dataChangeEvent"]["entities"][0];
    assert_eq!(
        (entity["name"].as_str(), entity["operation"].as_str()),
        (Some("Customer"), Some("Create"))
    );
    assert_eq!(entity["id"], made["Customer"]["Id"]);
    server.abort();
}
