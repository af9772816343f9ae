//! Double-entry postings derived from the transactions, the one source every report and
//! every account balance is computed from, so that reports always add up and agree with
//! each other. Accrual books post invoices and bills when written; cash books post income
//! and expense when paid.

use super::Books;
use super::fields::{self, amount};
use chrono::NaiveDate;
use serde_json::Value;
use std::collections::HashMap;

/// The accounting method of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Accrual,
    Cash,
}

/// A customer, vendor or employee a posting concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Party {
    pub kind: &'static str,
    pub id: u64,
}

/// One line of the general ledger; debits positive, credits negative.
#[derive(Debug, Clone)]
pub struct Posting {
    pub date: NaiveDate,
    pub account: u64,
    pub amount: f64,
    pub txn_type: &'static str,
    pub txn_id: u64,
    pub doc_number: String,
    pub party: Option<Party>,
    pub memo: String,
}

/// The classification QuickBooks gives an account type, `None` for an unknown type.
pub fn classification(account_type: &str) -> Option<&'static str> {
    Some(match account_type {
        "Bank" | "Accounts Receivable" | "Other Current Asset" | "Fixed Asset" | "Other Asset" => {
            "Asset"
        }
        "Accounts Payable" | "Credit Card" | "Other Current Liability" | "Long Term Liability" => {
            "Liability"
        }
        "Equity" => "Equity",
        "Income" | "Other Income" => "Revenue",
        "Expense" | "Other Expense" | "Cost of Goods Sold" => "Expense",
        _ => return None,
    })
}

/// The id of the first active account of a type (`"Accounts Receivable"`).
pub fn account_of_type(books: &Books, account_type: &str) -> Option<u64> {
    books
        .all_named("Account")
        .find(|a| fields::text(a, "AccountType") == Some(account_type))
        .map(fields::id)
}

/// The id of the account with this name.
pub fn account_named(books: &Books, name: &str) -> Option<u64> {
    books
        .all_named("Account")
        .find(|a| fields::text(a, "Name") == Some(name))
        .map(fields::id)
}

struct Writer<'a> {
    books: &'a Books,
    out: Vec<Posting>,
    date: NaiveDate,
    txn_type: &'static str,
    txn_id: u64,
    doc_number: String,
    party: Option<Party>,
    memo: String,
}

impl Writer<'_> {
    fn post(&mut self, account: Option<u64>, amount: f64) {
        let Some(account) = account else { return };
        if amount.abs() < 0.000_5 {
            return;
        }
        self.out.push(Posting {
            date: self.date,
            account,
            amount,
            txn_type: self.txn_type,
            txn_id: self.txn_id,
            doc_number: self.doc_number.clone(),
            party: self.party,
            memo: self.memo.clone(),
        });
    }

    fn item_account(&self, line: &Value, detail: &str, field: &str) -> Option<u64> {
        let item = fields::reference(line, &format!("{detail}.ItemRef"))?;
        let item = self
            .books
            .all_named("Item")
            .find(|i| fields::id(i) == item)?;
        fields::reference(item, field)
    }

    /// Income lines of a sales document, each scaled by `share` and signed by `sign`.
    fn sales_lines(&mut self, txn: &Value, share: f64, sign: f64) {
        for line in lines(txn) {
            if fields::text(line, "DetailType") == Some("SalesItemLineDetail") {
                let account = self
                    .item_account(line, "SalesItemLineDetail", "IncomeAccountRef")
                    .or_else(|| account_of_type(self.books, "Income"));
                self.post(account, sign * share * amount(line, "Amount"));
            }
        }
    }

    /// Expense lines of a purchase document, each scaled by `share` and signed by `sign`.
    fn expense_lines(&mut self, txn: &Value, share: f64, sign: f64) {
        for line in lines(txn) {
            let account = match fields::text(line, "DetailType") {
                Some("AccountBasedExpenseLineDetail") => {
                    fields::reference(line, "AccountBasedExpenseLineDetail.AccountRef")
                }
                Some("ItemBasedExpenseLineDetail") => self
                    .item_account(line, "ItemBasedExpenseLineDetail", "ExpenseAccountRef")
                    .or_else(|| account_of_type(self.books, "Cost of Goods Sold")),
                _ => continue,
            };
            self.post(account, sign * share * amount(line, "Amount"));
        }
    }
}

fn lines(txn: &Value) -> impl Iterator<Item = &Value> {
    txn.get("Line")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn party_of(txn: &Value) -> Option<Party> {
    if let Some(id) = fields::reference(txn, "CustomerRef") {
        return Some(Party {
            kind: "Customer",
            id,
        });
    }
    if let Some(id) = fields::reference(txn, "VendorRef") {
        return Some(Party { kind: "Vendor", id });
    }
    let kind = match fields::text(txn, "EntityRef.type")? {
        "Customer" => "Customer",
        "Vendor" => "Vendor",
        "Employee" => "Employee",
        _ => return None,
    };
    Some(Party {
        kind,
        id: fields::reference(txn, "EntityRef")?,
    })
}

/// Every posting of the books, in no particular order.
pub fn postings(books: &Books, basis: Basis) -> Vec<Posting> {
    let receivable = account_of_type(books, "Accounts Receivable");
    let payable = account_of_type(books, "Accounts Payable");
    let undeposited =
        account_named(books, "Undeposited Funds").or_else(|| account_of_type(books, "Bank"));
    let mut writer = Writer {
        books,
        out: Vec::new(),
        date: NaiveDate::MIN,
        txn_type: "",
        txn_id: 0,
        doc_number: String::new(),
        party: None,
        memo: String::new(),
    };
    let txn_types: [&'static str; 12] = [
        "Invoice",
        "SalesReceipt",
        "CreditMemo",
        "RefundReceipt",
        "Payment",
        "Bill",
        "VendorCredit",
        "BillPayment",
        "Purchase",
        "JournalEntry",
        "Deposit",
        "Transfer",
    ];
    for txn_type in txn_types {
        for txn in books.all_named(txn_type) {
            writer.date = fields::text(txn, "TxnDate")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .unwrap_or(NaiveDate::MIN);
            writer.txn_type = txn_type;
            writer.txn_id = fields::id(txn);
            writer.doc_number = fields::text(txn, "DocNumber")
                .unwrap_or_default()
                .to_owned();
            writer.party = party_of(txn);
            writer.memo = fields::text(txn, "PrivateNote")
                .unwrap_or_default()
                .to_owned();
            let total = amount(txn, "TotalAmt");
            match (txn_type, basis) {
                ("Invoice", Basis::Accrual) => {
                    writer.post(receivable, total);
                    writer.sales_lines(txn, 1.0, -1.0);
                }
                ("CreditMemo", Basis::Accrual) => {
                    writer.post(receivable, -total);
                    writer.sales_lines(txn, 1.0, 1.0);
                }
                ("Bill", Basis::Accrual) => {
                    writer.post(payable, -total);
                    writer.expense_lines(txn, 1.0, 1.0);
                }
                ("VendorCredit", Basis::Accrual) => {
                    writer.post(payable, total);
                    writer.expense_lines(txn, 1.0, -1.0);
                }
                ("Invoice" | "CreditMemo" | "Bill" | "VendorCredit", Basis::Cash) => {}
                ("SalesReceipt", _) => {
                    writer.post(
                        fields::reference(txn, "DepositToAccountRef").or(undeposited),
                        total,
                    );
                    writer.sales_lines(txn, 1.0, -1.0);
                }
                ("RefundReceipt", _) => {
                    writer.post(
                        fields::reference(txn, "DepositToAccountRef").or(undeposited),
                        -total,
                    );
                    writer.sales_lines(txn, 1.0, 1.0);
                }
                ("Payment", _) => {
                    writer.post(
                        fields::reference(txn, "DepositToAccountRef").or(undeposited),
                        total,
                    );
                    let mut applied = 0.0;
                    if basis == Basis::Cash {
                        for (invoice, paid) in linked(books, txn, "Invoice") {
                            let invoice_total = amount(invoice, "TotalAmt");
                            if invoice_total > 0.0 {
                                writer.sales_lines(invoice, paid / invoice_total, -1.0);
                                applied += paid;
                            }
                        }
                    }
                    writer.post(receivable, -(total - applied));
                }
                ("BillPayment", _) => {
                    let bank = fields::reference(txn, "CheckPayment.BankAccountRef")
                        .or_else(|| fields::reference(txn, "CreditCardPayment.CCAccountRef"))
                        .or_else(|| account_of_type(books, "Bank"));
                    writer.post(bank, -total);
                    let mut applied = 0.0;
                    if basis == Basis::Cash {
                        for (bill, paid) in linked(books, txn, "Bill") {
                            let bill_total = amount(bill, "TotalAmt");
                            if bill_total > 0.0 {
                                writer.expense_lines(bill, paid / bill_total, 1.0);
                                applied += paid;
                            }
                        }
                    }
                    writer.post(payable, total - applied);
                }
                ("Purchase", _) => {
                    let sign = if txn.get("Credit").and_then(Value::as_bool) == Some(true) {
                        -1.0
                    } else {
                        1.0
                    };
                    writer.post(fields::reference(txn, "AccountRef"), -sign * total);
                    writer.expense_lines(txn, 1.0, sign);
                }
                ("JournalEntry", _) => {
                    for line in lines(txn) {
                        let sign = match fields::text(line, "JournalEntryLineDetail.PostingType") {
                            Some("Debit") => 1.0,
                            Some("Credit") => -1.0,
                            _ => continue,
                        };
                        let account = fields::reference(line, "JournalEntryLineDetail.AccountRef");
                        let saved = writer.party;
                        if let Some(party) = line
                            .get("JournalEntryLineDetail")
                            .and_then(|d| d.get("Entity"))
                            .and_then(party_of)
                        {
                            writer.party = Some(party);
                        }
                        writer.post(account, sign * amount(line, "Amount"));
                        writer.party = saved;
                    }
                }
                ("Deposit", _) => {
                    writer.post(fields::reference(txn, "DepositToAccountRef"), total);
                    for line in lines(txn) {
                        let account =
                            fields::reference(line, "DepositLineDetail.AccountRef").or(undeposited);
                        writer.post(account, -amount(line, "Amount"));
                    }
                }
                ("Transfer", _) => {
                    let moved = amount(txn, "Amount");
                    writer.post(fields::reference(txn, "ToAccountRef"), moved);
                    writer.post(fields::reference(txn, "FromAccountRef"), -moved);
                }
                _ => {}
            }
        }
    }
    writer.out
}

/// The documents a payment's lines are applied to, with the amount applied to each.
fn linked<'a>(books: &'a Books, payment: &'a Value, target: &'a str) -> Vec<(&'a Value, f64)> {
    let mut out = Vec::new();
    for line in lines(payment) {
        for link in line
            .get("LinkedTxn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if fields::text(link, "TxnType") != Some(target) {
                continue;
            }
            let Some(id) = fields::text(link, "TxnId").and_then(|t| t.parse::<u64>().ok()) else {
                continue;
            };
            if let Some(doc) = books.all_named(target).find(|d| fields::id(d) == id) {
                out.push((doc, amount(line, "Amount")));
            }
        }
    }
    out
}

/// Each account's balance (debits minus credits), accrual basis, up to a date when given.
pub fn account_balances(books: &Books, as_of: Option<NaiveDate>) -> HashMap<u64, f64> {
    let mut out: HashMap<u64, f64> = HashMap::new();
    for posting in postings(books, Basis::Accrual) {
        if as_of.is_none_or(|day| posting.date <= day) {
            *out.entry(posting.account).or_default() += posting.amount;
        }
    }
    out
}
