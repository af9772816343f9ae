//! The admins' pages refuse everyone else with the error page (`auth::AdminPage`), before
//! reading the form, and change nothing.

use reqwest::StatusCode;

use super::{Browser, PASSWORD, add_person, first_admin};
use crate::harness::{Backend, TestDb, TestServer};
use crate::on_both_backends;

on_both_backends!(admin_pages_refuse_others_with_the_error_page);

/// The `403` error page's sentence.
const ONLY_ADMINS: &str = "Only an admin can do that.";

async fn admin_pages_refuse_others_with_the_error_page(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    let server = TestServer::start(&db).await;
    let root = first_admin(&server).await;
    add_person(&root, "eddie", "bookkeeper").await;
    let eddie = Browser::sign_in(&server.url, "eddie", PASSWORD)
        .await
        .unwrap();

    for path in [
        "/people",
        "/people/new",
        "/people/root",
        "/people/root/confirm/delete",
        "/allowlist",
        "/allowlist/remove?entry=%40example.com",
        "/companies/123/disconnect",
        "/quickbooks/callback?code=c&state=s&realmId=123",
    ] {
        let (status, html) = eddie.page(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "GET {path}: {html}");
        assert!(html.contains(ONLY_ADMINS), "GET {path}: {html}");
    }

    let make_admin: &[(&str, &str)] = &[("role", "admin")];
    for (action, fields) in [
        (
            "/people",
            &[
                ("username", "mallory"),
                ("role", "admin"),
                ("method", "invite"),
            ][..],
        ),
        // A form the handler could not even read: refused as a non-admin all the same.
        ("/people", &[][..]),
        ("/people/eddie/role", make_admin),
        ("/people/eddie/grants", &[("realm_id", "123")][..]),
        ("/people/root/grants/123/remove", &[][..]),
        ("/people/root/confirm/deactivate", &[][..]),
        ("/people/root/confirm/delete", &[][..]),
        (
            "/allowlist",
            &[("entry", "@example.com"), ("role", "admin")][..],
        ),
        ("/allowlist/remove", &[("entry", "@example.com")][..]),
        ("/companies/connect", &[][..]),
        ("/companies/123/disconnect", &[][..]),
        ("/companies/123/approvals", &[][..]),
        ("/proposals/prp_1/approve", &[][..]),
        ("/proposals/prp_1/reject", &[("note", "no")][..]),
    ] {
        let r = eddie.submit("/account", action, fields).await;
        let status = r.status();
        let html = r.text().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "POST {action}: {html}");
        assert!(html.contains(ONLY_ADMINS), "POST {action}: {html}");
    }

    // Nothing changed: root is still an active admin, eddie still a bookkeeper, nobody was added.
    let (status, html) = root.page("/people").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(!html.contains("mallory"), "{html}");
    let (_, root_page) = root.page("/people/root").await;
    assert!(
        root_page.contains("Deactivate…"),
        "root is still active: {root_page}"
    );
    let (_, eddie_page) = root.page("/people/eddie").await;
    assert!(
        eddie_page.contains(r#"<option value="bookkeeper" selected>"#),
        "eddie is still a bookkeeper: {eddie_page}"
    );
}
