//! The QuickBooks tools: each resolves the `company` argument against the companies the
//! caller may use, then asks `quickbooks::operations`. Faults come back as tool errors that
//! name QuickBooks' code and say what to do.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::tools::{ToolContext, ToolError, ToolOutcome, ToolOutput};
use crate::quickbooks::operations::{Answer, DeleteMode, ReportArgs};
use crate::quickbooks::routes::visible_companies;
use crate::quickbooks::{Company, QboError, Status};

/// Finds the company a tool call means: by realm id or name, or the only one available.
async fn company(cx: &ToolContext, wanted: Option<&str>) -> Result<Company, ToolError> {
    let companies = visible_companies(&cx.state, &cx.caller.person)
        .await
        .map_err(|_| {
            ToolError("The company list cannot be read right now; try again in a moment.".into())
        })?;
    let found = match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => companies
            .iter()
            .find(|c| c.realm_id == w || c.name.eq_ignore_ascii_case(w))
            .cloned(),
        None if companies.len() == 1 => companies.first().cloned(),
        None if companies.is_empty() => None,
        None => {
            return Err(ToolError(format!(
                "You have several companies; pass `company` as one of: {}.",
                companies
                    .iter()
                    .map(|c| format!("{} ({})", c.name, c.realm_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let company = found.ok_or_else(|| {
        ToolError(match wanted {
            Some(w) => format!("There is no company `{w}` available to you; call list_companies to see yours."),
            None => "No QuickBooks company is available to you. Ask an admin to connect one (Companies page) or to grant you access.".into(),
        })
    })?;
    if company.status == Status::NeedsReconnect {
        return Err(ToolError(format!(
            "{} must be reconnected to QuickBooks by an admin (Companies page) before it can be used.",
            company.name
        )));
    }
    Ok(company)
}

fn tool_error(e: QboError) -> ToolError {
    ToolError(match e {
        QboError::Fault { fault, intuit_tid } => {
            let advice = match fault.code.as_str() {
                "5010" => "Read the entity again for its current SyncToken, then retry.",
                "610" => "The object does not exist or is inactive; check the id.",
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
        QboError::NeedsReconnect { .. } | QboError::NotConnected { .. } => {
            format!("{e}. Ask an admin to reconnect it on the Companies page.")
        }
        QboError::Internal(cause) => {
            tracing::error!(error = ?cause, "tool failed");
            "Something went wrong on the server; it has been logged. Try again.".into()
        }
        other => format!("{other}"),
    })
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
    let a = cx
        .state
        .quickbooks
        .company_info(&c.realm_id)
        .await
        .map_err(tool_error)?;
    output(format!("Company information for {}.", c.name), a)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryArgs {
    pub company: Option<String>,
    /// `SELECT * FROM Entity [WHERE …] [ORDERBY …] [STARTPOSITION n] [MAXRESULTS n]`.
    pub query: String,
    /// Gather every page (past QuickBooks' 1000-row limit).
    pub fetch_all: Option<bool>,
}

pub async fn query(cx: &ToolContext, args: QueryArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    let a = cx
        .state
        .quickbooks
        .query(&c.realm_id, &args.query, args.fetch_all.unwrap_or(false))
        .await
        .map_err(tool_error)?;
    let rows: usize = a.value["QueryResponse"]
        .as_object()
        .map(|o| o.values().filter_map(Value::as_array).map(Vec::len).sum())
        .unwrap_or(0);
    output(format!("{rows} rows from {}.", c.name), a)
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
    let a = cx
        .state
        .quickbooks
        .get_entity(&c.realm_id, &args.entity, &args.id)
        .await
        .map_err(tool_error)?;
    output(format!("{} {} from {}.", args.entity, args.id, c.name), a)
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
    let c = company(cx, args.company.as_deref()).await?;
    let report = ReportArgs {
        report: args.report.clone(),
        start_date: args.start_date,
        end_date: args.end_date,
        accounting_method: args.accounting_method,
        summarize_column_by: args.summarize_column_by,
        params: args.params,
    };
    let a = cx
        .state
        .quickbooks
        .run_report(&c.realm_id, &report)
        .await
        .map_err(tool_error)?;
    output(
        format!(
            "{} for {}, complete; `totals` are the report's own summary rows.",
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
    let a = cx
        .state
        .quickbooks
        .changes_since(&c.realm_id, &args.entities, &args.since)
        .await
        .map_err(tool_error)?;
    output(format!("Changes in {} since {}.", c.name, args.since), a)
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
    let a = cx
        .state
        .quickbooks
        .create_entity(&c.realm_id, &args.entity, &args.fields, dry)
        .await
        .map_err(tool_error)?;
    let id = a.value[&args.entity]["Id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    output(
        if dry {
            format!("Dry run: nothing was sent to {}.", c.name)
        } else {
            format!("Created {} {id} in {}.", args.entity, c.name)
        },
        a,
    )
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
    let c = company(cx, args.company.as_deref()).await?;
    let dry = args.dry_run.unwrap_or(false);
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
        .await
        .map_err(tool_error)?;
    output(
        if dry {
            format!("Dry run: nothing was sent to {}.", c.name)
        } else {
            format!("Updated {} {} in {}.", args.entity, args.id, c.name)
        },
        a,
    )
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendArgs {
    pub company: Option<String>,
    /// The invoice's id.
    pub id: String,
    /// Where to send it; the invoice's own address when absent.
    pub email: Option<String>,
}

pub async fn send_invoice(cx: &ToolContext, args: SendArgs) -> ToolOutcome {
    let c = company(cx, args.company.as_deref()).await?;
    let a = cx
        .state
        .quickbooks
        .send_invoice(&c.realm_id, &args.id, args.email.as_deref())
        .await
        .map_err(tool_error)?;
    output(format!("Invoice {} sent from {}.", args.id, c.name), a)
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
    let a = cx
        .state
        .quickbooks
        .delete_entity(&c.realm_id, &args.entity, &args.id, args.mode)
        .await
        .map_err(tool_error)?;
    output(
        format!(
            "{} {} removed ({:?}) in {}.",
            args.entity, args.id, args.mode, c.name
        ),
        a,
    )
}
