//! What a model reads in `tools/list` besides names: the input schemas refined where the Rust
//! types say too little (`company` described, `entity` and `report` enumerated, dates with
//! their format, `fields` with an example per common entity) and every tool's `outputSchema`,
//! which its `structuredContent` matches (docs/mcp.md, "Schemas").

use rmcp::model::JsonObject;
use serde_json::{Value, json};

use crate::quickbooks::entities::{Kind, TYPES};

/// QuickBooks' report names this server runs (`run_report`'s `report`).
pub const REPORTS: &[&str] = &[
    "ProfitAndLoss",
    "ProfitAndLossDetail",
    "BalanceSheet",
    "CashFlow",
    "TrialBalance",
    "GeneralLedger",
    "TransactionList",
    "CustomerSales",
    "CustomerBalance",
    "VendorBalance",
    "VendorExpenses",
    "AgedReceivables",
    "AgedReceivableDetail",
    "AgedPayables",
    "AgedPayableDetail",
];

/// QuickBooks' `summarize_column_by` values.
pub const SUMMARIZE_BY: &[&str] = &[
    "Total",
    "Month",
    "Week",
    "Days",
    "Quarter",
    "Year",
    "Customers",
    "Vendors",
    "Classes",
    "Departments",
    "Employees",
    "ProductsAndServices",
];

/// The `company` argument, the same on every tool that takes it.
pub const COMPANY: &str = "The company: its realm id or its name, as list_companies shows them. Omit it when you have only one company.";

/// An example of `fields` for the common entities, by QuickBooks name.
pub fn example(entity: &str) -> Option<Value> {
    Some(match entity {
        "Customer" => {
            json!({"DisplayName": "Acme Ltd", "PrimaryEmailAddr": {"Address": "ap@acme.example"}})
        }
        "Vendor" => {
            json!({"DisplayName": "Paper Supply Co", "PrimaryPhone": {"FreeFormNumber": "555-0100"}})
        }
        "Employee" => json!({"GivenName": "Ada", "FamilyName": "Lovelace"}),
        "Item" => {
            json!({"Name": "Design hour", "Type": "Service", "UnitPrice": 90, "IncomeAccountRef": {"value": "79"}})
        }
        "Account" => json!({"Name": "Marketing", "AccountType": "Expense"}),
        "CompanyInfo" => {
            json!({"LegalName": "Craig's Design LLC", "PrimaryPhone": {"FreeFormNumber": "(555) 555-0199"}})
        }
        "Preferences" => json!({"AccountingInfoPrefs": {"TrackDepartments": true}}),
        "Invoice" | "Estimate" | "SalesReceipt" | "CreditMemo" | "RefundReceipt" => json!({
            "CustomerRef": {"value": "1"},
            "TxnDate": "2026-01-31",
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 180,
                      "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 2}}]
        }),
        "Bill" | "VendorCredit" | "PurchaseOrder" => json!({
            "VendorRef": {"value": "30"},
            "Line": [{"DetailType": "AccountBasedExpenseLineDetail", "Amount": 120,
                      "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "7"}}}]
        }),
        "Purchase" => json!({
            "PaymentType": "Cash", "AccountRef": {"value": "35"},
            "Line": [{"DetailType": "AccountBasedExpenseLineDetail", "Amount": 45,
                      "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "7"}}}]
        }),
        "Payment" => json!({"CustomerRef": {"value": "1"}, "TotalAmt": 180}),
        "JournalEntry" => json!({"Line": [
            {"DetailType": "JournalEntryLineDetail", "Amount": 100,
             "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": "7"}}},
            {"DetailType": "JournalEntryLineDetail", "Amount": 100,
             "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"value": "35"}}}
        ]}),
        _ => return None,
    })
}

/// Entity names a tool accepts: every type for reads, the changeable ones for writes.
pub fn entity_names(writes: bool) -> Vec<&'static str> {
    TYPES
        .iter()
        .filter(|t| !writes || !matches!(t.kind, Kind::ReadOnly | Kind::Settings))
        .map(|t| t.name)
        .collect()
}

fn describe(property: &mut Value, text: &str) {
    if let Value::Object(p) = property {
        p.insert("description".into(), json!(text));
    }
}

/// Refines a derived input schema in place: `subject` is a generated tool's fixed entity or
/// report (empty for compact tools), `writes` whether the tool changes the books.
pub fn refine(schema: &mut JsonObject, subject: &str, writes: bool) {
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    // `update_company_settings` changes CompanyInfo or Preferences: its examples are theirs.
    let subject = if props.contains_key("settings") {
        SETTINGS
    } else {
        subject
    };
    for (name, property) in props.iter_mut() {
        match name.as_str() {
            "company" => describe(property, COMPANY),
            "entity" => {
                describe(
                    property,
                    "QuickBooks' entity name, case-sensitive (`Customer`, `Invoice`, …).",
                );
                property["type"] = json!("string");
                property["enum"] = json!(entity_names(writes));
            }
            "entities" => {
                describe(
                    property,
                    "QuickBooks entity names, e.g. [\"Customer\", \"Invoice\"].",
                );
                property["items"] = json!({"type": "string", "enum": entity_names(false)});
            }
            "report" => {
                describe(property, "The QuickBooks report to run.");
                property["type"] = json!("string");
                property["enum"] = json!(REPORTS);
            }
            "summarize_column_by" => {
                describe(
                    property,
                    "How columns are split: one Total column, or one per Month, Customer, …",
                );
                property["type"] = json!("string");
                property["enum"] = json!(SUMMARIZE_BY);
            }
            "accounting_method" => {
                describe(
                    property,
                    "Cash or Accrual; the company's preference when omitted.",
                );
                property["type"] = json!("string");
                property["enum"] = json!(["Cash", "Accrual"]);
            }
            "start_date" | "end_date" => {
                describe(
                    property,
                    if name == "start_date" {
                        "First day, as YYYY-MM-DD (2026-01-01)."
                    } else {
                        "Last day, as YYYY-MM-DD (2026-12-31)."
                    },
                );
                property["type"] = json!("string");
                property["format"] = json!("date");
            }
            "since" => describe(
                property,
                "A time as RFC 3339 (2026-01-31T00:00:00Z) or a date as YYYY-MM-DD, at most 30 days back.",
            ),
            "id" => describe(property, "The entity's QuickBooks id, e.g. \"42\"."),
            "fields" if writes => refine_fields(property, subject),
            _ => {}
        }
    }
}

/// `entity` on the attachment tools: only the entities QuickBooks takes files on.
pub fn attachable_entities(schema: &mut JsonObject) {
    if let Some(Value::Object(props)) = schema.get_mut("properties")
        && let Some(entity) = props.get_mut("entity")
    {
        describe(
            entity,
            "The entity the attachment belongs to: a transaction, or a Customer, Vendor, Employee or Item.",
        );
        entity["enum"] = json!(crate::quickbooks::attachments::ATTACHABLE_TO);
    }
}

/// In the `intuit` profile every tool also takes its arguments inside `params`, as Intuit's
/// server does (a report tool's `params` are that too, or other report parameters).
pub fn intuit_wrapper(schema: &mut JsonObject) {
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    let text = if props.contains_key("params") {
        "Intuit's wrapper (these same arguments inside `params`), or other report parameters passed to QuickBooks (`customer`, `vendor`, `class`, …)."
    } else {
        "Intuit's wrapper: these same arguments inside `params`, as Intuit's server takes them."
    };
    props.insert(
        "params".into(),
        json!({"type": "object", "description": text}),
    );
}

/// The subject `refine` gives `update_company_settings`'s `fields`.
const SETTINGS: &str = "CompanyInfo|Preferences";

fn refine_fields(property: &mut Value, subject: &str) {
    let mut text = String::from(
        "The entity's fields as QuickBooks' JSON names them (DisplayName, CustomerRef, Line, …); a reference is {\"value\": id}.",
    );
    if subject == SETTINGS || subject == "CompanyInfo" || subject == "Preferences" {
        text = String::from(
            "Only the settings to change, as QuickBooks' JSON names them: CompanyInfo's CompanyName, LegalName, CompanyAddr, PrimaryPhone, Email, WebAddr, …; Preferences by section, e.g. {\"AccountingInfoPrefs\": {\"TrackDepartments\": true}}.",
        );
    }
    let examples: Vec<Value> = if subject == SETTINGS {
        ["CompanyInfo", "Preferences"]
            .iter()
            .filter_map(|e| example(e))
            .collect()
    } else if subject.is_empty() {
        text.push_str(" Examples — ");
        let shown: Vec<String> = ["Customer", "Invoice", "Bill", "Item"]
            .iter()
            .filter_map(|e| example(e).map(|x| format!("{e}: {x}")))
            .collect();
        text.push_str(&shown.join("; "));
        text.push('.');
        ["Customer", "Invoice", "Bill", "Item"]
            .iter()
            .filter_map(|e| example(e))
            .collect()
    } else {
        example(subject).into_iter().collect()
    };
    describe(property, &text);
    property["type"] = json!("object");
    if !examples.is_empty() {
        property["examples"] = json!(examples);
    }
}

fn object(properties: Value, required: &[&str]) -> JsonObject {
    let mut o = JsonObject::new();
    o.insert("type".into(), json!("object"));
    o.insert("properties".into(), properties);
    o.insert("required".into(), json!(required));
    o
}

/// An entity as QuickBooks answers it: an object with at least its `Id`.
fn entity_object() -> Value {
    json!({"type": "object", "properties": {"Id": {"type": "string"}}, "required": ["Id"]})
}

/// An Attachable as QuickBooks answers it.
fn attachable() -> Value {
    json!({
        "type": "object",
        "properties": {
            "Id": {"type": "string"}, "FileName": {"type": "string"},
            "ContentType": {"type": "string"}, "Size": {"type": "number"},
            "Note": {"type": "string"}, "AttachableRef": {"type": "array"},
            "FileAccessUri": {"type": "string"}, "TempDownloadUri": {"type": "string"}
        },
        "required": ["Id"]
    })
}

/// What a write answers: the entity under its name, or, for a dry run, what would be sent.
fn written(entity: &str) -> JsonObject {
    let would = json!({
        "type": "object",
        "properties": {
            "method": {"type": "string"}, "path": {"type": "string"},
            "query": {"type": "array"}, "body": {}
        },
        "required": ["method", "path"]
    });
    let answer = if entity.is_empty() {
        json!({
            "type": "object",
            "description": "QuickBooks' answer: the entity under its type name ({\"Customer\": {…}}).",
            "properties": {"time": {"type": "string"}},
            "additionalProperties": entity_object(),
            "minProperties": 1
        })
    } else {
        json!({
            "type": "object",
            "properties": {entity: entity_object(), "time": {"type": "string"}},
            "required": [entity]
        })
    };
    let mut o = JsonObject::new();
    o.insert("type".into(), json!("object"));
    o.insert(
        "anyOf".into(),
        json!([
            answer,
            {"type": "object",
             "properties": {"dry_run": {"const": true}, "would_send": would},
             "required": ["dry_run", "would_send"]}
        ]),
    );
    o
}

/// The `outputSchema` of a tool, by what it does: `kind` is the compact tool it runs as
/// (`query`, `get_entity`, …) and `subject` its fixed entity or report, if any.
pub fn output(kind: &str, subject: &str) -> JsonObject {
    let base = answer(kind, subject);
    match kind {
        // A write an approval policy holds answers with its proposal instead (`mcp::approvals`).
        "create_entity"
        | "update_entity"
        | "delete_entity"
        | "send_invoice"
        | "send_estimate"
        | "update_company_settings" => {
            let mut o = JsonObject::new();
            o.insert("type".into(), json!("object"));
            o.insert("anyOf".into(), json!([base, held()]));
            o
        }
        _ => base,
    }
}

/// What a write held for approval answers: nothing was sent.
fn held() -> Value {
    json!({
        "type": "object",
        "properties": {
            "status": {"const": "pending_approval"},
            "proposal_id": {"type": "string", "description": "Follow it with get_proposal."},
            "preview": {"type": "object", "description": "What approval will send: method, path, query, body, references resolved."},
            "amount": {"type": ["number", "null"]}
        },
        "required": ["status", "proposal_id", "preview"]
    })
}

/// The `outputSchema` of a tool's answer when it is not held for approval.
fn answer(kind: &str, subject: &str) -> JsonObject {
    match kind {
        "get_proposal" => object(
            json!({
                "id": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "approved", "rejected", "executed", "failed", "stale"]},
                "company": {"type": "string"}, "company_name": {"type": "string"},
                "tool": {"type": "string"}, "preview": {"type": "object"},
                "amount": {"type": ["number", "null"]},
                "proposed_by": {"type": "string"}, "assistant": {"type": "string"},
                "created_at": {"type": "string"},
                "decided_by": {"type": ["string", "null"]}, "decided_at": {"type": ["string", "null"]},
                "note": {"type": ["string", "null"]}, "result": {}
            }),
            &["id", "status", "company", "tool", "preview"],
        ),
        "attach_file" => object(
            json!({"Attachable": attachable(), "time": {"type": "string"}}),
            &["Attachable"],
        ),
        "list_attachments" => object(
            json!({
                "entity": {"type": "string"}, "id": {"type": "string"},
                "attachables": {"type": "array", "items": attachable()}
            }),
            &["entity", "id", "attachables"],
        ),
        "get_attachment" => object(
            json!({
                "Attachable": attachable(),
                "download_url": {"type": "string", "description": "A temporary link to the file, valid 15 minutes; absent for a note without a file."},
                "content_base64": {"type": "string", "description": "The file's bytes, base64, when asked and at most 5 MB."},
                "content_note": {"type": "string", "description": "Why the bytes are not included."}
            }),
            &["Attachable"],
        ),
        "list_companies" => object(
            json!({"companies": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "realm_id": {"type": "string"}, "name": {"type": "string"},
                    "status": {"type": "string", "enum": ["connected", "needs_reconnect", "disconnected"]},
                    "connected_by": {"type": ["string", "null"]}
                },
                "required": ["realm_id", "name", "status"]
            }}}),
            &["companies"],
        ),
        "get_company_info" => object(
            json!({
                "CompanyInfo": {"type": "object", "properties": {"CompanyName": {"type": "string"}}},
                "Preferences": {"type": ["object", "null"]}
            }),
            &["CompanyInfo", "Preferences"],
        ),
        "query" => object(
            json!({
                "QueryResponse": {
                    "type": "object",
                    "description": "QuickBooks' answer: the rows under the entity's name ({\"Customer\": […]}), startPosition, maxResults; totalCount for COUNT(*).",
                    "properties": {
                        "startPosition": {"type": "integer"}, "maxResults": {"type": "integer"},
                        "totalCount": {"type": "integer"}
                    },
                    "additionalProperties": {"type": "array", "items": {"type": "object"}}
                },
                "next_cursor": {"type": "string", "description": "Pass as `cursor` (with the same query) for the next rows; absent on the last page."},
                "more": {"type": "integer", "description": "Rows after this page."}
            }),
            &["QueryResponse"],
        ),
        "run_report" => object(
            json!({
                "Header": {"type": "object", "properties": {"ReportName": {"type": "string"}}},
                "Columns": {"type": "object"},
                "Rows": {"type": "object"},
                "totals": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"group": {}, "label": {"type": "string"}, "values": {"type": "array"}},
                    "required": ["label", "values"]
                }}
            }),
            &["Header", "totals"],
        ),
        "changes_since" => object(
            json!({"CDCResponse": {"type": "array", "items": {"type": "object"}}}),
            &["CDCResponse"],
        ),
        "send_invoice" => object(
            json!({"Invoice": entity_object(), "time": {"type": "string"}}),
            &["Invoice"],
        ),
        "get_transaction_link" => object(
            json!({
                "link": {"type": "string", "description": "The transaction's QuickBooks Online page."},
                "company": {"type": "string"}, "entity_type": {"type": "string"}, "id": {"type": "string"}
            }),
            &["link", "company"],
        ),
        "send_estimate" => object(
            json!({"Estimate": entity_object(), "time": {"type": "string"}}),
            &["Estimate"],
        ),
        "get_entity" | "delete_entity" if !subject.is_empty() => object(
            json!({subject: entity_object(), "time": {"type": "string"}}),
            &[subject],
        ),
        "get_entity" | "delete_entity" => {
            let mut o = object(json!({"time": {"type": "string"}}), &[]);
            o.insert("additionalProperties".into(), entity_object());
            o.insert("minProperties".into(), json!(1));
            o
        }
        _ => written(subject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_common_entity_has_an_example_that_names_no_id() {
        for e in [
            "Customer",
            "Vendor",
            "Invoice",
            "Bill",
            "Item",
            "JournalEntry",
            "Purchase",
        ] {
            let x = example(e).unwrap();
            assert!(x.get("Id").is_none() && x.get("SyncToken").is_none(), "{e}");
        }
        assert!(entity_names(true).contains(&"Invoice"));
        assert!(!entity_names(true).contains(&"TaxRate"));
        assert!(!entity_names(true).contains(&"CompanyInfo"));
        assert!(entity_names(false).contains(&"Preferences"));
        assert!(entity_names(false).contains(&"TaxRate"));
    }
}
