//! The shape check in front of rmcp: a `POST /mcp` body must be one JSON-RPC 2.0 message
//! before the MCP library sees it, so a malformed body gets a JSON-RPC error a person can act
//! on (docs/mcp.md) instead of a library's internal message or a wrong status:
//!
//! - not JSON → `-32700` parse error, HTTP 400, `id` null;
//! - not one object (an array, a batch, a number…), a wrong or missing `jsonrpc`, an `id` that
//!   is not a string or number, or neither a `method` nor a response → `-32600` invalid
//!   request, HTTP 400 (Streamable HTTP: the server cannot accept the input), `id` echoed when
//!   it is known;
//! - `params` that are not an object, and a `tools/call` without a tool `name` or with
//!   `arguments` that are not an object → `-32602` invalid params, answered as the request's
//!   JSON-RPC response (HTTP 200) — or HTTP 400 for a notification, which has no response.
//!
//! [`check_body`] is pure (bytes in, verdict out) so property tests and fuzz targets call it
//! directly; [`check`] is the middleware. The body is parsed once here; rmcp parses it again,
//! which for MCP's small messages costs far less than the request's database round trip.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// JSON-RPC's error codes used here.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

/// Why a body is refused, as the JSON-RPC error answered for it.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRpcRefusal {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// The JSON-RPC error code.
    pub code: i64,
    /// A sentence saying what is wrong and what to send instead.
    pub message: &'static str,
    /// The request's `id` when it is known and valid; `null` otherwise.
    pub id: Value,
}

impl JsonRpcRefusal {
    fn new(code: i64, message: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message,
            id: Value::Null,
        }
    }

    fn with_id(mut self, id: &Value) -> Self {
        self.id = id.clone();
        self
    }

    /// The JSON-RPC error response.
    pub fn body(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": {"code": self.code, "message": self.message},
        })
    }
}

impl IntoResponse for JsonRpcRefusal {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// Checks that `body` is one well-formed JSON-RPC 2.0 message as MCP uses it.
pub fn check_body(body: &[u8]) -> Result<(), JsonRpcRefusal> {
    let message: Value = serde_json::from_slice(body).map_err(|_| {
        JsonRpcRefusal::new(
            PARSE_ERROR,
            "The body is not valid JSON: send one JSON-RPC 2.0 message as a JSON object.",
        )
    })?;
    let object = match message {
        Value::Object(o) => o,
        Value::Array(a) if a.is_empty() => {
            return Err(JsonRpcRefusal::new(
                INVALID_REQUEST,
                "The body is an empty array: send one JSON-RPC 2.0 message as a JSON object.",
            ));
        }
        Value::Array(_) => {
            return Err(JsonRpcRefusal::new(
                INVALID_REQUEST,
                "Batches are not supported: send one JSON-RPC 2.0 message per request, as a JSON object.",
            ));
        }
        _ => {
            return Err(JsonRpcRefusal::new(
                INVALID_REQUEST,
                "The body is not a JSON object: send one JSON-RPC 2.0 message as a JSON object.",
            ));
        }
    };
    let id = match object.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
        Some(_) => {
            return Err(JsonRpcRefusal::new(
                INVALID_REQUEST,
                "The message's `id` must be a string or a number.",
            ));
        }
    };
    let refuse = |code, message| {
        let refusal = JsonRpcRefusal::new(code, message);
        match id {
            Some(id) => refusal.with_id(id),
            None => refusal,
        }
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(refuse(
            INVALID_REQUEST,
            "The message must say `\"jsonrpc\": \"2.0\"`: this endpoint speaks JSON-RPC 2.0 only.",
        ));
    }
    let method = match object.get("method") {
        Some(Value::String(m)) => m.as_str(),
        Some(_) => {
            return Err(refuse(
                INVALID_REQUEST,
                "The message's `method` must be a string, such as \"tools/list\".",
            ));
        }
        // A client's answer to a server request: an id and a result or an error.
        None if id.is_some() && (object.contains_key("result") || object.contains_key("error")) => {
            return Ok(());
        }
        None => {
            return Err(refuse(
                INVALID_REQUEST,
                "The message has no `method`: name the JSON-RPC method to call, such as \"tools/list\".",
            ));
        }
    };
    let invalid_params = |message| {
        let mut refusal = refuse(INVALID_PARAMS, message);
        // A request's error is its response; a notification has none, so the HTTP status says it.
        if id.is_some() {
            refusal.status = StatusCode::OK;
        }
        refusal
    };
    let params = match object.get("params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p),
        Some(_) => {
            return Err(invalid_params(
                "The message's `params` must be a JSON object.",
            ));
        }
    };
    if method == "tools/call" {
        let Some(params) = params else {
            return Err(invalid_params(
                "`tools/call` needs `params` with the tool's `name` (see tools/list) and its `arguments` as an object.",
            ));
        };
        if !params.get("name").is_some_and(Value::is_string) {
            return Err(invalid_params(
                "`tools/call` needs `params.name`, the name of a tool as tools/list shows it.",
            ));
        }
        if !matches!(
            params.get("arguments"),
            None | Some(Value::Null | Value::Object(_))
        ) {
            return Err(invalid_params(
                "The tool's `arguments` must be a JSON object of named arguments, such as {\"company\": \"…\"}.",
            ));
        }
    }
    Ok(())
}

/// The middleware: refuses a malformed `POST /mcp` body with its JSON-RPC error, and hands a
/// well-formed one on unchanged. Other methods (`GET`, `DELETE`) pass through.
pub async fn check(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // The body-limit layer outside bounds the size; its error here means the body was too big.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => {
            return JsonRpcRefusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: INVALID_REQUEST,
                message: "The message is larger than this server accepts.",
                id: Value::Null,
            }
            .into_response();
        }
    };
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    // rmcp answers a body of another type with 415, as Streamable HTTP asks.
    if is_json && let Err(refusal) = check_body(&bytes) {
        return refusal.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> Option<i64> {
        check_body(body.as_bytes()).err().map(|r| r.code)
    }

    #[test]
    fn well_formed_messages_pass() {
        for ok in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":"x","method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"query"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"query","arguments":{"query":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
        ] {
            assert_eq!(check_body(ok.as_bytes()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn malformed_messages_get_their_codes() {
        assert_eq!(code("nope"), Some(PARSE_ERROR));
        assert_eq!(code(""), Some(PARSE_ERROR));
        assert_eq!(code("\u{0}"), Some(PARSE_ERROR));
        for bad in [
            "[]",
            "[1]",
            "1",
            "null",
            "\"x\"",
            r#"{"id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":[1],"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":true}"#,
        ] {
            assert_eq!(code(bad), Some(INVALID_REQUEST), "{bad}");
        }
        for bad in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"q","arguments":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"q","arguments":[]}}"#,
        ] {
            assert_eq!(code(bad), Some(INVALID_PARAMS), "{bad}");
        }
    }

    #[test]
    fn the_answer_echoes_a_known_id_only() {
        let r = check_body(br#"{"jsonrpc":"1.0","id":"abc","method":"x"}"#).unwrap_err();
        assert_eq!(r.id, json!("abc"));
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = check_body(br#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#).unwrap_err();
        assert_eq!(r.id, Value::Null);
        let r = check_body(br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":1}"#)
            .unwrap_err();
        assert_eq!((r.status, r.id), (StatusCode::OK, json!(5)));
        let r =
            check_body(br#"{"jsonrpc":"2.0","method":"notifications/x","params":1}"#).unwrap_err();
        assert_eq!((r.status, r.id), (StatusCode::BAD_REQUEST, Value::Null));
    }
}
