//! What every page and JSON route shares: [`layout`] (the one page frame, with the demo banner
//! and the admins' warning slot), the one stylesheet, cookies, the security-headers layer, the
//! JSON body extractor [`ApiJson`] with specific errors, the client address, CSRF ([`csrf`])
//! and the OpenAPI document's shared parts ([`openapi`]). Features render their own pages
//! through [`layout`] and hand it what the frame shows (who is signed in, as a [`Viewer`], and
//! the warnings) as plain data: this module uses no feature, only the shared state.

pub mod csrf;
pub mod openapi;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cookie::{Cookie, SameSite};
use maud::{DOCTYPE, Markup, html};
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::state::AppState;

pub use csrf::CsrfToken;

/// The stylesheet, served at `/static/style.css`.
const STYLESHEET: &str = include_str!("style.css");

pub fn routes() -> Router<AppState> {
    Router::new().route("/static/style.css", get(stylesheet))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Who is signed in, as the frame shows it: the name on the sign-out button, and whether the
/// admins' navigation is shown.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub username: &'a str,
    pub admin: bool,
}

/// What the frame of a page needs besides its body.
#[derive(Debug, Default)]
pub struct Frame<'a> {
    pub title: &'a str,
    /// The signed-in person, for the navigation; `None` on public pages.
    pub viewer: Option<Viewer<'a>>,
    /// For the sign-out form.
    pub csrf: Option<&'a CsrfToken>,
    /// Warnings shown to admins on every page (e.g. a company that needs reconnecting). The
    /// companies feature makes them (`companies::admin_warnings`); the page passes them in.
    pub warnings: Vec<String>,
    /// For admins: how many proposals wait for approval (`proposals::store::pending_for`).
    pub pending_proposals: Option<i64>,
}

/// The one page frame: head, demo banner, admin warnings, navigation, body.
pub fn layout(state: &AppState, frame: &Frame<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " · qbo-mcp" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                @if state.config.demo_mode() {
                    div.banner.demo role="status" {
                        strong { "Demo" } " — QuickBooks is simulated here; no real books are touched."
                    }
                }
                @for warning in &frame.warnings {
                    div.banner.warning role="alert" { (warning) }
                }
                header.top {
                    a.brand href="/" { "qbo-mcp" }
                    @if let Some(viewer) = frame.viewer {
                        nav aria-label="Main" {
                            @if viewer.admin {
                                a href="/people" { "People" }
                                a href="/allowlist" { "Allowlist" }
                                a href="/companies" { "Companies" }
                            }
                            a href="/assistants" { "Assistants" }
                            a href="/audit" { "Audit" }
                            a href="/proposals" {
                                "Proposals"
                                @if let Some(n) = frame.pending_proposals.filter(|n| *n > 0) {
                                    " " span.count aria-label={ (n) " waiting" } { (n) }
                                }
                            }
                            a href="/account" { "My account" }
                            @if let Some(csrf) = frame.csrf {
                                form.inline method="post" action="/logout" {
                                    (csrf.field())
                                    button.link type="submit" { "Sign out " (viewer.username) }
                                }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An error as a page (for browsers), with the error's status.
pub fn error_page(e: AppError) -> Response {
    let status = e.status;
    let message = e.message.clone();
    // Log like the JSON form would.
    let _ = e.into_response();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Error · qbo-mcp" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                main {
                    h1 { "Something is not right" }
                    p.error role="alert" { (message) }
                    p { a href="/" { "Back to the start" } }
                }
            }
        }
    };
    (status, page).into_response()
}

/// A page handler's error: shown as [`error_page`] with the error's status. Anything that
/// converts into an [`AppError`] converts into it, so page handlers use `?` and return
/// [`PageResult`].
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.0)
    }
}

/// What a page handler returns: the page (or a redirect), or the error page.
pub type PageResult<T = Response> = Result<T, PageError>;

/// A field's error message, shown next to it.
pub fn field_error(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p.field-error role="alert" { (m) }
        }
    }
}

/// Percent-encodes a query-string value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A same-site relative path to return to after sign-in, or `/`.
///
/// Accepts only `/` alone or `/` followed by a character that is neither `/` nor `\`, with no
/// backslash and no control character (ASCII or Unicode: TAB, CR, LF, DEL, U+2028, …)
/// anywhere — checked on the text as given and after every round of percent-decoding, since
/// browsers drop tabs and newlines, read `\` as `/`, and some proxies decode once more.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.len() <= 2048 && same_site_path(n) => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// Whether `path`, and each percent-decoding of it, stays a plain path on this site.
fn same_site_path(path: &str) -> bool {
    let mut text = std::borrow::Cow::Borrowed(path);
    // Each round shortens the text, so this ends; a handful of rounds is already hostile.
    for _ in 0..8 {
        if !plain_path(&text) {
            return false;
        }
        match String::from_utf8(percent_decode(&text)) {
            Ok(d) if d == *text => return true,
            Ok(d) => text = std::borrow::Cow::Owned(d),
            // Bytes that are not UTF-8 once decoded: nothing a link of ours would carry.
            Err(_) => return false,
        }
    }
    false
}

/// `%XX` escapes decoded into bytes; anything else kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn plain_path(path: &str) -> bool {
    let mut chars = path.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !path
            .chars()
            .any(|c| c == '\\' || c.is_control() || is_invisible_separator(c))
}

/// Unicode separators and format characters browsers may drop or treat as line breaks.
fn is_invisible_separator(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// Whether cookies must be `Secure` (and may use the `__Host-` prefix).
pub fn https(state: &AppState) -> bool {
    state.public_url.scheme() == "https"
}

fn cookie_name(state: &AppState, base: &str) -> String {
    if https(state) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The browser session cookie's name.
pub fn session_cookie_name(state: &AppState) -> String {
    cookie_name(state, "qbo_session")
}

/// A cookie's value from the request headers (the first cookie of that name, quotes
/// trimmed; an empty value counts as none).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value_trimmed().to_owned())
        .filter(|v| !v.is_empty())
}

/// `response` with a (new) browser session cookie set, for sign-in and for a session
/// re-issued under a new security stamp.
pub fn with_session_cookie(
    state: &AppState,
    mut response: Response,
    cookie: &crate::secret::Secret<String>,
) -> Response {
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, &session_cookie_name(state), cookie.expose(), None),
    );
    response
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure over HTTPS. `max_age: None`
/// makes a browser-session cookie; `Some(0)` deletes it.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    set_cookie_value(https(state), name, value, max_age)
}

fn set_cookie_value(secure: bool, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = Cookie::build((name.to_owned(), value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(age));
    }
    // Names are ours and values base64url: always a valid header value.
    HeaderValue::from_str(&c.build().to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The client's address: the peer, or what a trusted proxy reports (`crate::proxy`).
pub fn client_ip(
    state: &AppState,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    Some(crate::proxy::client_address(
        &state.config,
        peer?.ip(),
        headers,
    ))
}

/// `Strict-Transport-Security` when the public URL is https: two years, subdomains included.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Security headers on every response (unless a handler set its own): a strict CSP that
/// forbids framing, no referrer, no MIME sniffing, and HSTS when the public URL is https
/// (never over plain HTTP, where it would pin a site that has no TLS). Also turns the
/// body-limit layer's plain 413 into the JSON error shape.
pub async fn security_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // Read before the request moves on, without copying the path (every request passes here).
    let path = request.uri().path();
    let (limit, to_mcp) = (body_limit_for(&state, path), path == "/mcp");
    let mut response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        response = over_the_limit(limit, to_mcp).into_response();
    }
    let h = response.headers_mut();
    let defaults: [(&str, &str); 5] = [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("cross-origin-opener-policy", "same-origin"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    if https(&state) {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL)
        && h.get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
    {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn body_too_large() -> AppError {
    AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "The request body is larger than this server accepts.",
    )
}

/// The largest body a request to `path` may carry: `/mcp` and demo mode's simulated Intuit take
/// files (an upload passes through both), everything else takes forms and JSON.
pub fn body_limit_for(state: &AppState, path: &str) -> usize {
    let general = state.config.body_limit_bytes;
    if path == "/mcp" || path.starts_with(crate::quickbooks::demo::MOUNT) {
        state.config.mcp_body_limit_bytes.max(general)
    } else {
        general
    }
}

/// The body-limit layer's 413, naming the `limit` that applied (for `/mcp`, what it means for a
/// file sent to `attach_file`, whose bytes travel as base64: four characters for three bytes).
fn over_the_limit(limit: usize, to_mcp: bool) -> AppError {
    let message = if to_mcp {
        format!(
            "The message is larger than the {limit} bytes `/mcp` accepts \
             (QBO_MCP_MCP_BODY_LIMIT_BYTES): a file sent to attach_file can be at most about \
             {:.1} MB.",
            // Base64's three bytes in four characters, less room for the rest of the message.
            (limit.saturating_sub(4096) as f64 * 0.75 / 100_000.0).floor() / 10.0
        )
    } else {
        format!("The request body is larger than the {limit} bytes this server accepts.")
    };
    AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
}

/// How far over its limit a body is still read (and thrown away) before the 413, at least.
const READ_BEYOND_LIMIT: u64 = 16 * 1024 * 1024;

/// Refuses a body whose `Content-Length` is over its limit ([`body_limit_for`]) so that the
/// client hears why. Answering before the body is read closes the connection under a client
/// that is still sending, and most clients (reqwest, Python's and Node's) then report a broken
/// pipe instead of the 413: so a body over its limit by no more than the limit itself or
/// [`READ_BEYOND_LIMIT`], whichever is more — a file a little too big, the usual case — is read
/// to its end and thrown away first, and only a larger one is refused at once. Bodies without a
/// length are left to the limit layers, which stop them at the limit.
pub async fn refuse_oversized(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = body_limit_for(&state, request.uri().path());
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(length) = length.filter(|l| *l > limit as u64) else {
        return next.run(request).await;
    };
    if length <= limit as u64 + (limit as u64).max(READ_BEYOND_LIMIT) {
        use futures::StreamExt;
        let mut body = request.into_body().into_data_stream();
        while let Some(Ok(_)) = body.next().await {}
    }
    // `security_headers`, outside, gives it the JSON shape and the message.
    StatusCode::PAYLOAD_TOO_LARGE.into_response()
}

/// A JSON body with errors in the API's shape: `invalid_json` (400, not JSON),
/// `unknown_field` (400), `invalid_field` (422, wrong type or missing), `body_too_large`
/// (413), `unsupported_media_type` (415).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        use axum::extract::rejection::JsonRejection as R;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(R::MissingJsonContentType(_)) => Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with `Content-Type: application/json`.",
            )),
            Err(R::JsonSyntaxError(e)) => Err(AppError::bad_request(
                "invalid_json",
                format!(
                    "The body is not valid JSON: {}.",
                    inner_message(&e.body_text())
                ),
            )),
            Err(R::JsonDataError(e)) => {
                let text = inner_message(&e.body_text());
                if text.contains("unknown field") {
                    Err(AppError::bad_request("unknown_field", format!("{text}.")))
                } else {
                    Err(AppError::invalid("invalid_field", format!("{text}.")))
                }
            }
            Err(R::BytesRejection(_)) => Err(body_too_large()),
            Err(e) => Err(AppError::bad_request(
                "invalid_json",
                format!("{}.", e.body_text()),
            )),
        }
    }
}

/// serde's message without axum's prefix.
fn inner_message(text: &str) -> String {
    let t = text.rsplit_once(": ").map_or(text, |(_, m)| m);
    t.trim_end_matches('.').to_owned()
}

/// Renders a page with an explicit status.
pub fn page(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_site() {
        for good in [
            "/",
            "/people?x=1",
            "/people/ann%20b",
            "/a/b?next=%2Fx",
            "/%41",
        ] {
            assert_eq!(safe_next(Some(good)), good, "{good:?}");
        }
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "/\t/evil.example/x",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/x\u{7f}",
            "/x\u{85}",
            "/x\u{2028}",
            "/x\u{2029}",
            "/\u{200B}/evil.example",
            "/x\\y",
            "/%2F/evil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%09/evil.example",
            "/x%0d%0aSet-Cookie:a=1",
            "/x%7F",
            "/x%E2%80%A8",
            "/%252F/evil.example",
            "/%25252F/evil.example",
            "/%ff",
            " /x",
            "\t/x",
            "people",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; qbo_session=xyz; b=2; qbo_session=later"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("q=\"quoted\"; e="));
        assert_eq!(cookie(&h, "qbo_session").as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "q").as_deref(), Some("quoted"));
        assert_eq!(cookie(&h, "e"), None);
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn cookies_are_set_with_every_attribute() {
        let attributes = |v: HeaderValue| {
            let text = v.to_str().unwrap().to_owned();
            let mut parts: Vec<String> = text.split("; ").map(str::to_owned).collect();
            parts[1..].sort();
            parts
        };
        assert_eq!(
            attributes(set_cookie_value(false, "qbo_session", "abc", None)),
            ["qbo_session=abc", "HttpOnly", "Path=/", "SameSite=Lax"]
        );
        assert_eq!(
            attributes(set_cookie_value(true, "__Host-qbo_session", "", Some(0))),
            [
                "__Host-qbo_session=",
                "HttpOnly",
                "Max-Age=0",
                "Path=/",
                "SameSite=Lax",
                "Secure"
            ]
        );
    }
}
