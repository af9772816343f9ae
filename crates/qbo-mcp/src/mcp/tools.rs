//! The tool registry: every tool, the role it needs, its input schema and its handler, in one
//! table ([`TOOLS`], the `compact` profile; `intuit` generates Intuit's tool names onto the same
//! handlers). `tools/list` shows a person only the tools their role allows, and `tools/call`
//! refuses a tool above the caller's role before its handler runs — so a handler never checks
//! the role itself.
//!
//! To add a tool: write `async fn my_tool(cx: &ToolContext, args: MyArgs) -> ToolOutcome`
//! with `#[derive(Deserialize, JsonSchema)] struct MyArgs`, and add a line to [`TOOLS`] with
//! `tool!(name, role, effect, "description", my_tool, MyArgs)`; its `outputSchema` comes from
//! `schemas::output` by name.

use std::sync::LazyLock;

use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ToolCaller, books, schemas};
use crate::config::ToolsProfile;
use crate::people::Role;
use crate::state::AppState;

/// What a tool handler gets: the application state and who is calling.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub state: AppState,
    pub caller: ToolCaller,
    /// The company the call resolved to (realm id, name), set where the `company` argument is
    /// resolved, so the audit entry names the company used rather than the raw argument.
    pub company: std::sync::OnceLock<UsedCompany>,
    /// What the call did, for its audit entry (`trail`).
    pub trail: super::trail::Trail,
}

impl ToolContext {
    pub fn new(state: AppState, caller: ToolCaller) -> Self {
        Self {
            state,
            caller,
            company: std::sync::OnceLock::new(),
            trail: Default::default(),
        }
    }
}

/// The company a tool call used, for its audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedCompany {
    pub realm_id: String,
    pub name: String,
}

/// A tool's answer: structured JSON plus a short summary for people.
pub type ToolOutcome = Result<ToolOutput, ToolError>;

#[derive(Debug)]
pub struct ToolOutput {
    pub summary: String,
    pub data: Value,
}

/// A failure the assistant should read (a tool error, not a protocol error): what went wrong
/// and what to do.
#[derive(Debug)]
pub struct ToolError(pub String);

impl ToolOutput {
    /// The JSON goes once, as structured content; the text is the short summary.
    fn into_result(self) -> CallToolResult {
        let mut result = CallToolResult::structured(self.data);
        result.content = vec![ContentBlock::text(self.summary)];
        result
    }
}

/// What a tool does to the books, which decides its annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only: `readOnlyHint`, idempotent.
    Read,
    /// Adds a record: not destructive, not idempotent (a second call adds another).
    Create,
    /// Changes given fields: not destructive (nothing is lost but the old values of the
    /// fields named), idempotent (the same change again leaves the same record).
    Update,
    /// Deletes, voids or deactivates: destructive, idempotent.
    Delete,
    /// Emails people outside the server: open world, not idempotent (each call sends).
    Send,
}

impl Effect {
    fn annotations(self) -> ToolAnnotations {
        let read = self == Effect::Read;
        ToolAnnotations::new()
            .read_only(read)
            .destructive(self == Effect::Delete)
            .idempotent(matches!(
                self,
                Effect::Read | Effect::Update | Effect::Delete
            ))
            .open_world(self == Effect::Send)
    }
}

impl ToolError {
    pub fn into_result(self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(self.0)])
    }
}

/// A tool's handler; it gets its own spec, so generated tools know their `subject`.
pub type Run =
    for<'a> fn(&'a ToolContext, &'static ToolSpec, JsonObject) -> BoxFuture<'a, ToolOutcome>;

/// One tool in the registry.
#[derive(Debug)]
pub struct ToolSpec {
    pub name: &'static str,
    /// The least role that may see and call it.
    pub role: Role,
    /// What it does to the books (its annotations).
    pub effect: Effect,
    /// The compact tool it runs as (`query` for a generated `search_customers`): its
    /// `outputSchema` is that tool's.
    pub kind: &'static str,
    pub description: &'static str,
    /// What a generated tool acts on (a QuickBooks entity or report name); empty otherwise.
    pub subject: &'static str,
    pub schema: fn() -> JsonObject,
    pub run: Run,
}

impl ToolSpec {
    /// Whether a person with `role` may see and call this tool.
    pub fn permits(&self, role: Role) -> bool {
        role >= self.role
    }

    /// Runs the tool for `cx.caller`, refusing a caller below the tool's role.
    pub async fn call(&'static self, cx: &ToolContext, args: JsonObject) -> CallToolResult {
        if !self.permits(cx.caller.person.role) {
            return ToolError(format!(
                "`{}` needs the {} role; {} is a {}. Ask an admin if you need it.",
                self.name,
                self.role.as_str(),
                cx.caller.person.username,
                cx.caller.person.role.as_str()
            ))
            .into_result();
        }
        // Intuit's `{"params": {…}}` wrapper, except where `params` is an argument itself.
        let args = if self.kind == "run_report" {
            args
        } else {
            super::intuit_calls::unwrapped(args)
        };
        match (self.run)(cx, self, args).await {
            Ok(output) => output.into_result(),
            Err(e) => e.into_result(),
        }
    }

    fn describe(&self, intuit: bool) -> Tool {
        let mut input = (self.schema)();
        schemas::refine(&mut input, self.subject, self.effect != Effect::Read);
        if matches!(self.kind, "attach_file" | "list_attachments") {
            schemas::attachable_entities(&mut input);
        }
        if intuit {
            schemas::intuit_wrapper(&mut input);
        }
        Tool::new(self.name, self.description, input)
            .with_raw_output_schema(std::sync::Arc::new(schemas::output(
                self.kind,
                self.subject,
            )))
            .annotate(self.effect.annotations())
    }
}

/// Parses a tool's arguments, as a tool error the assistant can correct.
pub fn arguments<T: DeserializeOwned>(args: JsonObject) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(args))
        .map_err(|e| ToolError(format!("The arguments are not valid: {e}.")))
}

pub fn schema<T: JsonSchema>() -> JsonObject {
    match serde_json::to_value(schemars::schema_for!(T)) {
        Ok(Value::Object(mut o)) => {
            o.remove("$schema");
            o.remove("title");
            o.entry("properties").or_insert_with(|| json!({}));
            o
        }
        _ => JsonObject::from_iter([("type".to_owned(), json!("object"))]),
    }
}

macro_rules! tool {
    ($name:literal, $role:expr, $effect:expr, $description:literal, $handler:path, $args:ty) => {
        ToolSpec {
            name: $name,
            role: $role,
            effect: $effect,
            kind: $name,
            description: $description,
            subject: "",
            schema: schema::<$args>,
            run: |cx, _spec, args| {
                Box::pin(async move {
                    let args: $args = arguments(args)?;
                    $handler(cx, args).await
                })
            },
        }
    };
}

/// Every tool, with the role it needs. The one place that says who may call what.
pub static TOOLS: &[ToolSpec] = &[
    tool!(
        "list_companies",
        Role::Viewer,
        Effect::Read,
        "List the QuickBooks Online companies you may use, with each connection's status. Use a company's realm_id or name as the `company` argument of other tools.",
        books::list_companies,
        NoArguments
    ),
    tool!(
        "get_company_info",
        Role::Viewer,
        Effect::Read,
        "Read a company's QuickBooks CompanyInfo (name, address, fiscal year) and Preferences (currency, accounting method, …).",
        books::get_company_info,
        books::CompanyArg
    ),
    tool!(
        "query",
        Role::Viewer,
        Effect::Read,
        "Run a QuickBooks query (`SELECT * FROM Customer WHERE Active = true`; strings quoted with ', a quote or backslash in them escaped with a backslash). Answers 100 rows unless `limit` (at most 1000) says otherwise; when more match, the answer has `next_cursor`: pass it as `cursor` with the same query for the next rows. `SELECT COUNT(*) FROM …` counts.",
        books::query,
        books::QueryArgs
    ),
    tool!(
        "get_entity",
        Role::Viewer,
        Effect::Read,
        "Read one entity by QuickBooks type (`Invoice`) and id.",
        books::get_entity,
        books::EntityArgs
    ),
    tool!(
        "run_report",
        Role::Viewer,
        Effect::Read,
        "Run a QuickBooks report by name (ProfitAndLoss, BalanceSheet, …) for a period, complete, with `totals` from the report's own summary rows.",
        books::run_report,
        books::ReportToolArgs
    ),
    tool!(
        "changes_since",
        Role::Viewer,
        Effect::Read,
        "Entities of the given types created, changed or deleted since a time (QuickBooks' change data capture, 30 days back at most).",
        books::changes_since,
        books::ChangesArgs
    ),
    tool!(
        "get_proposal",
        Role::Viewer,
        Effect::Read,
        "Follow up a write that waits for approval: the proposal's status (pending, approved, rejected, executed, failed, stale), who decided, their note, and QuickBooks' result once executed.",
        super::approvals::get_proposal,
        super::approvals::ProposalArgs
    ),
    tool!(
        "list_attachments",
        Role::Viewer,
        Effect::Read,
        "List the files and notes attached to one entity (an invoice, bill, purchase, customer, …): each attachment's id, file name, type and size.",
        super::attachments::list_attachments,
        super::attachments::ListArgs
    ),
    tool!(
        "get_attachment",
        Role::Viewer,
        Effect::Read,
        "Read one attachment by `attachable_id`: its metadata and a temporary download link (valid 15 minutes); with `include_content`, also the file's bytes as base64 when the file is at most 5 MB.",
        super::attachments::get_attachment,
        super::attachments::GetArgs
    ),
    tool!(
        "attach_file",
        Role::Bookkeeper,
        Effect::Create,
        "Attach a file (a receipt, a signed quote, …) to an entity: `content_base64` is the file's bytes, base64-encoded, at most 100 MB decoded; QuickBooks takes ai, csv, doc, docx, eps, gif, jpeg, jpg, ods, pdf, png, rtf, tif, txt, xls, xlsx and xml files, with the matching `content_type`. Each call adds another attachment.",
        super::attachments::attach_file,
        super::attachments::AttachArgs
    ),
    tool!(
        "create_entity",
        Role::Bookkeeper,
        Effect::Create,
        "Create an entity (customer, invoice, bill, …) from its QuickBooks JSON in `fields`; `dry_run` checks it and shows what would be sent without sending.",
        books::create_entity,
        books::CreateArgs
    ),
    tool!(
        "update_entity",
        Role::Bookkeeper,
        Effect::Update,
        "Change some fields of an entity (sparse update: fields you omit keep their values). Reads the SyncToken itself when not given.",
        books::update_entity,
        books::UpdateArgs
    ),
    tool!(
        "send_invoice",
        Role::Bookkeeper,
        Effect::Send,
        "Email an invoice to a person outside this server: to `email`, or to the invoice's own address (BillEmail). Each call sends another email.",
        books::send_invoice,
        books::SendArgs
    ),
    tool!(
        "send_estimate",
        Role::Bookkeeper,
        Effect::Send,
        "Email an estimate to a person outside this server: to `email` (QuickBooks also writes it into the estimate's BillEmail), or to the estimate's own address. Each call sends another email.",
        books::send_estimate,
        books::SendEstimateArgs
    ),
    tool!(
        "update_company_settings",
        Role::Admin,
        Effect::Update,
        "Change the company's own settings (admins): its CompanyInfo (name, legal name, addresses, phone, email, website) or its Preferences (class and location tracking, sales-form and email defaults, …). Sparse: fields you omit keep their values; QuickBooks refuses changes to read-only preferences. Reads the SyncToken itself when not given.",
        books::update_company_settings,
        books::SettingsArgs
    ),
    tool!(
        "delete_entity",
        Role::Admin,
        Effect::Delete,
        "Delete a transaction, void it, or deactivate a name-list entity (Customer, Vendor, …), as QuickBooks allows; by default name lists are deactivated and transactions deleted.",
        books::delete_entity,
        books::DeleteArgs
    ),
];

/// The tools of one profile, with their descriptions made once.
#[derive(Debug)]
pub struct Registry {
    tools: Vec<&'static ToolSpec>,
    descriptions: Vec<(Role, Tool)>,
}

impl Registry {
    fn new(tools: Vec<&'static ToolSpec>, intuit: bool) -> Self {
        let descriptions = tools.iter().map(|t| (t.role, t.describe(intuit))).collect();
        Self {
            tools,
            descriptions,
        }
    }

    /// The tool named `name`, whatever the caller's role.
    /// Intuit's server spells some names with hyphens (`create-vendor`), and registers some
    /// under other names than its README gives (`read_invoice`): they find the same tool.
    pub fn find(&self, name: &str) -> Option<&'static ToolSpec> {
        let name = name.replace('-', "_");
        let name = super::intuit::readme_name(&name).unwrap_or(&name);
        self.tools.iter().copied().find(|t| t.name == name)
    }

    /// The tools a person with `role` may see, as `tools/list` shows them.
    pub fn visible_to(&self, role: Role) -> Vec<Tool> {
        self.descriptions
            .iter()
            .filter(|(needs, _)| role >= *needs)
            .map(|(_, tool)| tool.clone())
            .collect()
    }

    /// A tool's description by name (for rmcp's argument-header validation).
    pub fn description(&self, name: &str) -> Option<Tool> {
        self.descriptions
            .iter()
            .find(|(_, t)| t.name == name)
            .map(|(_, t)| t.clone())
    }
}

static COMPACT: LazyLock<Registry> = LazyLock::new(|| Registry::new(TOOLS.iter().collect(), false));
static INTUIT: LazyLock<Registry> = LazyLock::new(|| Registry::new(super::intuit::tools(), true));

/// The tools of the configured profile (`QBO_MCP_TOOLS_PROFILE`).
pub fn registry(profile: ToolsProfile) -> &'static Registry {
    match profile {
        ToolsProfile::Compact => &COMPACT,
        ToolsProfile::Intuit => &INTUIT,
    }
}

/// Arguments of a tool that takes none.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoArguments {}
