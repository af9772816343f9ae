//! The `intuit` tool profile (`QBO_MCP_TOOLS_PROFILE=intuit`): the same capabilities as the
//! compact tools under the names of Intuit's official QuickBooks MCP server
//! (`create_customer`, `search_invoices`, `get_profit_and_loss`, …), for teams moving from it.
//! Every generated tool runs one of the compact handlers in `books` with its entity or report
//! fixed, so roles, company resolution, validation and audit are exactly the compact ones.

use futures::future::BoxFuture;
use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::books;
use super::intuit_calls::{Verb, normalize, shape, snake};
use super::tools::{Run, TOOLS, ToolContext, ToolError, ToolOutcome, ToolSpec, arguments, schema};
use crate::quickbooks::operations::DeleteMode;

/// Which of Intuit's verbs an entity has there.
#[derive(Debug, Clone, Copy)]
enum Verbs {
    /// create, get, update, delete, search.
    All,
    /// create, get, update, search (Intuit offers no delete).
    NoDelete,
    /// get and search only.
    ReadOnly,
}

/// The entities of Intuit's server, by QuickBooks name.
const ENTITIES: &[(&str, Verbs)] = &[
    ("Customer", Verbs::All),
    ("Invoice", Verbs::All),
    ("Estimate", Verbs::All),
    ("Bill", Verbs::All),
    ("Vendor", Verbs::All),
    ("Employee", Verbs::All),
    ("Account", Verbs::NoDelete),
    ("Item", Verbs::All),
    ("JournalEntry", Verbs::All),
    ("BillPayment", Verbs::All),
    ("Purchase", Verbs::All),
    ("Payment", Verbs::All),
    ("SalesReceipt", Verbs::All),
    ("CreditMemo", Verbs::All),
    ("RefundReceipt", Verbs::All),
    ("PurchaseOrder", Verbs::All),
    ("VendorCredit", Verbs::All),
    ("Deposit", Verbs::All),
    ("Transfer", Verbs::All),
    ("TimeActivity", Verbs::All),
    ("Class", Verbs::NoDelete),
    ("Department", Verbs::NoDelete),
    ("Term", Verbs::NoDelete),
    ("PaymentMethod", Verbs::NoDelete),
    ("TaxCode", Verbs::ReadOnly),
    ("TaxRate", Verbs::ReadOnly),
    ("TaxAgency", Verbs::ReadOnly),
];

/// Intuit's report tools and the QuickBooks report each runs.
const REPORTS: &[(&str, &str)] = &[
    ("get_balance_sheet", "BalanceSheet"),
    ("get_profit_and_loss", "ProfitAndLoss"),
    ("get_cash_flow", "CashFlow"),
    ("get_trial_balance", "TrialBalance"),
    ("get_general_ledger", "GeneralLedger"),
    ("get_customer_sales", "CustomerSales"),
    ("get_aged_receivables", "AgedReceivables"),
    ("get_aged_receivables_detail", "AgedReceivableDetail"),
    ("get_customer_balance", "CustomerBalance"),
    ("get_aged_payables", "AgedPayables"),
    ("get_vendor_expenses", "VendorExpenses"),
    ("get_vendor_balance", "VendorBalance"),
    ("get_transaction_list", "TransactionList"),
];

/// Names Intuit's server registers in its code where its README gives another:
/// `(code name, README name)`.
const CODE_NAMES: &[(&str, &str)] = &[("read_invoice", "get_invoice"), ("read_item", "get_item")];

/// The README name of a tool Intuit's code registers under another name.
pub fn readme_name(name: &str) -> Option<&'static str> {
    CODE_NAMES
        .iter()
        .find(|(code, _)| *code == name)
        .map(|(_, readme)| *readme)
}

/// `journal_entry` → `journal_entries`, `class` → `classes`.
fn plural(snake: &str) -> String {
    if let Some(stem) = snake.strip_suffix('y') {
        format!("{stem}ies")
    } else if snake.ends_with('s') {
        format!("{snake}es")
    } else {
        format!("{snake}s")
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A generated tool running as the compact tool `kind` (whose role, effect and output
/// schema it takes) with its entity or report fixed to `subject`.
fn generated(
    name: &'static str,
    kind: &'static str,
    description: &'static str,
    subject: &'static str,
    schema: fn() -> JsonObject,
    run: Run,
) -> ToolSpec {
    let like = TOOLS
        .iter()
        .find(|t| t.name == kind)
        .unwrap_or_else(|| panic!("{kind} is a compact tool"));
    ToolSpec {
        name,
        role: like.role,
        effect: like.effect,
        kind,
        description,
        subject,
        schema,
        run,
    }
}

/// Every tool of the profile: `list_companies` and `get_company_info` as in compact, then the
/// entity and report tools. Built once per process.
pub fn tools() -> Vec<&'static ToolSpec> {
    // This server's tools that Intuit's has no form of stay as they are.
    let mut out: Vec<&'static ToolSpec> = TOOLS
        .iter()
        .filter(|t| {
            matches!(
                t.name,
                "list_companies"
                    | "get_company_info"
                    | "get_proposal"
                    | "query"
                    | "changes_since"
                    | "send_invoice"
                    | "send_estimate"
            )
        })
        .collect();
    let mut add = |spec: ToolSpec| out.push(Box::leak(Box::new(spec)));
    add(generated(
        "get_preferences",
        "get_company_info",
        "The company's QuickBooks Preferences (with its CompanyInfo).",
        "",
        schema::<books::CompanyArg>,
        preferences,
    ));
    settings_and_links().into_iter().for_each(&mut add);
    add(generated(
        "get_report",
        "run_report",
        "Run a QuickBooks report by name (`reportName` or `report`), complete, with totals from its own summary rows.",
        "",
        schema::<books::ReportToolArgs>,
        any_report,
    ));
    for &(entity, verbs) in ENTITIES {
        let one = snake(entity);
        let many = plural(&one);
        let writes = !matches!(verbs, Verbs::ReadOnly);
        if writes {
            add(generated(
                leak(format!("create_{one}")),
                "create_entity",
                leak(format!(
                    "Create a {entity} from its QuickBooks JSON (`fields`); `dry_run` shows what would be sent."
                )),
                entity,
                schema::<CreateArgs>,
                create,
            ));
        }
        add(generated(
            leak(format!("get_{one}")),
            "get_entity",
            leak(format!("Read one {entity} by id.")),
            entity,
            schema::<GetArgs>,
            get,
        ));
        if writes {
            add(generated(
                leak(format!("update_{one}")),
                "update_entity",
                leak(format!(
                    "Update a {entity}: only the given `fields` change (sparse update); the current SyncToken is read when not given."
                )),
                entity,
                schema::<UpdateArgs>,
                update,
            ));
        }
        if matches!(verbs, Verbs::All) {
            add(generated(
                leak(format!("delete_{one}")),
                "delete_entity",
                leak(format!(
                    "Delete a {entity} as QuickBooks allows: name lists are deactivated, transactions deleted (or voided with mode \"void\")."
                )),
                entity,
                schema::<DeleteArgs>,
                delete,
            ));
        }
        add(generated(
            leak(format!("search_{many}")),
            "query",
            leak(format!(
                "Search {entity} records: `criteria` ({{field, value, operator}} or {{key, value}}) joined with AND, sorted by `asc`/`desc`, paged by `limit`/`offset` or the answer's `next_cursor` (100 rows by default, 1000 with `fetch_all`); `count` counts, `fields` or `summary` shorten the rows."
            )),
            entity,
            schema::<SearchArgs>,
            search,
        ));
    }
    for &(name, report) in REPORTS {
        add(generated(
            name,
            "run_report",
            leak(format!(
                "The {report} report, complete, with totals from its own summary rows."
            )),
            report,
            schema::<ReportArgs>,
            run_report,
        ));
    }
    out.extend(super::attachments::for_intuit_profile());
    out
}

/// Intuit's `update_company_info` and `update_preferences` (admins, as
/// `update_company_settings`), and its `get_transaction_link`.
fn settings_and_links() -> Vec<ToolSpec> {
    let mut out = vec![
        generated(
            "update_company_info",
            "update_company_settings",
            "Update the company's CompanyInfo (admins): `company_name`, `legal_name`, `company_addr`, `primary_phone`, `email`, `web_addr`, or the CompanyInfo object; only what is given changes. The SyncToken is read when not given.",
            "CompanyInfo",
            schema::<SettingsUpdateArgs>,
            update_settings,
        ),
        generated(
            "update_preferences",
            "update_company_settings",
            "Update the company's Preferences (admins): the sections to change, e.g. {\"AccountingInfoPrefs\": {\"TrackDepartments\": true}}, as `fields`, `preferences` or `patch`; only what is given changes, and QuickBooks refuses read-only preferences. The SyncToken is read when not given.",
            "Preferences",
            schema::<SettingsUpdateArgs>,
            update_settings,
        ),
    ];
    out.push(ToolSpec {
        name: "get_transaction_link",
        role: crate::people::Role::Viewer,
        effect: super::tools::Effect::Read,
        kind: "get_transaction_link",
        description: "The QuickBooks Online web page of a transaction (`entity_type`, `id`), to open it in a browser; the page opens in whichever company the browser has open, so the answer names the company.",
        subject: "",
        schema: schema::<books::LinkArgs>,
        run: |cx, _spec, args| {
            Box::pin(async move {
                let args = super::intuit_calls::unwrapped(args);
                books::transaction_link(cx, arguments(args)?).await
            })
        },
    });
    out
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdateArgs {
    pub company: Option<String>,
    /// Optional: the Id as read; checked when given.
    pub id: Option<String>,
    /// Only the fields to change.
    pub fields: Value,
    pub sync_token: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    /// Realm id or name; optional when you have one company.
    pub company: Option<String>,
    /// The entity's JSON as QuickBooks defines it.
    pub fields: Value,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    pub company: Option<String>,
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    pub company: Option<String>,
    pub id: String,
    /// Only the fields to change.
    pub fields: Value,
    pub sync_token: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteArgs {
    pub company: Option<String>,
    pub id: String,
    pub mode: Option<DeleteMode>,
}

/// One search condition: `field operator value`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// A QuickBooks field (`DisplayName`, `MetaData.LastUpdatedTime`, …); Intuit's `key`.
    #[serde(alias = "key")]
    pub field: String,
    /// A string, number or boolean; an array with operator `IN`.
    pub value: Value,
    /// `=` (default), `<`, `>`, `<=`, `>=`, `LIKE` or `IN`.
    pub operator: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    pub company: Option<String>,
    pub criteria: Option<Vec<Criterion>>,
    /// At most this many (1–1000).
    pub limit: Option<u32>,
    /// Skip this many first.
    pub offset: Option<u32>,
    /// Sort ascending by this field.
    pub asc: Option<String>,
    /// Sort descending by this field.
    pub desc: Option<String>,
    /// Pages of 1000 rows, QuickBooks' largest (Intuit's `fetchAll`); the rest follows with
    /// `cursor`.
    #[serde(alias = "fetchAll")]
    pub fetch_all: Option<bool>,
    /// Only how many match (`SELECT COUNT(*)`).
    pub count: Option<bool>,
    /// Keep only these dot-path fields of each row, e.g. ["Id", "TotalAmt", "CustomerRef.name"].
    pub fields: Option<Vec<String>>,
    /// One compact row per match: Id, DocNumber, names of references, TxnDate, TotalAmt, Balance.
    pub summary: Option<bool>,
    /// The `next_cursor` of the previous answer to the same search.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportArgs {
    pub company: Option<String>,
    /// `YYYY-MM-DD`.
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// `Cash` or `Accrual`.
    pub accounting_method: Option<String>,
    pub summarize_column_by: Option<String>,
    pub params: Option<Map<String, Value>>,
}

/// A handler that parses `$args` and runs a compact handler with the tool's subject (its
/// entity or report) filled in by `$build`.
macro_rules! with_subject {
    ($name:ident, $verb:expr, $args:ty, |$a:ident, $subject:ident| $build:expr, $handler:path) => {
        fn $name<'a>(
            cx: &'a ToolContext,
            spec: &'static ToolSpec,
            args: JsonObject,
        ) -> BoxFuture<'a, ToolOutcome> {
            Box::pin(async move {
                let args = normalize($verb, spec.subject, args)?;
                let $a: $args = arguments(args)?;
                let $subject = spec.subject.to_owned();
                $handler(cx, $build).await
            })
        }
    };
}

with_subject!(
    create,
    Verb::Create,
    CreateArgs,
    |a, entity| books::CreateArgs {
        company: a.company,
        entity,
        fields: a.fields,
        dry_run: a.dry_run,
    },
    books::create_entity
);

with_subject!(
    get,
    Verb::Get,
    GetArgs,
    |a, entity| books::EntityArgs {
        company: a.company,
        entity,
        id: a.id,
    },
    books::get_entity
);

with_subject!(
    update,
    Verb::Update,
    UpdateArgs,
    |a, entity| books::UpdateArgs {
        company: a.company,
        entity,
        id: a.id,
        fields: a.fields,
        sync_token: a.sync_token,
        dry_run: a.dry_run,
    },
    books::update_entity
);

with_subject!(
    update_settings,
    Verb::Update,
    SettingsUpdateArgs,
    |a, entity| books::SettingsArgs {
        company: a.company,
        settings: books::Settings::named(&entity),
        id: a.id,
        fields: a.fields,
        sync_token: a.sync_token,
        dry_run: a.dry_run,
    },
    books::update_company_settings
);

with_subject!(
    delete,
    Verb::Delete,
    DeleteArgs,
    |a, entity| books::DeleteArgs {
        company: a.company,
        entity,
        id: a.id,
        mode: a.mode,
    },
    books::delete_entity
);

/// A search: Intuit's criteria forms, then `query` with the rows shaped as `fields` or
/// `summary` ask.
fn search<'a>(
    cx: &'a ToolContext,
    spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(async move {
        let args = normalize(Verb::Search, spec.subject, args)?;
        let a: SearchArgs = arguments(args)?;
        let query = books::QueryArgs {
            query: search_query(spec.subject, &a)?,
            company: a.company.clone(),
            fetch_all: a.fetch_all,
            cursor: a.cursor.clone(),
            ..Default::default()
        };
        let mut out = books::query(cx, query).await?;
        if let Some(Value::Array(rows)) = out.data["QueryResponse"].get_mut(spec.subject) {
            shape(rows, a.fields.as_deref(), a.summary == Some(true));
        }
        Ok(out)
    })
}

/// `get_preferences`: `get_company_info`'s answer.
fn preferences<'a>(
    cx: &'a ToolContext,
    _spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(async move {
        let args = normalize(Verb::Get, "", args)?;
        books::get_company_info(cx, arguments(args)?).await
    })
}

/// `get_report`: any report, named by `reportName` (Intuit's) or `report`.
fn any_report<'a>(
    cx: &'a ToolContext,
    _spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(async move {
        let args = normalize(Verb::Report, "", args)?;
        books::run_report(cx, arguments(args)?).await
    })
}

with_subject!(
    run_report,
    Verb::Report,
    ReportArgs,
    |a, report| books::ReportToolArgs {
        company: a.company,
        report,
        start_date: a.start_date,
        end_date: a.end_date,
        accounting_method: a.accounting_method,
        summarize_column_by: a.summarize_column_by,
        params: a.params,
    },
    books::run_report
);

/// A QuickBooks field name: letters, digits and dots (`MetaData.CreateTime`).
fn field(name: &str) -> Result<&str, ToolError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    if ok {
        Ok(name)
    } else {
        Err(ToolError(format!(
            "`{name}` is not a QuickBooks field name (letters, digits and dots)."
        )))
    }
}

/// A value in QuickBooks' query language: strings quoted with `\'` for quotes.
fn literal(value: &Value) -> Result<String, ToolError> {
    match value {
        Value::String(s) => Ok(format!(
            "'{}'",
            s.replace('\\', "\\\\").replace('\'', "\\'")
        )),
        Value::Number(n) => Ok(format!("'{n}'")),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(ToolError(format!(
            "A criterion's value must be a string, number or boolean, not {other}."
        ))),
    }
}

/// The `SELECT` a search means. Public for the fuzz target and property tests (fuzz/).
pub fn search_query(entity: &str, a: &SearchArgs) -> Result<String, ToolError> {
    let mut conditions = Vec::new();
    for c in a.criteria.iter().flatten() {
        let name = field(&c.field)?;
        let operator = c
            .operator
            .as_deref()
            .unwrap_or("=")
            .trim()
            .to_ascii_uppercase();
        let condition = match (operator.as_str(), &c.value) {
            ("IN", Value::Array(values)) if !values.is_empty() => {
                let values: Result<Vec<_>, _> = values.iter().map(literal).collect();
                format!("{name} IN ({})", values?.join(", "))
            }
            ("IN", _) => {
                return Err(ToolError(
                    "Operator IN needs a non-empty array of values.".into(),
                ));
            }
            ("=" | "<" | ">" | "<=" | ">=" | "LIKE", value) => {
                format!("{name} {operator} {}", literal(value)?)
            }
            _ => {
                return Err(ToolError(format!(
                    "`{operator}` is not an operator here; use =, <, >, <=, >=, LIKE or IN."
                )));
            }
        };
        conditions.push(condition);
    }
    let selection = if a.count == Some(true) {
        "COUNT(*)"
    } else {
        "*"
    };
    let mut query = format!("SELECT {selection} FROM {entity}");
    if !conditions.is_empty() {
        query.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    if a.count == Some(true) {
        return Ok(query);
    }
    match (&a.asc, &a.desc) {
        (Some(_), Some(_)) => {
            return Err(ToolError("Give `asc` or `desc`, not both.".into()));
        }
        (Some(f), None) => query.push_str(&format!(" ORDERBY {} ASC", field(f)?)),
        (None, Some(f)) => query.push_str(&format!(" ORDERBY {} DESC", field(f)?)),
        (None, None) => {}
    }
    if a.fetch_all != Some(true) {
        if let Some(offset) = a.offset {
            query.push_str(&format!(" STARTPOSITION {}", u64::from(offset) + 1));
        }
        if let Some(limit) = a.limit {
            if !(1..=1000).contains(&limit) {
                return Err(ToolError("`limit` must be between 1 and 1000.".into()));
            }
            query.push_str(&format!(" MAXRESULTS {limit}"));
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search_args(criteria: Value) -> SearchArgs {
        serde_json::from_value(serde_json::json!({ "criteria": criteria, "limit": 5, "offset": 10, "desc": "MetaData.CreateTime" }))
            .unwrap()
    }

    #[test]
    fn names_follow_intuit() {
        assert_eq!(snake("JournalEntry"), "journal_entry");
        assert_eq!(plural("journal_entry"), "journal_entries");
        assert_eq!(plural("class"), "classes");
        assert_eq!(plural("invoice"), "invoices");
        let names: Vec<&str> = tools().iter().map(|t| t.name).collect();
        for expected in [
            "create_customer",
            "search_invoices",
            "get_profit_and_loss",
            "delete_bill_payment",
            "search_time_activities",
            "search_tax_agencies",
            "get_company_info",
            "update_company_info",
            "update_preferences",
            "send_estimate",
            "get_transaction_link",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        assert!(!names.contains(&"delete_account"));
        assert!(!names.contains(&"create_tax_code"));
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "tool names are unique");
    }

    #[test]
    fn searches_become_queries() {
        let q = search_query(
            "Customer",
            &search_args(serde_json::json!([
                {"field": "DisplayName", "value": "O'Brien", "operator": "like"},
                {"field": "Active", "value": true},
                {"field": "Id", "value": ["1", 2], "operator": "IN"}
            ])),
        )
        .unwrap();
        assert_eq!(
            q,
            "SELECT * FROM Customer WHERE DisplayName LIKE 'O\\'Brien' AND Active = true AND Id IN ('1', '2') ORDERBY MetaData.CreateTime DESC STARTPOSITION 11 MAXRESULTS 5"
        );
        // A quote and a trailing backslash, escaped as Intuit's rule and the simulator's
        // lexer read them: the simulator writes the parsed query back identically (with its paging).
        let q = search_query(
            "Customer",
            &SearchArgs {
                criteria: Some(vec![
                    Criterion {
                        field: "DisplayName".into(),
                        value: serde_json::json!("C:\\path\\"),
                        operator: None,
                    },
                    Criterion {
                        field: "CompanyName".into(),
                        value: serde_json::json!("O'Brien"),
                        operator: None,
                    },
                ]),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            q,
            "SELECT * FROM Customer WHERE DisplayName = 'C:\\\\path\\\\' AND CompanyName = 'O\\'Brien'"
        );
        let written = qbo_sim::api::query::parse(&q).unwrap().to_string();
        assert!(written.starts_with(&q), "{written}");
        let bad = search_query(
            "Customer",
            &search_args(serde_json::json!([{"field": "Name; DROP", "value": "x"}])),
        );
        assert!(bad.is_err());
        let bad = search_query(
            "Customer",
            &search_args(serde_json::json!([{"field": "Name", "value": "x", "operator": "OR"}])),
        );
        assert!(bad.is_err());
    }
}
