//! Password sign-in: no enumeration, rate limits with Retry-After, session rotation, sign-out,
//! CSRF on forms, security headers, redirects to sign-in and back.

use reqwest::{Method, StatusCode};

use super::{Browser, PASSWORD, add_person, csrf_field, first_admin};
use crate::harness::{Backend, TestDb, TestServer};
use crate::on_both_backends;

on_both_backends!(
    failed_sign_ins_look_alike_and_are_rate_limited,
    sign_in_rotates_the_session_and_sign_out_ends_it,
    pages_redirect_to_sign_in_and_back,
);

async fn failed_sign_ins_look_alike_and_are_rate_limited(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    add_person(&root, "fay", "viewer").await;
    let unknown = Browser::sign_in(&server.url, "nobody", PASSWORD)
        .await
        .unwrap_err();
    let wrong = Browser::sign_in(&server.url, "fay", "wrong password here")
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (a, b) = (unknown.text().await.unwrap(), wrong.text().await.unwrap());
    assert!(a.contains("Unknown username or wrong password."), "{a}");
    assert!(b.contains("Unknown username or wrong password."), "{b}");
    // Nine more failures for fay: the tenth is the limit, then 429 even with the right password.
    for _ in 0..9 {
        let r = Browser::sign_in(&server.url, "fay", "wrong password here")
            .await
            .unwrap_err();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = Browser::sign_in(&server.url, "fay", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // Another name is not limited (the address budget is larger).
    assert!(
        Browser::sign_in(&server.url, "root", PASSWORD)
            .await
            .is_ok()
    );
}

async fn sign_in_rotates_the_session_and_sign_out_ends_it(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    first_admin(&server).await;
    let b = Browser::sign_in(&server.url, "root", PASSWORD)
        .await
        .unwrap();
    let cookie_of = |r: &reqwest::Response| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("qbo_session="))
            .map(|v| v.split(';').next().unwrap().to_owned())
    };
    // Signing in again from the same browser issues a new id and ends the old session.
    let (_, html) = b.page("/login").await;
    let r = b
        .client
        .post(b.at("/login"))
        .form(&[
            ("username", "root"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_field(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let new = cookie_of(&r).expect("a new session cookie");
    assert!(
        set.iter()
            .any(|c| c.contains("HttpOnly") && c.contains("SameSite=Lax")),
        "{set:?}"
    );
    let old_client = Browser::new(&server.url);
    let stale = old_client
        .client
        .get(old_client.at("/api/v1/me"))
        .header("cookie", "qbo_session=not-a-session")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert!(new.len() > "qbo_session=".len() + 40);
    // Security headers.
    let r = b.get("/account").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    // Sign-out needs the CSRF token, then ends the session.
    let r = b.client.post(b.at("/logout")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b.submit("/account", "/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(b.get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    // A form post without any cookie (cross-site, fresh browser) is refused.
    let r = Browser::new(&server.url)
        .client
        .post(server.at("/login"))
        .form(&[("username", "root"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

async fn pages_redirect_to_sign_in_and_back(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    first_admin(&server).await;
    let b = Browser::new(&server.url);
    let r = b.get("/people?x=1").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=%2Fpeople%3Fx%3D1");
    // Sign in with that next: back to it (root has finished onboarding after setup? no: onboarding first).
    let r = b
        .submit(
            "/login?next=%2Fpeople%3Fx%3D1",
            "/login",
            &[
                ("username", "root"),
                ("password", PASSWORD),
                ("next", "/people?x=1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/onboarding?next=%2Fpeople%3Fx%3D1");
    let r = b
        .submit(&to, "/onboarding", &[("next", "/people?x=1")])
        .await;
    assert_eq!(r.headers()["location"], "/people?x=1");
    // An off-site next is ignored.
    let r = b
        .submit(
            "/login",
            "/login",
            &[
                ("username", "root"),
                ("password", PASSWORD),
                ("next", "//evil.example/x"),
            ],
        )
        .await;
    assert_eq!(r.headers()["location"], "/");
    // JSON API stays JSON: 401, not a redirect.
    let r = Browser::new(&server.url).get("/api/v1/users").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let _ = Method::GET;
}
