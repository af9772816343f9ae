//! The invariants under concurrency, across two server processes on one database: two admins
//! demoting each other at the same instant always leave an active admin; a deactivation on one
//! instance is refused on the other at the next request. (A demotion ends the demoted
//! person's tokens, so each trial gives them a new one.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Bearer, Browser, PASSWORD, add_person, first_admin, token_for};
use crate::harness::{Backend, TestDb, TestServer, personal_token};
use crate::on_both_backends;

on_both_backends!(
    mutual_demotion_keeps_an_admin,
    deactivation_is_seen_by_the_other_instance
);

const TRIALS: usize = 50;

async fn mutual_demotion_keeps_an_admin(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let one = TestServer::start(&db).await;
    let two = TestServer::start(&db).await;
    let root = first_admin(&one).await;
    add_person(&root, "amy", "admin").await;
    add_person(&root, "ben", "admin").await;
    // root steps aside so that amy and ben are the only admins.
    let amy_browser = Browser::sign_in(&one.url, "amy", PASSWORD).await.unwrap();
    let r = amy_browser
        .call(
            Method::PATCH,
            "/api/v1/users/root",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut amy = Bearer::new(&one.url, &token_for(&amy_browser, "a").await);
    let ben_browser = Browser::sign_in(&two.url, "ben", PASSWORD).await.unwrap();
    let mut ben = Bearer::new(&two.url, &token_for(&ben_browser, "b").await);
    let demote = json!({"role": "bookkeeper"});
    let mut both_refused = 0;
    for trial in 0..TRIALS {
        let (a, b) = tokio::join!(
            amy.call(Method::PATCH, "/api/v1/users/ben", Some(demote.clone())),
            ben.call(Method::PATCH, "/api/v1/users/amy", Some(demote.clone())),
        );
        let (sa, sb) = (a.status(), b.status());
        assert!(
            !(sa == StatusCode::OK && sb == StatusCode::OK),
            "trial {trial}: both demotions succeeded"
        );
        for s in [sa, sb] {
            assert!(
                // 401: the other demotion committed first and ended this caller's token.
                [
                    StatusCode::OK,
                    StatusCode::CONFLICT,
                    StatusCode::FORBIDDEN,
                    StatusCode::UNAUTHORIZED
                ]
                .contains(&s),
                "trial {trial}: {s}"
            );
        }
        if sa != StatusCode::OK && sb != StatusCode::OK {
            both_refused += 1;
        }
        // Exactly one active admin among amy and ben now; the survivor restores the other.
        let users: Value = amy_or_ben(&amy, &ben).await;
        let admins: Vec<String> = users["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["role"] == "admin" && u["is_active"] == true)
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect();
        assert!(!admins.is_empty(), "trial {trial}: no active admin left");
        let (survivor, other) = if admins.contains(&"amy".to_owned()) {
            (&amy, "ben")
        } else {
            (&ben, "amy")
        };
        let r = survivor
            .call(
                Method::PATCH,
                &format!("/api/v1/users/{other}"),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "trial {trial}");
        // Any demotion ended the demoted one's token: both get fresh ones.
        amy.token = personal_token(&db, "amy").await;
        ben.token = personal_token(&db, "ben").await;
    }
    assert!(
        both_refused < TRIALS,
        "every trial refused both: the test proves nothing"
    );
}

/// The users list, from whichever of the two is still an admin.
async fn amy_or_ben(amy: &Bearer, ben: &Bearer) -> Value {
    for who in [amy, ben] {
        let r = who.call(Method::GET, "/api/v1/users", None).await;
        if r.status() == StatusCode::OK {
            return r.json().await.unwrap();
        }
    }
    panic!("neither amy nor ben can list users: no admin left");
}

async fn deactivation_is_seen_by_the_other_instance(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let a = TestServer::start(&db).await;
    let b = TestServer::start(&db).await;
    let root = first_admin(&a).await;
    add_person(&root, "cat", "viewer").await;
    let cat_on_b = Browser::sign_in(&b.url, "cat", PASSWORD).await.unwrap();
    let token = Bearer::new(&b.url, &token_for(&cat_on_b, "t").await);
    assert_eq!(cat_on_b.get("/api/v1/me").await.status(), StatusCode::OK);
    assert_eq!(
        token.call(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::OK
    );
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/cat",
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        cat_on_b.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token.call(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
