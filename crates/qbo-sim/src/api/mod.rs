//! The Accounting API under `/v3/company/{realmId}/…`: read, create, update, delete, void,
//! query, reports, change data capture and invoice sending, behind Intuit's gate (bearer
//! token, company match, `minorversion`, throttle) and the faults a test asks for.
//! Writes carrying a `requestid` are applied once; a retry gets the first answer.

pub mod attachments;
pub mod batch;
pub mod cdc;
pub mod query;
pub mod reports;

use crate::books::entity_types::{self, EntityType};
use crate::books::{Company, StoredReply, WriteOptions, fields};
use crate::clock::response_time;
use crate::fault::Fault;
use crate::pacing::{Admitted, Kind, Limits};
use crate::simulator::SimState;
use crate::stats::{Counter, InFlight};
use crate::webhooks::{self, Change};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

/// The Accounting API routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/v3/company/{realm}/query",
            get(query_by_get).post(query_by_post),
        )
        .route("/v3/company/{realm}/reports/{report}", get(report))
        .route("/v3/company/{realm}/cdc", get(change_data_capture))
        .route("/v3/company/{realm}/batch", post(batch_request))
        .route(
            "/v3/company/{realm}/preferences",
            get(preferences).post(update_preferences),
        )
        .route("/v3/company/{realm}/companyinfo", post(update_company_info))
        .route("/v3/company/{realm}/companyinfo/{id}", get(company_info))
        .route("/v3/company/{realm}/{entity}", post(write))
        .route("/v3/company/{realm}/{entity}/{id}", get(read))
        .route("/v3/company/{realm}/{entity}/{id}/send", post(send))
        .merge(attachments::routes())
}

/// What kind of call passes the gate: reports have their own budget, writes their own faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Read,
    Write,
    Query,
    Report,
    Cdc,
    Batch,
}

/// A request that passed the gate; holds its throttle place while it runs.
struct Pass {
    state: Arc<SimState>,
    company: Arc<Company>,
    time: String,
    _admitted: Admitted,
    _in_flight: InFlight,
}

impl Pass {
    fn fault(&self, fault: Fault) -> Response {
        fault_response(&self.state, Some(&self.company.realm_id), fault, &self.time)
    }

    fn json(&self, body: Vec<u8>) -> Response {
        json_response(StatusCode::OK, body)
    }

    fn entity_body(&self, name: &str, entity: &Value) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        // Serializing a serde_json::Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, entity);
        out.extend_from_slice(b",\"time\":\"");
        out.extend_from_slice(self.time.as_bytes());
        out.extend_from_slice(b"\"}");
        out
    }
}

/// A write's JSON body, or QuickBooks' 2010 fault when it is not JSON.
fn json_body(body: &[u8]) -> Result<Value, Fault> {
    serde_json::from_slice(body).map_err(|error| {
        Fault::validation(
            "2010",
            "Request has invalid or unsupported property",
            format!("Request body is not valid JSON: {error}"),
        )
    })
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

fn fault_response(state: &SimState, realm: Option<&str>, fault: Fault, time: &str) -> Response {
    match fault.code {
        "5010" => state.stats.count(Counter::StaleObject, realm),
        "3200" | "100" => state.stats.count(Counter::Unauthorized, realm),
        "3001" => state.stats.count(Counter::Throttled, realm),
        _ => {}
    }
    fault.into_response_at(time)
}

/// A response whose connection is cut before any byte of it is sent.
fn dropped_connection() -> Response {
    let body = Body::from_stream(futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulated drop",
        ))
    }));
    (StatusCode::OK, body).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// Intuit's gate, in Intuit's order: token, company, minor version, throttle; then the
/// faults and latency the configuration asks for.
async fn gate(
    state: &Arc<SimState>,
    realm: &str,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    kind: CallKind,
) -> Result<Pass, Response> {
    let now = state.clock.now();
    let time = response_time(now);
    let company = state.company(realm);
    let realm_known = company.as_ref().map(|_| realm);
    state.stats.count(Counter::ApiRequests, realm_known);
    if let Some(injected) = state.take_injected() {
        state.stats.count(Counter::FaultsInjected, realm_known);
        return Err(injected.response(&time));
    }
    // Only what the gate needs leaves the lock: this runs on every call.
    let (client_id, connected_by, token_realm_matches) = {
        let grants = state.grants.read();
        match bearer(headers).map(|token| grants.access(token, now)) {
            Some(Ok(token)) => (
                token.principal.client_id.clone(),
                token.principal.email.clone(),
                token.principal.realm_id == realm,
            ),
            Some(Err(crate::oauth::grants::AccessError::Expired)) => {
                return Err(fault_response(
                    state,
                    realm_known,
                    Fault::authentication("Token expired"),
                    &time,
                ));
            }
            // A token Intuit issued but no longer honours (revoked, or the connection moved
            // to another admin) gets the Accounting API's AuthenticationFault (code 100);
            // one it never issued gets the gateway's 3200. Clients must read both.
            Some(Err(crate::oauth::grants::AccessError::Revoked)) => {
                return Err(fault_response(
                    state,
                    realm_known,
                    Fault::authentication_general(),
                    &time,
                ));
            }
            Some(Err(_)) | None => {
                return Err(fault_response(
                    state,
                    realm_known,
                    Fault::authentication("Token revoked or invalid"),
                    &time,
                ));
            }
        }
    };
    let Some(company) = company.filter(|_| token_realm_matches) else {
        return Err(fault_response(
            state,
            realm_known,
            Fault::authorization(),
            &time,
        ));
    };
    if !company.is_admin(&connected_by) {
        return Err(fault_response(
            state,
            Some(realm),
            Fault::connecting_admin_gone(),
            &time,
        ));
    }
    // Values under 75 are accepted and served as 75, as Intuit does; only junk is refused.
    if let Some(minor) = params.get("minorversion")
        && minor.parse::<u32>().is_err()
    {
        return Err(fault_response(
            state,
            Some(realm),
            Fault::validation(
                "4000",
                "Invalid minor version parameter",
                format!("minorversion {minor} is not a number"),
            ),
            &time,
        ));
    }
    let (limits, latency_ms, drop_rate, error_rate) = {
        let config = state.config.read();
        let limits = Limits {
            per_minute: config.rate_limit_per_minute,
            reports_per_minute: config.report_rate_limit_per_minute,
            batches_per_minute: config.batch_rate_limit_per_minute,
            concurrency: config.concurrency_limit,
        };
        (
            limits,
            config.latency_ms,
            config.drop_rate,
            config.error_rate,
        )
    };
    let Some(admitted) = state.pacing.admit(
        realm,
        &client_id,
        match kind {
            CallKind::Report => Kind::Report,
            CallKind::Batch => Kind::Batch,
            _ => Kind::Plain,
        },
        limits,
        now,
    ) else {
        return Err(fault_response(
            state,
            Some(realm),
            Fault::throttled(),
            &time,
        ));
    };
    let in_flight = state.stats.in_flight(realm);
    state.stats.count(
        match kind {
            CallKind::Read => Counter::Reads,
            CallKind::Write => Counter::Writes,
            CallKind::Query => Counter::Queries,
            CallKind::Report => Counter::Reports,
            CallKind::Cdc => Counter::CdcRequests,
            CallKind::Batch => Counter::Batches,
        },
        Some(realm),
    );
    if latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
    }
    if state.roll(drop_rate) {
        state.stats.count(Counter::ConnectionsDropped, Some(realm));
        return Err(dropped_connection());
    }
    if state.roll(error_rate) {
        state.stats.count(Counter::FaultsInjected, Some(realm));
        return Err(Fault::unavailable().into_response_at(&time));
    }
    Ok(Pass {
        state: state.clone(),
        company,
        time,
        _admitted: admitted,
        _in_flight: in_flight,
    })
}

fn entity_type(segment: &str) -> Result<&'static EntityType, Fault> {
    entity_types::by_path(segment).ok_or_else(|| {
        Fault::validation(
            "2010",
            "Unsupported Operation",
            format!("Entity {segment} is not supported by the simulator"),
        )
    })
}

async fn read(
    State(state): State<Arc<SimState>>,
    Path((realm, entity, id)): Path<(String, String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Read).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let entity = match entity_type(&entity) {
        Ok(entity) => entity,
        Err(fault) => return pass.fault(fault),
    };
    let body = {
        let books = pass.company.books.read();
        books.get_by_text(entity, &id).map(|found| {
            if entity.name == "Attachable" {
                let mut found = found.clone();
                attachments::with_link(&state, &state.base_url(&headers), &realm, &mut found);
                pass.entity_body(entity.name, &found)
            } else {
                pass.entity_body(entity.name, found)
            }
        })
    };
    match body {
        Some(body) => pass.json(body),
        None => pass.fault(Fault::not_found(entity.name, &id)),
    }
}

async fn company_info(
    State(state): State<Arc<SimState>>,
    Path((realm, _id)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Read).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let body = pass.entity_body("CompanyInfo", &pass.company.books.read().company_info);
    pass.json(body)
}

async fn preferences(
    State(state): State<Arc<SimState>>,
    Path(realm): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Read).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let body = pass.entity_body("Preferences", &pass.company.books.read().preferences);
    pass.json(body)
}

/// Which of the company's singletons a settings write changes.
#[derive(Debug, Clone, Copy)]
enum Singleton {
    CompanyInfo,
    Preferences,
}

/// `POST /companyinfo` and `POST /preferences`: a write of a singleton, once per `requestid`.
/// A Preferences change is announced by webhook (Intuit's list names Preferences, not
/// CompanyInfo).
async fn update_singleton(
    state: Arc<SimState>,
    realm: String,
    params: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
    which: Singleton,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Write).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    if let Some(other) = params
        .get("operation")
        .map(String::as_str)
        .filter(|o| *o != "update")
    {
        return pass.fault(Fault::unsupported(other));
    }
    let parsed = match json_body(&body) {
        Ok(parsed) => parsed,
        Err(fault) => return pass.fault(fault),
    };
    let now = state.clock.now();
    let mut changes = Vec::new();
    let response = write_once(&pass, &params, |books| {
        let (name, saved) = match which {
            Singleton::CompanyInfo => ("CompanyInfo", books.update_company_info(parsed, now)?),
            Singleton::Preferences => {
                let saved = books.update_preferences(parsed, now)?;
                changes.push(Change {
                    entity: "Preferences",
                    id: fields::text(&saved, "Id").unwrap_or("1").to_owned(),
                    operation: "Update",
                });
                ("Preferences", saved)
            }
        };
        Ok(pass.entity_body(name, &saved))
    });
    webhooks::notify(&state, &realm, changes);
    response
}

async fn update_company_info(
    State(state): State<Arc<SimState>>,
    Path(realm): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    update_singleton(state, realm, params, headers, body, Singleton::CompanyInfo).await
}

async fn update_preferences(
    State(state): State<Arc<SimState>>,
    Path(realm): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    update_singleton(state, realm, params, headers, body, Singleton::Preferences).await
}

/// Applies a write once per `requestid`, storing the answer; then maybe fails the answer
/// (the write stays applied) when `write_error_rate` says so.
fn write_once(
    pass: &Pass,
    params: &HashMap<String, String>,
    apply: impl FnOnce(&mut crate::books::Books) -> Result<Vec<u8>, Fault>,
) -> Response {
    let realm = pass.company.realm_id.as_str();
    let request_id = params.get("requestid").filter(|r| !r.is_empty());
    let reply = {
        let mut books = pass.company.books.write();
        if let Some(stored) = request_id.and_then(|r| books.replies.get(r)) {
            pass.state
                .stats
                .count(Counter::IdempotentReplays, Some(realm));
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            return json_response(status, stored.body.clone());
        }
        let (status, body) = match apply(&mut books) {
            Ok(body) => (StatusCode::OK, Bytes::from(body)),
            Err(fault) => {
                if fault.code == "5010" {
                    pass.state.stats.count(Counter::StaleObject, Some(realm));
                }
                (
                    fault.status,
                    Bytes::from(fault.body(&pass.time).to_string()),
                )
            }
        };
        if let Some(request_id) = request_id {
            books.replies.insert(
                request_id.clone(),
                StoredReply {
                    status: status.as_u16(),
                    body: body.clone(),
                },
            );
        }
        (status, body)
    };
    if reply.0 == StatusCode::OK && pass.state.roll(pass.state.config().write_error_rate) {
        pass.state.stats.count(Counter::FaultsInjected, Some(realm));
        return Fault::unavailable().into_response_at(&pass.time);
    }
    json_response(reply.0, reply.1)
}

async fn write(
    State(state): State<Arc<SimState>>,
    Path((realm, entity)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Write).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let entity = match entity_type(&entity) {
        Ok(entity) => entity,
        Err(fault) => return pass.fault(fault),
    };
    let parsed = match json_body(&body) {
        Ok(parsed) => parsed,
        Err(fault) => return pass.fault(fault),
    };
    let now = state.clock.now();
    let operation = params.get("operation").map(String::as_str);
    let include = params.get("include").map(String::as_str);
    let include_void = include.is_some_and(|i| i.split(',').any(|o| o.trim() == "void"));
    let options = WriteOptions::from_include(include);
    let mut changes = Vec::new();
    let response = write_once(&pass, &params, |books| {
        let (mut result, change) = match operation {
            Some("delete") => (books.delete(entity, parsed, now)?, "Delete"),
            Some("void") => (books.void(entity, parsed, now)?, "Void"),
            Some("update") if include_void => (books.void(entity, parsed, now)?, "Void"),
            Some("update") => (books.update_with(entity, parsed, now, options)?, "Update"),
            None if parsed.get("Id").is_some() => {
                (books.update_with(entity, parsed, now, options)?, "Update")
            }
            None => (books.create_with(entity, parsed, now, options)?, "Create"),
            Some(other) => return Err(Fault::unsupported(other)),
        };
        changes.push(Change {
            entity: entity.name,
            id: fields::text(&result, "Id").unwrap_or_default().to_owned(),
            operation: change,
        });
        if entity.name == "Attachable" {
            attachments::with_link(&state, &state.base_url(&headers), &realm, &mut result);
        }
        Ok(pass.entity_body(entity.name, &result))
    });
    webhooks::notify(&state, &realm, changes);
    response
}

async fn send(
    State(state): State<Arc<SimState>>,
    Path((realm, entity, id)): Path<(String, String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Write).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let entity = match entity_type(&entity) {
        Ok(entity)
            if matches!(
                entity.name,
                "Invoice" | "Estimate" | "SalesReceipt" | "CreditMemo"
            ) =>
        {
            entity
        }
        Ok(other) => return pass.fault(Fault::unsupported(&format!("Send for {}", other.name))),
        Err(fault) => return pass.fault(fault),
    };
    let Ok(id) = id.parse::<u64>() else {
        return pass.fault(Fault::not_found(entity.name, &id));
    };
    let now = state.clock.now();
    let send_to = params.get("sendTo").cloned();
    let mut changes = Vec::new();
    let response = write_once(&pass, &params, |books| {
        let sent = books.send(entity, id, send_to.as_deref(), now)?;
        state.stats.count(Counter::InvoicesSent, Some(&realm));
        changes.push(Change {
            entity: entity.name,
            id: id.to_string(),
            operation: "Emailed",
        });
        Ok(pass.entity_body(entity.name, &sent))
    });
    webhooks::notify(&state, &realm, changes);
    response
}

async fn run_query(pass: Pass, text: &str, headers: &HeaderMap) -> Response {
    let parsed = match query::parse(text.trim()) {
        Ok(parsed) => parsed,
        Err(fault) => return pass.fault(fault),
    };
    let result = query::run(&parsed, &pass.company.books.read());
    match result {
        Ok(mut found) => {
            let base = pass.state.base_url(headers);
            attachments::with_links(&pass.state, &base, &pass.company.realm_id, &mut found);
            pass.json(
                json!({"QueryResponse": found, "time": pass.time})
                    .to_string()
                    .into_bytes(),
            )
        }
        Err(fault) => pass.fault(fault),
    }
}

async fn query_by_get(
    State(state): State<Arc<SimState>>,
    Path(realm): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Query).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let Some(text) = params.get("query") else {
        return pass.fault(Fault::query_parse("query parameter is missing"));
    };
    run_query(pass, text, &headers).await
}

async fn query_by_post(
    State(state): State<Arc<SimState>>,
    Path(realm): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Query).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let text = if text.trim().is_empty() {
        params.get("query").cloned().unwrap_or_default()
    } else {
        text
    };
    run_query(pass, &text, &headers).await
}

async fn report(
    State(state): State<Arc<SimState>>,
    Path((realm, name)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Report).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let today = state.clock.today();
    let result = reports::run(&name, &params, &pass.company, today, &pass.time);
    match result {
        Ok(report) => pass.json(report.to_string().into_bytes()),
        Err(fault) => pass.fault(fault),
    }
}

async fn change_data_capture(
    State(state): State<Arc<SimState>>,
    Path(realm): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Cdc).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let result = cdc::run(&params, &pass.company.books.read(), state.clock.now());
    match result {
        Ok(mut found) => {
            let base = state.base_url(&headers);
            if let Some(Value::Array(sections)) = found.get_mut("QueryResponse") {
                for section in sections {
                    attachments::with_links(&state, &base, &realm, section);
                }
            }
            pass.json(
                json!({"CDCResponse": [found], "time": pass.time})
                    .to_string()
                    .into_bytes(),
            )
        }
        Err(fault) => pass.fault(fault),
    }
}

async fn batch_request(
    State(state): State<Arc<SimState>>,
    Path(realm): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Batch).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let items = match batch::parse(&body) {
        Ok(items) => items,
        Err(fault) => return pass.fault(fault),
    };
    let now = state.clock.now();
    let time = pass.time.clone();
    let mut changes = Vec::new();
    let base = state.base_url(&headers);
    let link = |key: &str, answer: &mut Value| match key {
        "Attachable" => attachments::with_link(&state, &base, &realm, answer),
        "QueryResponse" => attachments::with_links(&state, &base, &realm, answer),
        _ => {}
    };
    let response = write_once(&pass, &params, |books| {
        let (answer, made) = batch::run(items, books, now, &time, link);
        changes = made;
        Ok(answer.to_string().into_bytes())
    });
    webhooks::notify(&state, &realm, changes);
    response
}
