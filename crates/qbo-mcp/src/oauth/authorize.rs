//! The authorization endpoint. `GET /oauth/authorize` checks the request, sends a person who
//! is not signed in to `/login` and back, then either issues a code at once (consent already
//! given to this client) or shows the consent page; `POST /oauth/authorize` is the consent
//! form (`decision=allow|deny`, CSRF-protected).
//!
//! Errors about the client or its redirect URI are shown on a page and never redirected. Other
//! errors go back to the client with `error`, `state` and `iss` (RFC 9207) only when the
//! redirect is trusted — the signed-in person consented to that client before, or it is a
//! metadata-document client redirecting to its own host — and are shown on a page otherwise:
//! anyone can register a client, so bouncing to its redirect would make this an open
//! redirector (RFC 9700 §4.11.2).
//!
//! A remembered consent skips the page only for clients whose identity the redirect assures
//! (`Client::identity_assured`); native clients with loopback or private-use redirects are
//! asked every time (RFC 8252 §8.6). The redirect after consent is a 302 or 303, never a 307
//! (a 307 would repost the consent form to the client's callback).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts as _, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;
use url::Url;

use super::clients::{self, Client, ClientKind, Requester};
use super::grants::{self, NewCode};
use super::{OAuthError, SCOPE, issuer, resource};
use crate::auth::{Caller, Credential, PageCaller, PageRejection};
use crate::error::AppError;
use crate::people::{Person, Role};
use crate::state::AppState;
use crate::web::{self, CsrfToken, Frame};
use crate::{on_db, on_tx};

pub fn routes() -> Router<AppState> {
    Router::new().route("/oauth/authorize", get(authorize).post(consent))
}

/// The parameters of an authorization request, as sent (query or consent form).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub state: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct Checked {
    pub client: Client,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub state: Option<String>,
    pub scope: String,
    pub resource: String,
}

/// Why a request was refused, and where that is told.
#[derive(Debug)]
pub enum Refusal {
    /// Shown on a page: the client or redirect URI cannot be trusted.
    Page(StatusCode, String),
    /// Sent back to the client's redirect URI, if that redirect is trusted; else shown.
    Redirect {
        client: Box<Client>,
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

/// Checks an authorization request (RFC 6749 §4.1.1, RFC 7636, RFC 8707, OAuth 2.1).
pub async fn check(
    state: &AppState,
    p: &AuthorizeParams,
    requester: Requester,
) -> Result<Checked, Refusal> {
    let client_id = p
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Refusal::Page(
                StatusCode::BAD_REQUEST,
                "The request names no client (client_id is missing).".into(),
            )
        })?;
    let client = match clients::find(state, client_id, requester).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return Err(Refusal::Page(
                StatusCode::BAD_REQUEST,
                format!(
                    "The client `{client_id}` is not known here. Ask the assistant to connect again; it should register itself first."
                ),
            ));
        }
        Err(e) if e.status.is_server_error() => {
            tracing::error!(error = %e, cause = ?e.source, "cannot look up an OAuth client");
            return Err(Refusal::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot look up this client right now. Try again in a moment.".into(),
            ));
        }
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            return Err(Refusal::Page(e.status, e.description));
        }
        Err(e) => return Err(Refusal::Page(StatusCode::BAD_REQUEST, e.description)),
    };
    let redirect_uri = match p.redirect_uri.as_deref().filter(|r| !r.is_empty()) {
        Some(r) if client.redirect_allowed(r) => r.to_owned(),
        Some(r) => {
            return Err(Refusal::Page(
                StatusCode::BAD_REQUEST,
                format!(
                    "The redirect URI `{r}` is not one that {} registered, so the authorization cannot continue.",
                    client.client_name
                ),
            ));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(Refusal::Page(
                StatusCode::BAD_REQUEST,
                "The request names no redirect_uri and the client registered several.".into(),
            ));
        }
    };
    let back = |error: &'static str, description: String| Refusal::Redirect {
        client: Box::new(client.clone()),
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: p.state.clone(),
    };
    if p.response_type.as_deref() != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "Only response_type=code is supported.".into(),
        ));
    }
    let challenge = p.code_challenge.as_deref().unwrap_or_default();
    if challenge.is_empty() {
        return Err(back(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256.".into(),
        ));
    }
    if p.code_challenge_method.as_deref() != Some("S256") {
        return Err(back(
            "invalid_request",
            "Only the S256 PKCE method is supported (code_challenge_method=S256); plain is refused.".into(),
        ));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(back(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters).".into(),
        ));
    }
    let resource = resource::check(p.resource.as_deref(), &state.public_url)
        .map_err(|e| back(e.error, e.description))?;
    Ok(Checked {
        client,
        redirect_uri,
        code_challenge: challenge.to_owned(),
        state: p.state.clone(),
        // One scope; unknown scopes a client asks for (claude.ai has asked for its own) are
        // dropped rather than refused, and the token response says what was granted.
        scope: SCOPE.to_owned(),
        resource,
    })
}

/// The client's redirect URI with `params` added, plus `iss` (RFC 9207).
fn redirect_with(state: &AppState, redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
                q.append_pair("iss", &issuer(&state.public_url));
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// A redirect with an explicit status (302 from GET, 303 from the consent POST).
fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether errors may be sent back to `client` at `redirect_uri` (see the module comment).
async fn redirect_trusted(
    state: &AppState,
    client: &Client,
    redirect_uri: &str,
    person: Option<&Person>,
) -> bool {
    if client.redirect_on_own_host(redirect_uri) {
        return true;
    }
    let Some(person) = person else {
        return false;
    };
    match consented(state, person.id, &client.client_id, SCOPE).await {
        Ok(consented) => consented,
        Err(e) => {
            tracing::error!(error = ?e, "cannot read consents");
            false
        }
    }
}

/// Answers a refusal: a page, or a redirect to the client when that redirect is trusted for
/// `person` (who may not be signed in).
async fn refuse(
    state: &AppState,
    refusal: Refusal,
    person: Option<&Person>,
    status: StatusCode,
) -> Response {
    if let Refusal::Redirect {
        client,
        redirect_uri,
        description,
        ..
    } = &refusal
        && !redirect_trusted(state, client, redirect_uri, person).await
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            &format!(
                "The authorization request from {} cannot continue: {description} Ask the assistant's maker to fix the request.",
                client.client_name
            ),
        );
    }
    refusal_response(state, refusal, status)
}

fn refusal_response(state: &AppState, refusal: Refusal, status: StatusCode) -> Response {
    match refusal {
        Refusal::Page(code, message) => error_page(code, &message),
        Refusal::Redirect {
            redirect_uri,
            error,
            description,
            state: client_state,
            ..
        } => {
            let mut params = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = client_state.as_deref() {
                params.push(("state", s));
            }
            redirect(status, &redirect_with(state, &redirect_uri, &params))
        }
    }
}

/// Issues a code for `checked` and redirects to the client with it.
async fn issue(
    state: &AppState,
    checked: &Checked,
    person: &Person,
    stamp: &str,
    status: StatusCode,
) -> Result<Response, OAuthError> {
    let code = grants::issue_code(
        &state.db,
        &NewCode {
            client_id: checked.client.client_id.clone(),
            person_id: person.id,
            person_stamp: stamp.to_owned(),
            redirect_uri: checked.redirect_uri.clone(),
            code_challenge: checked.code_challenge.clone(),
            scope: checked.scope.clone(),
            resource: checked.resource.clone(),
        },
    )
    .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = checked.state.as_deref() {
        params.push(("state", s));
    }
    tracing::info!(client_id = %checked.client.client_id, person = %person.username, "authorization code issued");
    Ok(redirect(
        status,
        &redirect_with(state, &checked.redirect_uri, &params),
    ))
}

/// Whether `person` already consented to `client_id` for `scope`.
async fn consented(
    state: &AppState,
    person_id: i64,
    client_id: &str,
    scope: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<String> = on_db!(&state.db, pool => {
        sqlx::query_scalar("SELECT scope FROM oauth_consents WHERE person_id = $1 AND client_id = $2")
            .bind(person_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await
    })?;
    Ok(found.is_some_and(|s| s.split(' ').any(|granted| granted == scope)))
}

async fn remember_consent(
    state: &AppState,
    person_id: i64,
    client_id: &str,
    scope: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = state.db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "INSERT INTO oauth_consents (person_id, client_id, scope, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (person_id, client_id) DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at",
        )
        .bind(person_id)
        .bind(client_id)
        .bind(scope)
        .bind(crate::time::now())
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    tx.commit().await
}

async fn authorize(
    State(state): State<AppState>,
    csrf: CsrfToken,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
    mut parts: Parts,
) -> Response {
    let Ok(Query(params)) = query else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The authorization request is malformed (a parameter appears twice or is not text).",
        );
    };
    let signed_in = PageCaller::from_request_parts(&mut parts, &state).await;
    let requester = match &signed_in {
        Ok(_) => Requester::SignedIn,
        Err(_) => Requester::Anonymous(clients::client_address(&state, peer, &parts.headers)),
    };
    let checked = match check(&state, &params, requester).await {
        Ok(c) => c,
        Err(refusal) => {
            let person = signed_in.as_ref().ok().map(|PageCaller(c)| &c.person);
            return refuse(&state, refusal, person, StatusCode::FOUND).await;
        }
    };
    // Not signed in: to /login?next=<this request>, and back here afterwards.
    let caller = match signed_in {
        Ok(PageCaller(caller)) => caller,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(stamp) = stamp_of(&caller) else {
        return browser_required();
    };
    let person = caller.person;
    // A remembered consent counts only when the redirect proves who the client is.
    let remembered = if checked.client.identity_assured(&checked.redirect_uri) {
        consented(&state, person.id, &checked.client.client_id, &checked.scope).await
    } else {
        Ok(false)
    };
    match remembered {
        Ok(true) => issue(&state, &checked, &person, &stamp, StatusCode::FOUND)
            .await
            .unwrap_or_else(|e| error_page(e.status, &e.description)),
        Ok(false) => consent_page(&state, &params, &checked, &person, &csrf),
        Err(e) => {
            tracing::error!(error = ?e, "cannot read consents");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot continue right now. Try again in a moment.",
            )
        }
    }
}

/// The stamp a new grant carries: the one the browser session was loaded under (checked
/// current then), never one read later — a stamp changed in between (a password change, "Sign
/// out everywhere") must not hand the old session a grant under the new stamp.
fn stamp_of(caller: &Caller) -> Option<String> {
    match &caller.credential {
        Credential::Session { stamp, .. } => Some(stamp.clone()),
        Credential::PersonalToken { .. } => None,
    }
}

fn browser_required() -> Response {
    error_page(
        StatusCode::UNAUTHORIZED,
        "Authorize an assistant from a browser where you are signed in, not with a token.",
    )
}

/// The consent form's fields: the original parameters and the decision.
#[derive(Debug)]
struct ConsentForm {
    params: AuthorizeParams,
    decision: Option<String>,
}

impl ConsentForm {
    fn parse(body: &[u8]) -> ConsentForm {
        let mut form = ConsentForm {
            params: AuthorizeParams::default(),
            decision: None,
        };
        for (k, v) in url::form_urlencoded::parse(body) {
            let v = Some(v.into_owned());
            let p = &mut form.params;
            match k.as_ref() {
                "response_type" => p.response_type = v,
                "client_id" => p.client_id = v,
                "redirect_uri" => p.redirect_uri = v,
                "code_challenge" => p.code_challenge = v,
                "code_challenge_method" => p.code_challenge_method = v,
                "state" => p.state = v,
                "scope" => p.scope = v,
                "resource" => p.resource = v,
                "decision" => form.decision = v,
                _ => {}
            }
        }
        form
    }
}

async fn consent(
    State(state): State<AppState>,
    csrf: CsrfToken,
    caller: Result<PageCaller, PageRejection>,
    body: axum::body::Bytes,
) -> Response {
    // The CSRF layer has compared the token with the session; a post without our cookies was
    // not checked and is refused here.
    if let Err(e) = csrf.require_checked() {
        return web::error_page(e);
    }
    let Ok(PageCaller(caller)) = caller else {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "Your session has ended. Start the connection from your assistant again.",
        );
    };
    let Some(stamp) = stamp_of(&caller) else {
        return browser_required();
    };
    let person = caller.person;
    let form = ConsentForm::parse(&body);
    let checked = match check(&state, &form.params, Requester::SignedIn).await {
        Ok(c) => c,
        Err(refusal) => return refuse(&state, refusal, Some(&person), StatusCode::SEE_OTHER).await,
    };
    match form.decision.as_deref() {
        Some("allow") => {
            if let Err(e) =
                remember_consent(&state, person.id, &checked.client.client_id, &checked.scope).await
            {
                tracing::error!(error = ?e, "cannot store a consent");
                return error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The server cannot continue right now. Try again in a moment.",
                );
            }
            issue(&state, &checked, &person, &stamp, StatusCode::SEE_OTHER)
                .await
                .unwrap_or_else(|e| error_page(e.status, &e.description))
        }
        // The person chose to be sent back, having been shown where to.
        Some("deny") => refusal_response(
            &state,
            Refusal::Redirect {
                client: Box::new(checked.client),
                redirect_uri: checked.redirect_uri,
                error: "access_denied",
                description: format!("{} declined to connect this assistant.", person.username),
                state: checked.state,
            },
            StatusCode::SEE_OTHER,
        ),
        _ => error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    }
}

fn not_frameable(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error_page(status: StatusCode, message: &str) -> Response {
    web::error_page(AppError::new(status, "authorization_refused", message))
}

/// The consent page: the client's name, where it will send the person back, what it can do.
fn consent_page(
    state: &AppState,
    params: &AuthorizeParams,
    checked: &Checked,
    person: &Person,
    csrf: &CsrfToken,
) -> Response {
    let redirect_host = Url::parse(&checked.redirect_uri)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_else(|| checked.redirect_uri.clone());
    let can_do = match person.role {
        Role::Viewer => "read your QuickBooks companies: query, look up entries and run reports",
        Role::Bookkeeper => {
            "read your QuickBooks companies, create and update entries, and send invoices"
        }
        Role::Admin => {
            "read your QuickBooks companies, create and update entries, send invoices, and delete or void entries"
        }
    };
    let hidden = [
        ("response_type", params.response_type.clone()),
        ("client_id", params.client_id.clone()),
        ("redirect_uri", Some(checked.redirect_uri.clone())),
        ("code_challenge", params.code_challenge.clone()),
        (
            "code_challenge_method",
            params.code_challenge_method.clone(),
        ),
        ("state", params.state.clone()),
        ("scope", params.scope.clone()),
        ("resource", params.resource.clone()),
    ];
    let name = &checked.client.client_name;
    let body = html! {
        h1 { "Connect " (name) "?" }
        p { strong { (name) } " wants to use qbo-mcp as " strong { (person.username) } "." }
        @match checked.client.kind {
            ClientKind::MetadataDocument => {
                p { "Identified by its metadata document at " code { (checked.client.client_id) } "." }
            }
            ClientKind::Registered => {
                p { "This name was chosen by the application itself when it registered. Check where it will send you:" }
            }
        }
        p { "After you answer you will be sent to " strong { (redirect_host) } "." }
        @if !checked.client.identity_assured(&checked.redirect_uri) {
            p { "This assistant receives the answer on a computer (" (redirect_host) "), where any program could use its name, so this question is asked every time. Allow only if you started this connection yourself just now." }
        }
        p { "As a " (person.role.as_str()) ", it will be able to " (can_do) ", in the companies you may use. Everything it does is recorded under your name, and you can disconnect it on the " a href="/assistants" { "Assistants" } " page." }
        form method="post" action="/oauth/authorize" {
            (csrf.field())
            @for (field, value) in &hidden {
                @if let Some(value) = value {
                    input type="hidden" name=(field) value=(value);
                }
            }
            button type="submit" name="decision" value="allow" { "Allow" }
            " "
            button.secondary type="submit" name="decision" value="deny" { "Deny" }
        }
    };
    let frame = Frame {
        title: "Connect an assistant",
        viewer: Some(person.into()),
        csrf: Some(csrf),
        warnings: Vec::new(),
        pending_proposals: None,
    };
    not_frameable(web::page(StatusCode::OK, web::layout(state, &frame, body)))
}
