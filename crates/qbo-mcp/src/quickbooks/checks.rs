//! Checks a write's fields before QuickBooks sees them (docs/tools.md, "Checked before
//! QuickBooks"): a journal entry balances to the cent, a sales line's `Qty × UnitPrice` is its
//! `Amount`, dates are `YYYY-MM-DD`, and the references a new transaction needs are there.
//! Each failure says what to fix; nothing is sent, so no request of the company's budget is
//! spent on a write QuickBooks would refuse.

use serde_json::Value;

/// Sales transactions: their lines are checked, and they need a customer.
const SALES: &[&str] = &[
    "Invoice",
    "SalesReceipt",
    "Estimate",
    "CreditMemo",
    "RefundReceipt",
];

/// The reference each new transaction type must carry.
const REQUIRED_REFS: &[(&str, &str)] = &[
    ("Invoice", "CustomerRef"),
    ("SalesReceipt", "CustomerRef"),
    ("Estimate", "CustomerRef"),
    ("CreditMemo", "CustomerRef"),
    ("RefundReceipt", "CustomerRef"),
    ("Payment", "CustomerRef"),
    ("Bill", "VendorRef"),
    ("VendorCredit", "VendorRef"),
    ("PurchaseOrder", "VendorRef"),
    ("BillPayment", "VendorRef"),
    ("Purchase", "AccountRef"),
];

/// Money in cents, as QuickBooks compares it.
fn cents(v: &Value) -> Option<i64> {
    let n = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    Some((n * 100.0).round() as i64)
}

fn money(c: i64) -> String {
    format!(
        "{}{}.{:02}",
        if c < 0 { "-" } else { "" },
        c.abs() / 100,
        c.abs() % 100
    )
}

/// A reference is usable when it has a `value` or a `name` (resolved by name).
fn has_ref(reference: &Value) -> bool {
    let given = |k: &str| {
        reference
            .get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    given("value") || given("name")
}

/// Checks the fields of a write to `entity` (`creating`: a new one, so required references
/// must be there). `Err` says what to fix.
pub fn check(entity: &str, body: &Value, creating: bool) -> Result<(), String> {
    dates(body, "")?;
    refs_given(body)?;
    if creating {
        for (_, key) in REQUIRED_REFS.iter().filter(|(e, _)| *e == entity) {
            if !body.get(*key).is_some_and(has_ref) {
                return Err(format!(
                    "A {entity} needs `{key}`: give {{\"value\": id}} or {{\"name\": \"…\"}}."
                ));
            }
        }
    }
    let Some(lines) = body.get("Line").and_then(Value::as_array) else {
        return Ok(());
    };
    if entity == "JournalEntry" {
        journal_balances(lines, creating)?;
    }
    if SALES.contains(&entity) {
        sales_lines(lines)?;
    }
    Ok(())
}

/// Every `…Date` field, at any depth, is `YYYY-MM-DD`.
fn dates(v: &Value, key: &str) -> Result<(), String> {
    match v {
        Value::Object(map) => map.iter().try_for_each(|(k, child)| dates(child, k)),
        Value::Array(items) => items.iter().try_for_each(|child| dates(child, key)),
        Value::String(s) if key.ends_with("Date") => {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .filter(|_| s.len() == 10)
                .map(|_| ())
                .ok_or_else(|| format!("{key} `{s}` is not a date like 2026-01-31 (YYYY-MM-DD)."))
        }
        _ => Ok(()),
    }
}

/// A `…Ref` object has a `value` or a `name`.
fn refs_given(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(map) => map.iter().try_for_each(|(k, child)| {
            if k.ends_with("Ref") && child.is_object() && !has_ref(child) {
                return Err(format!(
                    "`{k}` has neither `value` (the id) nor `name`; give one."
                ));
            }
            refs_given(child)
        }),
        Value::Array(items) => items.iter().try_for_each(refs_given),
        _ => Ok(()),
    }
}

/// Debits equal credits to the cent; every line has an account.
fn journal_balances(lines: &[Value], creating: bool) -> Result<(), String> {
    let (mut debits, mut credits) = (0i64, 0i64);
    for (i, line) in lines.iter().enumerate() {
        let detail = &line["JournalEntryLineDetail"];
        if detail.is_null() {
            continue;
        }
        let amount = cents(&line["Amount"])
            .ok_or_else(|| format!("Journal line {} has no `Amount`.", i + 1))?;
        match detail["PostingType"].as_str() {
            Some("Debit") => debits += amount,
            Some("Credit") => credits += amount,
            _ => {
                return Err(format!(
                    "Journal line {} needs JournalEntryLineDetail.PostingType \"Debit\" or \"Credit\".",
                    i + 1
                ));
            }
        }
        if creating && !detail.get("AccountRef").is_some_and(has_ref) {
            return Err(format!(
                "Journal line {} needs JournalEntryLineDetail.AccountRef.",
                i + 1
            ));
        }
    }
    if debits != credits {
        return Err(format!(
            "The journal entry does not balance: debits {}, credits {} (off by {}). Make debits equal credits to the cent; nothing was sent.",
            money(debits),
            money(credits),
            money((debits - credits).abs())
        ));
    }
    Ok(())
}

/// A sales line with `Qty` and `UnitPrice` has `Amount = Qty × UnitPrice` (to the cent).
fn sales_lines(lines: &[Value]) -> Result<(), String> {
    for (i, line) in lines.iter().enumerate() {
        let detail = &line["SalesItemLineDetail"];
        let qty = detail["Qty"].as_f64();
        let price = detail["UnitPrice"].as_f64();
        let (Some(qty), Some(price), Some(amount)) = (qty, price, cents(&line["Amount"])) else {
            continue;
        };
        let expected = (qty * price * 100.0).round() as i64;
        if expected != amount {
            return Err(format!(
                "Line {}: Qty {qty} × UnitPrice {price} is {}, but Amount is {}. Fix Amount, Qty or UnitPrice; nothing was sent.",
                i + 1,
                money(expected),
                money(amount)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn je(debit: f64, credit: f64) -> Value {
        json!({"Line": [
            {"Amount": debit, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": "1"}}},
            {"Amount": credit, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"name": "Checking"}}}]})
    }

    #[test]
    fn journal_entries_balance_to_the_cent() {
        assert!(check("JournalEntry", &je(100.0, 100.0), true).is_ok());
        assert!(check("JournalEntry", &je(0.1 + 0.2, 0.3), true).is_ok());
        let e = check("JournalEntry", &je(100.0, 90.0), true).unwrap_err();
        assert!(
            e.contains("debits 100.00, credits 90.00 (off by 10.00)"),
            "{e}"
        );
        assert!(check("JournalEntry", &je(100.0, 99.99), true).is_err());
    }

    #[test]
    fn sales_lines_dates_and_refs_are_checked() {
        let line = |qty: f64, price: f64, amount: f64| {
            json!({"CustomerRef": {"value": "1"}, "TxnDate": "2026-01-31", "Line": [{"Amount": amount, "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": qty, "UnitPrice": price}}]})
        };
        assert!(check("Invoice", &line(12.0, 50.0, 600.0), true).is_ok());
        assert!(check("Invoice", &line(3.0, 19.99, 59.97), true).is_ok());
        let e = check("Invoice", &line(12.0, 50.0, 500.0), true).unwrap_err();
        assert!(e.contains("is 600.00, but Amount is 500.00"), "{e}");
        let e = check(
            "Invoice",
            &json!({"TxnDate": "31/01/2026", "CustomerRef": {"value": "1"}}),
            true,
        )
        .unwrap_err();
        assert!(e.contains("TxnDate `31/01/2026`"), "{e}");
        assert!(
            check(
                "Invoice",
                &json!({"DueDate": "2026-02-30", "CustomerRef": {"value": "1"}}),
                true
            )
            .is_err()
        );
        let e = check("Invoice", &json!({"Line": []}), true).unwrap_err();
        assert!(e.contains("needs `CustomerRef`"), "{e}");
        assert!(
            check("Invoice", &json!({"PrivateNote": "x"}), false).is_ok(),
            "updates need no refs"
        );
        let e = check("Bill", &json!({"VendorRef": {"name": ""}}), true).unwrap_err();
        assert!(e.contains("`VendorRef` has neither"), "{e}");
    }
}
