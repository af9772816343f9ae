//! Reports: Intuit's shape, sections whose summaries add up, and reports that agree with
//! each other and with the entities.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn report(sim: &Sim, token: &str, name: &str, query: &str) -> Value {
    let (status, body) = sim
        .get(
            token,
            &format!("/v3/company/{REALM}/reports/{name}?minorversion=75{query}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{name}: {body}");
    body
}

fn number(cell: &Value) -> f64 {
    cell["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The columns whose section summaries are sums: all money columns of summary reports; the
/// amount (and open balance) columns of detail reports, whose other columns are dates,
/// numbers and running balances.
fn summed_columns(report: &str, width: usize) -> Vec<usize> {
    match report {
        "GeneralLedger" | "ProfitAndLossDetail" => vec![5],
        "AgedReceivableDetail" | "AgedPayableDetail" => vec![5, 6],
        _ => (1..width).collect(),
    }
}

/// Every section's summary equals the sum of its rows, column by column, all the way down.
/// Sections whose summary is a derived figure (no rows) are skipped.
fn assert_sections_add_up(rows: &Value, report: &str, path: &str) {
    for row in rows["Row"].as_array().into_iter().flatten() {
        if row["type"] != "Section" || row.get("Rows").is_none() {
            continue;
        }
        let group = row["group"].as_str().unwrap_or("");
        let summary = row["Summary"]["ColData"].as_array().expect("summary");
        for column in summed_columns(report, summary.len()) {
            let mut sum = 0.0;
            for inner in row["Rows"]["Row"].as_array().into_iter().flatten() {
                let cells = if inner["type"] == "Section" {
                    &inner["Summary"]["ColData"]
                } else {
                    &inner["ColData"]
                };
                sum += number(&cells[column]);
            }
            let stated = number(&summary[column]);
            assert!(
                (sum - stated).abs() < 0.02,
                "{path}/{group} column {column}: rows {sum} vs summary {stated}"
            );
        }
        assert_sections_add_up(&row["Rows"], report, &format!("{path}/{group}"));
    }
}

fn section<'a>(rows: &'a Value, group: &str) -> Option<&'a Value> {
    for row in rows["Row"].as_array().into_iter().flatten() {
        if row["group"] == group {
            return Some(row);
        }
        if let Some(found) = row.get("Rows").and_then(|inner| section(inner, group)) {
            return Some(found);
        }
    }
    None
}

fn total(report: &Value, group: &str) -> f64 {
    let found = section(&report["Rows"], group).unwrap_or_else(|| panic!("section {group}"));
    let cells = found["Summary"]["ColData"].as_array().expect("cells");
    number(cells.last().expect("last"))
}

#[tokio::test]
async fn every_report_has_intuits_shape_and_adds_up() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    for name in [
        "ProfitAndLoss",
        "BalanceSheet",
        "CashFlow",
        "TrialBalance",
        "GeneralLedger",
        "CustomerSales",
        "AgedReceivables",
        "AgedPayables",
        "CustomerBalance",
        "VendorBalance",
        "VendorExpenses",
        "AgedReceivableDetail",
        "AgedPayableDetail",
        "ProfitAndLossDetail",
        "TransactionList",
    ] {
        let body = report(&sim, &tokens.access, name, "").await;
        assert_eq!(body["Header"]["ReportName"], name);
        assert_eq!(body["Header"]["Currency"], "USD");
        assert!(
            body["Header"]["StartPeriod"].is_string() && body["Header"]["EndPeriod"].is_string()
        );
        assert!(body["Columns"]["Column"][0]["ColType"].is_string());
        let rows = body["Rows"]["Row"].as_array().expect("rows");
        assert!(!rows.is_empty(), "{name} has rows");
        assert_sections_add_up(&body["Rows"], name, name);
    }
    let (status, body) = sim
        .get(
            &tokens.access,
            &format!("/v3/company/{REALM}/reports/NoSuchReport"),
        )
        .await;
    assert_eq!(
        (status, fault_code(&body)),
        (StatusCode::BAD_REQUEST, "2010")
    );
    let (status, _) = sim
        .get(
            &tokens.access,
            &format!("/v3/company/{REALM}/reports/ProfitAndLoss?start_date=yesterday"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(sim.stats().await["reports"], 17);
}

#[tokio::test]
async fn profit_and_loss_nets_and_months_add_up_to_the_total() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let year = report(&sim, &tokens.access, "ProfitAndLoss", "").await;
    let income = total(&year, "Income");
    let cogs = total(&year, "COGS");
    let expenses = total(&year, "Expenses");
    let other = total(&year, "NetOtherIncome");
    assert!(income > 0.0);
    assert!((total(&year, "GrossProfit") - (income - cogs)).abs() < 0.02);
    assert!((total(&year, "NetIncome") - (income - cogs - expenses + other)).abs() < 0.02);
    let monthly = report(
        &sim,
        &tokens.access,
        "ProfitAndLoss",
        "&summarize_column_by=Month",
    )
    .await;
    let columns = monthly["Columns"]["Column"].as_array().expect("columns");
    assert!(columns.len() > 2);
    assert_eq!(columns.last().expect("total")["ColTitle"], "Total");
    let net = section(&monthly["Rows"], "NetIncome").expect("net")["Summary"]["ColData"]
        .as_array()
        .expect("cells")
        .clone();
    let months: f64 = net[1..net.len() - 1].iter().map(number).sum();
    assert!((months - number(&net[net.len() - 1])).abs() < 0.05);
    assert!((number(&net[net.len() - 1]) - total(&year, "NetIncome")).abs() < 0.02);
    let cash = report(
        &sim,
        &tokens.access,
        "ProfitAndLoss",
        "&accounting_method=Cash",
    )
    .await;
    assert_eq!(cash["Header"]["ReportBasis"], "Cash");
    assert!(total(&cash, "Income") > 0.0);
}

#[tokio::test]
async fn the_balance_sheet_balances_and_agrees_with_the_other_reports() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let sheet = report(&sim, &tokens.access, "BalanceSheet", "").await;
    let assets = total(&sheet, "TotalAssets");
    assert!(assets > 0.0);
    assert!(
        (assets - total(&sheet, "TotalLiabilitiesAndEquity")).abs() < 0.02,
        "assets = liabilities + equity"
    );
    let net_income_row = section(&sheet["Rows"], "Equity").expect("equity")["Rows"]["Row"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["ColData"][0]["value"] == "Net Income")
        .map(|r| number(&r["ColData"][1]))
        .expect("net income row");
    let pnl = report(&sim, &tokens.access, "ProfitAndLoss", "").await;
    assert!(
        (net_income_row - total(&pnl, "NetIncome")).abs() < 0.02,
        "balance sheet net income = P&L"
    );
    let trial = report(&sim, &tokens.access, "TrialBalance", "").await;
    let last = trial["Rows"]["Row"]
        .as_array()
        .expect("rows")
        .last()
        .expect("total")["Summary"]["ColData"]
        .clone();
    assert!(
        (number(&last[1]) - number(&last[2])).abs() < 0.02,
        "debits = credits"
    );
    let flow = report(&sim, &tokens.access, "CashFlow", "").await;
    assert!(
        (total(&flow, "EndingCash") - total(&sheet, "BankAccounts")).abs() < 0.02,
        "cash flow ends at the bank balance"
    );
    let receivable = total(&sheet, "AR");
    let balances = report(&sim, &tokens.access, "CustomerBalance", "").await;
    let aged = report(&sim, &tokens.access, "AgedReceivables", "").await;
    assert!(
        (total(&balances, "GrandTotal") - receivable).abs() < 0.02,
        "customer balances = A/R"
    );
    assert!(
        (total(&aged, "GrandTotal") - receivable).abs() < 0.02,
        "aging = A/R"
    );
    let payable = total(&sheet, "AP");
    let vendor_balances = report(&sim, &tokens.access, "VendorBalance", "").await;
    let aged_payables = report(&sim, &tokens.access, "AgedPayables", "").await;
    assert!(
        (total(&vendor_balances, "GrandTotal") - payable).abs() < 0.02,
        "vendor balances = A/P"
    );
    assert!(
        (total(&aged_payables, "GrandTotal") - payable).abs() < 0.02,
        "payables aging = A/P"
    );
    let (_, customers) = sim
        .query(&tokens.access, "SELECT * FROM Customer MAXRESULTS 1000")
        .await;
    let entity_sum: f64 = customers["QueryResponse"]["Customer"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|c| c["Balance"].as_f64().unwrap_or(0.0))
        .sum();
    assert!(
        (entity_sum - receivable).abs() < 0.05,
        "customer entities' Balance = A/R"
    );
}

#[tokio::test]
async fn reports_follow_new_transactions() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let before = report(&sim, &tokens.access, "ProfitAndLoss", "").await;
    let invoice = serde_json::json!({"CustomerRef": {"value": "1"}, "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 1000, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]});
    let (status, _) = sim
        .post(
            &tokens.access,
            &format!("/v3/company/{REALM}/invoice"),
            &invoice,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = report(&sim, &tokens.access, "ProfitAndLoss", "").await;
    assert!((total(&after, "Income") - total(&before, "Income") - 1000.0).abs() < 0.02);
    let sales = report(&sim, &tokens.access, "CustomerSales", "").await;
    assert!(
        sales["Rows"]["Row"]
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["ColData"][0]["value"] == "Amy's Bird Sanctuary")
    );
    let ledger = report(&sim, &tokens.access, "GeneralLedger", "").await;
    assert!(ledger.to_string().contains("Amy's Bird Sanctuary"));
}

#[tokio::test]
async fn aging_as_of_a_past_day_matches_the_receivables_of_that_day() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let day = (chrono::Utc::now() - chrono::Duration::days(75))
        .format("%Y-%m-%d")
        .to_string();
    let sheet = report(
        &sim,
        &tokens.access,
        "BalanceSheet",
        &format!("&end_date={day}"),
    )
    .await;
    let aged = report(
        &sim,
        &tokens.access,
        "AgedReceivables",
        &format!("&report_date={day}"),
    )
    .await;
    let balances = report(
        &sim,
        &tokens.access,
        "CustomerBalance",
        &format!("&end_date={day}"),
    )
    .await;
    let receivable = total(&sheet, "AR");
    assert!(receivable > 0.0);
    assert!(
        (total(&aged, "GrandTotal") - receivable).abs() < 0.02,
        "aging then = A/R then"
    );
    assert!(
        (total(&balances, "GrandTotal") - receivable).abs() < 0.02,
        "balances then = A/R then"
    );
    let payables = report(
        &sim,
        &tokens.access,
        "AgedPayables",
        &format!("&report_date={day}"),
    )
    .await;
    assert!((total(&payables, "GrandTotal") - total(&sheet, "AP")).abs() < 0.02);
}

#[tokio::test]
async fn detail_reports_agree_with_their_summaries() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let pnl = report(&sim, &tokens.access, "ProfitAndLoss", "").await;
    let detail = report(&sim, &tokens.access, "ProfitAndLossDetail", "").await;
    let net = section(&detail["Rows"], "NetIncome").expect("net")["Summary"]["ColData"][5].clone();
    assert!(
        (number(&net) - total(&pnl, "NetIncome")).abs() < 0.02,
        "detail net income = P&L"
    );
    let income =
        section(&detail["Rows"], "Income").expect("income")["Summary"]["ColData"][5].clone();
    assert!((number(&income) - total(&pnl, "Income")).abs() < 0.02);
    for (summary, detail) in [
        ("AgedReceivables", "AgedReceivableDetail"),
        ("AgedPayables", "AgedPayableDetail"),
    ] {
        let aged = report(&sim, &tokens.access, summary, "").await;
        let lines = report(&sim, &tokens.access, detail, "").await;
        let open =
            section(&lines["Rows"], "GrandTotal").expect("total")["Summary"]["ColData"][6].clone();
        assert!(
            (number(&open) - total(&aged, "GrandTotal")).abs() < 0.02,
            "{detail} = {summary}"
        );
    }
    let list = report(&sim, &tokens.access, "TransactionList", "").await;
    assert!(
        list["Rows"]["Row"]
            .as_array()
            .is_some_and(|rows| rows.len() > 20)
    );
    assert_eq!(list["Columns"]["Column"].as_array().map(Vec::len), Some(7));
}
