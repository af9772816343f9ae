//! The OpenAPI document of the JSON API, generated from the handlers: each feature's `api.rs`
//! registers its `/api/v1` routes with `utoipa_axum::routes!`, which adds a route and its
//! `#[utoipa::path]` description together, so a route cannot be served undocumented (and
//! `app::tests` fails on an `/api/v1` route registered any other way). This module holds what
//! every operation shares: the base document (title, authentication), the error body, the
//! error responses every operation can give, and `GET /api/v1/openapi.json`.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, RefOr};
use utoipa::{OpenApi as _, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The error body of every `/api/v1` route (`AppError`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documentation only: `AppError` writes this shape.
pub struct ErrorBody {
    error: ErrorDetail,
}

/// A machine-readable code (listed in docs/reference.md) and a sentence for people.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documentation only.
pub struct ErrorDetail {
    #[schema(example = "forbidden")]
    code: String,
    message: String,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "qbo-mcp JSON API",
        version = "1",
        description = "Authenticate with `Authorization: Bearer <personal access token>` or a browser session cookie; cookie requests that change state need the `x-csrf-token` header (its value is `csrf_token` from `GET /api/v1/me`). Errors are `{\"error\": {\"code\", \"message\"}}`; the codes are listed in docs/reference.md."
    ),
    servers((url = "/")),
    components(schemas(ErrorBody, ErrorDetail)),
    security(("bearer" = []), ("session" = [])),
)]
struct Base;

/// The routers of the JSON API start from this document.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Base::openapi()).routes(routes!(document))
}

/// The document as served: the registered operations plus what they all share (security
/// schemes, the error responses).
pub fn finish(mut doc: OpenApi) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A personal access token (`qbo_pat_…`)."))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "qbo_session",
            "The browser session (`__Host-qbo_session` over HTTPS); send `x-csrf-token` on changes.",
        ))),
    );
    components.responses.insert(
        "Error".into(),
        RefOr::T(
            utoipa::openapi::ResponseBuilder::new()
                .description("An error: `{\"error\": {\"code\", \"message\"}}`.")
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        ),
    );
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_errors(op);
        }
    }
    doc
}

/// The error responses an operation can give besides its own: 500 always; 401 and 403
/// behind sign-in; 400, 413, 415 and 422 with a JSON body; 404 with a path parameter; 400
/// with query parameters.
fn add_errors(op: &mut Operation) {
    let public = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
    let mut codes = vec!["500"];
    if !public {
        codes.extend(["401", "403"]);
    }
    if op.request_body.is_some() {
        codes.extend(["400", "413", "415", "422"]);
    }
    let given = |place: ParameterIn| {
        op.parameters
            .iter()
            .flatten()
            .any(|p| p.parameter_in == place)
    };
    if given(ParameterIn::Path) {
        codes.push("404");
    }
    if given(ParameterIn::Query) {
        codes.push("400");
    }
    for code in codes {
        op.responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Error")));
    }
}

/// The served document, serialised once when the router is built.
#[derive(Clone, Debug)]
pub struct Document(pub Arc<String>);

impl Document {
    pub fn new(doc: &OpenApi) -> Document {
        Document(Arc::new(doc.to_pretty_json().unwrap_or_default()))
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "openapi",
    security(()),
    responses((status = 200, description = "This OpenAPI 3.1 document.", content_type = "application/json"))
)]
async fn document(Extension(doc): Extension<Document>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
        .into_response()
}
