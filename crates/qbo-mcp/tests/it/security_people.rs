//! Security of people, passwords, sessions and sign-in (issue 9), as an attacker would try it
//! over HTTP against the real server, on both backends:
//!
//! - a password change, a reset, a role lowered and "Sign out everywhere" end every other
//!   session, every personal access token and every assistant grant of the person, for good;
//! - concurrent wrong passwords (at sign-in and as `current_password`) never exceed the limit;
//! - a bearer token never sets a first password;
//! - setting a password by any path voids the person's other invitation and reset links;
//! - an identity-provider callback completed in another browser is refused.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestDb, TestServer, cli, personal_token};
use crate::oauth::register;
use crate::on_both_backends;
use crate::people::oidc::{Provider, control, start_provider};
use crate::people::{Bearer, Browser, PASSWORD, add_person, error_of, first_admin, token_for};
use crate::refusals::{REDIRECT, VERIFIER, code_for, exchange};

on_both_backends!(
    a_password_change_ends_every_other_credential,
    resets_end_everything_for_good,
    lowering_a_role_or_signing_out_everywhere_ends_access,
    concurrent_wrong_passwords_cannot_exceed_the_limit,
    a_token_cannot_set_a_first_password,
    setting_a_password_voids_other_links,
    an_identity_provider_callback_in_another_browser_is_refused,
);

const NEW_PASSWORD: &str = "a brand new password 1";
const NEWER_PASSWORD: &str = "an even newer password 2";

/// Signs `username` in and finishes onboarding, so pages are reachable.
async fn signed_in(server: &TestServer, username: &str, password: &str) -> Browser {
    let b = Browser::sign_in(&server.url, username, password)
        .await
        .unwrap_or_else(|r| panic!("{username} signs in: {}", r.status()));
    let (status, page) = b.page("/onboarding").await;
    if status == StatusCode::OK && page.contains("action=\"/onboarding") {
        let _ = b.submit("/onboarding", "/onboarding", &[]).await;
    }
    b
}

/// Every kind of credential a person can hold besides the browser they act in.
struct Credentials {
    other_browser: Browser,
    pat: String,
    access_token: String,
    refresh_token: String,
}

impl Credentials {
    /// Another browser session, a personal access token and an assistant grant of the person
    /// signed in to `b` (with `password`).
    async fn issue(server: &TestServer, b: &Browser, username: &str, password: &str) -> Self {
        let other_browser = signed_in(server, username, password).await;
        let pat = token_for(b, "script").await;
        let client_id = register(server).await;
        let code = code_for(b, &client_id).await;
        let (status, tokens) = exchange(server, &client_id, &code, VERIFIER, REDIRECT).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let c = Credentials {
            other_browser,
            pat,
            access_token: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        };
        c.assert_alive(server).await;
        c
    }

    async fn statuses(&self, server: &TestServer) -> [StatusCode; 3] {
        [
            self.other_browser.get("/api/v1/me").await.status(),
            Bearer::new(&server.url, &self.pat)
                .call(Method::GET, "/api/v1/me", None)
                .await
                .status(),
            mcp_status(server, &self.access_token).await,
        ]
    }

    async fn assert_alive(&self, server: &TestServer) {
        assert_eq!(
            self.statuses(server).await,
            [StatusCode::OK; 3],
            "session, personal token, assistant token"
        );
    }

    /// Ended: 401 everywhere (not a "pause" such as 403 password_change_required), and the
    /// assistant's refresh token gets no new access token.
    async fn assert_ended(&self, server: &TestServer, after: &str) {
        assert_eq!(
            self.statuses(server).await,
            [StatusCode::UNAUTHORIZED; 3],
            "session, personal token, assistant token after {after}"
        );
        let r = server
            .post("/oauth/token")
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh_token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "refresh after {after}: {body}"
        );
    }
}

/// `tools/list` with a bearer token: the HTTP status.
async fn mcp_status(server: &TestServer, bearer: &str) -> StatusCode {
    server
        .post("/mcp")
        .bearer_auth(bearer)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .status()
}

/// The path of a one-time link (`http://…/invite/<token>` → `/invite/<token>`; the command
/// line does not know the server's port, so only the path counts).
fn path_of(link: &str) -> String {
    let url = url::Url::parse(link.trim()).unwrap_or_else(|e| panic!("a link: {link}: {e}"));
    assert!(url.path().starts_with("/invite/"), "{link}");
    url.path().to_owned()
}

/// Uses a one-time link in a fresh browser: the status of the form post.
async fn use_link(server: &TestServer, path: &str, password: &str) -> StatusCode {
    let b = Browser::new(&server.url);
    let (status, html) = b.page(path).await;
    if status != StatusCode::OK {
        return status;
    }
    let token = crate::people::csrf_field(&html);
    b.client
        .post(b.at(path))
        .form(&[("password", password), ("csrf_token", &token)])
        .send()
        .await
        .unwrap()
        .status()
}

async fn can_sign_in(server: &TestServer, username: &str, password: &str) -> bool {
    Browser::sign_in(&server.url, username, password)
        .await
        .is_ok()
}

async fn a_password_change_ends_every_other_credential(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    add_person(&root, "carol", "bookkeeper").await;
    let mut carol = signed_in(&server, "carol", PASSWORD).await;

    // The page form: everything else ends; this browser stays signed in.
    let others = Credentials::issue(&server, &carol, "carol", PASSWORD).await;
    let r = carol
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    others.assert_ended(&server, "a password change").await;
    assert_eq!(carol.get("/api/v1/me").await.status(), StatusCode::OK);
    assert_eq!(carol.get("/account").await.status(), StatusCode::OK);
    // The session was re-issued: JSON calls need its new CSRF token.
    carol.refresh_csrf().await;

    // The API, with a personal access token: every token ends, that one included, and so
    // does every session.
    let others = Credentials::issue(&server, &carol, "carol", NEW_PASSWORD).await;
    let pat = token_for(&carol, "changer").await;
    let r = Bearer::new(&server.url, &pat)
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(json!({"current_password": NEW_PASSWORD, "new_password": NEWER_PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    others
        .assert_ended(&server, "a password change by token")
        .await;
    assert_eq!(
        carol.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = Bearer::new(&server.url, &pat)
        .call(Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(can_sign_in(&server, "carol", NEWER_PASSWORD).await);
}

async fn resets_end_everything_for_good(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    add_person(&root, "carol", "bookkeeper").await;
    let carol = signed_in(&server, "carol", PASSWORD).await;

    // An admin sends a password link from the person's page.
    let others = Credentials::issue(&server, &carol, "carol", PASSWORD).await;
    let r = root
        .submit(
            "/people/carol/confirm/reset-password",
            "/people/carol/confirm/reset-password",
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let link = page
        .split("<code class=\"token\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or_else(|| panic!("a link on the page:\n{page}"))
        .to_owned();
    others
        .assert_ended(&server, "an admin's password link")
        .await;
    assert_eq!(
        carol.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        !can_sign_in(&server, "carol", PASSWORD).await,
        "the old password ends with a reset"
    );
    assert_eq!(
        use_link(&server, &path_of(&link), NEW_PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    others
        .assert_ended(&server, "the reset link was used")
        .await;

    // The console sets a temporary password: tokens do not come back once it is changed.
    let carol = signed_in(&server, "carol", NEW_PASSWORD).await;
    let others = Credentials::issue(&server, &carol, "carol", NEW_PASSWORD).await;
    let out = cli(
        &db,
        &["user", "reset-password", "carol", "--password-stdin"],
        Some("temporary password 1\n"),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    others.assert_ended(&server, "a console reset").await;
    let carol = Browser::sign_in(&server.url, "carol", "temporary password 1")
        .await
        .unwrap();
    let r = carol
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(
                json!({"current_password": "temporary password 1", "new_password": NEWER_PASSWORD}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    others
        .assert_ended(&server, "the temporary password was changed")
        .await;
}

async fn lowering_a_role_or_signing_out_everywhere_ends_access(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    add_person(&root, "carol", "bookkeeper").await;
    let carol = signed_in(&server, "carol", PASSWORD).await;

    // Raising a role ends nothing; lowering it ends everything.
    let others = Credentials::issue(&server, &carol, "carol", PASSWORD).await;
    let set_role = |role: &'static str| {
        let root = root.clone();
        async move {
            let r = root
                .call(
                    Method::PATCH,
                    "/api/v1/users/carol",
                    Some(json!({"role": role})),
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{role}");
        }
    };
    set_role("admin").await;
    others.assert_alive(&server).await;
    set_role("viewer").await;
    others.assert_ended(&server, "a lower role").await;
    assert_eq!(
        carol.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // "Sign out everywhere" on My account: this browser stays signed in.
    let mut carol = signed_in(&server, "carol", PASSWORD).await;
    let (_, account) = carol.page("/account").await;
    assert!(
        account.contains("action=\"/account/sign-out-everywhere\""),
        "{account}"
    );
    let others = Credentials::issue(&server, &carol, "carol", PASSWORD).await;
    let r = carol
        .client
        .post(carol.at("/account/sign-out-everywhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "the form needs CSRF");
    others.assert_alive(&server).await;
    let r = carol
        .submit("/account", "/account/sign-out-everywhere", &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    others.assert_ended(&server, "sign out everywhere").await;
    assert_eq!(carol.get("/api/v1/me").await.status(), StatusCode::OK);
    carol.refresh_csrf().await;

    // The same through the API, with a token (which ends too).
    let others = Credentials::issue(&server, &carol, "carol", PASSWORD).await;
    let pat = token_for(&carol, "panic button").await;
    let r = Bearer::new(&server.url, &pat)
        .call(Method::POST, "/api/v1/me/sign-out-everywhere", None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    others
        .assert_ended(&server, "sign out everywhere by API")
        .await;
    let r = Bearer::new(&server.url, &pat)
        .call(Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// Counts the statuses of concurrent requests: (401s, 429s).
fn tally(statuses: &[StatusCode]) -> (usize, usize) {
    let of = |s: StatusCode| statuses.iter().filter(|x| **x == s).count();
    let (checked, limited) = (
        of(StatusCode::UNAUTHORIZED),
        of(StatusCode::TOO_MANY_REQUESTS),
    );
    assert_eq!(checked + limited, statuses.len(), "{statuses:?}");
    (checked, limited)
}

async fn concurrent_wrong_passwords_cannot_exceed_the_limit(backend: Backend) {
    const LIMIT: usize = 10;
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    add_person(&root, "fay", "viewer").await;
    add_person(&root, "gil", "viewer").await;

    // Sixteen wrong passwords for one name at once: at most the limit are checked.
    let tries = (0..16).map(|_| async {
        match Browser::sign_in(&server.url, "fay", "wrong password here").await {
            Ok(_) => StatusCode::OK,
            Err(r) => r.status(),
        }
    });
    let statuses = join_all(tries).await;
    let (checked, limited) = tally(&statuses);
    assert!(
        checked <= LIMIT && limited >= 16 - LIMIT,
        "{checked} checked, {limited} refused"
    );
    assert!(!can_sign_in(&server, "fay", PASSWORD).await);

    // The same budget covers `current_password`.
    let gil = Bearer::new(&server.url, &personal_token(&db, "gil").await);
    let tries = (0..16).map(|_| async {
        gil.call(
            Method::POST,
            "/api/v1/me/password",
            Some(json!({"current_password": "wrong password here", "new_password": NEW_PASSWORD})),
        )
        .await
        .status()
    });
    let statuses = join_all(tries).await;
    let (checked, limited) = tally(&statuses);
    assert!(
        checked <= LIMIT && limited >= 16 - LIMIT,
        "{checked} checked, {limited} refused"
    );
    let r = gil
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!can_sign_in(&server, "gil", PASSWORD).await);
}

async fn a_token_cannot_set_a_first_password(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    let r = root
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "ivy", "role": "viewer", "invite": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let invite: Value = r.json().await.unwrap();
    let ivy = Bearer::new(&server.url, &personal_token(&db, "ivy").await);
    for body in [
        json!({"new_password": NEW_PASSWORD}),
        json!({"current_password": "anything at all", "new_password": NEW_PASSWORD}),
    ] {
        let (status, code) = error_of(
            ivy.call(Method::POST, "/api/v1/me/password", Some(body))
                .await,
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "password_link_required")
        );
        assert!(!can_sign_in(&server, "ivy", NEW_PASSWORD).await);
    }
    // The invitation still sets it.
    let path = path_of(invite["invite_url"].as_str().unwrap());
    assert_eq!(
        use_link(&server, &path, NEW_PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert!(can_sign_in(&server, "ivy", NEW_PASSWORD).await);
}

async fn setting_a_password_voids_other_links(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    let r = root
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "ivy", "role": "viewer", "invite": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let invite: Value = r.json().await.unwrap();
    let invite = path_of(invite["invite_url"].as_str().unwrap());
    let reset_link = || async {
        let out = cli(&db, &["user", "reset-password", "ivy"], None).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        path_of(&out.stdout)
    };

    // A reset link sets the password: the invitation is void and overwrites nothing.
    let reset = reset_link().await;
    assert_eq!(
        use_link(&server, &reset, NEW_PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        use_link(&server, &invite, "the attacker's password").await,
        StatusCode::GONE
    );
    assert!(can_sign_in(&server, "ivy", NEW_PASSWORD).await);
    assert!(!can_sign_in(&server, "ivy", "the attacker's password").await);

    // The console sets a password: an earlier reset link is void.
    let reset = reset_link().await;
    let out = cli(
        &db,
        &["user", "reset-password", "ivy", "--password-stdin"],
        Some("temporary password 1\n"),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        use_link(&server, &reset, "the attacker's password").await,
        StatusCode::GONE
    );

    assert!(can_sign_in(&server, "ivy", "temporary password 1").await);
}

/// Follows an identity-provider sign-in started in `b` up to (not including) our callback:
/// the callback URL the provider sends the browser to.
async fn callback_url(server: &TestServer, provider: &Provider, b: &Browser, sub: &str) -> String {
    control(provider, "/_next", json!({"sub": sub})).await;
    let mut url = reqwest::Url::parse(&b.at("/login/oidc?next=%2Faccount")).unwrap();
    for _ in 0..20 {
        if url.as_str().starts_with(&server.url) && url.path() == "/login/oidc/callback" {
            return url.to_string();
        }
        let r = b.client.get(url.clone()).send().await.unwrap();
        assert!(
            r.status().is_redirection(),
            "{url}: {} {}",
            r.status(),
            r.text().await.unwrap()
        );
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        url = url.join(&location).unwrap();
    }
    panic!("no callback after 20 redirects");
}

async fn an_identity_provider_callback_in_another_browser_is_refused(backend: Backend) {
    let provider = start_provider().await;
    let db = TestDb::fresh(backend).await;
    let server = TestServer::builder(&db)
        .env("QBO_MCP_OIDC_ISSUER", &provider.issuer)
        .env("QBO_MCP_OIDC_CLIENT_ID", "qbo-mcp-test")
        .env("QBO_MCP_OIDC_CLIENT_SECRET", "test-client-secret")
        .start()
        .await;
    control(
        &provider,
        "/_start",
        json!({"redirect_uri": server.at("/login/oidc/callback")}),
    )
    .await;
    let root = first_admin(&server).await;
    let r = root
        .call(
            Method::POST,
            "/api/v1/allowlist",
            Some(json!({"entry": "@example.com", "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // The attacker signs in at the provider in their own browser and hands the callback to
    // the victim (login CSRF): the victim's browser has no binding cookie, or another one.
    let attacker = Browser::new(&server.url);
    let callback = callback_url(&server, &provider, &attacker, "s-ann").await;
    let victim = Browser::new(&server.url);
    let r = victim.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(page.contains("another browser"), "{page}");
    assert_eq!(
        victim.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let busy = Browser::new(&server.url);
    let own = callback_url(&server, &provider, &busy, "s-pat").await;
    let r = busy.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        busy.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    drop(own);
    // The browser that started it completes it.
    let r = attacker.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set_cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("qbo_oidc=") && c.contains("Max-Age=0")),
        "the binding cookie is cleared: {set_cookies:?}"
    );
    let mut ann = attacker;
    ann.refresh_csrf().await;
    assert_eq!(ann.get("/api/v1/me").await.status(), StatusCode::OK);

    // A fresh identity-provider sign-in may set a first password; a token of the same
    // person may not.
    let pat = token_for(&ann, "script").await;
    let (status, code) = error_of(
        Bearer::new(&server.url, &pat)
            .call(
                Method::POST,
                "/api/v1/me/password",
                Some(json!({"new_password": NEW_PASSWORD})),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "password_link_required")
    );
    let r = ann
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(json!({"new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(can_sign_in(&server, "ann", NEW_PASSWORD).await);
}
