//! The rmcp server handler: server information, `tools/list` filtered by the caller's role and
//! `tools/call` through the registry, each call recorded in the audit log with what it did
//! (`trail`). The caller comes from the request's extensions, where the gate put it; a
//! request that reaches here without one is refused.

use std::borrow::Cow;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, InitializeResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use std::time::Instant;

use serde_json::json;

use super::ToolCaller;
use super::tools::{self, ToolContext};
use super::trail;
use crate::audit::{self, NewEntry, Outcome};
use crate::state::AppState;

/// The MCP server for one request (rmcp makes one per request; it is a cheap clone).
#[derive(Debug, Clone)]
pub struct McpHandler {
    state: AppState,
}

impl McpHandler {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// The tools of the configured profile.
    fn tools(&self) -> &'static tools::Registry {
        tools::registry(self.state.config.tools_profile)
    }
}

/// The revisions served (older ones stay for clients that still speak them).
const VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

fn caller(ctx: &RequestContext<RoleServer>) -> Result<ToolCaller, McpError> {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<ToolCaller>())
        .cloned()
        .ok_or_else(|| {
            McpError::invalid_request("This request carries no authenticated caller.", None)
        })
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("qbo-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("QuickBooks Online (qbo-mcp)"),
            )
            .with_instructions(
                "Tools for the team's QuickBooks Online companies. Start with list_companies; pass a company's realm_id or name as `company` when you have more than one.",
            )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = caller(&ctx)?;
        Ok(ListToolsResult::with_all_items(
            self.tools().visible_to(caller.person.role),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller(&ctx)?;
        let Some(tool) = self.tools().find(&request.name) else {
            return Err(McpError::invalid_params(
                format!("There is no tool named `{}`.", request.name),
                None,
            ));
        };
        let args = request.arguments.unwrap_or_default();
        let requested_company = args
            .get("company")
            .and_then(|c| c.as_str())
            .map(str::to_owned);
        let argument_names: Vec<&String> = args.keys().collect();
        let username = caller.person.username.clone();
        let base = NewEntry::new(Some(&username), "tool.call", Outcome::Ok)
            .tool(tool.name)
            .assistant(caller.assistant.label())
            .details(json!({ "arguments": argument_names }));
        let cx = ToolContext::new(self.state.clone(), caller);
        cx.trail.begin(base);
        let started = Instant::now();
        let result = tool.call(&cx, args).await;
        let outcome = match (result.is_error, tool.permits(cx.caller.person.role)) {
            (_, false) => Outcome::Refused,
            (Some(true), true) => Outcome::Error,
            _ => Outcome::Ok,
        };
        // The company the call used; a company that did not resolve is only what was asked.
        let used = cx.company.get();
        let Some(mut entry) = cx
            .trail
            .entry(used.map(|c| (c.realm_id.as_str(), c.name.as_str())))
        else {
            return Err(McpError::internal_error(
                "The call left no audit entry.",
                None,
            ));
        };
        entry.outcome = outcome;
        entry.duration_ms = Some(started.elapsed().as_millis() as i64);
        if used.is_none()
            && let Some(requested) = requested_company.filter(|c| !c.trim().is_empty())
        {
            entry.details["requested_company"] = json!(trail::shortened(&requested));
        }
        match cx.trail.pending() {
            // A write: its pending entry is completed. Should that fail, the entry stays
            // `pending` (read later as `unknown`) and the result is still returned, since
            // QuickBooks has it and withholding it would invite the assistant to repeat it.
            Some(id) => {
                if let Err(e) = audit::complete(&self.state.db, id, &entry).await {
                    tracing::error!(error = %e.message, entry = id, "cannot complete a write's audit entry");
                }
            }
            // Durable before the result is returned (docs/reference.md, "Audit"): no record,
            // no result.
            // Committed with whatever other calls' entries are waiting at the same moment.
            None => self.state.audit.record(entry).await.map_err(|e| {
                tracing::error!(error = %e, "cannot record a tool call");
                McpError::internal_error(
                    "The call could not be recorded in the audit log; it was not returned.",
                    None,
                )
            })?,
        }
        Ok(result.into())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools().description(name)
    }
}
