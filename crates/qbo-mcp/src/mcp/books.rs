//! The QuickBooks tools, `list_companies` first. Each other tool resolves the `company` argument against the companies the
//! caller may use, then asks `quickbooks::operations`. Faults come back as tool errors that
//! name QuickBooks' code and say what to do. Each tool notes what it read or wrote on the
//! call's audit trail (`trail`); a write records its pending entry before it is sent.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::results::{count_query, named, page_of};
use super::tools::{NoArguments, ToolContext, ToolError, ToolOutcome, ToolOutput};
use super::trail::shortened;
use crate::companies::{visible_companies, visible_company};
use crate::error::{AppError, capitalise};
use crate::people;
use crate::quickbooks::entities::{self, Kind};
use crate::quickbooks::operations::{
    Answer, DeleteMode, ReportArgs, Write, delete_mode, query_entity,
};
use crate::quickbooks::{Company, QboError, Status};

/// The companies the caller may use (`companies::visible_companies`).
async fn companies(cx: &ToolContext) -> Result<Vec<Company>, ToolError> {
    visible_companies(&cx.state, &cx.caller.person)
        .await
        .map_err(unreadable)
}

fn unreadable(e: AppError) -> ToolError {
    tracing::error!(error = %e.message, "cannot read companies");
    ToolError("The company list cannot be read right now; try again in a moment.".into())
}

/// `list_companies`: the companies the caller may use, with connection status — every
/// company for admins, granted ones for others.
pub async fn list_companies(cx: &ToolContext, _args: NoArguments) -> ToolOutcome {
    let visible = companies(cx).await?;
    let listed: Vec<Value> = visible
        .iter()
        .map(|c| {
            json!({
                "realm_id": c.realm_id,
                "name": c.name,
                "status": c.status.as_str(),
                "connected_by": c.connected_by,
            })
        })
        .collect();
    cx.trail.note(json!({ "rows": listed.len() }));
    let summary = match visible.as_slice() {
        [] => format!(
            "No QuickBooks company is available to you yet. {}",
            ask_admins(cx, "to connect one (Companies page) or to grant you access").await
        ),
        [one] => format!("1 company: {} ({}).", one.name, one.status.as_str()),
        all => format!(
            "{} companies: {}.",
            all.len(),
            all.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Ok(ToolOutput {
        summary,
        data: json!({ "companies": listed }),
    })
}

/// Finds the company a tool call means: by realm id or name, or the only one available.
pub(super) async fn company(cx: &ToolContext, wanted: Option<&str>) -> Result<Company, ToolError> {
    let found = match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => visible_company(&cx.state, &cx.caller.person, w)
            .await
            .map_err(unreadable)?,
        None => {
            let mut companies = companies(cx).await?;
            if companies.len() > 1 {
                return Err(ToolError(format!(
                    "You have several companies; pass `company` as one of: {}.",
                    companies
                        .iter()
                        .map(|c| format!("{} ({})", c.name, c.realm_id))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            companies.pop()
        }
    };
    let Some(company) = found else {
        return Err(ToolError(match wanted {
            Some(w) => format!(
                "There is no company `{w}` available to you; call list_companies to see yours."
            ),
            None => format!(
                "No QuickBooks company is available to you. {}",
                ask_admins(cx, "to connect one (Companies page) or to grant you access").await
            ),
        }));
    };
    // The first company a call resolves is the one its audit entry names.
    let _ = cx.company.set(super::tools::UsedCompany {
        realm_id: company.realm_id.clone(),
        name: company.name.clone(),
    });
    if company.status == Status::NeedsReconnect {
        return Err(ToolError(format!(
            "{} must be reconnected to QuickBooks before it can be used. {}",
            company.name,
            ask_admins(cx, "to reconnect it on the Companies page").await
        )));
    }
    Ok(company)
}

/// "Ask an admin — dana (dana@example.com) or craig — {what}.": whom to ask, by name.
async fn ask_admins(cx: &ToolContext, what: &str) -> String {
    let names = people::admin_contacts(&cx.state.db)
        .await
        .unwrap_or_default();
    let names = match names.split_last() {
        None => return format!("Ask an admin {what}."),
        Some((last, [])) => last.clone(),
        Some((last, others)) => format!("{} or {last}", others.join(", ")),
    };
    format!("Ask an admin ({names}) {what}.")
}

/// A QuickBooks answer as the tool's result, its request id noted on the trail.
pub(super) async fn explain(
    cx: &ToolContext,
    result: Result<Answer, QboError>,
) -> Result<Answer, ToolError> {
    match result {
        Ok(answer) => {
            cx.trail.answered(&answer);
            Ok(answer)
        }
        Err(e) => Err(explain_error(cx, e).await),
    }
}

/// A QuickBooks failure as the tool's error, its request id noted on the trail; a connection
/// only an admin can repair names the admins to ask.
pub(super) async fn explain_error(cx: &ToolContext, e: QboError) -> ToolError {
    if let QboError::Fault { intuit_tid, .. } = &e {
        cx.trail.tid(intuit_tid.as_deref());
    }
    match e {
        QboError::NeedsReconnect { .. } | QboError::NotConnected { .. } => ToolError(format!(
            "{}. {}",
            capitalise(&e.to_string()),
            ask_admins(cx, "to reconnect it on the Companies page").await
        )),
        e => tool_error(e),
    }
}

fn tool_error(e: QboError) -> ToolError {
    ToolError(match e {
        QboError::Fault { fault, intuit_tid } => {
            let advice = match fault.code.as_str() {
                "5010" => "Read the entity again for its current SyncToken, then retry.",
                "610" => {
                    "The record (or one it refers to) is inactive or does not exist: reactivate it (update it with \"Active\": true) or pick an active one, and check the id."
                }
                "2020" => "A required field is missing; add it to `fields`.",
                "2500" => "A reference points to an id that does not exist.",
                "4000" | "4001" => "Fix the query syntax (see QuickBooks' query language).",
                "6140" | "6240" => "That name or number is already used; choose another.",
                _ => "Check the arguments against QuickBooks' documentation for this entity.",
            };
            format!(
                "QuickBooks refused the request (code {}: {}{}). {advice}{}",
                fault.code,
                fault.message,
                if fault.detail.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", fault.detail)
                },
                intuit_tid
                    .map(|t| format!(" Intuit request id: {t}."))
                    .unwrap_or_default()
            )
        }
        QboError::Busy { .. } | QboError::Unavailable { .. } => {
            format!("{e}. This is temporary: retry in a minute.")
        }
        QboError::Internal(cause) => {
            tracing::error!(error = ?cause, "tool failed");
            "Something went wrong on the server; it has been logged. Try again.".into()
        }
        other => format!("{other}"),
    })
}

/// What identifies an entity for people, from its JSON: id, DocNumber, name, total and
/// currency (null where absent; `Trail::note` leaves nulls out).
fn entity_facts(entity: &Value) -> Value {
    let text = |v: &Value| v.as_str().map(shortened);
    let name = ["DisplayName", "Name", "FullyQualifiedName", "CompanyName"]
        .iter()
        .find_map(|k| text(&entity[*k]));
    let total = ["TotalAmt", "Amount"]
        .iter()
        .map(|k| &entity[*k])
        .find(|v| v.is_number() || v.is_string())
        .cloned();
    json!({
        "id": text(&entity["Id"]),
        "doc_number": text(&entity["DocNumber"]),
        "name": name,
        "total": total,
        "currency": text(&entity["CurrencyRef"]["value"]),
    })
}

/// Notes what QuickBooks answered about the `entity` it read or wrote.
fn note_entity(cx: &ToolContext, answer: &Answer, entity: &str) {
    if let Some(e) = answer.value.get(entity) {
        cx.trail.note(entity_facts(e));
    }
}

/// Records the pending audit entry of a write to `c` (unless it is a dry run, which sends
/// nothing), after noting `facts` about it; the write is sent only once this succeeds.
pub(super) async fn before_write(
    cx: &ToolContext,
    c: &Company,
    facts: Value,
    dry_run: bool,
) -> Result<(), ToolError> {
    cx.trail.note(facts);
    if dry_run {
        cx.trail.note(json!({ "dry_run": true }));
        return Ok(());
    }
    cx.trail
        .before_write(&cx.state.db, Some((&c.realm_id, &c.name)))
        .await
}

/// Rows in a query or change-data-capture answer: every array under `QueryResponse`.
fn count_rows(response: &Value) -> usize {
    match response {
        Value::Object(o) => o.values().filter_map(Value::as_array).map(Vec::len).sum(),
        Value::Array(a) => a.iter().map(count_rows).sum(),
        _ => 0,
    }
}

/// A write the company's approval policy holds (`mcp::approvals::hold`); a dry run is never held.
async fn held(
    cx: &ToolContext,
    c: &Company,
    tool: &str,
    write: Write,
    dry_run: bool,
) -> Result<Option<ToolOutput>, ToolError> {
    if dry_run {
        return Ok(None);
    }
    super::approvals::hold(cx, c, tool, write).await
}

fn output(summary: String, answer: Answer) -> ToolOutcome {
    Ok(ToolOutput {
        summary,
        data: answer.value,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyArg {
    /// Realm id or name; optional when you have one company.
    pub company: Option<String>,
}

pub async fn get_company_info(cx: &ToolContext, args: CompanyArg) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    cx.trail.note(json!({ "entity": "CompanyInfo" }));
    let a = cx.state.quickbooks.company_info(&c.realm_id).await;
    let a = explain(cx, a).await?;
    cx.trail.note(json!({ "rows": 1 }));
    output(format!("Company information for {}.", c.name), a)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkArgs {
    pub company: Option<String>,
    /// The transaction's type as Intuit's server names it: invoice, bill, purchase (or
    /// expense), check, transfer, journal_entry, bill_payment, deposit, payment, credit_memo,
    /// vendor_credit.
    pub entity_type: String,
    pub id: String,
}

/// QuickBooks Online's page for each transaction type Intuit's `get_transaction_link` knows.
const LINK_PAGES: &[(&str, &str)] = &[
    ("bill", "bill"),
    ("purchase", "expense"),
    ("expense", "expense"),
    ("cheque", "check"),
    ("check", "check"),
    ("transfer", "transfer"),
    ("journal_entry", "journal"),
    ("journalentry", "journal"),
    ("journal", "journal"),
    ("bill_payment", "billpayment"),
    ("billpayment", "billpayment"),
    ("deposit", "deposit"),
    ("payment", "recvpayment"),
    ("customer_payment", "recvpayment"),
    ("invoice", "invoice"),
    ("credit_memo", "creditmemo"),
    ("creditmemo", "creditmemo"),
    ("vendor_credit", "vendorcredit"),
    ("vendorcredit", "vendorcredit"),
];

/// `get_transaction_link` (the `intuit` profile): the QuickBooks Online page of a
/// transaction, named with its company, since the page opens in whichever company the browser
/// has open. Sends nothing to QuickBooks.
pub async fn transaction_link(cx: &ToolContext, args: LinkArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    let kind = args
        .entity_type
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    let Some((_, page)) = LINK_PAGES.iter().find(|(k, _)| *k == kind) else {
        let mut known: Vec<&str> = LINK_PAGES.iter().map(|(k, _)| *k).collect();
        known.sort_unstable();
        return Err(ToolError(format!(
            "`{}` has no QuickBooks Online page here; use one of: {}.",
            args.entity_type,
            known.join(", ")
        )));
    };
    let id = args.id.trim();
    if id.is_empty() || !id.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(ToolError(format!(
            "`{id}` is not a QuickBooks id (like \"42\")."
        )));
    }
    let link = format!("https://qbo.intuit.com/app/{page}?txnId={id}");
    cx.trail
        .note(json!({ "entity": shortened(&kind), "id": shortened(id) }));
    Ok(ToolOutput {
        summary: format!(
            "[{}] {link} — it opens in the company your browser has open: check that QuickBooks shows {} before changing anything.",
            c.name, c.name
        ),
        data: json!({ "link": link, "company": c.name, "entity_type": kind, "id": id }),
    })
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryArgs {
    pub company: Option<String>,
    /// `SELECT * FROM Entity [WHERE …] [ORDERBY …] [STARTPOSITION n] [MAXRESULTS n]`.
    pub query: String,
    /// Rows per answer, 1–1000 (100 when omitted; a `MAXRESULTS` in the query wins).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous answer to the same query: the rows after it.
    pub cursor: Option<String>,
    /// Pages of 1000 rows, QuickBooks' largest; the rest follows with `cursor`.
    pub fetch_all: Option<bool>,
}

pub async fn query(cx: &ToolContext, args: QueryArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    let entity = query_entity(&args.query).unwrap_or("matching").to_owned();
    cx.trail.note(json!({
        "entity": query_entity(&args.query),
        "query": shortened(&args.query),
        "fetch_all": args.fetch_all.filter(|all| *all),
        "cursor": args.cursor.as_deref().map(shortened),
    }));
    let (base, start, size) = page_of(&args)?;
    if base.to_ascii_uppercase().contains("COUNT(*)") {
        let a = cx.state.quickbooks.query(&c.realm_id, &base, false).await;
        let a = explain(cx, a).await?;
        let n = a.value["QueryResponse"]["totalCount"].as_u64().unwrap_or(0);
        cx.trail.note(json!({ "rows": 1 }));
        return output(format!("{n} {entity} records match in {}.", c.name), a);
    }
    let paged = format!("{base} STARTPOSITION {start} MAXRESULTS {size}");
    let a = cx.state.quickbooks.query(&c.realm_id, &paged, false).await;
    let mut a = explain(cx, a).await?;
    let rows = count_rows(&a.value["QueryResponse"]);
    cx.trail.note(json!({ "rows": rows }));
    // A full page may have more after it: count them, so the summary can say how many.
    let more = if rows < size {
        Some(0)
    } else if let Some(q) = count_query(&base) {
        let total = cx.state.quickbooks.query(&c.realm_id, &q, false).await;
        total
            .ok()
            .and_then(|t| t.value["QueryResponse"]["totalCount"].as_u64())
            .map(|total| (total as usize).saturating_sub(start - 1 + rows))
    } else {
        None
    };
    let next = start + rows;
    let tail = match more {
        Some(0) => String::new(),
        Some(n) => {
            a.value["next_cursor"] = json!(next.to_string());
            a.value["more"] = json!(n);
            format!("; {n} more, pass `cursor` \"{next}\" with the same query")
        }
        None => {
            a.value["next_cursor"] = json!(next.to_string());
            format!("; more may follow, pass `cursor` \"{next}\" with the same query")
        }
    };
    let first = if start > 1 {
        format!(" (from row {start})")
    } else {
        String::new()
    };
    output(
        format!("{rows} {entity} rows{first} from {}{tail}.", c.name),
        a,
    )
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityArgs {
    pub company: Option<String>,
    /// QuickBooks' entity name, e.g. `Customer`, `Invoice`.
    pub entity: String,
    pub id: String,
}

pub async fn get_entity(cx: &ToolContext, args: EntityArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    cx.trail
        .note(json!({ "entity": shortened(&args.entity), "id": shortened(&args.id) }));
    let a = cx
        .state
        .quickbooks
        .get_entity(&c.realm_id, &args.entity, &args.id)
        .await;
    let a = explain(cx, a).await?;
    note_entity(cx, &a, &args.entity);
    cx.trail.note(json!({ "rows": 1 }));
    let summary = format!(
        "{} from {}.",
        named(&args.entity, &args.id, a.value.get(&args.entity)),
        c.name
    );
    output(summary, a)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportToolArgs {
    pub company: Option<String>,
    /// Report name, e.g. ProfitAndLoss, BalanceSheet, AgedReceivables.
    pub report: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// Cash or Accrual.
    pub accounting_method: Option<String>,
    pub summarize_column_by: Option<String>,
    /// Other report parameters, passed through.
    pub params: Option<Map<String, Value>>,
}

pub async fn run_report(cx: &ToolContext, args: ReportToolArgs) -> ToolOutcome {
    if !super::schemas::REPORTS.contains(&args.report.as_str()) {
        return Err(ToolError(format!(
            "`{}` is not a report this server runs; use one of: {}.",
            args.report,
            super::schemas::REPORTS.join(", ")
        )));
    }
    let c = company(cx, args.company.as_deref()).await?;
    let report = ReportArgs {
        report: args.report.clone(),
        start_date: args.start_date,
        end_date: args.end_date,
        accounting_method: args.accounting_method,
        summarize_column_by: args.summarize_column_by,
        params: args.params,
    };
    cx.trail.note(json!({
        "report": shortened(&report.report),
        "start_date": report.start_date.as_deref().map(shortened),
        "end_date": report.end_date.as_deref().map(shortened),
    }));
    let a = cx.state.quickbooks.run_report(&c.realm_id, &report).await;
    let a = explain(cx, a).await?;
    let rows = a.value["Rows"]["Row"].as_array().map_or(0, Vec::len);
    cx.trail.note(json!({ "rows": rows }));
    let period = match (&report.start_date, &report.end_date) {
        (Some(s), Some(e)) => format!(", {s} to {e}"),
        (Some(s), None) => format!(", from {s}"),
        (None, Some(e)) => format!(", to {e}"),
        (None, None) => String::new(),
    };
    output(
        format!(
            "{} for {}{period}, complete: {rows} top-level rows; `totals` are the report's own summary rows.",
            args.report, c.name
        ),
        a,
    )
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangesArgs {
    pub company: Option<String>,
    /// Entity names, e.g. ["Customer", "Invoice"].
    pub entities: Vec<String>,
    /// A time (2026-01-31T00:00:00Z) or date, at most 30 days back.
    pub since: String,
}

pub async fn changes_since(cx: &ToolContext, args: ChangesArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    cx.trail.note(json!({
        "entity": shortened(&args.entities.join(", ")),
        "since": shortened(&args.since),
    }));
    let a = cx
        .state
        .quickbooks
        .changes_since(&c.realm_id, &args.entities, &args.since)
        .await;
    let a = explain(cx, a).await?;
    let rows: usize = a.value["CDCResponse"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| count_rows(&r["QueryResponse"]))
        .sum();
    cx.trail.note(json!({ "rows": rows }));
    output(
        format!(
            "{rows} {} records changed in {} since {}.",
            args.entities.join("/"),
            c.name,
            args.since
        ),
        a,
    )
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    pub company: Option<String>,
    pub entity: String,
    /// The entity's JSON as QuickBooks defines it.
    pub fields: Value,
    /// Answer what would be sent, without sending it.
    pub dry_run: Option<bool>,
}

pub async fn create_entity(cx: &ToolContext, args: CreateArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    let dry = args.dry_run.unwrap_or(false);
    let mut facts = entity_facts(&args.fields);
    facts["entity"] = json!(shortened(&args.entity));
    let write = Write::Create {
        entity: args.entity.clone(),
        fields: args.fields.clone(),
    };
    if let Some(held) = held(cx, &c, "create_entity", write, dry).await? {
        cx.trail.note(facts);
        return Ok(held);
    }
    before_write(cx, &c, facts, dry).await?;
    let a = cx
        .state
        .quickbooks
        .create_entity(&c.realm_id, &args.entity, &args.fields, dry)
        .await;
    let a = explain(cx, a).await?;
    note_entity(cx, &a, &args.entity);
    let summary = if dry {
        format!(
            "Dry run: a new {} was checked and nothing was sent to {}; `would_send` is the request.",
            args.entity, c.name
        )
    } else {
        format!(
            "{} created in {}.",
            named(&args.entity, "", a.value.get(&args.entity)),
            c.name
        )
    };
    output(summary, a)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    pub company: Option<String>,
    pub entity: String,
    pub id: String,
    /// Only the fields to change (sparse update); a `Line` array replaces all lines.
    pub fields: Value,
    /// Optional; read from QuickBooks when absent.
    pub sync_token: Option<String>,
    pub dry_run: Option<bool>,
}

pub async fn update_entity(cx: &ToolContext, args: UpdateArgs) -> ToolOutcome {
    if entities::by_name(&args.entity).is_some_and(|t| t.kind == Kind::Settings) {
        return Err(ToolError(format!(
            "The company's {} is changed with update_company_settings, which needs the admin role.",
            args.entity
        )));
    }
    update(cx, "update_entity", args).await
}

/// Which of the company's settings `update_company_settings` changes.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum Settings {
    /// Name, legal name, addresses, phone, email, website, fiscal year start.
    CompanyInfo,
    /// Company preferences: class and location tracking, sales-form and email defaults, ….
    Preferences,
}

impl Settings {
    /// The settings named `name` (`CompanyInfo`; anything else is Preferences).
    pub fn named(name: &str) -> Settings {
        if name == "CompanyInfo" {
            Settings::CompanyInfo
        } else {
            Settings::Preferences
        }
    }

    fn name(self) -> &'static str {
        match self {
            Settings::CompanyInfo => "CompanyInfo",
            Settings::Preferences => "Preferences",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsArgs {
    pub company: Option<String>,
    /// `CompanyInfo` or `Preferences`.
    pub settings: Settings,
    /// Optional: its Id as read (QuickBooks has one of each per company); checked when given.
    pub id: Option<String>,
    /// Only the fields to change (sparse update), e.g. {"LegalName": "Acme LLC"} or
    /// {"AccountingInfoPrefs": {"TrackDepartments": true}}.
    pub fields: Value,
    /// Optional; read from QuickBooks when absent.
    pub sync_token: Option<String>,
    pub dry_run: Option<bool>,
}

/// `update_company_settings`: a sparse change to the company's CompanyInfo or Preferences
/// (the admin role: these settings are the whole company's).
pub async fn update_company_settings(cx: &ToolContext, args: SettingsArgs) -> ToolOutcome {
    let update_args = UpdateArgs {
        company: args.company,
        entity: args.settings.name().to_owned(),
        id: args.id.unwrap_or_default(),
        fields: args.fields,
        sync_token: args.sync_token,
        dry_run: args.dry_run,
    };
    update(cx, "update_company_settings", update_args).await
}

/// A sparse update through `tool`: audited, held by the approval policy or sent.
async fn update(cx: &ToolContext, tool: &str, args: UpdateArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    let dry = args.dry_run.unwrap_or(false);
    let mut facts = entity_facts(&args.fields);
    facts["entity"] = json!(shortened(&args.entity));
    if !args.id.is_empty() {
        facts["id"] = json!(shortened(&args.id));
    }
    if let Value::Object(fields) = &args.fields {
        facts["changed"] = json!(shortened(
            &fields.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let write = Write::Update {
        entity: args.entity.clone(),
        id: args.id.clone(),
        fields: args.fields.clone(),
        sync_token: args.sync_token.clone(),
    };
    if let Some(held) = held(cx, &c, tool, write, dry).await? {
        cx.trail.note(facts);
        return Ok(held);
    }
    before_write(cx, &c, facts, dry).await?;
    let a = cx
        .state
        .quickbooks
        .update_entity(
            &c.realm_id,
            &args.entity,
            &args.id,
            &args.fields,
            args.sync_token.as_deref(),
            dry,
        )
        .await;
    let a = explain(cx, a).await?;
    note_entity(cx, &a, &args.entity);
    let changed = match &args.fields {
        Value::Object(f) => f
            .keys()
            .filter(|k| k.as_str() != "sparse")
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    let summary = if dry {
        format!(
            "Dry run: the change to {} was checked and nothing was sent to {}; `would_send` is the request.",
            named(&args.entity, &args.id, None).trim_end(),
            c.name
        )
    } else {
        format!(
            "{} updated in {} ({changed} changed).",
            named(&args.entity, &args.id, a.value.get(&args.entity)),
            c.name
        )
    };
    output(summary, a)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEstimateArgs {
    pub company: Option<String>,
    /// The estimate's id (Intuit's `estimate_id`).
    #[serde(alias = "estimate_id")]
    pub id: String,
    /// Where to send it (Intuit's `send_to`); the estimate's own address when absent.
    /// QuickBooks also writes it into the estimate's BillEmail.
    #[serde(alias = "send_to")]
    pub email: Option<String>,
    /// Taken for calls written for Intuit's server; this server sends whether or not the
    /// estimate was emailed before.
    pub allow_resend: Option<bool>,
}

/// `send_estimate`: emails an estimate, as `send_invoice` does an invoice.
pub async fn send_estimate(cx: &ToolContext, args: SendEstimateArgs) -> ToolOutcome {
    let args = SendArgs {
        company: args.company,
        id: args.id,
        email: args.email,
        allow_resend: args.allow_resend,
    };
    send(cx, "send_estimate", "Estimate", args).await
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendArgs {
    pub company: Option<String>,
    /// The invoice's id (Intuit's `invoice_id`).
    #[serde(alias = "invoice_id")]
    pub id: String,
    /// Where to send it (Intuit's `send_to`); the invoice's own address when absent.
    #[serde(alias = "send_to")]
    pub email: Option<String>,
    /// Taken for calls written for Intuit's server; this server sends whether or not the
    /// invoice was emailed before.
    pub allow_resend: Option<bool>,
}

pub async fn send_invoice(cx: &ToolContext, args: SendArgs) -> ToolOutcome {
    send(cx, "send_invoice", "Invoice", args).await
}

/// Emails the `entity` (an invoice or estimate) through `tool`: audited, held by the approval
/// policy or sent.
async fn send(cx: &ToolContext, tool: &str, entity: &str, args: SendArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    let facts = json!({
        "entity": entity,
        "id": shortened(&args.id),
        "send_to": args.email.as_deref().map(shortened),
    });
    let write = Write::Send {
        entity: entity.to_owned(),
        id: args.id.clone(),
        email: args.email.clone(),
    };
    if let Some(held) = held(cx, &c, tool, write, false).await? {
        cx.trail.note(facts);
        return Ok(held);
    }
    before_write(cx, &c, facts, false).await?;
    let a = cx
        .state
        .quickbooks
        .send(&c.realm_id, entity, &args.id, args.email.as_deref())
        .await;
    let a = explain(cx, a).await?;
    note_entity(cx, &a, entity);
    let sent = a.value.get(entity);
    let to = args
        .email
        .as_deref()
        .or_else(|| sent.and_then(|i| i["BillEmail"]["Address"].as_str()))
        .map(|to| format!(" to {to}"))
        .unwrap_or_default();
    let summary = format!(
        "{} emailed{to} from {}.",
        named(entity, &args.id, sent),
        c.name
    );
    output(summary, a)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteArgs {
    pub company: Option<String>,
    pub entity: String,
    pub id: String,
    /// delete, void, or deactivate; by default name lists are deactivated and transactions deleted.
    pub mode: Option<DeleteMode>,
}

pub async fn delete_entity(cx: &ToolContext, args: DeleteArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    let facts = json!({
        "entity": shortened(&args.entity),
        "id": shortened(&args.id),
        "mode": args.mode.map(|m| format!("{m:?}").to_ascii_lowercase()),
    });
    let write = Write::Delete {
        entity: args.entity.clone(),
        id: args.id.clone(),
        mode: args.mode,
    };
    if let Some(held) = held(cx, &c, "delete_entity", write, false).await? {
        cx.trail.note(facts);
        return Ok(held);
    }
    before_write(cx, &c, facts, false).await?;
    let a = cx
        .state
        .quickbooks
        .delete_entity(&c.realm_id, &args.entity, &args.id, args.mode)
        .await;
    let a = explain(cx, a).await?;
    note_entity(cx, &a, &args.entity);
    let done = match delete_mode(&args.entity, args.mode).unwrap_or(DeleteMode::Delete) {
        DeleteMode::Deactivate => "deactivated",
        DeleteMode::Void => "voided",
        DeleteMode::Delete => "deleted",
    };
    let summary = format!(
        "{} {done} in {}.",
        named(&args.entity, &args.id, a.value.get(&args.entity)),
        c.name
    );
    output(summary, a)
}
