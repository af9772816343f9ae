//! CSRF protection for every state-changing request made with our cookies.
//!
//! The token is an HMAC (under the server's secret key) of an *anchor* cookie: the session
//! cookie when there is one, else a random `qbo_csrf` cookie given to anonymous browsers (so
//! the sign-in, setup and invitation forms are protected too). Any replica can check it
//! without a database read. [`protect`] runs before every handler: a POST/PUT/PATCH/DELETE that
//! carries an anchor cookie and no `Authorization` header must present the token in the
//! `x-csrf-token` header or the `csrf_token` form field, else `403 csrf_missing` /
//! `403 csrf_invalid`. Forms get the field from [`CsrfToken::field`]; a form handler on a
//! public page calls [`CsrfToken::require_checked`] so a cookie-less cross-site post is
//! refused as well.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use subtle::ConstantTimeEq as _;

use crate::error::AppError;
use crate::keys::Sealer;
use crate::secret::new_token;
use crate::state::AppState;
use crate::web;

/// The form field and header that carry the token.
pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";

/// The anonymous anchor cookie's name.
fn anchor_cookie_name(state: &AppState) -> String {
    if web::https(state) {
        "__Host-qbo_csrf".to_owned()
    } else {
        "qbo_csrf".to_owned()
    }
}

/// The CSRF token for this request's anchor; put it in forms and `x-csrf-token` headers.
/// Computed on first use only: most requests (the MCP endpoint, the JSON API with a bearer
/// token) never render a form, and need neither a fresh anchor nor an HMAC.
#[derive(Debug, Clone)]
pub struct CsrfToken {
    lazy: Arc<LazyToken>,
    /// The request carried its anchor and, if state-changing, passed the check.
    checked: bool,
}

/// The anchor may be the session cookie: its `Debug` shows neither it nor the token.
struct LazyToken {
    sealer: Arc<Sealer>,
    /// The request's anchor cookie, if it had one.
    anchor: Option<String>,
    /// A new anonymous anchor, made when a request without one first needs a token; the
    /// response then sets it as a cookie.
    fresh_anchor: OnceLock<String>,
    value: OnceLock<String>,
}

impl std::fmt::Debug for LazyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyToken")
            .field("anchor", &"[redacted]")
            .field("fresh_anchor", &self.fresh_anchor.get().is_some())
            .field("computed", &self.value.get().is_some())
            .finish()
    }
}

impl LazyToken {
    fn anchor(&self) -> &str {
        match &self.anchor {
            Some(a) => a,
            None => self.fresh_anchor.get_or_init(|| new_token("").into_inner()),
        }
    }
}

impl CsrfToken {
    pub fn value(&self) -> &str {
        let lazy = &*self.lazy;
        lazy.value
            .get_or_init(|| token_for(&lazy.sealer, lazy.anchor()))
    }

    /// The hidden form field.
    pub fn field(&self) -> Markup {
        html! { input type="hidden" name=(FIELD) value=(self.value()); }
    }

    /// For form handlers on public pages: refuses a state-changing request that came without
    /// our cookie (and so was not checked), e.g. a cross-site post from a fresh browser.
    pub fn require_checked(&self) -> Result<(), AppError> {
        if self.checked {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "This form needs cookies: enable cookies for this site, reload the page and try again.",
            )
            .with_code("csrf_missing"))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("csrf layer missing")))
    }
}

fn token_for(sealer: &Sealer, anchor: &str) -> String {
    URL_SAFE_NO_PAD.encode(sealer.mac("csrf", anchor.as_bytes()))
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The middleware (see the module documentation).
pub async fn protect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let session = web::cookie(request.headers(), &web::session_cookie_name(&state));
    let anon = web::cookie(request.headers(), &anchor_cookie_name(&state));
    let anchor = session.or(anon);
    let mut request = request;
    let mut checked = anchor.is_some();
    if is_state_changing(request.method())
        && !request.headers().contains_key(header::AUTHORIZATION)
        && let Some(anchor) = &anchor
    {
        let expected = token_for(&state.sealer, anchor);
        let (submitted, rebuilt) =
            match submitted_token(request, state.config.body_limit_bytes).await {
                Ok(found) => found,
                Err(response) => return response,
            };
        request = rebuilt;
        match submitted {
            None => {
                return AppError::forbidden(
                    "This request needs the page's CSRF token (form field `csrf_token` or header `x-csrf-token`). Reload the page and try again.",
                )
                .with_code("csrf_missing")
                .into_response();
            }
            Some(t) if bool::from(t.as_bytes().ct_eq(expected.as_bytes())) => {}
            Some(_) => {
                return AppError::forbidden(
                    "The CSRF token does not match this browser session. Reload the page and try again.",
                )
                .with_code("csrf_invalid")
                .into_response();
            }
        }
    } else if is_state_changing(request.method()) {
        // Not a cookie request: nothing for CSRF to protect, and nothing was checked.
        checked = false;
    }
    let lazy = Arc::new(LazyToken {
        sealer: state.sealer.clone(),
        anchor,
        fresh_anchor: OnceLock::new(),
        value: OnceLock::new(),
    });
    request.extensions_mut().insert(CsrfToken {
        lazy: lazy.clone(),
        checked,
    });
    let mut response = next.run(request).await;
    if let Some(anchor) = lazy.fresh_anchor.get() {
        response.headers_mut().append(
            header::SET_COOKIE,
            web::set_cookie(&state, &anchor_cookie_name(&state), anchor, None),
        );
    }
    response
}

/// The token from the header, or from a form body (which is read and put back).
async fn submitted_token(
    request: Request,
    limit: usize,
) -> Result<(Option<String>, Request), Response> {
    if let Some(v) = request.headers().get(HEADER) {
        let t = v.to_str().ok().map(str::to_owned);
        return Ok((t, request));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((None, request));
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return Err(AppError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "The request body is larger than this server accepts.",
            )
            .into_response());
        }
    };
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}
