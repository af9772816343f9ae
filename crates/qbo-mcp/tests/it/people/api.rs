//! The users, me and tokens API: invariants, deactivation by stamp, bad input.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Bearer, Browser, PASSWORD, add_person, error_of, first_admin, token_for};
use crate::harness::{Backend, TestDb, TestServer, client};
use crate::on_both_backends;

on_both_backends!(
    setup_link_makes_the_first_admin_once,
    last_admin_and_self_rules_hold,
    deactivation_ends_sessions_and_tokens_at_once,
    password_change_ends_other_sessions,
    bad_input_gets_specific_errors_and_writes_nothing,
    roles_limit_the_api,
    openapi_describes_the_routes,
);

/// The served document is the one generated from the handlers (`qbo_mcp::app::openapi`), and
/// the router serves exactly what it documents: every documented operation reaches its
/// handler (an anonymous caller gets 401, not the fallback's 404 or a 405), and every other
/// method on a documented path is 405. (That no `/api` route is registered without its
/// description is `app::tests::every_api_route_is_registered_with_its_description`.)
async fn openapi_describes_the_routes(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    let doc: Value = server
        .get("/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc, serde_json::to_value(qbo_mcp::app::openapi()).unwrap());
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/me",
        "/api/v1/me/password",
        "/api/v1/me/sign-out-everywhere",
        "/api/v1/users",
        "/api/v1/users/{username}",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/allowlist",
        "/api/v1/allowlist/{entry}",
        "/api/v1/companies",
        "/api/v1/companies/connect",
        "/api/v1/companies/{realm_id}",
        "/api/v1/companies/{realm_id}/grants/{username}",
        "/api/v1/assistants",
        "/api/v1/assistants/{id}",
        "/api/v1/audit",
        "/api/v1/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} undocumented");
    }
    let anonymous = client();
    for (path, ops) in paths {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let documented = ops.get(method.as_str().to_lowercase()).is_some();
            let r = anonymous
                .request(method.clone(), server.at(&concrete))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            let at = format!("{method} {path}");
            if !documented {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{at} is served: {body}"
                );
            } else if path == "/api/v1/openapi.json" {
                assert_eq!(status, StatusCode::OK, "{at}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{at} (documented): {body}"
                );
            }
        }
    }
    // Every documented read without parameters answers an admin, in the documented shape.
    for (path, ops) in paths {
        if let Some(get) = ops.get("get")
            && !path.contains('{')
        {
            let r = root.get(path).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let schema = &get["responses"]["200"]["content"]["application/json"]["schema"];
            if !schema.is_null() {
                conforms(&r.json().await.unwrap(), schema, &doc, path);
            }
        }
    }
}

/// Whether `value` has the shape `schema` documents: no property the schema does not name,
/// every required one, recursively (references resolved; `oneOf` and free-form values taken
/// as they come).
fn conforms(value: &Value, schema: &Value, doc: &Value, at: &str) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return conforms(value, &doc["components"]["schemas"][name], doc, at);
    }
    match value {
        Value::Object(fields) if schema.get("properties").is_some() => {
            let properties = schema["properties"].as_object().unwrap();
            for (k, v) in fields {
                let Some(s) = properties.get(k) else {
                    panic!("{at}: `{k}` is not documented");
                };
                conforms(v, s, doc, &format!("{at}.{k}"));
            }
            for k in schema["required"].as_array().into_iter().flatten() {
                assert!(fields.contains_key(k.as_str().unwrap()), "{at}: no `{k}`");
            }
        }
        Value::Array(items) if schema.get("items").is_some() => {
            for (i, v) in items.iter().enumerate() {
                conforms(v, &schema["items"], doc, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

async fn setup_link_makes_the_first_admin_once(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    // Processes: the link on stdout, and none from a restarted server, are what `serve` prints.
    let server = TestServer::process(&db).await;
    let anon = server.get("/api/v1/me").send().await.unwrap();
    assert_eq!(
        error_of(anon).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    let line = server.wait_for_line("one-time link").await;
    let admin = first_admin(&server).await;
    let me: Value = admin.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["username"], "root");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["email"], "root@example.com");
    assert_eq!(me["is_active"], true);
    // The link works once.
    let path = line
        .rsplit(' ')
        .next()
        .unwrap()
        .strip_prefix(&server.url)
        .unwrap()
        .to_owned();
    let (status, html) = Browser::new(&server.url).page(&path).await;
    assert_eq!(status, StatusCode::GONE, "{html}");
    assert!(html.contains("used already"), "{html}");
    // A restarted server has an admin and prints no link.
    let second = TestServer::process(&db).await;
    assert_eq!(second.stdout().len(), 1, "{:?}", second.stdout());
    let audit: Value = admin
        .get("/api/v1/audit?action=setup.first_admin")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["entries"][0]["username"], "root");
}

async fn last_admin_and_self_rules_hold(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    for (body, code) in [
        (json!({"role": "bookkeeper"}), "last_admin"),
        (json!({"is_active": false}), "self_deactivation"),
    ] {
        let r = root
            .call(Method::PATCH, "/api/v1/users/root", Some(body))
            .await;
        assert_eq!(error_of(r).await, (StatusCode::CONFLICT, code.into()));
    }
    let r = root.call(Method::DELETE, "/api/v1/users/root", None).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::CONFLICT, "self_deletion".into())
    );

    // With a second admin, root may step down; then the other is the last one.
    add_person(&root, "ann", "admin").await;
    let ann = Browser::sign_in(&server.url, "ann", PASSWORD)
        .await
        .unwrap();
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/root",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["role"], "viewer");
    // root is no admin any more: a lower role ends the session, on the very next request,
    // and a new one has no admin rights.
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/ann",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "session_expired".into())
    );
    let root = Browser::sign_in(&server.url, "root", PASSWORD)
        .await
        .unwrap();
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/ann",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    let r = ann
        .call(
            Method::PATCH,
            "/api/v1/users/ann",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::CONFLICT, "last_admin".into())
    );
    // Deleting the last admin by another route is refused too.
    let r = ann
        .call(
            Method::PATCH,
            "/api/v1/users/root",
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = ann.call(Method::DELETE, "/api/v1/users/root", None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = ann.call(Method::GET, "/api/v1/users/root", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The refusals were audited.
    let a: Value = ann
        .get("/api/v1/audit?user=root&action=user.set_role")
        .await
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> = a["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"refused") && outcomes.contains(&"ok"),
        "{a}"
    );
}

async fn deactivation_ends_sessions_and_tokens_at_once(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    add_person(&root, "bob", "bookkeeper").await;
    let bob = Browser::sign_in(&server.url, "bob", PASSWORD)
        .await
        .unwrap();
    let token = token_for(&bob, "script").await;
    let pat = Bearer::new(&server.url, &token);
    assert_eq!(
        pat.call(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(bob.get("/api/v1/me").await.status(), StatusCode::OK);

    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/bob",
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        error_of(bob.get("/api/v1/me").await).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        error_of(pat.call(Method::GET, "/api/v1/me", None).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_token".into())
    );
    assert!(
        Browser::sign_in(&server.url, "bob", PASSWORD)
            .await
            .is_err()
    );

    // Reactivation does not revive old sessions or tokens.
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/bob",
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        bob.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        pat.call(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(Browser::sign_in(&server.url, "bob", PASSWORD).await.is_ok());
}

async fn password_change_ends_other_sessions(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    // A password set by an admin must be changed first.
    let r = root
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "cyd", "role": "viewer", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/cyd",
            Some(json!({"force_password_change": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut laptop = Browser::sign_in(&server.url, "cyd", PASSWORD)
        .await
        .unwrap();
    let phone = Browser::sign_in(&server.url, "cyd", PASSWORD)
        .await
        .unwrap();
    let r = laptop
        .call(Method::POST, "/api/v1/tokens", Some(json!({"name": "x"})))
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::FORBIDDEN, "password_change_required".into())
    );
    let me: Value = laptop.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["force_password_change"], true);
    let (status, _) = laptop.page("/account").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let r = laptop
        .call(Method::POST, "/api/v1/me/password", Some(json!({"current_password": "wrong password!!", "new_password": "another long password"})))
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "wrong_password".into())
    );
    let r = laptop
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(json!({"current_password": PASSWORD, "new_password": "another long password"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // This session goes on, cleared and re-issued (a new CSRF token); the other one has ended.
    laptop.refresh_csrf().await;
    assert_eq!(token_for(&laptop, "now").await.len(), "qbo_pat_".len() + 43);
    assert_eq!(
        phone.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        Browser::sign_in(&server.url, "cyd", PASSWORD)
            .await
            .is_err()
    );
    assert!(
        Browser::sign_in(&server.url, "cyd", "another long password")
            .await
            .is_ok()
    );
}

async fn bad_input_gets_specific_errors_and_writes_nothing(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    add_person(&root, "dora", "viewer").await;
    let cases = [
        (
            json!({"username": "x", "role": "viewer", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_username",
        ),
        (
            json!({"username": "with space", "role": "viewer", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_username",
        ),
        (
            json!({"username": "eve", "role": "owner", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_role",
        ),
        (
            json!({"username": "eve", "role": "viewer", "email": "eve@", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            json!({"username": "eve", "role": "viewer", "password": "short"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_too_short",
        ),
        (
            json!({"username": "eve", "role": "viewer", "password": "x".repeat(1025)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_too_long",
        ),
        (
            json!({"username": "eve", "role": "viewer"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_or_invite",
        ),
        (
            json!({"username": "eve", "role": "viewer", "password": PASSWORD, "invite": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_or_invite",
        ),
        (
            json!({"username": "eve", "role": "viewer", "password": PASSWORD, "admin": true}),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            json!({"username": "eve", "role": 3, "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"username": "DORA", "role": "viewer", "password": PASSWORD}),
            StatusCode::CONFLICT,
            "username_taken",
        ),
        (
            json!({"username": "eve", "role": "viewer", "email": "ROOT@example.com", "password": PASSWORD}),
            StatusCode::CONFLICT,
            "email_taken",
        ),
    ];
    for (body, status, code) in cases {
        let r = root
            .call(Method::POST, "/api/v1/users", Some(body.clone()))
            .await;
        assert_eq!(error_of(r).await, (status, code.to_owned()), "{body}");
    }
    let r = root
        .client
        .post(root.at("/api/v1/users"))
        .header("x-csrf-token", &root.csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_json".into())
    );
    // A client of its own: the server may close the connection on an oversized body.
    let r = crate::harness::client()
        .post(root.at("/api/v1/users"))
        .header("x-csrf-token", &root.csrf)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"username\": \"{}\"}}",
            "a".repeat(2 * 1024 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".into())
    );
    // CSRF: a cookie request without the token, or with a wrong one.
    let r = root
        .client
        .post(root.at("/api/v1/users"))
        .json(&json!({"username": "eve", "role": "viewer", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::FORBIDDEN, "csrf_missing".into())
    );
    let r = root
        .client
        .post(root.at("/api/v1/users"))
        .header("x-csrf-token", "forged")
        .json(&json!({"username": "eve", "role": "viewer", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::FORBIDDEN, "csrf_invalid".into())
    );
    // PATCH: bad values and unknown people.
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/dora",
            Some(json!({"role": "boss"})),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_role".into())
    );
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/dora",
            Some(json!({"email": "nope", "role": "admin"})),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_email".into())
    );
    let r = root
        .call(
            Method::PATCH,
            "/api/v1/users/nobody",
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    // Nothing was written: still two people, dora unchanged.
    let users: Value = root.get("/api/v1/users").await.json().await.unwrap();
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dora", "root"]);
    assert_eq!(users["users"][0]["role"], "viewer");
    assert_eq!(users["users"][0]["email"], Value::Null);
}

async fn roles_limit_the_api(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    add_person(&root, "vic", "viewer").await;
    let vic = Browser::sign_in(&server.url, "vic", PASSWORD)
        .await
        .unwrap();
    for (method, path, body) in [
        (Method::GET, "/api/v1/users", None),
        (
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "zed", "role": "admin", "password": PASSWORD})),
        ),
        (
            Method::PATCH,
            "/api/v1/users/vic",
            Some(json!({"role": "admin"})),
        ),
        (Method::GET, "/api/v1/users/root", None),
        (Method::GET, "/api/v1/allowlist", None),
        (Method::PUT, "/api/v1/companies/123/grants/vic", None),
    ] {
        let r = vic.call(method.clone(), path, body).await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::FORBIDDEN, "forbidden".into()),
            "{method} {path}"
        );
    }
    let me: Value = vic.get("/api/v1/users/vic").await.json().await.unwrap();
    assert_eq!(me["role"], "viewer");
    // Grants: an admin grants a company; the person sees it.
    let r = root
        .call(
            Method::PUT,
            "/api/v1/companies/9130357992240406/grants/vic",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let me: Value = vic.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["companies"], json!(["9130357992240406"]));
    let r = root
        .call(
            Method::DELETE,
            "/api/v1/companies/9130357992240406/grants/vic",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = root
        .call(
            Method::DELETE,
            "/api/v1/companies/9130357992240406/grants/vic",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Own audit entries only.
    let r = vic.get("/api/v1/audit?user=root").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let own: Value = vic.get("/api/v1/audit").await.json().await.unwrap();
    assert!(
        own["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["username"] == "vic"),
        "{own}"
    );
    // Tokens: list, revoke, not someone else's.
    let token = token_for(&vic, "mine").await;
    let list: Value = vic.get("/api/v1/tokens").await.json().await.unwrap();
    let id = list["tokens"][0]["id"].as_i64().unwrap();
    assert!(!list.to_string().contains(&token));
    let r = root
        .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = vic
        .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        Bearer::new(&server.url, &token)
            .call(Method::GET, "/api/v1/me", None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}
