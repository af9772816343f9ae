//! The application: the router assembled from every feature's routes and the layers around
//! them. This is the only module that knows all the features; each feature exposes `routes()`
//! and owns the rest. The state the routes share is in `state.rs`.
//!
//! The JSON API (`/api/v1`) is assembled apart, in [`api`]: each feature's `api.rs` registers
//! its routes together with their OpenAPI description (`utoipa_axum::routes!`), and the
//! document served at `/api/v1/openapi.json` ([`openapi`]) is what was registered.

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::{Extension, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;
use crate::{
    audit, companies, error, mcp, oauth, ops, people, proposals, quickbooks, telemetry, web,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The JSON API: every `/api/v1` route, each registered with its description.
pub fn api() -> OpenApiRouter<AppState> {
    web::openapi::router()
        .merge(people::api::routes())
        .merge(companies::api::routes())
        .merge(oauth::api_routes())
        .merge(audit::api::routes())
        .merge(proposals::api::routes())
}

/// The OpenAPI document of the JSON API, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    web::openapi::finish(api().into_openapi())
}

/// Builds the whole HTTP application.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit_bytes;
    // `/mcp` (and the demo's Intuit, which an upload passes through) take files, so they
    // have their own, larger limit (docs/tools.md, "Attachments").
    let mcp_limit = web::body_limit_for(&state, "/mcp");
    let (api, doc) = api().split_for_parts();
    let doc = web::openapi::Document::new(&web::openapi::finish(doc));
    let pages_and_api = Router::new()
        .merge(ops::routes())
        .merge(oauth::routes())
        .merge(web::routes())
        .merge(api.layer(Extension(doc)))
        .merge(people::pages::routes())
        .merge(audit::pages::routes())
        .merge(companies::routes())
        .merge(proposals::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit));
    let mut router = Router::new()
        .merge(pages_and_api)
        .merge(
            mcp::routes(&state)
                .layer(DefaultBodyLimit::max(mcp_limit))
                .layer(RequestBodyLimitLayer::new(mcp_limit)),
        )
        .fallback(error::not_found_fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::csrf::protect,
        ));
    if let Some(sim) = &state.demo_intuit {
        // After the CSRF layer: the simulated Intuit stands for another site, whose consent
        // form never carries our CSRF token (real Intuit never sees our cookies at all).
        router = router.nest_service(
            quickbooks::demo::MOUNT,
            quickbooks::demo::router(sim).layer(RequestBodyLimitLayer::new(mcp_limit)),
        );
    }
    router
        .layer(axum::middleware::from_fn(telemetry::track_requests))
        // Bodies of unrouted requests (404s) are never read beyond this.
        .layer(RequestBodyLimitLayer::new(mcp_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::refuse_oversized,
        ))
        // Outside the body limit, so its plain 413 gets the JSON shape too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::security_headers,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(120),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(telemetry::request_span::<_>))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::*;

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every string literal in the code (tests excepted: a file's `#[cfg(test)]` module is at
    /// its end) that starts with `/api/`, with where it is.
    fn api_literals() -> Vec<(String, usize, String, String)> {
        let needle = format!("\"/{}/", "api");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut found = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source readable");
            let name = file.strip_prefix(&src).unwrap().display().to_string();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("#[cfg(test)]") {
                    break;
                }
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for (i, _) in line.match_indices(&needle) {
                    let rest = &line[i + 1..];
                    let literal = rest[..rest.find('"').unwrap_or(rest.len())].to_owned();
                    found.push((name.clone(), n + 1, line.to_owned(), literal));
                }
            }
        }
        found
    }

    /// The routes under `/api/` are the ones registered with `utoipa_axum::routes!`, so each
    /// is in the document: a path written anywhere but a `#[utoipa::path]` attribute must be one
    /// the document describes (a page's link to the API), so a plain `.route("/api/…")` or a
    /// `nest` of a new path, served undocumented, fails here. And each documented handler is
    /// registered (its path is in the generated document).
    #[test]
    fn every_api_route_is_registered_with_its_description() {
        let doc = openapi();
        let literals = api_literals();
        assert!(!literals.is_empty(), "the scan found no /api/ path at all");
        for (file, line, text, literal) in literals {
            if !text.contains("path = \"") {
                // Anywhere else (a page's link to the CSV export, say) the path must be one the
                // document describes; a `.route("/api/…")` of its own would not be.
                let path = literal.split('?').next().unwrap_or(&literal);
                assert!(
                    doc.paths.paths.contains_key(path),
                    "src/{file}:{line}: `{literal}` outside #[utoipa::path] is not a documented route: register /api routes with utoipa_axum::routes! in the feature's api.rs, described by #[utoipa::path] (docs/architecture.md, \"OpenAPI\")"
                );
                continue;
            }
            assert!(
                doc.paths.paths.contains_key(&literal),
                "src/{file}:{line}: `{literal}` is described but not registered: add the handler to its feature's routes() with routes!"
            );
        }
    }

    /// Each operation says what it does, answers with a success and the errors it can give,
    /// declares its path parameters, and every schema it names exists.
    #[test]
    fn the_document_describes_every_operation_fully() {
        let doc: Value = serde_json::to_value(openapi()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 17, "{}", paths.len());
        for (path, item) in paths {
            assert!(path.starts_with("/api/v1/"), "{path}");
            let params: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, op) in item.as_object().unwrap() {
                let at = format!("{} {path}", method.to_uppercase());
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{at}: summary"
                );
                assert!(
                    op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                    "{at}: tags"
                );
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|c| c.starts_with('2')),
                    "{at}: no success"
                );
                assert!(responses.contains_key("500"), "{at}: no 500");
                let public = path == "/api/v1/openapi.json";
                for code in ["401", "403"] {
                    assert_eq!(responses.contains_key(code), !public, "{at}: {code}");
                }
                if op.get("requestBody").is_some() {
                    for code in ["400", "413", "415", "422"] {
                        assert!(responses.contains_key(code), "{at}: {code}");
                    }
                }
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert_eq!(declared, params, "{at}: path parameters");
                if !params.is_empty() {
                    assert!(responses.contains_key("404"), "{at}: 404");
                }
            }
        }
        // Every reference resolves.
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            if let Some(name) = r.strip_prefix("#/components/schemas/") {
                assert!(schemas.contains_key(name), "{r}");
            } else {
                let name = r.strip_prefix("#/components/responses/").unwrap_or(r);
                assert!(doc["components"]["responses"].get(name).is_some(), "{r}");
            }
        }
    }
}
