//! The body of a `POST /mcp`, from any bytes, as the server reads it: first
//! `qbo_mcp::mcp::jsonrpc::check_body` (every body meets it; a refusal must carry one of the
//! three JSON-RPC error codes and a sentence), then rmcp's `ClientJsonRpcMessage` (what its
//! Streamable HTTP service deserializes), then for a `tools/call` the arguments into the tools'
//! argument types and, for a search, the query builder. Never a panic; a message that parsed
//! serializes and parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qbo_mcp::mcp::books::{CreateArgs, EntityArgs, QueryArgs, ReportToolArgs};
use qbo_mcp::mcp::intuit::{SearchArgs, search_query};
use qbo_mcp::mcp::tools::arguments;
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonObject};

fuzz_target!(|data: &[u8]| {
    if let Err(refusal) = qbo_mcp::mcp::jsonrpc::check_body(data) {
        assert!(
            matches!(refusal.code, -32700 | -32600 | -32602),
            "unexpected JSON-RPC code {}",
            refusal.code
        );
        assert!(!refusal.message.is_empty(), "a refusal says what is wrong");
        return;
    }
    let Ok(message) = serde_json::from_slice::<ClientJsonRpcMessage>(data) else {
        return;
    };
    let written = serde_json::to_vec(&message).expect("a parsed message serializes");
    if let Err(e) = serde_json::from_slice::<ClientJsonRpcMessage>(&written) {
        panic!(
            "{} parsed, but its serialization {} does not: {e}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&written)
        );
    }
    let ClientJsonRpcMessage::Request(request) = message else {
        return;
    };
    let ClientRequest::CallToolRequest(call) = request.request else {
        return;
    };
    let args: JsonObject = call.params.arguments.unwrap_or_default();
    let _ = arguments::<QueryArgs>(args.clone());
    let _ = arguments::<EntityArgs>(args.clone());
    let _ = arguments::<CreateArgs>(args.clone());
    let _ = arguments::<ReportToolArgs>(args.clone());
    if let Ok(search) = arguments::<SearchArgs>(args) {
        let _ = search_query("Customer", &search);
    }
});
