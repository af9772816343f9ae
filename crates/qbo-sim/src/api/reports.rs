//! Reports computed from the books' postings, in Intuit's JSON shape: `Header`, `Columns`,
//! and `Rows` as a tree of `Section` rows (Header, Rows, Summary, group) and `Data` rows.
//! Every section's Summary is the sum of what it contains, and the reports agree with each
//! other (the balance sheet balances, the cash flow ends at the bank balance, aging totals
//! match balances), because they all read the same ledger.

use crate::books::entity_types;
use crate::books::fields::{self, amount, money_text};
use crate::books::ledger::{self, Basis, Posting};
use crate::books::{Books, Company};
use crate::fault::Fault;
use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// The reports the simulator computes.
pub const REPORTS: &[&str] = &[
    "ProfitAndLoss",
    "BalanceSheet",
    "CashFlow",
    "TrialBalance",
    "GeneralLedger",
    "CustomerSales",
    "CustomerBalance",
    "VendorBalance",
    "VendorExpenses",
    "AgedReceivables",
    "AgedPayables",
    "AgedReceivableDetail",
    "AgedPayableDetail",
    "ProfitAndLossDetail",
    "TransactionList",
];

/// One cell of a row.
#[derive(Debug, Clone)]
struct Cell {
    value: String,
    id: Option<String>,
}

fn text(value: impl Into<String>) -> Cell {
    Cell {
        value: value.into(),
        id: None,
    }
}

fn money(amount: f64) -> Cell {
    text(money_text(amount))
}

/// A row of a report.
#[derive(Debug, Clone)]
enum Row {
    Data(Vec<Cell>),
    Section {
        group: String,
        header: Option<Vec<Cell>>,
        rows: Vec<Row>,
        summary: Vec<Cell>,
    },
}

fn cells_json(cells: &[Cell]) -> Value {
    Value::Array(
        cells
            .iter()
            .map(|c| match &c.id {
                Some(id) => json!({"value": c.value, "id": id}),
                None => json!({"value": c.value}),
            })
            .collect(),
    )
}

impl Row {
    fn to_json(&self) -> Value {
        match self {
            Row::Data(cells) => json!({"ColData": cells_json(cells), "type": "Data"}),
            Row::Section {
                group,
                header,
                rows,
                summary,
            } => {
                let mut out = serde_json::Map::new();
                if let Some(header) = header {
                    out.insert("Header".into(), json!({"ColData": cells_json(header)}));
                }
                if !rows.is_empty() {
                    out.insert(
                        "Rows".into(),
                        json!({"Row": rows.iter().map(Row::to_json).collect::<Vec<_>>()}),
                    );
                }
                out.insert("Summary".into(), json!({"ColData": cells_json(summary)}));
                out.insert("type".into(), json!("Section"));
                if !group.is_empty() {
                    out.insert("group".into(), json!(group));
                }
                Value::Object(out)
            }
        }
    }
}

/// The options of one report request.
#[derive(Debug, Clone)]
struct Request {
    start: NaiveDate,
    end: NaiveDate,
    basis: Basis,
    by_month: bool,
    macro_name: Option<String>,
}

fn parse_date(params: &HashMap<String, String>, key: &str) -> Result<Option<NaiveDate>, Fault> {
    match params.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                Fault::validation(
                    "2010",
                    "Invalid date",
                    format!("{key} {text} is not a date (YYYY-MM-DD)"),
                )
                .at(key)
            }),
    }
}

fn year_start(day: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap_or(day)
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn month_end(day: NaiveDate) -> NaiveDate {
    let next = if day.month() == 12 {
        NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)
    };
    next.map_or(day, |n| n - Duration::days(1))
}

fn date_macro(name: &str, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let last_month = month_start(today) - Duration::days(1);
    Some(match name.to_ascii_lowercase().as_str() {
        "today" => (today, today),
        "yesterday" => (today - Duration::days(1), today - Duration::days(1)),
        "this month" => (month_start(today), month_end(today)),
        "this month-to-date" => (month_start(today), today),
        "last month" => (month_start(last_month), last_month),
        "this fiscal year" | "this calendar year" | "this year" => (
            year_start(today),
            NaiveDate::from_ymd_opt(today.year(), 12, 31)?,
        ),
        "this fiscal year-to-date" | "this calendar year-to-date" | "this year-to-date" => {
            (year_start(today), today)
        }
        "last fiscal year" | "last calendar year" | "last year" => (
            NaiveDate::from_ymd_opt(today.year() - 1, 1, 1)?,
            NaiveDate::from_ymd_opt(today.year() - 1, 12, 31)?,
        ),
        _ => return None,
    })
}

fn request(params: &HashMap<String, String>, today: NaiveDate) -> Result<Request, Fault> {
    let macro_name = params.get("date_macro").cloned();
    let (mut start, mut end) = (year_start(today), today);
    if let Some(name) = &macro_name {
        (start, end) = date_macro(name, today).ok_or_else(|| {
            Fault::validation(
                "2010",
                "Invalid date_macro",
                format!("date_macro {name} is not supported"),
            )
        })?;
    }
    if let Some(day) = parse_date(params, "start_date")? {
        start = day;
    }
    if let Some(day) = parse_date(params, "end_date")?.or(parse_date(params, "report_date")?) {
        end = day;
    }
    if start > end {
        return Err(Fault::validation(
            "2010",
            "Invalid date range",
            "start_date is after end_date",
        ));
    }
    let basis = match params.get("accounting_method").map(String::as_str) {
        None | Some("Accrual") => Basis::Accrual,
        Some("Cash") => Basis::Cash,
        Some(other) => {
            return Err(Fault::validation(
                "2010",
                "Invalid accounting_method",
                format!("accounting_method {other} is not Cash or Accrual"),
            ));
        }
    };
    let by_month = match params.get("summarize_column_by").map(String::as_str) {
        None | Some("Total") => false,
        Some("Month") => true,
        Some(other) => {
            return Err(Fault::validation(
                "2010",
                "Invalid summarize_column_by",
                format!(
                    "summarize_column_by {other} is not supported by the simulator (Total, Month)"
                ),
            ));
        }
    };
    Ok(Request {
        start,
        end,
        basis,
        by_month,
        macro_name,
    })
}

/// An account as reports see it.
#[derive(Debug, Clone)]
struct Account {
    id: u64,
    name: String,
    account_type: String,
}

fn accounts(books: &Books) -> Vec<Account> {
    let mut out: Vec<Account> = books
        .all_named("Account")
        .map(|a| Account {
            id: fields::id(a),
            name: fields::text(a, "Name").unwrap_or_default().to_owned(),
            account_type: fields::text(a, "AccountType")
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    out.sort_by_key(|a| a.name.to_lowercase());
    out
}

fn account_cell(account: &Account) -> Cell {
    Cell {
        value: account.name.clone(),
        id: Some(account.id.to_string()),
    }
}

/// Sums postings per account within the dates.
fn sums(postings: &[Posting], from: Option<NaiveDate>, to: NaiveDate) -> HashMap<u64, f64> {
    let mut out = HashMap::new();
    for p in postings {
        if p.date <= to && from.is_none_or(|f| p.date >= f) {
            *out.entry(p.account).or_default() += p.amount;
        }
    }
    out
}

fn header(report: &str, request: &Request, time: &str, columns_by: &str, empty: bool) -> Value {
    let mut header = json!({
        "Time": time,
        "ReportName": report,
        "ReportBasis": if request.basis == Basis::Cash { "Cash" } else { "Accrual" },
        "StartPeriod": request.start.format("%Y-%m-%d").to_string(),
        "EndPeriod": request.end.format("%Y-%m-%d").to_string(),
        "SummarizeColumnsBy": columns_by,
        "Currency": "USD",
        "Option": [
            {"Name": "AccountingStandard", "Value": "GAAP"},
            {"Name": "NoReportData", "Value": if empty { "true" } else { "false" }},
        ],
    });
    if let Some(name) = &request.macro_name {
        header["DateMacro"] = json!(name.to_lowercase());
    }
    header
}

/// Columns as Intuit writes them: a `ColType` (`Account`, `Money`, `Date`, `String`…) and
/// the column's key in `MetaData` (`[{"Name": "ColKey", "Value": "subt_nat_amount"}]`).
/// `kind` is either the type of a summary column or the key of a detail column.
fn columns(titles: &[(&str, &str)]) -> Value {
    let column = |(title, kind): &(&str, &str)| {
        let (col_type, key) = match *kind {
            "Account" | "Customer" | "Vendor" | "Money" => {
                let key = if title.is_empty() {
                    kind.to_lowercase()
                } else {
                    title
                        .to_lowercase()
                        .split(|c: char| !c.is_ascii_alphanumeric())
                        .filter(|w| !w.is_empty())
                        .collect::<Vec<_>>()
                        .join("_")
                };
                (*kind, key)
            }
            key => {
                let col_type = if key.ends_with("date") {
                    "Date"
                } else if key.contains("amount") || key.contains("bal") {
                    "Money"
                } else {
                    "String"
                };
                (col_type, key.to_owned())
            }
        };
        json!({"ColTitle": title, "ColType": col_type, "MetaData": [{"Name": "ColKey", "Value": key}]})
    };
    json!({"Column": titles.iter().map(column).collect::<Vec<_>>()})
}

fn report(
    report: &str,
    request: &Request,
    time: &str,
    columns_by: &str,
    titles: &[(&str, &str)],
    rows: &[Row],
) -> Value {
    json!({
        "Header": header(report, request, time, columns_by, rows.is_empty()),
        "Columns": columns(titles),
        "Rows": {"Row": rows.iter().map(Row::to_json).collect::<Vec<_>>()},
    })
}

/// A section of accounts with one amount per period (and a total when several).
fn account_section(
    group: &str,
    title: &str,
    accounts: &[(&Account, Vec<f64>)],
    width: usize,
) -> (Row, Vec<f64>) {
    let mut totals = vec![0.0; width];
    let rows: Vec<Row> = accounts
        .iter()
        .map(|(account, amounts)| {
            let mut cells = vec![account_cell(account)];
            for (i, value) in amounts.iter().enumerate() {
                totals[i] += value;
                cells.push(money(*value));
            }
            Row::Data(cells)
        })
        .collect();
    let mut summary = vec![text(format!("Total {title}"))];
    summary.extend(totals.iter().map(|t| money(*t)));
    let mut head = vec![text(title)];
    head.extend((0..width).map(|_| text("")));
    (
        Row::Section {
            group: group.into(),
            header: Some(head),
            rows,
            summary,
        },
        totals,
    )
}

fn summary_row(group: &str, title: &str, amounts: &[f64]) -> Row {
    let mut summary = vec![text(title)];
    summary.extend(amounts.iter().map(|a| money(*a)));
    Row::Section {
        group: group.into(),
        header: None,
        rows: Vec::new(),
        summary,
    }
}

fn periods(request: &Request) -> Vec<(NaiveDate, NaiveDate, String)> {
    if !request.by_month {
        return vec![(request.start, request.end, "Total".into())];
    }
    let mut out = Vec::new();
    let mut from = request.start;
    while from <= request.end {
        let to = month_end(from).min(request.end);
        out.push((from, to, from.format("%b %Y").to_string()));
        from = to + Duration::days(1);
    }
    out
}

/// Net income per period: credits to income minus debits to expenses.
fn profit_and_loss(books: &Books, request: &Request, time: &str) -> Value {
    let postings = ledger::postings(books, request.basis);
    let periods = periods(request);
    let mut per_period: Vec<HashMap<u64, f64>> = periods
        .iter()
        .map(|(from, to, _)| sums(&postings, Some(*from), *to))
        .collect();
    if periods.len() > 1 {
        per_period.push(sums(&postings, Some(request.start), request.end));
    }
    let width = per_period.len();
    let all = accounts(books);
    let pick = |types: &[&str], sign: f64| -> Vec<(&Account, Vec<f64>)> {
        all.iter()
            .filter(|a| types.contains(&a.account_type.as_str()))
            .map(|a| {
                (
                    a,
                    per_period
                        .iter()
                        .map(|m| sign * m.get(&a.id).copied().unwrap_or(0.0))
                        .collect::<Vec<f64>>(),
                )
            })
            .filter(|(_, amounts)| amounts.iter().any(|v| v.abs() >= 0.005))
            .collect()
    };
    let combine = |a: &[f64], b: &[f64], sign: f64| -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| x + sign * y).collect()
    };
    let (income, income_total) =
        account_section("Income", "Income", &pick(&["Income"], -1.0), width);
    let (cogs, cogs_total) = account_section(
        "COGS",
        "Cost of Goods Sold",
        &pick(&["Cost of Goods Sold"], 1.0),
        width,
    );
    let gross = combine(&income_total, &cogs_total, -1.0);
    let (expenses, expense_total) =
        account_section("Expenses", "Expenses", &pick(&["Expense"], 1.0), width);
    let operating = combine(&gross, &expense_total, -1.0);
    let (other_income, other_income_total) = account_section(
        "OtherIncome",
        "Other Income",
        &pick(&["Other Income"], -1.0),
        width,
    );
    let (other_expense, other_expense_total) = account_section(
        "OtherExpenses",
        "Other Expenses",
        &pick(&["Other Expense"], 1.0),
        width,
    );
    let net_other = combine(&other_income_total, &other_expense_total, -1.0);
    let net = combine(&operating, &net_other, 1.0);
    let rows = vec![
        income,
        cogs,
        summary_row("GrossProfit", "Gross Profit", &gross),
        expenses,
        summary_row("NetOperatingIncome", "Net Operating Income", &operating),
        other_income,
        other_expense,
        summary_row("NetOtherIncome", "Net Other Income", &net_other),
        summary_row("NetIncome", "Net Income", &net),
    ];
    let mut titles: Vec<(String, &str)> = vec![(String::new(), "Account")];
    titles.extend(periods.iter().map(|(_, _, t)| (t.clone(), "Money")));
    if periods.len() > 1 {
        titles.push(("Total".into(), "Money"));
    }
    let titles: Vec<(&str, &str)> = titles.iter().map(|(t, k)| (t.as_str(), *k)).collect();
    report(
        "ProfitAndLoss",
        request,
        time,
        if request.by_month { "Month" } else { "Total" },
        &titles,
        &rows,
    )
}

fn net_income(postings: &[Posting], books: &Books, from: Option<NaiveDate>, to: NaiveDate) -> f64 {
    let kinds: HashMap<u64, String> = accounts(books)
        .into_iter()
        .map(|a| (a.id, a.account_type))
        .collect();
    let totals = sums(postings, from, to);
    -totals
        .iter()
        .filter(|(id, _)| {
            kinds
                .get(id)
                .and_then(|t| ledger::classification(t))
                .is_some_and(|c| c == "Revenue" || c == "Expense")
        })
        .map(|(_, v)| v)
        .sum::<f64>()
}

fn balance_sheet(books: &Books, request: &Request, time: &str) -> Value {
    let postings = ledger::postings(books, request.basis);
    let balances = sums(&postings, None, request.end);
    let all = accounts(books);
    let pick = |types: &[&str], sign: f64| -> Vec<(&Account, Vec<f64>)> {
        all.iter()
            .filter(|a| types.contains(&a.account_type.as_str()))
            .map(|a| (a, vec![sign * balances.get(&a.id).copied().unwrap_or(0.0)]))
            .filter(|(_, v)| v[0].abs() >= 0.005)
            .collect()
    };
    let (bank, bank_total) =
        account_section("BankAccounts", "Bank Accounts", &pick(&["Bank"], 1.0), 1);
    let (receivable, ar_total) = account_section(
        "AR",
        "Accounts Receivable",
        &pick(&["Accounts Receivable"], 1.0),
        1,
    );
    let (other_current, oca_total) = account_section(
        "OtherCurrentAssets",
        "Other Current Assets",
        &pick(&["Other Current Asset"], 1.0),
        1,
    );
    let current_assets = bank_total[0] + ar_total[0] + oca_total[0];
    let (fixed, fixed_total) = account_section(
        "FixedAssets",
        "Fixed Assets",
        &pick(&["Fixed Asset"], 1.0),
        1,
    );
    let (other_assets, other_assets_total) = account_section(
        "OtherAssets",
        "Other Assets",
        &pick(&["Other Asset"], 1.0),
        1,
    );
    let total_assets = current_assets + fixed_total[0] + other_assets_total[0];
    let (payable, ap_total) = account_section(
        "AP",
        "Accounts Payable",
        &pick(&["Accounts Payable"], -1.0),
        1,
    );
    let (cards, card_total) = account_section(
        "CreditCards",
        "Credit Cards",
        &pick(&["Credit Card"], -1.0),
        1,
    );
    let (other_current_liabilities, ocl_total) = account_section(
        "OtherCurrentLiabilities",
        "Other Current Liabilities",
        &pick(&["Other Current Liability"], -1.0),
        1,
    );
    let current_liabilities = ap_total[0] + card_total[0] + ocl_total[0];
    let (long_term, long_total) = account_section(
        "LongTermLiabilities",
        "Long-Term Liabilities",
        &pick(&["Long Term Liability"], -1.0),
        1,
    );
    let liabilities = current_liabilities + long_total[0];
    let fiscal_start = year_start(request.end);
    let prior = net_income(&postings, books, None, fiscal_start - Duration::days(1));
    let current = net_income(&postings, books, Some(fiscal_start), request.end);
    let mut equity_rows: Vec<Row> = Vec::new();
    let mut equity = 0.0;
    for account in all.iter().filter(|a| a.account_type == "Equity") {
        let mut value = -balances.get(&account.id).copied().unwrap_or(0.0);
        if account.name == "Retained Earnings" {
            value += prior;
        }
        if value.abs() >= 0.005 {
            equity += value;
            equity_rows.push(Row::Data(vec![account_cell(account), money(value)]));
        }
    }
    equity += current;
    equity_rows.push(Row::Data(vec![text("Net Income"), money(current)]));
    let section = |group: &str, title: &str, rows: Vec<Row>, total: f64| Row::Section {
        group: group.into(),
        header: Some(vec![text(title), text("")]),
        rows,
        summary: vec![text(format!("Total {title}")), money(total)],
    };
    let assets = Row::Section {
        group: "TotalAssets".into(),
        header: Some(vec![text("ASSETS"), text("")]),
        rows: vec![
            section(
                "CurrentAssets",
                "Current Assets",
                vec![bank, receivable, other_current],
                current_assets,
            ),
            fixed,
            other_assets,
        ],
        summary: vec![text("TOTAL ASSETS"), money(total_assets)],
    };
    let liabilities_and_equity = Row::Section {
        group: "TotalLiabilitiesAndEquity".into(),
        header: Some(vec![text("LIABILITIES AND EQUITY"), text("")]),
        rows: vec![
            section(
                "Liabilities",
                "Liabilities",
                vec![
                    section(
                        "CurrentLiabilities",
                        "Current Liabilities",
                        vec![payable, cards, other_current_liabilities],
                        current_liabilities,
                    ),
                    long_term,
                ],
                liabilities,
            ),
            section("Equity", "Equity", equity_rows, equity),
        ],
        summary: vec![
            text("TOTAL LIABILITIES AND EQUITY"),
            money(liabilities + equity),
        ],
    };
    report(
        "BalanceSheet",
        request,
        time,
        "Total",
        &[("", "Account"), ("Total", "Money")],
        &[assets, liabilities_and_equity],
    )
}

fn trial_balance(books: &Books, request: &Request, time: &str) -> Value {
    let postings = ledger::postings(books, request.basis);
    let fiscal_start = year_start(request.end);
    let cumulative = sums(&postings, None, request.end);
    let this_year = sums(&postings, Some(fiscal_start), request.end);
    let prior = net_income(&postings, books, None, fiscal_start - Duration::days(1));
    let (mut debits, mut credits) = (0.0, 0.0);
    let mut rows = Vec::new();
    for account in accounts(books) {
        let profit_or_loss = ledger::classification(&account.account_type)
            .is_some_and(|c| c == "Revenue" || c == "Expense");
        let mut balance = if profit_or_loss {
            &this_year
        } else {
            &cumulative
        }
        .get(&account.id)
        .copied()
        .unwrap_or(0.0);
        if account.name == "Retained Earnings" {
            balance -= prior;
        }
        let balance = fields::cents(balance);
        if balance == 0.0 {
            continue;
        }
        if balance > 0.0 {
            debits += balance;
            rows.push(Row::Data(vec![
                account_cell(&account),
                money(balance),
                text(""),
            ]));
        } else {
            credits -= balance;
            rows.push(Row::Data(vec![
                account_cell(&account),
                text(""),
                money(-balance),
            ]));
        }
    }
    rows.push(Row::Section {
        group: String::new(),
        header: None,
        rows: Vec::new(),
        summary: vec![text("TOTAL"), money(debits), money(credits)],
    });
    report(
        "TrialBalance",
        request,
        time,
        "Total",
        &[("", "Account"), ("Debit", "Money"), ("Credit", "Money")],
        &rows,
    )
}

fn cash_flow(books: &Books, request: &Request, time: &str) -> Value {
    let postings = ledger::postings(books, request.basis);
    let changes = sums(&postings, Some(request.start), request.end);
    let before = sums(&postings, None, request.start - Duration::days(1));
    let all = accounts(books);
    let net = net_income(&postings, books, Some(request.start), request.end);
    let pick = |types: &[&str]| -> Vec<(&Account, Vec<f64>)> {
        all.iter()
            .filter(|a| types.contains(&a.account_type.as_str()))
            .map(|a| (a, vec![-changes.get(&a.id).copied().unwrap_or(0.0)]))
            .filter(|(_, v)| v[0].abs() >= 0.005)
            .collect()
    };
    let (adjustments, adjustment_total) = account_section(
        "",
        "Adjustments to reconcile Net Income to Net Cash provided by operations",
        &pick(&[
            "Accounts Receivable",
            "Other Current Asset",
            "Accounts Payable",
            "Credit Card",
            "Other Current Liability",
        ]),
        1,
    );
    let adjustments = match adjustments {
        Row::Section { header, rows, .. } => Row::Section {
            group: String::new(),
            header,
            rows,
            summary: vec![
                text(
                    "Total Adjustments to reconcile Net Income to Net Cash provided by operations:",
                ),
                money(adjustment_total[0]),
            ],
        },
        data => data,
    };
    let operating_total = net + adjustment_total[0];
    let operating = Row::Section {
        group: "OperatingActivities".into(),
        header: Some(vec![text("OPERATING ACTIVITIES"), text("")]),
        rows: vec![Row::Data(vec![text("Net Income"), money(net)]), adjustments],
        summary: vec![
            text("Net cash provided by operating activities"),
            money(operating_total),
        ],
    };
    let (investing, investing_total) = account_section(
        "InvestingActivities",
        "INVESTING ACTIVITIES",
        &pick(&["Fixed Asset", "Other Asset"]),
        1,
    );
    let (financing, financing_total) = account_section(
        "FinancingActivities",
        "FINANCING ACTIVITIES",
        &pick(&["Long Term Liability", "Equity"]),
        1,
    );
    let relabel = |row: Row, label: &str| match row {
        Row::Section {
            group,
            header,
            rows,
            summary,
        } => Row::Section {
            group,
            header,
            rows,
            summary: vec![
                text(label),
                summary.get(1).cloned().unwrap_or_else(|| money(0.0)),
            ],
        },
        data => data,
    };
    let increase = operating_total + investing_total[0] + financing_total[0];
    let beginning: f64 = all
        .iter()
        .filter(|a| a.account_type == "Bank")
        .map(|a| before.get(&a.id).copied().unwrap_or(0.0))
        .sum();
    let rows = vec![
        operating,
        relabel(investing, "Net cash provided by investing activities"),
        relabel(financing, "Net cash provided by financing activities"),
        summary_row("CashIncrease", "Net cash increase for period", &[increase]),
        summary_row("BeginningCash", "Cash at beginning of period", &[beginning]),
        summary_row(
            "EndingCash",
            "Cash at end of period",
            &[beginning + increase],
        ),
    ];
    report(
        "CashFlow",
        request,
        time,
        "Total",
        &[("", "Account"), ("Total", "Money")],
        &rows,
    )
}

fn txn_type_title(txn_type: &str) -> &str {
    match txn_type {
        "BillPayment" => "Bill Payment (Check)",
        "Purchase" => "Expense",
        "JournalEntry" => "Journal Entry",
        "SalesReceipt" => "Sales Receipt",
        "CreditMemo" => "Credit Memo",
        "RefundReceipt" => "Refund",
        "VendorCredit" => "Vendor Credit",
        other => other,
    }
}

fn party_names(books: &Books) -> HashMap<(&'static str, u64), String> {
    let mut out = HashMap::new();
    for kind in ["Customer", "Vendor", "Employee"] {
        if let Some(entity) = entity_types::by_name(kind) {
            for party in books.all(entity) {
                out.insert(
                    (entity.name, fields::id(party)),
                    fields::text(party, "DisplayName")
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    }
    out
}

/// The columns of the detail reports (general ledger, profit and loss detail).
const DETAIL_COLUMNS: &[(&str, &str)] = &[
    ("Date", "tx_date"),
    ("Transaction Type", "txn_type"),
    ("Num", "doc_num"),
    ("Name", "name"),
    ("Memo/Description", "memo"),
    ("Amount", "subt_nat_amount"),
    ("Balance", "rbal_nat_amount"),
];

fn blanks(count: usize) -> impl Iterator<Item = Cell> {
    (0..count).map(|_| text(""))
}

/// One posting as a detail row: date, type, number, name, memo, amount, running balance.
fn detail_row(
    posting: &Posting,
    names: &HashMap<(&'static str, u64), String>,
    amount: f64,
    balance: f64,
) -> Row {
    let name = posting
        .party
        .and_then(|p| names.get(&(p.kind, p.id)).cloned())
        .unwrap_or_default();
    Row::Data(vec![
        text(posting.date.format("%Y-%m-%d").to_string()),
        Cell {
            value: txn_type_title(posting.txn_type).to_owned(),
            id: Some(posting.txn_id.to_string()),
        },
        text(posting.doc_number.clone()),
        text(name),
        text(posting.memo.clone()),
        money(amount),
        money(balance),
    ])
}

/// An account's movements as a section with a running balance; `sign` turns credits
/// positive for income accounts. Answers the section and the total of its movements.
fn account_detail(
    account: &Account,
    movements: &[&Posting],
    start_balance: Option<f64>,
    sign: f64,
    names: &HashMap<(&'static str, u64), String>,
) -> (Row, f64) {
    let mut balance = start_balance.unwrap_or(0.0);
    let mut lines = Vec::new();
    if let Some(start) = start_balance {
        lines.push(Row::Data(
            std::iter::once(text("Beginning Balance"))
                .chain(blanks(5))
                .chain([money(start)])
                .collect(),
        ));
    }
    let mut total = 0.0;
    for posting in movements {
        let amount = sign * posting.amount;
        balance += amount;
        total += amount;
        lines.push(detail_row(posting, names, amount, balance));
    }
    let section = Row::Section {
        group: String::new(),
        header: Some(
            std::iter::once(account_cell(account))
                .chain(blanks(6))
                .collect(),
        ),
        rows: lines,
        summary: std::iter::once(text(format!("Total for {}", account.name)))
            .chain(blanks(4))
            .chain([money(total), money(balance)])
            .collect(),
    };
    (section, total)
}

fn sorted_postings(books: &Books, basis: Basis) -> Vec<Posting> {
    let mut postings = ledger::postings(books, basis);
    postings.sort_by(|a, b| (a.date, a.txn_type, a.txn_id).cmp(&(b.date, b.txn_type, b.txn_id)));
    postings
}

fn movements<'a>(postings: &'a [Posting], account: u64, request: &Request) -> Vec<&'a Posting> {
    postings
        .iter()
        .filter(|p| p.account == account && p.date >= request.start && p.date <= request.end)
        .collect()
}

fn general_ledger(books: &Books, request: &Request, time: &str) -> Value {
    let postings = sorted_postings(books, request.basis);
    let names = party_names(books);
    let opening = sums(&postings, None, request.start - Duration::days(1));
    let mut rows = Vec::new();
    for account in accounts(books) {
        let moved = movements(&postings, account.id, request);
        let balance_sheet = ledger::classification(&account.account_type)
            .is_some_and(|c| c != "Revenue" && c != "Expense");
        let start_balance = if balance_sheet {
            opening.get(&account.id).copied().unwrap_or(0.0)
        } else {
            0.0
        };
        if moved.is_empty() && start_balance.abs() < 0.005 {
            continue;
        }
        rows.push(account_detail(&account, &moved, Some(start_balance), 1.0, &names).0);
    }
    report(
        "GeneralLedger",
        request,
        time,
        "Total",
        DETAIL_COLUMNS,
        &rows,
    )
}

/// The profit and loss, transaction by transaction, account by account.
fn profit_and_loss_detail(books: &Books, request: &Request, time: &str) -> Value {
    let postings = sorted_postings(books, request.basis);
    let names = party_names(books);
    let all = accounts(books);
    let mut rows = Vec::new();
    let mut net = 0.0;
    for (group, title, types, sign) in [
        ("Income", "Income", &["Income"][..], -1.0),
        (
            "COGS",
            "Cost of Goods Sold",
            &["Cost of Goods Sold"][..],
            1.0,
        ),
        ("Expenses", "Expenses", &["Expense"][..], 1.0),
        ("OtherIncome", "Other Income", &["Other Income"][..], -1.0),
        (
            "OtherExpenses",
            "Other Expenses",
            &["Other Expense"][..],
            1.0,
        ),
    ] {
        let mut sections = Vec::new();
        let mut group_total = 0.0;
        for account in all
            .iter()
            .filter(|a| types.contains(&a.account_type.as_str()))
        {
            let moved = movements(&postings, account.id, request);
            if moved.is_empty() {
                continue;
            }
            let (section, total) = account_detail(account, &moved, None, sign, &names);
            group_total += total;
            sections.push(section);
        }
        net += if sign < 0.0 {
            group_total
        } else {
            -group_total
        };
        rows.push(Row::Section {
            group: group.into(),
            header: Some(std::iter::once(text(title)).chain(blanks(6)).collect()),
            rows: sections,
            summary: std::iter::once(text(format!("Total {title}")))
                .chain(blanks(4))
                .chain([money(group_total), text("")])
                .collect(),
        });
    }
    rows.push(Row::Section {
        group: "NetIncome".into(),
        header: None,
        rows: Vec::new(),
        summary: std::iter::once(text("Net Income"))
            .chain(blanks(4))
            .chain([money(net), text("")])
            .collect(),
    });
    report(
        "ProfitAndLossDetail",
        request,
        time,
        "Total",
        DETAIL_COLUMNS,
        &rows,
    )
}

/// Every posting transaction in the period, once, with its total.
fn transaction_list(books: &Books, request: &Request, time: &str) -> Value {
    let postings = sorted_postings(books, request.basis);
    let names = party_names(books);
    let account_names: HashMap<u64, String> = accounts(books)
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for posting in postings
        .iter()
        .filter(|p| p.date >= request.start && p.date <= request.end)
    {
        if !seen.insert((posting.txn_type, posting.txn_id)) {
            continue;
        }
        let total = entity_types::by_name(posting.txn_type)
            .and_then(|t| books.get(t, posting.txn_id))
            .map_or(posting.amount.abs(), |txn| {
                amount(txn, "TotalAmt").max(amount(txn, "Amount"))
            });
        let name = posting
            .party
            .and_then(|p| names.get(&(p.kind, p.id)).cloned())
            .unwrap_or_default();
        rows.push(Row::Data(vec![
            text(posting.date.format("%Y-%m-%d").to_string()),
            Cell {
                value: txn_type_title(posting.txn_type).to_owned(),
                id: Some(posting.txn_id.to_string()),
            },
            text(posting.doc_number.clone()),
            text(name),
            text(posting.memo.clone()),
            text(
                account_names
                    .get(&posting.account)
                    .cloned()
                    .unwrap_or_default(),
            ),
            money(total),
        ]));
    }
    report(
        "TransactionList",
        request,
        time,
        "Total",
        &[
            ("Date", "tx_date"),
            ("Transaction Type", "txn_type"),
            ("Num", "doc_num"),
            ("Name", "name"),
            ("Memo/Description", "memo"),
            ("Account", "account_name"),
            ("Amount", "subt_nat_amount"),
        ],
        &rows,
    )
}

/// Parties' amounts with their names as cells, sorted by name as Intuit lists them.
fn named_parties<T>(
    books: &Books,
    kind: &str,
    amounts: impl IntoIterator<Item = (u64, T)>,
) -> Vec<(Cell, T)> {
    let names = party_names(books);
    let mut out: Vec<(Cell, T)> = amounts
        .into_iter()
        .map(|(id, v)| {
            let name = names
                .get(&(kind_name(kind), id))
                .cloned()
                .unwrap_or_default();
            (
                Cell {
                    value: name,
                    id: Some(id.to_string()),
                },
                v,
            )
        })
        .collect();
    out.sort_by_key(|(cell, _)| cell.value.to_lowercase());
    out
}

/// One row per party with a total, and a TOTAL summary.
fn party_totals(
    report_name: &str,
    kind: &str,
    totals: BTreeMap<u64, f64>,
    books: &Books,
    request: &Request,
    time: &str,
) -> Value {
    let named = named_parties(
        books,
        kind,
        totals.into_iter().filter(|(_, v)| v.abs() >= 0.005),
    );
    let total: f64 = named.iter().map(|n| n.1).sum();
    let mut rows: Vec<Row> = named
        .into_iter()
        .map(|(cell, v)| Row::Data(vec![cell, money(v)]))
        .collect();
    rows.push(summary_row("GrandTotal", "TOTAL", &[total]));
    report(
        report_name,
        request,
        time,
        "Total",
        &[(kind, "Customer"), ("Total", "Money")],
        &rows,
    )
}

fn kind_name(kind: &str) -> &'static str {
    if kind == "Vendor" {
        "Vendor"
    } else {
        "Customer"
    }
}

fn by_party(
    postings: &[Posting],
    kind: &str,
    accounts_of: &[u64],
    from: Option<NaiveDate>,
    to: NaiveDate,
    sign: f64,
) -> BTreeMap<u64, f64> {
    let mut out = BTreeMap::new();
    for p in postings {
        if let Some(party) = p.party
            && party.kind == kind
            && accounts_of.contains(&p.account)
            && p.date <= to
            && from.is_none_or(|f| p.date >= f)
        {
            *out.entry(party.id).or_default() += sign * p.amount;
        }
    }
    out
}

fn ids_of(books: &Books, types: &[&str]) -> Vec<u64> {
    accounts(books)
        .into_iter()
        .filter(|a| types.contains(&a.account_type.as_str()))
        .map(|a| a.id)
        .collect()
}

/// One open document (or unused credit, negative) as of a day.
struct OpenItem {
    party: u64,
    bucket: usize,
    txn_type: &'static str,
    id: u64,
    date: NaiveDate,
    doc_number: String,
    due: Option<NaiveDate>,
    total: f64,
    open: f64,
}

/// Titles of the aging buckets, as columns (summary) and sections (detail).
const BUCKETS: [&str; 5] = ["Current", "1 - 30", "31 - 60", "61 - 90", "91 and over"];

/// Open invoices (or bills) and unused credits per party as of the report date, aged by
/// days past due (credits count as current).
fn open_items(books: &Books, day: NaiveDate, receivable: bool) -> Vec<OpenItem> {
    let (documents, credits, payments, party) = if receivable {
        (
            "Invoice",
            ["CreditMemo", "Payment"],
            "Payment",
            "CustomerRef",
        )
    } else {
        (
            "Bill",
            ["VendorCredit", "BillPayment"],
            "BillPayment",
            "VendorRef",
        )
    };
    let date_of = |doc: &Value, field: &str| {
        fields::text(doc, field).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    // What was paid on each document by the report date.
    let mut paid: HashMap<u64, f64> = HashMap::new();
    for payment in books
        .all_named(payments)
        .filter(|p| date_of(p, "TxnDate").is_some_and(|d| d <= day))
    {
        for line in payment
            .get("Line")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for link in line
                .get("LinkedTxn")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if fields::text(link, "TxnType") == Some(documents)
                    && let Some(id) = fields::text(link, "TxnId").and_then(|t| t.parse().ok())
                {
                    *paid.entry(id).or_default() += amount(line, "Amount");
                }
            }
        }
    }
    let item = |doc: &Value, txn_type: &'static str, open: f64, bucket: usize, date: NaiveDate| {
        Some(OpenItem {
            party: fields::reference(doc, party)?,
            bucket,
            txn_type,
            id: fields::id(doc),
            date,
            doc_number: fields::text(doc, "DocNumber")
                .unwrap_or_default()
                .to_owned(),
            due: date_of(doc, "DueDate"),
            total: amount(doc, "TotalAmt"),
            open,
        })
    };
    let mut out = Vec::new();
    for doc in books.all_named(documents) {
        let Some(issued) = date_of(doc, "TxnDate").filter(|d| *d <= day) else {
            continue;
        };
        let open = amount(doc, "TotalAmt") - paid.get(&fields::id(doc)).copied().unwrap_or(0.0);
        if open.abs() < 0.005 {
            continue;
        }
        let due = date_of(doc, "DueDate").unwrap_or(issued);
        let bucket = match (day - due).num_days() {
            i64::MIN..=0 => 0,
            1..=30 => 1,
            31..=60 => 2,
            61..=90 => 3,
            _ => 4,
        };
        out.extend(item(doc, documents, open, bucket, issued));
    }
    for credit in credits {
        for doc in books.all_named(credit) {
            let Some(issued) = date_of(doc, "TxnDate").filter(|d| *d <= day) else {
                continue;
            };
            let unused = match credit {
                "CreditMemo" => amount(doc, "RemainingCredit"),
                "Payment" => amount(doc, "UnappliedAmt"),
                "VendorCredit" => amount(doc, "TotalAmt"),
                _ => 0.0,
            };
            if unused.abs() >= 0.005 {
                out.extend(item(doc, credit, -unused, 0, issued));
            }
        }
    }
    out
}

/// Open balances per party in aging buckets (Current, 1-30, 31-60, 61-90, 91+).
fn aging(
    report_name: &str,
    books: &Books,
    request: &Request,
    time: &str,
    receivable: bool,
) -> Value {
    let kind = if receivable { "Customer" } else { "Vendor" };
    let mut buckets: BTreeMap<u64, [f64; 5]> = BTreeMap::new();
    for item in open_items(books, request.end, receivable) {
        buckets.entry(item.party).or_default()[item.bucket] += item.open;
    }
    let named = named_parties(
        books,
        kind,
        buckets
            .into_iter()
            .filter(|(_, b)| b.iter().any(|v| v.abs() >= 0.005)),
    );
    let mut totals = [0.0; 6];
    let mut rows: Vec<Row> = named
        .into_iter()
        .map(|(cell, b)| {
            let mut cells = vec![cell];
            for (i, v) in b.iter().enumerate() {
                totals[i] += v;
                cells.push(money(*v));
            }
            let row_total: f64 = b.iter().sum();
            totals[5] += row_total;
            cells.push(money(row_total));
            Row::Data(cells)
        })
        .collect();
    rows.push(summary_row("GrandTotal", "TOTAL", &totals));
    let mut titles = vec![("", kind)];
    titles.extend(BUCKETS.iter().map(|b| (*b, "Money")));
    titles.push(("Total", "Money"));
    report(report_name, request, time, "Total", &titles, &rows)
}

/// Every open document in a section per aging bucket.
fn aging_detail(
    report_name: &str,
    books: &Books,
    request: &Request,
    time: &str,
    receivable: bool,
) -> Value {
    let names = party_names(books);
    let kind = if receivable { "Customer" } else { "Vendor" };
    let mut items = open_items(books, request.end, receivable);
    items.sort_by_key(|i| (i.bucket, i.date, i.id));
    let mut rows = Vec::new();
    let mut grand = (0.0, 0.0);
    for (bucket, title) in BUCKETS.iter().enumerate() {
        let lines: Vec<&OpenItem> = items.iter().filter(|i| i.bucket == bucket).collect();
        if lines.is_empty() {
            continue;
        }
        let total: f64 = lines.iter().map(|i| i.total).sum();
        let open: f64 = lines.iter().map(|i| i.open).sum();
        grand = (grand.0 + total, grand.1 + open);
        let title = if bucket == 0 {
            (*title).to_owned()
        } else {
            format!("{title} days past due")
        };
        rows.push(Row::Section {
            group: String::new(),
            header: Some(
                std::iter::once(text(title.clone()))
                    .chain(blanks(6))
                    .collect(),
            ),
            rows: lines
                .iter()
                .map(|i| {
                    Row::Data(vec![
                        text(i.date.format("%Y-%m-%d").to_string()),
                        Cell {
                            value: txn_type_title(i.txn_type).to_owned(),
                            id: Some(i.id.to_string()),
                        },
                        text(i.doc_number.clone()),
                        Cell {
                            value: names
                                .get(&(kind_name(kind), i.party))
                                .cloned()
                                .unwrap_or_default(),
                            id: Some(i.party.to_string()),
                        },
                        text(
                            i.due
                                .map(|d| d.format("%Y-%m-%d").to_string())
                                .unwrap_or_default(),
                        ),
                        money(i.total),
                        money(i.open),
                    ])
                })
                .collect(),
            summary: std::iter::once(text(format!("Total for {title}")))
                .chain(blanks(4))
                .chain([money(total), money(open)])
                .collect(),
        });
    }
    rows.push(Row::Section {
        group: "GrandTotal".into(),
        header: None,
        rows: Vec::new(),
        summary: std::iter::once(text("TOTAL"))
            .chain(blanks(4))
            .chain([money(grand.0), money(grand.1)])
            .collect(),
    });
    report(
        report_name,
        request,
        time,
        "Total",
        &[
            ("Date", "tx_date"),
            ("Transaction Type", "txn_type"),
            ("Num", "doc_num"),
            (kind, if receivable { "cust_name" } else { "vend_name" }),
            ("Due Date", "due_date"),
            ("Amount", "subt_amount"),
            ("Open Balance", "subt_open_bal"),
        ],
        &rows,
    )
}

/// Runs a report by Intuit's name.
pub fn run(
    name: &str,
    params: &HashMap<String, String>,
    company: &Company,
    today: NaiveDate,
    time: &str,
) -> Result<Value, Fault> {
    if !REPORTS.contains(&name) {
        return Err(Fault::validation(
            "2010",
            "Unsupported report",
            format!(
                "Report {name} is not supported by the simulator; it serves {}",
                REPORTS.join(", ")
            ),
        ));
    }
    let request = request(params, today)?;
    if request.by_month && name != "ProfitAndLoss" {
        return Err(Fault::validation(
            "2010",
            "Invalid summarize_column_by",
            format!("{name} is computed as a Total only"),
        ));
    }
    let books = company.books.read();
    let postings = || ledger::postings(&books, request.basis);
    Ok(match name {
        "ProfitAndLoss" => profit_and_loss(&books, &request, time),
        "BalanceSheet" => balance_sheet(&books, &request, time),
        "TrialBalance" => trial_balance(&books, &request, time),
        "CashFlow" => cash_flow(&books, &request, time),
        "GeneralLedger" => general_ledger(&books, &request, time),
        "CustomerSales" => {
            let income = ids_of(&books, &["Income", "Other Income"]);
            let totals = by_party(
                &postings(),
                "Customer",
                &income,
                Some(request.start),
                request.end,
                -1.0,
            );
            party_totals("CustomerSales", "Customer", totals, &books, &request, time)
        }
        "CustomerBalance" => {
            let receivable = ids_of(&books, &["Accounts Receivable"]);
            let totals = by_party(&postings(), "Customer", &receivable, None, request.end, 1.0);
            party_totals(
                "CustomerBalance",
                "Customer",
                totals,
                &books,
                &request,
                time,
            )
        }
        "VendorBalance" => {
            let payable = ids_of(&books, &["Accounts Payable"]);
            let totals = by_party(&postings(), "Vendor", &payable, None, request.end, -1.0);
            party_totals("VendorBalance", "Vendor", totals, &books, &request, time)
        }
        "VendorExpenses" => {
            let expense = ids_of(&books, &["Expense", "Cost of Goods Sold", "Other Expense"]);
            let totals = by_party(
                &postings(),
                "Vendor",
                &expense,
                Some(request.start),
                request.end,
                1.0,
            );
            party_totals("VendorExpenses", "Vendor", totals, &books, &request, time)
        }
        "AgedReceivables" => aging("AgedReceivables", &books, &request, time, true),
        "AgedReceivableDetail" => {
            aging_detail("AgedReceivableDetail", &books, &request, time, true)
        }
        "AgedPayableDetail" => aging_detail("AgedPayableDetail", &books, &request, time, false),
        "ProfitAndLossDetail" => profit_and_loss_detail(&books, &request, time),
        "TransactionList" => transaction_list(&books, &request, time),
        _ => aging("AgedPayables", &books, &request, time, false),
    })
}
