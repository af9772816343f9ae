//! The simulator's own control surface under `/_sim`: counters, configuration, companies,
//! clock and reset. Not Intuit's: tests and benchmarks use it to steer and observe.

use crate::books::UserRole;
use crate::simulator::SimState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The `/_sim` routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/companies", get(companies))
        .route("/_sim/companies/{realm}/users", post(set_user))
        .route("/_sim/config", get(show_config).post(change_config))
        .route("/_sim/expire-access-tokens", post(expire_access_tokens))
        .route("/_sim/advance-clock", post(advance_clock))
        .route("/_sim/inject-fault", post(inject_fault))
        .route("/_sim/reset", post(reset))
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": "bad_request", "message": message}})),
    )
        .into_response()
}

async fn stats(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(state.stats.to_json())
}

async fn companies(State(state): State<Arc<SimState>>) -> Json<Value> {
    let list: Vec<Value> = state
        .companies()
        .iter()
        .map(|company| {
            let users: Vec<Value> = company
                .user_list()
                .iter()
                .map(|u| {
                    json!({
                        "email": u.email,
                        "role": if u.role == UserRole::Admin { "admin" } else { "user" },
                        "given_name": u.given_name,
                        "family_name": u.family_name,
                    })
                })
                .collect();
            json!({"realm_id": company.realm_id, "name": company.name, "users": users})
        })
        .collect();
    Json(Value::Array(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Injection {
    fault: Option<crate::fault::InjectedFault>,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

/// The next `count` API calls answer `fault` (`null` clears it): Intuit's answers that a
/// well-behaved client never provokes from the simulator's rules (both 401 shapes, the
/// 003100 403, XML bodies).
async fn inject_fault(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Injection>(&body) {
        Ok(Injection { fault, count }) => {
            *state.injected.lock() = fault.filter(|_| count > 0).map(|f| (f, count));
            Json(json!({"fault": fault, "count": count})).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    email: String,
    role: UserRole,
}

/// Adds a QuickBooks user to a company or changes their role: demoting the admin who
/// connected an app makes the API answer error 120, as Intuit does.
async fn set_user(
    State(state): State<Arc<SimState>>,
    axum::extract::Path(realm): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(company) = state.company(&realm) else {
        return error(StatusCode::NOT_FOUND, &format!("no company {realm}"));
    };
    match serde_json::from_slice::<UserChange>(&body) {
        Ok(change) if change.email.contains('@') => {
            let user = company.set_user(&change.email, change.role);
            Json(json!({"email": user.email, "role": user.role})).into_response()
        }
        Ok(change) => error(
            StatusCode::BAD_REQUEST,
            &format!("{} is not an email address", change.email),
        ),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"email\", \"role\": \"admin\"|\"user\"}}: {e}"),
        ),
    }
}

async fn show_config(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(serde_json::to_value(state.config()).unwrap_or(Value::Null))
}

async fn change_config(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    let next = {
        let mut config = state.config.write();
        match config.patched(&patch) {
            Ok(next) => {
                *config = next.clone();
                next
            }
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        }
    };
    // Building a few hundred companies' books takes a moment: off the async workers.
    let sim = state.clone();
    let count = next.companies;
    let _ = tokio::task::spawn_blocking(move || sim.set_company_count(count)).await;
    Json(serde_json::to_value(&next).unwrap_or(Value::Null)).into_response()
}

async fn expire_access_tokens(State(state): State<Arc<SimState>>) -> Json<Value> {
    let now = state.clock.now();
    let expired = state.grants.write().expire_access_tokens(now);
    Json(json!({"expired": expired}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Advance>(&body) {
        Ok(advance) => {
            state.clock.advance(advance.seconds);
            Json(json!({"now": state.clock.now().to_rfc3339()})).into_response()
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"seconds\": N}}: {e}"),
        ),
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ResetParts {
    data: bool,
    tokens: bool,
    stats: bool,
    config: bool,
}

impl Default for ResetParts {
    fn default() -> Self {
        Self {
            data: true,
            tokens: true,
            stats: true,
            config: true,
        }
    }
}

async fn reset(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let parts = if body.iter().all(u8::is_ascii_whitespace) {
        ResetParts::default()
    } else {
        match serde_json::from_slice::<ResetParts>(&body) {
            Ok(parts) => parts,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("unknown reset part: {e}")),
        }
    };
    state.reset(parts.data, parts.tokens, parts.stats, parts.config);
    Json(json!({"reset": {"data": parts.data, "tokens": parts.tokens, "stats": parts.stats, "config": parts.config}}))
        .into_response()
}
