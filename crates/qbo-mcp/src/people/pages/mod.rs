//! The people pages (docs/reference.md, "Pages"), one file per page group: `signin` (the start
//! page, sign-in, first-run setup, invitation and password links, onboarding), `account` (my
//! password, tokens, sign out everywhere), `directory` (people: add by invitation or password,
//! role, company grants, deactivate/activate/delete with a confirmation page) and `allowlist`.
//! This file assembles their routes (and the identity-provider sign-in's, `people::oidc`) and
//! holds what they share. Server-rendered, no JavaScript, every field labelled, errors next to
//! their field. Every form carries the CSRF field; every state change goes through the same
//! functions as the API. Handlers return [`web::PageResult`], so `?` shows the error page.
mod account;
mod allowlist;
mod directory;
mod signin;

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use crate::people::{Person, Role};
use crate::state::AppState;
use crate::web::{self, CsrfToken};

pub(crate) use signin::after_sign_in;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(signin::routes())
        .merge(account::routes())
        .merge(directory::routes())
        .merge(allowlist::routes())
        .merge(super::oidc::routes())
}

/// A page in the common frame, with the admin warnings.
async fn render(
    state: &AppState,
    person: Option<&Person>,
    csrf: &CsrfToken,
    title: &str,
    body: Markup,
) -> Markup {
    let frame = web::Frame {
        title,
        viewer: person.map(Into::into),
        csrf: Some(csrf),
        warnings: match person {
            Some(p) => crate::companies::admin_warnings(state, p).await,
            None => Vec::new(),
        },
        pending_proposals: match person {
            Some(p) => crate::proposals::store::pending_for(&state.db, p.is_admin()).await,
            None => None,
        },
    };
    web::layout(state, &frame, body)
}

/// `303 See Other` to `to`.
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The role picker, with `current` selected.
fn role_select(id: &str, current: Role) -> Markup {
    html! {
        select id=(id) name="role" {
            @for role in Role::ALL {
                option value=(role.as_str()) selected[role == current] { (role.as_str()) }
            }
        }
    }
}
