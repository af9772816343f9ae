//! Intuit OAuth/OIDC: discovery, consent, code exchange, refresh rotation, grace, lifetimes,
//! Change Admin, revocation, userinfo and a verifiable id_token.

use crate::support::*;
use qbo_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn discovery_points_every_endpoint_back_at_the_simulator() {
    let sim = Sim::start().await;
    for path in [
        "/.well-known/openid_configuration",
        "/.well-known/openid-configuration",
    ] {
        let doc: Value = sim
            .http
            .get(sim.url(path))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        for key in [
            "authorization_endpoint",
            "token_endpoint",
            "revocation_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "issuer",
        ] {
            assert!(
                doc[key].as_str().expect(key).starts_with(&sim.base),
                "{key} = {}",
                doc[key]
            );
        }
        assert_eq!(
            doc["token_endpoint"],
            format!("{}/oauth2/v1/tokens/bearer", sim.base)
        );
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{}/connect/oauth2", sim.base)
        );
    }
}

#[tokio::test]
async fn consent_page_lists_users_and_only_admins_may_approve() {
    let sim = Sim::start().await;
    let page = sim
        .http
        .get(sim.authorize_url("app", "s1"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    for email in [CRAIG, DANA, SAM, HANA] {
        assert!(html.contains(email), "{email} listed");
    }
    assert!(html.contains("<form method=\"post\"") && !html.contains("<script"));
    let (status, pairs) = sim.consent("app", SAM, REALM).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a plain user cannot connect");
    assert!(pairs.is_empty());
    let (status, pairs) = sim.consent("app", CRAIG, REALM).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(pair(&pairs, "realmId").as_deref(), Some(REALM));
    assert_eq!(pair(&pairs, "state").as_deref(), Some("st8"));
    let denied = sim
        .http
        .post(sim.url("/connect/oauth2"))
        .form(&[
            ("client_id", "app"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("state", "x"),
            ("decision", "deny"),
        ])
        .send()
        .await
        .expect("deny");
    assert_eq!(
        pair(&redirect_pairs(&denied), "error").as_deref(),
        Some("access_denied")
    );
    let bad_scope = sim
        .http
        .get(format!("{}/connect/oauth2?client_id=a&redirect_uri={REDIRECT}&response_type=code&scope=bogus&state=q", sim.base))
        .send()
        .await
        .expect("scope");
    assert_eq!(
        pair(&redirect_pairs(&bad_scope), "error").as_deref(),
        Some("invalid_scope")
    );
    let again = sim
        .http
        .get(sim.authorize_url("app", "s2"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        again.contains("connected to this app by craig@craigsdesign.example"),
        "the page warns of Change Admin"
    );
    let stats = sim.stats().await;
    assert_eq!(stats["authorize_requests"], 3);
    assert_eq!(stats["realms"][REALM]["authorize_requests"], 1);
}

#[tokio::test]
async fn auto_consent_redirects_at_once() {
    let sim = Sim::start().await;
    let (status, _) = sim
        .config(json!({"auto_consent": {"email": HANA, "realm_id": null}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = sim
        .http
        .get(sim.authorize_url("app", "abc"))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::FOUND);
    let pairs = redirect_pairs(&response);
    assert_eq!(pair(&pairs, "realmId").as_deref(), Some(OTHER_REALM));
    assert_eq!(pair(&pairs, "state").as_deref(), Some("abc"));
    let code = pair(&pairs, "code").expect("code");
    assert_eq!(sim.exchange("app", &code).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_endpoint_follows_intuits_rules_and_error_bodies() {
    let sim = Sim::start().await;
    let (_, pairs) = sim.consent("app", CRAIG, REALM).await;
    let code = pair(&pairs, "code").expect("code");
    let no_auth = sim
        .http
        .post(sim.url("/oauth2/v1/tokens/bearer"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(no_auth.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        no_auth.json::<Value>().await.expect("json")["error"],
        "invalid_client"
    );
    let other_client = sim.exchange("other-app", &code).await;
    assert_eq!(other_client.status(), StatusCode::BAD_REQUEST);
    let ok = sim.exchange("app", &code).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["x_refresh_token_expires_in"], 8_640_000);
    let replay = sim.exchange("app", &code).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        replay.json::<Value>().await.expect("json"),
        json!({"error": "invalid_grant", "error_description": "Incorrect or invalid refresh token"})
    );
    let unsupported = sim
        .http
        .post(sim.url("/oauth2/v1/tokens/bearer"))
        .basic_auth("app", Some("s"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("post");
    assert_eq!(
        unsupported.json::<Value>().await.expect("json")["error"],
        "unsupported_grant_type"
    );
    let stats = sim.stats().await;
    assert_eq!(stats["code_exchanges"], 3);
    assert_eq!(
        stats["realms"][REALM]["code_exchanges"], 3,
        "every attempt with a code of this company"
    );
    assert_eq!(stats["invalid_grant"], 2);
    assert_eq!(stats["realms"][REALM]["invalid_grant"], 2);
}

#[tokio::test]
async fn id_token_verifies_against_the_jwks() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let id_token = tokens.body["id_token"]
        .as_str()
        .expect("id_token with openid scope");
    let jwks: Value = sim
        .http
        .get(sim.url("/op/v1/jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let key = &jwks["keys"][0];
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().expect("n"),
        key["e"].as_str().expect("e"),
    )
    .expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["app"]);
    validation.set_issuer(&[format!("{}/op/v1", sim.base)]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &decoding, &validation)
        .expect("valid id_token")
        .claims;
    assert_eq!(claims["realmid"], REALM);
    let userinfo = sim.get(&tokens.access, "/v1/openid_connect/userinfo").await;
    assert_eq!(userinfo.0, StatusCode::OK);
    assert_eq!(userinfo.1["email"], CRAIG);
    assert_eq!(userinfo.1["sub"], claims["sub"]);
    assert_eq!(userinfo.1["givenName"], "Craig");
}

#[tokio::test]
async fn refresh_keeps_its_value_for_a_day_then_rotates_and_the_old_one_dies() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let same: Value = sim
        .refresh("app", &tokens.refresh)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(same["refresh_token"], tokens.refresh.as_str());
    assert_ne!(same["access_token"], tokens.access.as_str());
    sim.http
        .post(sim.url("/_sim/advance-clock"))
        .json(&json!({"seconds": 25 * 3600}))
        .send()
        .await
        .expect("advance");
    let rotated = sim.refresh("app", &tokens.refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.expect("json");
    assert_ne!(rotated["refresh_token"], tokens.refresh.as_str());
    let old = sim.refresh("app", &tokens.refresh).await;
    assert_eq!(old.status(), StatusCode::BAD_REQUEST);
    let next = sim
        .refresh("app", rotated["refresh_token"].as_str().expect("rt"))
        .await;
    assert_eq!(next.status(), StatusCode::OK);
    let stats = sim.stats().await;
    assert_eq!(stats["refresh_requests"], 4);
    assert_eq!(stats["refresh_rotations"], 1);
    assert_eq!(stats["realms"][REALM]["refresh_rotations"], 1);
    assert_eq!(stats["invalid_grant"], 1);
}

#[tokio::test]
async fn grace_and_lifetimes_are_configurable() {
    let config = SimConfig {
        rotation_interval_s: 0,
        refresh_grace_s: 120,
        ..SimConfig::default()
    };
    let sim = Sim::with(config).await;
    let tokens = sim.connect().await;
    let first: Value = sim
        .refresh("app", &tokens.refresh)
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(first["refresh_token"], tokens.refresh.as_str());
    assert_eq!(
        sim.refresh("app", &tokens.refresh).await.status(),
        StatusCode::OK,
        "inside the grace"
    );
    sim.http
        .post(sim.url("/_sim/advance-clock"))
        .json(&json!({"seconds": 121}))
        .send()
        .await
        .expect("advance");
    assert_eq!(
        sim.refresh("app", &tokens.refresh).await.status(),
        StatusCode::BAD_REQUEST,
        "after the grace"
    );
    let (status, _) = sim
        .config(json!({"refresh_token_lifetime_s": 60, "access_token_lifetime_s": 30}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let fresh = sim.connect_to("app2", CRAIG, REALM).await;
    assert_eq!(fresh.body["expires_in"], 30);
    assert_eq!(fresh.body["x_refresh_token_expires_in"], 60);
    sim.http
        .post(sim.url("/_sim/advance-clock"))
        .json(&json!({"seconds": 31}))
        .send()
        .await
        .expect("advance");
    let (status, body) = sim
        .get(&fresh.access, &format!("/v3/company/{REALM}/customer/1"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["fault"]["error"][0]["code"], "3200");
    sim.http
        .post(sim.url("/_sim/advance-clock"))
        .json(&json!({"seconds": 30}))
        .send()
        .await
        .expect("advance");
    assert_eq!(
        sim.refresh("app2", &fresh.refresh).await.status(),
        StatusCode::BAD_REQUEST,
        "refresh token expired"
    );
}

#[tokio::test]
async fn a_second_admin_authorizing_the_same_app_takes_the_connection() {
    let sim = Sim::start().await;
    let craig = sim.connect_to("app", CRAIG, REALM).await;
    let again = sim.connect_to("app", CRAIG, REALM).await;
    assert_eq!(
        sim.stats().await["admin_changes"],
        0,
        "same admin reconnecting is no change"
    );
    let other_app = sim.connect_to("other-app", DANA, REALM).await;
    assert_eq!(
        sim.stats().await["admin_changes"],
        0,
        "another app is another connection"
    );
    let dana = sim.connect_to("app", DANA, REALM).await;
    let stats = sim.stats().await;
    assert_eq!(stats["admin_changes"], 1);
    assert_eq!(stats["realms"][REALM]["admin_changes"], 1);
    for old in [&craig, &again] {
        assert_eq!(
            sim.get(&old.access, &format!("/v3/company/{REALM}/customer/1"))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            sim.refresh("app", &old.refresh).await.status(),
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        sim.get(&dana.access, &format!("/v3/company/{REALM}/customer/1"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        sim.get(
            &other_app.access,
            &format!("/v3/company/{REALM}/customer/1")
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, info) = sim.get(&dana.access, "/v1/openid_connect/userinfo").await;
    assert_eq!(info["email"], DANA);
}

#[tokio::test]
async fn change_admin_can_be_switched_off() {
    let sim = Sim::with(SimConfig {
        change_admin: false,
        ..SimConfig::default()
    })
    .await;
    let craig = sim.connect_to("app", CRAIG, REALM).await;
    sim.connect_to("app", DANA, REALM).await;
    assert_eq!(sim.stats().await["admin_changes"], 0);
    assert_eq!(
        sim.get(&craig.access, &format!("/v3/company/{REALM}/customer/1"))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoke_disconnects_and_forced_invalid_grant_refuses_refreshes() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (status, _) = sim.config(json!({"force_invalid_grant": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sim.refresh("app", &tokens.refresh).await.status(),
        StatusCode::BAD_REQUEST
    );
    sim.config(json!({"force_invalid_grant": false})).await;
    assert_eq!(
        sim.refresh("app", &tokens.refresh).await.status(),
        StatusCode::OK
    );
    let revoked = sim
        .http
        .post(sim.url("/v2/oauth2/tokens/revoke"))
        .basic_auth("app", Some("secret"))
        .json(&json!({"token": tokens.refresh}))
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        sim.refresh("app", &tokens.refresh).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        sim.get(&tokens.access, &format!("/v3/company/{REALM}/customer/1"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let stats = sim.stats().await;
    assert_eq!(stats["revocations"], 1);
    assert_eq!(stats["invalid_grant"], 2);
}

#[tokio::test]
async fn expire_access_tokens_forces_a_refresh() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let expired: Value = sim
        .http
        .post(sim.url("/_sim/expire-access-tokens"))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(expired["expired"], 1);
    let (status, body) = sim
        .get(&tokens.access, &format!("/v3/company/{REALM}/customer/1"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["fault"]["type"], "AUTHENTICATION");
    let fresh: Value = sim
        .refresh("app", &tokens.refresh)
        .await
        .json()
        .await
        .expect("json");
    let (status, _) = sim
        .get(
            fresh["access_token"].as_str().expect("at"),
            &format!("/v3/company/{REALM}/customer/1"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.stats().await["unauthorized"], 1);
}

#[tokio::test]
async fn demoting_the_connecting_admin_answers_120_until_an_admin_reconnects() {
    let sim = Sim::start().await;
    let craig = sim.connect().await;
    let users = sim.url(&format!("/_sim/companies/{REALM}/users"));
    let demoted = sim
        .http
        .post(&users)
        .json(&json!({"email": CRAIG, "role": "user"}))
        .send()
        .await
        .expect("post");
    assert_eq!(demoted.status(), StatusCode::OK);
    let read = format!("/v3/company/{REALM}/customer/1");
    let (status, body) = sim.get(&craig.access, &read).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["Fault"]["Error"][0]["code"], "120");
    assert_eq!(
        sim.refresh("app", &craig.refresh).await.status(),
        StatusCode::OK,
        "tokens still refresh"
    );
    assert_eq!(
        sim.consent("app", CRAIG, REALM).await.0,
        StatusCode::FORBIDDEN,
        "no longer an admin"
    );
    let dana = sim.connect_to("app", DANA, REALM).await;
    assert_eq!(sim.get(&dana.access, &read).await.0, StatusCode::OK);
    let added = sim
        .http
        .post(&users)
        .json(&json!({"email": "new.admin@craigsdesign.example", "role": "admin"}))
        .send()
        .await
        .expect("post");
    assert_eq!(added.status(), StatusCode::OK);
    assert_eq!(
        sim.consent("app2", "new.admin@craigsdesign.example", REALM)
            .await
            .0,
        StatusCode::FOUND
    );
    let bad = sim
        .http
        .post(&users)
        .json(&json!({"email": "x@y.z", "role": "owner"}))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
