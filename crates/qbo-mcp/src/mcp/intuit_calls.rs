//! Calls written for Intuit's own QuickBooks MCP server, made into this server's arguments
//! (the `intuit` profile, docs/mcp.md): the `{"params": {…}}` wrapper, the entity object
//! (`{"customer": {…}}`, `{"bill": {"Id", "SyncToken", …}}`), `patch` and `<entity>_id`,
//! Intuit's `create_invoice` shorthand (`customer_ref`, `line_items`), and its search criteria
//! forms (a `{field, value, operator}` / `{key, value}` list, a `{Field: value, limit, …}`
//! record, `{filters, asc, desc, limit, offset, count, fetchAll}`), and `update_company_info`'s
//! `company_name`, `legal_name`, `company_addr`, `primary_phone`, `email`, `web_addr`. Whatever is left is checked
//! by the tool's own argument type, so a typo is still refused by name.

use rmcp::model::JsonObject;
use serde_json::{Map, Value, json};

use super::tools::ToolError;

/// What a generated tool does, for reading its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Get,
    Update,
    Delete,
    Search,
    Report,
}

/// Search options that Intuit's criteria record carries beside its conditions.
const SEARCH_OPTIONS: &[&str] = &[
    "limit",
    "offset",
    "asc",
    "desc",
    "fetchAll",
    "fetch_all",
    "count",
    "fields",
    "summary",
    "cursor",
];

/// This server's own report arguments; anything else in a report call is a report parameter.
const REPORT_ARGS: &[&str] = &[
    "company",
    "start_date",
    "end_date",
    "accounting_method",
    "summarize_column_by",
    "report",
];

/// `JournalEntry` → `journal_entry`.
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The key under which Intuit's tools pass the entity object, if the call has one.
fn entity_key(entity: &str, args: &JsonObject) -> Option<String> {
    let snake = snake(entity);
    let mut camel = entity.to_owned();
    if let Some(first) = camel.get_mut(0..1) {
        first.make_ascii_lowercase();
    }
    [snake, camel, entity.to_owned()]
        .into_iter()
        .find(|k| args.get(k).is_some_and(Value::is_object))
}

/// Moves the first present alias of `to` onto `to`.
fn alias(args: &mut JsonObject, to: &str, aliases: &[&str]) {
    if args.contains_key(to) {
        return;
    }
    for a in aliases {
        if let Some(v) = args.remove(*a) {
            args.insert(to.to_owned(), v);
            return;
        }
    }
}

/// `{"params": {…}}` alone is Intuit's wrapper: the arguments are inside.
pub fn unwrapped(args: JsonObject) -> JsonObject {
    match args.get("params") {
        Some(Value::Object(inner)) if args.len() == 1 => inner.clone(),
        _ => args,
    }
}

/// The call's arguments as this server's tool takes them.
pub fn normalize(verb: Verb, entity: &str, mut args: JsonObject) -> Result<JsonObject, ToolError> {
    if let Some(Value::Object(params)) = args.get("params").cloned() {
        args.remove("params");
        for (k, v) in params {
            args.entry(k).or_insert(v);
        }
    }
    let id_alias = format!("{}_id", snake(entity));
    match verb {
        Verb::Create => {
            if !args.contains_key("fields") {
                if let Some(key) = entity_key(entity, &args) {
                    let object = args.remove(&key).unwrap_or_default();
                    args.insert("fields".into(), object);
                } else if entity == "Invoice" && args.contains_key("line_items") {
                    let fields = invoice_shorthand(&mut args)?;
                    args.insert("fields".into(), fields);
                } else {
                    // Intuit's promoted create tools take the entity's fields at the top
                    // (`{"CustomerRef": …, "Line": […]}`): QuickBooks' names start with a
                    // capital, this server's arguments never do.
                    let named: Vec<String> = args
                        .keys()
                        .filter(|k| k.starts_with(|c: char| c.is_ascii_uppercase()))
                        .cloned()
                        .collect();
                    if !named.is_empty() {
                        let fields: Map<String, Value> = named
                            .into_iter()
                            .filter_map(|k| args.remove(&k).map(|v| (k, v)))
                            .collect();
                        args.insert("fields".into(), Value::Object(fields));
                    }
                }
            }
        }
        Verb::Get | Verb::Delete => {
            alias(
                &mut args,
                "id",
                &[&id_alias, "entry_id", "Id", "idOrEntity"],
            );
            if let Some(Value::Object(o)) = args.get("id").cloned() {
                args.insert("id".into(), o.get("Id").cloned().unwrap_or(Value::Null));
            }
            if let Some(key) = entity_key(entity, &args)
                && !args.contains_key("id")
            {
                let object = args.remove(&key).unwrap_or_default();
                args.insert("id".into(), object["Id"].clone());
            }
        }
        Verb::Update => {
            alias(&mut args, "fields", &["patch"]);
            alias(&mut args, "id", &[&id_alias, "Id"]);
            alias(&mut args, "sync_token", &["SyncToken", "syncToken"]);
            if let Some(key) = entity_key(entity, &args)
                && !args.contains_key("fields")
            {
                let Some(Value::Object(mut object)) = args.remove(&key) else {
                    unreachable!("entity_key finds objects only")
                };
                if let Some(id) = object.remove("Id") {
                    args.entry("id").or_insert(id);
                }
                if let Some(token) = object.remove("SyncToken") {
                    args.entry("sync_token").or_insert(token);
                }
                args.insert("fields".into(), Value::Object(object));
            }
            if !args.contains_key("fields") {
                let fields = match entity {
                    "CompanyInfo" => company_info_shorthand(&mut args),
                    "Preferences" => preference_sections(&mut args),
                    _ => Map::new(),
                };
                if !fields.is_empty() {
                    args.insert("fields".into(), Value::Object(fields));
                }
            }
        }
        Verb::Search => search(&mut args)?,
        Verb::Report => {
            alias(&mut args, "report", &["reportName"]);
            let extra: Vec<String> = args
                .keys()
                .filter(|k| !REPORT_ARGS.contains(&k.as_str()) && k.as_str() != "params")
                .cloned()
                .collect();
            if !extra.is_empty() {
                let mut passed = Map::new();
                for k in extra {
                    if let Some(v) = args.remove(&k) {
                        passed.insert(k, v);
                    }
                }
                args.insert("params".into(), Value::Object(passed));
            }
        }
    }
    Ok(args)
}

/// Intuit's criteria forms as a `{field, value, operator}` list with the options beside it.
fn search(args: &mut JsonObject) -> Result<(), ToolError> {
    let mut options = Map::new();
    let criteria = match args.remove("criteria") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => conditions(list, &mut options)?,
        Some(Value::Object(mut record)) => {
            let filters = record
                .remove("filters")
                .or_else(|| record.remove("criteria"));
            for key in SEARCH_OPTIONS {
                if let Some(v) = record.remove(*key) {
                    options.insert((*key).to_owned(), v);
                }
            }
            let mut list = match filters {
                Some(Value::Array(f)) => conditions(f, &mut options)?,
                Some(other) => {
                    return Err(ToolError(format!(
                        "`criteria.filters` is a list of {{field, value, operator}}, not {other}."
                    )));
                }
                None => Vec::new(),
            };
            list.extend(
                record
                    .into_iter()
                    .map(|(k, v)| json!({"field": k, "value": v})),
            );
            list
        }
        Some(other) => {
            return Err(ToolError(format!(
                "`criteria` is a list of {{field, value, operator}} (or {{key, value}}), or an object of field values; not {other}."
            )));
        }
    };
    for (k, v) in options {
        args.entry(k).or_insert(v);
    }
    alias(args, "fetch_all", &["fetchAll"]);
    if !criteria.is_empty() {
        args.insert("criteria".into(), Value::Array(criteria));
    }
    Ok(())
}

/// A criteria list as Intuit's search helper writes it: conditions, with its options as
/// pseudo-conditions among them (`{field: "limit", value: 5}`, `{field: "asc", …}`,
/// `{field: "fetchAll", value: true}`, and `{count: true}`), which go to `options`.
fn conditions(list: Vec<Value>, options: &mut Map<String, Value>) -> Result<Vec<Value>, ToolError> {
    let mut out = Vec::new();
    for item in list {
        if let Some(Value::Bool(count)) = item.get("count")
            && item.get("field").is_none()
            && item.as_object().is_some_and(|o| o.len() == 1)
        {
            options.insert("count".into(), json!(count));
            continue;
        }
        let option = item
            .get("field")
            .or_else(|| item.get("key"))
            .and_then(Value::as_str)
            .filter(|f| SEARCH_OPTIONS.contains(f));
        if let Some(name) = option {
            options.insert(name.to_owned(), item["value"].clone());
            continue;
        }
        out.extend(criterion(item)?);
    }
    Ok(out)
}

/// One criteria-list element: `{field, value, operator}`, `{key, value}` or `{Field: value}`.
fn criterion(item: Value) -> Result<Vec<Value>, ToolError> {
    let Value::Object(mut o) = item else {
        return Err(ToolError(format!(
            "A criterion is an object like {{\"field\": \"DisplayName\", \"value\": \"Acme\"}}, not {item}."
        )));
    };
    if let Some(key) = o.remove("key") {
        o.entry("field").or_insert(key);
    }
    if o.contains_key("field") {
        return Ok(vec![Value::Object(o)]);
    }
    Ok(o.into_iter()
        .map(|(k, v)| json!({"field": k, "value": v}))
        .collect())
}

/// Intuit's `create_invoice` arguments (`customer_ref`, `line_items` of `item_ref`, `qty`,
/// `unit_price`, `description`, `tax_code_ref`; `doc_number`, `txn_date`,
/// `global_tax_calculation`) as the Invoice's QuickBooks JSON.
fn invoice_shorthand(args: &mut JsonObject) -> Result<Value, ToolError> {
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let customer = text(args.remove("customer_ref"))
        .ok_or_else(|| ToolError("`customer_ref` (the customer's id) is needed.".into()))?;
    let Some(Value::Array(items)) = args.remove("line_items") else {
        return Err(ToolError(
            "`line_items` is a list of {item_ref, qty, unit_price}.".into(),
        ));
    };
    let mut lines = Vec::new();
    for item in items {
        let (Some(item_ref), Some(qty), Some(price)) = (
            text(item.get("item_ref").cloned()),
            item["qty"].as_f64(),
            item["unit_price"].as_f64(),
        ) else {
            return Err(ToolError(format!(
                "A line item needs item_ref, qty and unit_price: {item}."
            )));
        };
        let mut detail = json!({"ItemRef": {"value": item_ref}, "Qty": qty, "UnitPrice": price});
        if let Some(tax) = text(item.get("tax_code_ref").cloned()) {
            detail["TaxCodeRef"] = json!({"value": tax});
        }
        let mut line = json!({
            "DetailType": "SalesItemLineDetail",
            "Amount": (qty * price * 100.0).round() / 100.0,
            "SalesItemLineDetail": detail,
        });
        if let Some(d) = item.get("description").filter(|d| d.is_string()) {
            line["Description"] = d.clone();
        }
        lines.push(line);
    }
    let mut fields = json!({"CustomerRef": {"value": customer}, "Line": lines});
    for (from, to) in [
        ("doc_number", "DocNumber"),
        ("txn_date", "TxnDate"),
        ("global_tax_calculation", "GlobalTaxCalculation"),
    ] {
        if let Some(v) = args.remove(from) {
            fields[to] = v;
        }
    }
    Ok(fields)
}

/// Intuit's `update_company_info` arguments (`company_name`, `legal_name`, `company_addr` of
/// `line1`, `city`, `country_sub_division_code`, `postal_code`, `country`; `primary_phone`,
/// `email`, `web_addr`) as CompanyInfo's QuickBooks JSON.
fn company_info_shorthand(args: &mut JsonObject) -> Map<String, Value> {
    let mut fields = Map::new();
    for (from, to) in [("company_name", "CompanyName"), ("legal_name", "LegalName")] {
        if let Some(v) = args.remove(from) {
            fields.insert(to.into(), v);
        }
    }
    if let Some(Value::Object(addr)) = args.get("company_addr").cloned() {
        args.remove("company_addr");
        let mut out = Map::new();
        for (k, v) in addr {
            let key = match k.as_str() {
                "line1" => "Line1",
                "city" => "City",
                "country_sub_division_code" => "CountrySubDivisionCode",
                "postal_code" => "PostalCode",
                "country" => "Country",
                _ => k.as_str(),
            };
            out.insert(key.to_owned(), v);
        }
        fields.insert("CompanyAddr".into(), Value::Object(out));
    }
    for (from, to, inner) in [
        ("primary_phone", "PrimaryPhone", "FreeFormNumber"),
        ("email", "Email", "Address"),
        ("web_addr", "WebAddr", "URI"),
    ] {
        if let Some(v) = args.remove(from) {
            fields.insert(to.into(), json!({ inner: v }));
        }
    }
    fields
}

/// Preferences sections (`AccountingInfoPrefs`, …) given beside the other arguments.
fn preference_sections(args: &mut JsonObject) -> Map<String, Value> {
    let sections: Vec<String> = args
        .keys()
        .filter(|k| k.ends_with("Prefs"))
        .cloned()
        .collect();
    sections
        .into_iter()
        .filter_map(|k| args.remove(&k).map(|v| (k, v)))
        .collect()
}

/// The rows of a search answer shaped as Intuit's `fields` (dot paths kept) or `summary`
/// (Id, DocNumber, names of refs, TxnDate, TotalAmt, Balance) ask.
pub fn shape(rows: &mut [Value], fields: Option<&[String]>, summary: bool) {
    for row in rows.iter_mut() {
        let mut out = Map::new();
        if let Some(paths) = fields {
            for path in paths {
                let mut v = &*row;
                for part in path.split('.') {
                    v = &v[part];
                }
                if !v.is_null() {
                    out.insert(path.clone(), v.clone());
                }
            }
        } else if summary {
            let Value::Object(o) = &*row else { continue };
            for (k, v) in o {
                let keep = matches!(
                    k.as_str(),
                    "Id" | "DocNumber"
                        | "DisplayName"
                        | "Name"
                        | "TxnDate"
                        | "TotalAmt"
                        | "Balance"
                );
                if keep {
                    out.insert(k.clone(), v.clone());
                } else if k.ends_with("Ref") {
                    let name = v.get("name").or_else(|| v.get("value"));
                    if let Some(n) = name {
                        out.insert(k.clone(), n.clone());
                    }
                }
            }
        } else {
            continue;
        }
        *row = Value::Object(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> JsonObject {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn intuit_shapes_become_ours() {
        let a = normalize(
            Verb::Create,
            "Customer",
            obj(json!({"params": {"customer": {"DisplayName": "Acme"}}})),
        )
        .unwrap();
        assert_eq!(Value::Object(a), json!({"fields": {"DisplayName": "Acme"}}));
        let a = normalize(
            Verb::Update,
            "Bill",
            obj(json!({"bill": {"Id": "5", "SyncToken": "2", "DueDate": "2026-02-01"}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"id": "5", "sync_token": "2", "fields": {"DueDate": "2026-02-01"}})
        );
        let a = normalize(
            Verb::Update,
            "Invoice",
            obj(json!({"params": {"invoice_id": "9", "patch": {"DueDate": "2026-02-01"}}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"id": "9", "fields": {"DueDate": "2026-02-01"}})
        );
        let a = normalize(
            Verb::Get,
            "JournalEntry",
            obj(json!({"params": {"journal_entry_id": "3"}})),
        )
        .unwrap();
        assert_eq!(Value::Object(a), json!({"id": "3"}));
        let a = normalize(
            Verb::Search,
            "Invoice",
            obj(json!({"params": {"criteria": {"filters": [{"field": "TotalAmt", "value": 10, "operator": ">"}], "desc": "TxnDate", "limit": 2, "fetchAll": false}}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"criteria": [{"field": "TotalAmt", "value": 10, "operator": ">"}], "desc": "TxnDate", "limit": 2, "fetch_all": false})
        );
        let a = normalize(
            Verb::Search,
            "Customer",
            obj(json!({"params": {"criteria": [{"key": "Active", "value": true}], "fetchAll": true, "summary": true}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"criteria": [{"field": "Active", "value": true}], "fetch_all": true, "summary": true})
        );
        let a = normalize(
            Verb::Report,
            "ProfitAndLoss",
            obj(json!({"params": {"start_date": "2026-01-01", "customer": "1"}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"start_date": "2026-01-01", "params": {"customer": "1"}})
        );
        let a = normalize(
            Verb::Create,
            "Invoice",
            obj(json!({"params": {"customer_ref": "1", "line_items": [{"item_ref": "2", "qty": 2, "unit_price": 45.5}]}})),
        )
        .unwrap();
        assert_eq!(a["fields"]["Line"][0]["Amount"], json!(91.0));
    }

    #[test]
    fn promoted_and_helper_shapes_become_ours() {
        let a = normalize(
            Verb::Create,
            "Invoice",
            obj(json!({"CustomerRef": {"value": "1"}, "Line": [], "DocNumber": "7"})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"fields": {"CustomerRef": {"value": "1"}, "Line": [], "DocNumber": "7"}})
        );
        let a = normalize(
            Verb::Search,
            "Bill",
            obj(json!({"params": {"criteria": [
                {"field": "TotalAmt", "value": 5, "operator": ">"},
                {"field": "desc", "value": "TxnDate"},
                {"field": "limit", "value": 3},
                {"field": "fetchAll", "value": true},
                {"count": true}
            ]}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"criteria": [{"field": "TotalAmt", "value": 5, "operator": ">"}], "desc": "TxnDate", "limit": 3, "fetch_all": true, "count": true})
        );
        let a = normalize(
            Verb::Search,
            "Bill",
            obj(json!({"criteria": {"criteria": [{"field": "Balance", "value": 0, "operator": ">"}], "asc": "DueDate"}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"criteria": [{"field": "Balance", "value": 0, "operator": ">"}], "asc": "DueDate"})
        );
    }

    #[test]
    fn settings_calls_become_ours() {
        let a = normalize(
            Verb::Update,
            "CompanyInfo",
            obj(json!({"params": {"id": "1", "sync_token": "3", "legal_name": "Acme LLC", "company_addr": {"line1": "1 Main St", "city": "Reno"}, "email": "hi@acme.example"}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"id": "1", "sync_token": "3", "fields": {"LegalName": "Acme LLC", "CompanyAddr": {"Line1": "1 Main St", "City": "Reno"}, "Email": {"Address": "hi@acme.example"}}})
        );
        let a = normalize(
            Verb::Update,
            "Preferences",
            obj(json!({"params": {"preferences": {"Id": "1", "SyncToken": "0", "AccountingInfoPrefs": {"TrackDepartments": false}}}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"id": "1", "sync_token": "0", "fields": {"AccountingInfoPrefs": {"TrackDepartments": false}}})
        );
        let a = normalize(
            Verb::Update,
            "Preferences",
            obj(json!({"SyncToken": "0", "ReportPrefs": {"ReportBasis": "Cash"}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"sync_token": "0", "fields": {"ReportPrefs": {"ReportBasis": "Cash"}}})
        );
    }

    #[test]
    fn rows_are_shaped() {
        let mut rows = vec![
            json!({"Id": "1", "DocNumber": "1001", "CustomerRef": {"value": "3", "name": "Amy"}, "Line": [], "TotalAmt": 5}),
        ];
        shape(&mut rows, None, true);
        assert_eq!(
            rows[0],
            json!({"Id": "1", "DocNumber": "1001", "CustomerRef": "Amy", "TotalAmt": 5})
        );
        let mut rows = vec![json!({"Id": "1", "CustomerRef": {"value": "3"}})];
        shape(
            &mut rows,
            Some(&["Id".into(), "CustomerRef.value".into()]),
            false,
        );
        assert_eq!(rows[0], json!({"Id": "1", "CustomerRef.value": "3"}));
    }
}
