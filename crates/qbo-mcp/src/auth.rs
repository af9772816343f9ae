//! Who is calling. Extractors that accept a browser session cookie or an
//! `Authorization: Bearer` token, load the person with one indexed query (stamp and
//! `is_active` compared on every request, nothing cached), and hand handlers a proof:
//!
//! - [`SignedIn`]: any signed-in person, even one who must change their password first (only
//!   the password change and sign-out take this).
//! - [`Caller`]: a signed-in person cleared to act (`force_password_change` refused with
//!   `403 password_change_required`).
//! - [`Admin`]: only [`Caller::admin`] (which [`AdminPage`] calls) or the command line's
//!   [`Admin::console`] can make one, so an admin-only operation that takes `&Admin` cannot
//!   be called without the check.
//! - [`PageCaller`]: like `Caller`, but for pages: an anonymous browser is redirected to
//!   `/login?next=<path>` and one that must change its password to `/account/password`.
//! - [`AdminPage`]: a `PageCaller` who is an admin, with the [`Admin`] proof; anyone else
//!   gets the `403` error page.
//!
//! CSRF is checked before any of this, for every state-changing request that carries our
//! cookies (see `web::csrf`). Bearer tokens: personal access tokens (`qbo_pat_…`) here; the
//! OAuth access tokens (`qbo_at_…`) are for `/mcp` only and checked by `mcp::gate`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::AppError;
use crate::people::{Person, session, tokens};
use crate::state::AppState;
use crate::web;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session; `id_hash` is its key in `sessions`, `stamp` the security stamp it was
    /// issued under (checked current when it was loaded), `created_at` when it started.
    Session {
        id_hash: String,
        stamp: String,
        created_at: i64,
    },
    /// A personal access token, by id.
    PersonalToken { id: i64 },
}

impl Credential {
    /// What this credential proves for a password change.
    pub fn password_proof(&self) -> crate::people::Proof {
        match self {
            Credential::Session { created_at, .. } => crate::people::Proof::Session {
                created_at: *created_at,
            },
            Credential::PersonalToken { .. } => crate::people::Proof::Token,
        }
    }
}

/// A signed-in person, possibly still required to change their password.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub person: Person,
    pub credential: Credential,
}

/// A signed-in person cleared to act.
#[derive(Debug, Clone)]
pub struct Caller {
    pub person: Person,
    pub credential: Credential,
}

/// Who performs an administrative action.
#[derive(Debug, Clone)]
pub enum Actor {
    Person(Person),
    /// The break-glass command line, run by someone with the server's configuration.
    Console,
}

/// Proof that the caller may administer people, companies and the allowlist.
#[derive(Debug, Clone)]
pub struct Admin {
    actor: Actor,
}

impl Admin {
    /// The command line (`qbo-mcp user …`): whoever can read the server's configuration and
    /// database can do anything already, so the console is an admin. Only the people commands
    /// (`people::cli`) use this.
    pub fn console() -> Admin {
        Admin {
            actor: Actor::Console,
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The name recorded in the audit log.
    pub fn audit_name(&self) -> &str {
        match &self.actor {
            Actor::Person(p) => &p.username,
            Actor::Console => "console",
        }
    }

    /// The acting person's id (`None` for the console).
    pub fn person_id(&self) -> Option<i64> {
        match &self.actor {
            Actor::Person(p) => Some(p.id),
            Actor::Console => None,
        }
    }
}

impl Caller {
    /// The admin proof, or `403 forbidden`.
    pub fn admin(&self) -> Result<Admin, AppError> {
        if self.person.is_admin() {
            Ok(Admin {
                actor: Actor::Person(self.person.clone()),
            })
        } else {
            Err(AppError::forbidden("Only an admin can do that."))
        }
    }

    /// The session's key when the caller came with a browser session.
    pub fn session_hash(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { id_hash, .. } => Some(id_hash),
            Credential::PersonalToken { .. } => None,
        }
    }
}

/// The token of an `Authorization: Bearer …` header, if any. `Err` for another scheme.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(
            AppError::unauthorized("Send credentials as `Authorization: Bearer <token>`.")
                .with_code("invalid_token"),
        ),
    }
}

/// The person a bearer token belongs to.
async fn bearer(state: &AppState, token: &str) -> Result<Option<(Person, Credential)>, AppError> {
    if token.starts_with(tokens::PREFIX) {
        return Ok(tokens::find(&state.db, token)
            .await?
            .map(|(id, person)| (person, Credential::PersonalToken { id })));
    }
    // OAuth access tokens (`qbo_at_…`) are valid only for the MCP resource (docs/oauth.md, "Rules"), so the
    // JSON API does not accept them; `mcp::gate` checks them.
    Ok(None)
}

/// Authenticates a request: bearer token first, else the session cookie.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<SignedIn, AppError> {
    if let Some(cached) = parts.extensions.get::<SignedIn>() {
        return Ok(cached.clone());
    }
    if let Some(token) = bearer_token(&parts.headers)? {
        return match bearer(state, token).await? {
            Some((person, credential)) => Ok(SignedIn { person, credential }),
            None => Err(AppError::unauthorized(
                "That token is not valid (unknown, revoked, or its person was deactivated).",
            )
            .with_code("invalid_token")),
        };
    }
    if let Some(cookie) = web::cookie(&parts.headers, &web::session_cookie_name(state)) {
        if let Some(s) = session::find(&state.db, &cookie).await? {
            return Ok(SignedIn {
                person: s.person,
                credential: Credential::Session {
                    id_hash: s.id_hash,
                    stamp: s.stamp,
                    created_at: s.created_at,
                },
            });
        }
        return Err(
            AppError::unauthorized("Your session has ended; please sign in again.")
                .with_code("session_expired"),
        );
    }
    Err(AppError::unauthorized(
        "Sign in first, or send `Authorization: Bearer <token>`.",
    ))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let signed_in = authenticate(parts, state).await?;
        parts.extensions.insert(signed_in.clone());
        Ok(signed_in)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let s = SignedIn::from_request_parts(parts, state).await?;
        if s.person.force_password_change {
            return Err(AppError::forbidden(
                "You must change your password before doing anything else (POST /api/v1/me/password).",
            )
            .with_code("password_change_required"));
        }
        Ok(Caller {
            person: s.person,
            credential: s.credential,
        })
    }
}

/// A page's caller: anonymous browsers go to the sign-in page and come back afterwards.
#[derive(Debug, Clone)]
pub struct PageCaller(pub Caller);

/// Where an anonymous page request is sent.
#[derive(Debug)]
pub enum PageRejection {
    SignIn(String),
    ChangePassword,
    Error(AppError),
}

impl IntoResponse for PageRejection {
    fn into_response(self) -> Response {
        match self {
            PageRejection::SignIn(next) => {
                Redirect::to(&format!("/login?next={}", web::encode(&next))).into_response()
            }
            PageRejection::ChangePassword => Redirect::to("/account/password").into_response(),
            PageRejection::Error(e) => web::error_page(e),
        }
    }
}

impl FromRequestParts<AppState> for PageCaller {
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, PageRejection> {
        match SignedIn::from_request_parts(parts, state).await {
            Ok(s) if s.person.force_password_change => Err(PageRejection::ChangePassword),
            Ok(s) => Ok(PageCaller(Caller {
                person: s.person,
                credential: s.credential,
            })),
            Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "/".to_owned());
                Err(PageRejection::SignIn(next))
            }
            Err(e) => Err(PageRejection::Error(e)),
        }
    }
}

/// A page's caller who must be an admin: [`PageCaller`] first (anonymous browsers go to the
/// sign-in page), then [`Caller::admin`], whose `403` is shown as the error page.
#[derive(Debug, Clone)]
pub struct AdminPage {
    pub caller: Caller,
    pub admin: Admin,
}

impl FromRequestParts<AppState> for AdminPage {
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, PageRejection> {
        let PageCaller(caller) = PageCaller::from_request_parts(parts, state).await?;
        let admin = caller.admin().map_err(PageRejection::Error)?;
        Ok(AdminPage { caller, admin })
    }
}

/// How the page frame shows a signed-in person.
impl<'a> From<&'a Person> for web::Viewer<'a> {
    fn from(person: &'a Person) -> Self {
        web::Viewer {
            username: &person.username,
            admin: person.is_admin(),
        }
    }
}
