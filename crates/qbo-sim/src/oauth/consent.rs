//! The authorize endpoint and its consent page: a plain HTML form (no JavaScript) where a
//! simulated QuickBooks user picks the company to connect. As at Intuit, only a company
//! admin may approve; approving for a company whose connection belongs to another admin
//! moves it ("Change Admin"). With `auto_consent` set, the approval happens at once.

use super::grants::{Approval, Principal};
use super::parse_scopes;
use crate::books::UserRole;
use crate::simulator::SimState;
use crate::stats::Counter;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

/// The authorization request, as query string (GET) or form (POST).
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizeRequest {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    /// `REALM|EMAIL`, chosen on the consent page.
    account: Option<String>,
    /// `allow` or `deny`.
    decision: Option<String>,
}

struct Checked {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - Intuit (simulated)</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}}\
         label,select,button{{display:block;margin:.5rem 0;font-size:1rem}}select{{width:100%;padding:.4rem}}button{{padding:.5rem 1rem}}\
         .error{{color:#a00}}</style></head><body><h1>{title}</h1>{body}<p><small>qbo-sim: a simulated Intuit sign-in.</small></p></body></html>",
        title = escape(title)
    );
    (status, Html(html)).into_response()
}

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut pairs = url.query_pairs_mut();
                for (key, value) in params {
                    pairs.append_pair(key, value);
                }
            }
            // Intuit answers 302 Found, never 303 or 307.
            (
                StatusCode::FOUND,
                [(axum::http::header::LOCATION, url.to_string())],
            )
                .into_response()
        }
        Err(_) => page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            "<p class=\"error\">The redirect_uri is not a URL.</p>",
        ),
    }
}

fn check(request: &AuthorizeRequest) -> Result<Checked, Box<Response>> {
    let (Some(client_id), Some(redirect_uri)) =
        (request.client_id.clone(), request.redirect_uri.clone())
    else {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Something went wrong",
            "<p class=\"error\">client_id and redirect_uri are required.</p>",
        )));
    };
    if url::Url::parse(&redirect_uri).is_err() {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            "<p class=\"error\">The redirect_uri is not a URL.</p>",
        )));
    }
    let state = request.state.clone();
    let state_param = state.clone().unwrap_or_default();
    if request.response_type.as_deref() != Some("code") {
        return Err(Box::new(redirect_with(
            &redirect_uri,
            &[
                ("error", "unsupported_response_type"),
                ("state", &state_param),
            ],
        )));
    }
    let scopes = match parse_scopes(request.scope.as_deref().unwrap_or("")) {
        Ok(scopes) => scopes,
        Err(_) => {
            return Err(Box::new(redirect_with(
                &redirect_uri,
                &[("error", "invalid_scope"), ("state", &state_param)],
            )));
        }
    };
    Ok(Checked {
        client_id,
        redirect_uri,
        scopes,
        state,
    })
}

/// `GET /connect/oauth2`: the consent page, or an immediate approval with `auto_consent`.
/// The form has no `action`, so it posts back to wherever the page is mounted.
pub async fn show(
    State(sim): State<Arc<SimState>>,
    Query(request): Query<AuthorizeRequest>,
) -> Response {
    sim.stats.count(Counter::AuthorizeRequests, None);
    let checked = match check(&request) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    if let Some(auto) = sim.config().auto_consent {
        let realm = auto.realm_id.clone().or_else(|| {
            sim.companies
                .iter()
                .find(|c| {
                    c.user(&auto.email)
                        .is_some_and(|u| u.role == UserRole::Admin)
                })
                .or_else(|| sim.companies.iter().find(|c| c.user(&auto.email).is_some()))
                .map(|c| c.realm_id.clone())
        });
        return approve(&sim, &checked, realm.as_deref().unwrap_or(""), &auto.email);
    }
    let mut options = String::new();
    let mut connected = String::new();
    for company in &sim.companies {
        if let Some(owner) = sim
            .grants
            .read()
            .connected_admin(&checked.client_id, &company.realm_id)
        {
            connected.push_str(&format!(
                "<li>{} is connected to this app by {}. Connecting it as another admin moves the connection to them (Change Admin).</li>",
                escape(&company.name),
                escape(owner)
            ));
        }
        options.push_str(&format!("<optgroup label=\"{}\">", escape(&company.name)));
        for user in company.user_list() {
            let role = if user.role == UserRole::Admin {
                "admin"
            } else {
                "user"
            };
            options.push_str(&format!(
                "<option value=\"{}|{}\">{} {} &lt;{}&gt; ({role})</option>",
                escape(&company.realm_id),
                escape(&user.email),
                escape(&user.given_name),
                escape(&user.family_name),
                escape(&user.email)
            ));
        }
        options.push_str("</optgroup>");
    }
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(value)
        )
    };
    let body = format!(
        "<p>The app <strong>{client}</strong> asks to connect to a QuickBooks company with: {scopes}.</p>\
         <p>It will return to <code>{redirect}</code>.</p>{connected}\
         <form method=\"post\">{h1}{h2}{h3}{h4}{h5}\
         <label for=\"account\">Sign in as, and connect the company</label>\
         <select id=\"account\" name=\"account\">{options}</select>\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Connect</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button></form>",
        client = escape(&checked.client_id),
        scopes = escape(&checked.scopes.join(", ")),
        redirect = escape(&checked.redirect_uri),
        connected = if connected.is_empty() {
            String::new()
        } else {
            format!("<ul>{connected}</ul>")
        },
        h1 = hidden("client_id", &checked.client_id),
        h2 = hidden("redirect_uri", &checked.redirect_uri),
        h3 = hidden("response_type", "code"),
        h4 = hidden("scope", &checked.scopes.join(" ")),
        h5 = hidden("state", checked.state.as_deref().unwrap_or("")),
    );
    page(StatusCode::OK, "Connect to QuickBooks", &body)
}

/// `POST /connect/oauth2`: the consent form's answer.
pub async fn decide(
    State(sim): State<Arc<SimState>>,
    Form(request): Form<AuthorizeRequest>,
) -> Response {
    let checked = match check(&request) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    let state_param = checked.state.clone().unwrap_or_default();
    if request.decision.as_deref() != Some("allow") {
        return redirect_with(
            &checked.redirect_uri,
            &[("error", "access_denied"), ("state", &state_param)],
        );
    }
    let Some((realm, email)) = request.account.as_deref().and_then(|a| a.split_once('|')) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Choose a company",
            "<p class=\"error\">Pick who you are and which company to connect.</p>",
        );
    };
    approve(&sim, &checked, realm, email)
}

fn approve(sim: &SimState, checked: &Checked, realm: &str, email: &str) -> Response {
    let Some(company) = sim.company(realm) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unknown company",
            "<p class=\"error\">There is no such company.</p>",
        );
    };
    let Some(user) = company.user(email) else {
        return page(
            StatusCode::FORBIDDEN,
            "Not a user of this company",
            &format!(
                "<p class=\"error\">{} is not a user of {}.</p>",
                escape(email),
                escape(&company.name)
            ),
        );
    };
    if user.role != UserRole::Admin {
        return page(
            StatusCode::FORBIDDEN,
            "Only admins can connect apps",
            &format!(
                "<p class=\"error\">You need to be a company administrator to connect apps to {}. Ask your QuickBooks admin to connect.</p>",
                escape(&company.name)
            ),
        );
    }
    let principal = Principal {
        client_id: checked.client_id.clone(),
        realm_id: company.realm_id.clone(),
        email: user.email.clone(),
        scopes: checked.scopes.clone(),
    };
    let change_admin = sim.config().change_admin;
    let now = sim.clock.now();
    let (code, approval) =
        sim.grants
            .write()
            .approve(principal, &checked.redirect_uri, change_admin, now);
    sim.stats
        .count_realm_only(Counter::AuthorizeRequests, &company.realm_id);
    sim.stats.count(Counter::Consents, Some(&company.realm_id));
    if let Approval::AdminChanged { previous } = approval {
        tracing::info!(realm = %company.realm_id, %previous, new = %user.email, "Change Admin");
        sim.stats
            .count(Counter::AdminChanges, Some(&company.realm_id));
    }
    let state_param = checked.state.clone().unwrap_or_default();
    let mut params = vec![
        ("code", code.as_str()),
        ("realmId", company.realm_id.as_str()),
    ];
    if checked.state.is_some() {
        params.insert(1, ("state", state_param.as_str()));
    }
    redirect_with(&checked.redirect_uri, &params)
}
