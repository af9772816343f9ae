//! Sign-in through the company's identity provider: OpenID Connect authorization code flow
//! with PKCE (S256) and a nonce, provider found by discovery. The state, PKCE verifier and nonce
//! live in the database (sealed), so the callback may land on any replica; each is used once.
//! The sign-in is bound to the browser that started it: the start sets a short-lived HttpOnly,
//! SameSite=Lax cookie holding the state, and the callback is refused
//! (`400 oidc_browser_mismatch`) unless that cookie matches the state it brings — so nobody
//! can finish their own provider sign-in in someone else's browser (login CSRF).
//!
//! At every sign-in: the ID token must carry an email with `email_verified = true`
//! (`403 email_unverified`), and that email must be on the allowlist (`403 not_allowlisted`).
//! Identities are linked by issuer + subject, never by email alone: a first sign-in whose email
//! belongs to an existing, unlinked person is refused (`409 email_in_use`), and a known subject
//! that now reports another email than its person's is refused (`403 identity_email_changed`)
//! until an admin changes the person's email. A first sign-in creates the person with the
//! entry's role.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, NewEntry, Outcome};
use crate::config::OidcProvider;
use crate::db::Tx;
use crate::error::AppError;
use crate::people::{Person, admin, allowlist, session};
use crate::secret::{Secret, token_hash};
use crate::state::AppState;
use crate::time::now;
use crate::web::{self, PageError, PageResult};
use crate::{on_db, on_tx};

/// How long a started sign-in may take at the provider.
const PENDING_SECS: i64 = 600;

/// The cookie binding a sign-in in flight to its browser (`__Host-` over HTTPS).
fn binding_cookie_name(state: &AppState) -> &'static str {
    if web::https(state) {
        "__Host-qbo_oidc"
    } else {
        "qbo_oidc"
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login/oidc", get(start))
        .route("/login/oidc/callback", get(callback))
}

fn provider(state: &AppState) -> Result<&OidcProvider, AppError> {
    state.config.oidc.as_ref().ok_or_else(|| {
        AppError::not_found("Sign-in through an identity provider is not configured here.")
            .with_code("oidc_not_configured")
    })
}

fn redirect_uri(state: &AppState) -> String {
    format!(
        "{}/login/oidc/callback",
        state.public_url.as_str().trim_end_matches('/')
    )
}

fn unavailable(e: impl std::fmt::Display) -> AppError {
    AppError::unavailable(
        "identity_provider_unavailable",
        "The identity provider is not answering properly; try again shortly.",
    )
    .with_source(anyhow::anyhow!("{e}"))
}

/// An HTTP client for the provider: no redirects (SSRF), bounded time.
fn http() -> Result<openidconnect::reqwest::Client, AppError> {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(AppError::internal)
}

/// The provider's client, from discovery.
async fn client(
    state: &AppState,
    http: &openidconnect::reqwest::Client,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    AppError,
> {
    let p = provider(state)?;
    let issuer = IssuerUrl::new(p.issuer.as_str().trim_end_matches('/').to_owned())
        .map_err(AppError::internal)?;
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(unavailable)?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.client_secret.expose().clone())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri(state)).map_err(AppError::internal)?))
}

#[derive(Serialize, Deserialize)]
struct Pending {
    verifier: String,
    nonce: String,
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

/// `GET /login/oidc`: off to the provider, with the binding cookie.
async fn start(State(state): State<AppState>, Query(q): Query<StartQuery>) -> PageResult {
    let (url, csrf) = begin(&state, &web::safe_next(q.next.as_deref())).await?;
    let mut r = Redirect::to(&url).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(
            &state,
            binding_cookie_name(&state),
            csrf.secret(),
            Some(PENDING_SECS),
        ),
    );
    Ok(r)
}

/// Starts a sign-in: the provider's URL, and the state to bind to the browser.
async fn begin(state: &AppState, next: &str) -> Result<(String, CsrfToken), AppError> {
    let http = http()?;
    let client = client(state, &http).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let state_hash = token_hash(csrf.secret());
    let pending = serde_json::to_vec(&Pending {
        verifier: verifier.secret().clone(),
        nonce: nonce.secret().clone(),
    })
    .map_err(AppError::internal)?;
    let sealed = state
        .sealer
        .seal(&pending, format!("oidc_login:{state_hash}").as_bytes());
    let t = now();
    on_db!(&state.db, pool => {
        sqlx::query("DELETE FROM oidc_logins WHERE expires_at <= $1").bind(t).execute(pool).await?.rows_affected();
        sqlx::query("INSERT INTO oidc_logins (state_hash, sealed, return_to, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&state_hash)
            .bind(&sealed)
            .bind(next)
            .bind(t + PENDING_SECS)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok((url.to_string(), csrf))
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /login/oidc/callback`: back from the provider.
async fn callback(
    State(state): State<AppState>,
    ConnectInfo(_peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> PageResult {
    let bound = web::cookie(&headers, binding_cookie_name(&state));
    if !same_browser(bound.as_deref(), q.state.as_deref()) {
        // Neither the pending sign-in nor the cookie is touched: the browser that started the
        // sign-in can still finish it.
        return Err(AppError::bad_request(
            "oidc_browser_mismatch",
            "This sign-in was started in another browser, or this browser no longer has its cookie. Start again from the sign-in page, in this browser.",
        )
        .into());
    }
    let clear = web::set_cookie(&state, binding_cookie_name(&state), "", Some(0));
    let mut response = match finish(&state, q).await {
        Ok((person, cookie, next)) => {
            if let Some(old) = web::cookie(&headers, &web::session_cookie_name(&state)) {
                let _ = session::end(&state.db, &old).await;
            }
            let to = super::pages::after_sign_in(&person, &next);
            let mut r = Redirect::to(&to).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                web::set_cookie(
                    &state,
                    &web::session_cookie_name(&state),
                    cookie.expose(),
                    None,
                ),
            );
            r
        }
        // The error page too ends the pending sign-in's cookie.
        Err(e) => PageError(e).into_response(),
    };
    response.headers_mut().append(header::SET_COOKIE, clear);
    Ok(response)
}

/// Whether the callback's `state` is the one this browser's binding cookie holds.
fn same_browser(cookie: Option<&str>, state: Option<&str>) -> bool {
    use subtle::ConstantTimeEq as _;
    match (cookie, state) {
        (Some(c), Some(s)) => bool::from(c.as_bytes().ct_eq(s.as_bytes())),
        _ => false,
    }
}

/// What the provider said about the person.
#[derive(Debug)]
struct Claims {
    issuer: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
}

async fn finish(
    state: &AppState,
    q: CallbackQuery,
) -> Result<(Person, Secret<String>, String), AppError> {
    let expired = || {
        AppError::bad_request(
            "oidc_state_invalid",
            "This sign-in has expired or was already used. Start again from the sign-in page.",
        )
    };
    let csrf = q.state.ok_or_else(expired)?;
    let state_hash = token_hash(&csrf);
    // Take the pending sign-in (one use only).
    let row: Option<(String, String, i64)> = on_db!(&state.db, pool => {
        sqlx::query_as("DELETE FROM oidc_logins WHERE state_hash = $1 RETURNING sealed, return_to, expires_at")
            .bind(&state_hash)
            .fetch_optional(pool)
            .await?
    });
    let (sealed, next, expires_at) = row.ok_or_else(expired)?;
    if expires_at <= now() {
        return Err(expired());
    }
    if let Some(error) = q.error {
        return Err(AppError::forbidden(format!(
            "The identity provider did not sign you in ({error})."
        ))
        .with_code("oidc_denied"));
    }
    let code = q.code.ok_or_else(expired)?;
    let pending: Pending = serde_json::from_slice(
        state
            .sealer
            .open(&sealed, format!("oidc_login:{state_hash}").as_bytes())
            .map_err(|e| AppError::internal(anyhow::anyhow!("oidc state: {e}")))?
            .expose(),
    )
    .map_err(AppError::internal)?;
    let http = http()?;
    let client = client(state, &http).await?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(unavailable)?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&http)
        .await
        .map_err(|e| {
            AppError::forbidden("The identity provider refused the sign-in; start again.")
                .with_code("oidc_denied")
                .with_source(anyhow::anyhow!("{e}"))
        })?;
    let id_token = token
        .id_token()
        .ok_or_else(|| unavailable("no id_token in the token response"))?;
    let claims = id_token
        .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
        .map_err(|e| {
            AppError::forbidden("The identity provider's answer did not verify.")
                .with_code("oidc_invalid_token")
                .with_source(anyhow::anyhow!("{e}"))
        })?;
    let claims = Claims {
        issuer: claims.issuer().as_str().to_owned(),
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().trim().to_lowercase()),
        email_verified: claims.email_verified() == Some(true),
    };
    let (person, cookie) = sign_in(state, &claims).await.inspect_err(|e| {
        let entry = NewEntry::new(claims.email.as_deref(), "signin.oidc", Outcome::Refused)
            .details(json!({"code": e.code}));
        let db = state.db.clone();
        tokio::spawn(async move {
            let _ = audit::record_now(&db, &entry).await;
        });
    })?;
    Ok((person, cookie, next))
}

/// Applies the rules of the module documentation and starts a session.
async fn sign_in(state: &AppState, c: &Claims) -> Result<(Person, Secret<String>), AppError> {
    let Some(email) = c.email.clone().filter(|_| c.email_verified) else {
        return Err(AppError::forbidden(
            "Your identity provider has not verified your email address, so it cannot be used to sign in here.",
        )
        .with_code("email_unverified"));
    };
    let Some(role) = allowlist::role_for(&state.db, &email).await? else {
        return Err(AppError::forbidden(format!(
            "{email} is not allowed to sign in here. Ask an admin to add it (or its domain) to the allowlist."
        ))
        .with_code("not_allowlisted"));
    };
    let mut tx = state.db.begin_locked(admin::LOCK).await?;
    let linked: Option<(i64, String)> = on_tx!(&mut tx, conn => {
        sqlx::query_as("SELECT person_id, email FROM identities WHERE issuer = $1 AND subject = $2")
            .bind(&c.issuer)
            .bind(&c.subject)
            .fetch_optional(&mut *conn)
            .await?
    });
    let person_id = match linked {
        Some((id, known_email)) => {
            if known_email != email {
                let person = admin::person_in(&mut tx, id).await?;
                if person.email.as_deref() != Some(email.as_str()) {
                    return Err(AppError::forbidden(
                        "Your identity provider now reports a different email for your account. Ask an admin to update your email here, then sign in again.",
                    )
                    .with_code("identity_email_changed"));
                }
                on_tx!(&mut tx, conn => {
                    sqlx::query("UPDATE identities SET email = $3 WHERE issuer = $1 AND subject = $2")
                        .bind(&c.issuer).bind(&c.subject).bind(&email)
                        .execute(&mut *conn).await?.rows_affected()
                });
            }
            id
        }
        None => first_sign_in(&mut tx, c, &email, role).await?,
    };
    let stamp: Option<String> = on_tx!(&mut tx, conn => {
        sqlx::query_scalar("UPDATE persons SET last_login_at = $2 WHERE id = $1 AND is_active RETURNING security_stamp")
            .bind(person_id)
            .bind(now())
            .fetch_optional(&mut *conn)
            .await?
    });
    let stamp = stamp.ok_or_else(|| {
        AppError::forbidden("Your account is deactivated. Ask an admin.").with_code("inactive")
    })?;
    let cookie = session::start(&mut tx, person_id, &stamp).await?;
    let person = admin::person_in(&mut tx, person_id).await?;
    audit::record(
        &mut tx,
        &NewEntry::new(Some(&person.username), "signin.oidc", Outcome::Ok)
            .details(json!({"email": email})),
    )
    .await?;
    tx.commit().await?;
    Ok((person, cookie))
}

/// Creates the person of a first sign-in, with a username from their email.
async fn first_sign_in(
    tx: &mut Tx,
    c: &Claims,
    email: &str,
    role: super::Role,
) -> Result<i64, AppError> {
    let taken: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE email = $1").bind(email).fetch_one(&mut *conn).await?
    });
    if taken > 0 {
        return Err(AppError::conflict(
            "email_in_use",
            "An account with this email exists but is not linked to your identity-provider login. Ask an admin.",
        ));
    }
    let base = username_from(email);
    let mut candidate = base.clone();
    for n in 2.. {
        let exists: i64 = on_tx!(tx, conn => {
            sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE username = $1").bind(&candidate).fetch_one(&mut *conn).await?
        });
        if exists == 0 {
            break;
        }
        candidate = format!("{base}{n}");
    }
    let id = admin::insert(tx, &candidate, Some(email), role, None).await?;
    on_tx!(tx, conn => {
        sqlx::query("INSERT INTO identities (issuer, subject, person_id, email, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&c.issuer).bind(&c.subject).bind(id).bind(email).bind(now())
            .execute(&mut *conn).await?.rows_affected()
    });
    Ok(id)
}

/// A valid username from an email's local part (`Ann.Lee+x@…` → `ann.lee-x`).
fn username_from(email: &str) -> String {
    let local = email
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut name: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    while name.len() < 3 {
        name.push('_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_needs_the_browsers_own_state() {
        assert!(same_browser(Some("abc"), Some("abc")));
        assert!(!same_browser(Some("abc"), Some("abd")));
        assert!(!same_browser(None, Some("abc")));
        assert!(!same_browser(Some("abc"), None));
    }

    #[test]
    fn usernames_from_emails() {
        assert_eq!(username_from("Ann.Lee+x@example.com"), "ann.lee-x");
        assert_eq!(username_from("a@example.com"), "a__");
        assert!(
            crate::people::parse_username(&username_from(&format!("{}@x.com", "é".repeat(80))))
                .is_ok()
        );
    }
}
