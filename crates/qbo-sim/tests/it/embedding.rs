//! Mounting the simulator inside another server under a path prefix, as demo mode may:
//! discovery, consent form, token endpoint and API all work under the prefix.

use crate::support::{CRAIG, REALM, REDIRECT, SCOPES, pair, redirect_pairs};
use qbo_sim::{SimConfig, SimState};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn the_router_works_under_a_prefix_of_another_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let base = format!("http://{address}/intuit");
    let state = SimState::new(SimConfig::default()).expect("state");
    state.set_base_url(&base);
    let app = axum::Router::new().nest("/intuit", qbo_sim::router(state));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let discovery: Value = http
        .get(format!("{base}/.well-known/openid_configuration"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let authorize = discovery["authorization_endpoint"]
        .as_str()
        .expect("authorize")
        .to_owned();
    assert_eq!(authorize, format!("{base}/connect/oauth2"));
    let page = http
        .get(&authorize)
        .query(&[
            ("client_id", "demo"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("state", "s"),
        ])
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        !page.text().await.expect("html").contains("action=\"/"),
        "the form posts back under the prefix"
    );
    let consent = http
        .post(&authorize)
        .form(&[
            ("client_id", "demo"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("state", "s"),
            ("account", &format!("{REALM}|{CRAIG}")),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("consent");
    let code = pair(&redirect_pairs(&consent), "code").expect("code");
    let tokens: Value = http
        .post(discovery["token_endpoint"].as_str().expect("token"))
        .basic_auth("demo", Some("secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let read = http
        .get(format!("{base}/v3/company/{REALM}/customer/1"))
        .bearer_auth(tokens["access_token"].as_str().expect("access"))
        .send()
        .await
        .expect("read");
    assert_eq!(read.status(), StatusCode::OK);
    server.abort();
}
