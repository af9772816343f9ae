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
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
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

/// Intuit's sign-in pages, reduced to a title, a body and a line saying they are simulated.
fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - Intuit (simulated)" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (title) }
                (body)
                p { small { "qbo-sim: a simulated Intuit sign-in." } }
            }
        }
    };
    (status, html).into_response()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}\
label,select,button{display:block;margin:.5rem 0;font-size:1rem}select{width:100%;padding:.4rem}button{padding:.5rem 1rem}\
.error{color:#a00}";

/// A page with one error sentence.
fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, title, html! { p.error { (message) } })
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
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            "The redirect_uri is not a URL.",
        ),
    }
}

fn check(request: &AuthorizeRequest) -> Result<Checked, Box<Response>> {
    let (Some(client_id), Some(redirect_uri)) =
        (request.client_id.clone(), request.redirect_uri.clone())
    else {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Something went wrong",
            "client_id and redirect_uri are required.",
        )));
    };
    if url::Url::parse(&redirect_uri).is_err() {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            "The redirect_uri is not a URL.",
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
        let companies = sim.companies();
        let realm = auto.realm_id.clone().or_else(|| {
            companies
                .iter()
                .find(|c| {
                    c.user(&auto.email)
                        .is_some_and(|u| u.role == UserRole::Admin)
                })
                .or_else(|| companies.iter().find(|c| c.user(&auto.email).is_some()))
                .map(|c| c.realm_id.clone())
        });
        return approve(&sim, &checked, realm.as_deref().unwrap_or(""), &auto.email);
    }
    // Companies this app is already connected to, and by whom (read once, not while rendering).
    let companies = sim.companies();
    let connected: Vec<(&str, String)> = {
        let grants = sim.grants.read();
        companies
            .iter()
            .filter_map(|company| {
                grants
                    .connected_admin(&checked.client_id, &company.realm_id)
                    .map(|owner| (company.name.as_str(), owner.to_owned()))
            })
            .collect()
    };
    let hidden = |name: &str, value: &str| html! { input type="hidden" name=(name) value=(value); };
    let body = html! {
        p {
            "The app " strong { (checked.client_id) }
            " asks to connect to a QuickBooks company with: " (checked.scopes.join(", ")) "."
        }
        p { "It will return to " code { (checked.redirect_uri) } "." }
        @if !connected.is_empty() {
            ul {
                @for (company, owner) in &connected {
                    li {
                        (company) " is connected to this app by " (owner)
                        ". Connecting it as another admin moves the connection to them (Change Admin)."
                    }
                }
            }
        }
        form method="post" {
            (hidden("client_id", &checked.client_id))
            (hidden("redirect_uri", &checked.redirect_uri))
            (hidden("response_type", "code"))
            (hidden("scope", &checked.scopes.join(" ")))
            (hidden("state", checked.state.as_deref().unwrap_or("")))
            label for="account" { "Sign in as, and connect the company" }
            select id="account" name="account" {
                @for company in companies.iter() {
                    optgroup label=(company.name) {
                        @for user in company.user_list() {
                            @let role = if user.role == UserRole::Admin { "admin" } else { "user" };
                            option value={ (company.realm_id) "|" (user.email) } {
                                (user.given_name) " " (user.family_name) " <" (user.email) "> (" (role) ")"
                            }
                        }
                    }
                }
            }
            button type="submit" name="decision" value="allow" { "Connect" }
            button type="submit" name="decision" value="deny" { "Cancel" }
        }
    };
    page(StatusCode::OK, "Connect to QuickBooks", body)
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
        return error_page(
            StatusCode::BAD_REQUEST,
            "Choose a company",
            "Pick who you are and which company to connect.",
        );
    };
    approve(&sim, &checked, realm, email)
}

fn approve(sim: &SimState, checked: &Checked, realm: &str, email: &str) -> Response {
    let Some(company) = sim.company(realm) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unknown company",
            "There is no such company.",
        );
    };
    let Some(user) = company.user(email) else {
        return error_page(
            StatusCode::FORBIDDEN,
            "Not a user of this company",
            &format!("{email} is not a user of {}.", company.name),
        );
    };
    if user.role != UserRole::Admin {
        return error_page(
            StatusCode::FORBIDDEN,
            "Only admins can connect apps",
            &format!(
                "You need to be a company administrator to connect apps to {}. Ask your QuickBooks admin to connect.",
                company.name
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
