//! The company's two singletons as QuickBooks changes them: `CompanyInfo`
//! (`POST /companyinfo`) and `Preferences` (`POST /preferences`). Both need the current
//! SyncToken (2020 without one, 5010 when stale); `"sparse": true` changes only what is sent,
//! a full update drops the writable fields it leaves out. CompanyInfo ignores its read-only
//! fields, as every entity does; Preferences refuses a change to a read-only preference with
//! the 2010 QuickBooks answers a round-tripped Preferences object with (docs/simulator.md,
//! fidelity row 12). Nothing here may touch the transactions.

use super::Books;
use crate::clock::metadata_time;
use crate::fault::Fault;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// Fields QuickBooks owns on both singletons.
const SYSTEM: &[&str] = &["Id", "SyncToken", "MetaData", "domain", "sparse", "status"];

/// CompanyInfo's properties: `(name, kind)`, kind `"text"`, `"object"`, `"date"` or `"list"`.
const COMPANY_INFO: &[(&str, &str)] = &[
    ("CompanyName", "text"),
    ("LegalName", "text"),
    ("CompanyAddr", "object"),
    ("CustomerCommunicationAddr", "object"),
    ("LegalAddr", "object"),
    ("CustomerCommunicationEmailAddr", "object"),
    ("PrimaryPhone", "object"),
    ("CompanyStartDate", "date"),
    ("FiscalYearStartMonth", "month"),
    ("Email", "object"),
    ("WebAddr", "object"),
    ("OtherContactInfo", "list"),
    ("EmployerId", "text"),
    // Read-only: accepted and ignored.
    ("Country", "text"),
    ("SupportedLanguages", "text"),
    ("NameValue", "list"),
];

/// CompanyInfo's read-only properties (Intuit's reference marks them so).
const COMPANY_INFO_READ_ONLY: &[&str] = &["Country", "SupportedLanguages", "NameValue"];

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The sections of Preferences.
const PREFERENCE_SECTIONS: &[&str] = &[
    "AccountingInfoPrefs",
    "ProductAndServicesPrefs",
    "SalesFormsPrefs",
    "EmailMessagesPrefs",
    "VendorAndPurchasesPrefs",
    "TimeTrackingPrefs",
    "TaxPrefs",
    "CurrencyPrefs",
    "ReportPrefs",
    "OtherPrefs",
];

/// Preferences QuickBooks does not let an app change: whole sections, or `Section.Field`.
/// The simulator has no sales tax or multi-currency, so those sections stay as they are.
const PREFERENCES_READ_ONLY: &[&str] = &[
    "AccountingInfoPrefs.CustomerTerminology",
    "AccountingInfoPrefs.BookCloseDate",
    "AccountingInfoPrefs.UseAccountNumbers",
    "AccountingInfoPrefs.FirstMonthOfFiscalYear",
    "AccountingInfoPrefs.TaxYearMonth",
    "AccountingInfoPrefs.TaxForm",
    "SalesFormsPrefs.ETransactionEnabledStatus",
    "ReportPrefs.CalcAgingReportFromTxnDate",
    "TaxPrefs",
    "CurrencyPrefs",
];

fn unsupported(element: &str, detail: String) -> Fault {
    Fault::validation(
        "2010",
        "Request has invalid or unsupported property",
        detail,
    )
    .at(element)
}

fn as_object(body: Value) -> Result<Map<String, Value>, Fault> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(unsupported(
            "",
            "The request body must be a JSON object".into(),
        )),
    }
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn is_sparse(object: &Map<String, Value>) -> bool {
    match object.get("sparse") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The write names the stored singleton: its Id (when given) and its current SyncToken.
fn check_version(entity: &str, current: &Value, object: &Map<String, Value>) -> Result<(), Fault> {
    let stored_id = current.get("Id").and_then(Value::as_str).unwrap_or("1");
    if let Some(id) = text(object, "Id")
        && id != stored_id
    {
        return Err(Fault::not_found(entity, &id));
    }
    let Some(token) = text(object, "SyncToken") else {
        return Err(Fault::required("SyncToken"));
    };
    if current
        .get("SyncToken")
        .and_then(Value::as_str)
        .unwrap_or("0")
        != token
    {
        return Err(Fault::stale_object());
    }
    Ok(())
}

/// Raises the SyncToken and stamps the change time.
fn touch(next: &mut Map<String, Value>, now: DateTime<Utc>) {
    let token = next
        .get("SyncToken")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    next.insert("SyncToken".into(), json!((token + 1).to_string()));
    let created = next
        .get("MetaData")
        .and_then(|m| m.get("CreateTime"))
        .cloned()
        .unwrap_or_else(|| json!(metadata_time(now)));
    next.insert(
        "MetaData".into(),
        json!({"CreateTime": created, "LastUpdatedTime": metadata_time(now)}),
    );
    next.insert("domain".into(), json!("QBO"));
    next.insert("sparse".into(), json!(false));
}

/// Merges `sent` into `into`: objects key by key, anything else replaced.
fn merge(into: &mut Value, sent: Value) {
    match (into, sent) {
        (Value::Object(into), Value::Object(sent)) => {
            for (k, v) in sent {
                merge(into.entry(k).or_insert(Value::Null), v);
            }
        }
        (into, sent) => *into = sent,
    }
}

/// Whether two values say the same, reading null and `""` as "not set" (a client library
/// sends its defaults for what the read left out: `{"value": "USD", "name": ""}`).
fn same(a: &Value, b: &Value) -> bool {
    fn set(v: &Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::Object(o) => {
                let kept: Map<String, Value> = o
                    .iter()
                    .filter_map(|(k, v)| set(v).map(|v| (k.clone(), v)))
                    .collect();
                (!kept.is_empty()).then_some(Value::Object(kept))
            }
            Value::Array(items) => Some(Value::Array(items.iter().filter_map(set).collect())),
            other => Some(other.clone()),
        }
    }
    set(a) == set(b)
}

/// The value at `Section.Field` (or the whole section).
fn at<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(object, |v, part| v.get(part))
}

fn set(object: &mut Value, path: &str, value: Value) {
    let mut v = object;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if !v.get(*part).is_some_and(Value::is_object) {
            v[*part] = json!({});
        }
        v = &mut v[*part];
    }
    v[parts[parts.len() - 1]] = value;
}

fn remove(object: &mut Value, path: &str) {
    match path.rsplit_once('.') {
        Some((parent, last)) => {
            if let Some(Value::Object(p)) = at_mut(object, parent) {
                p.remove(last);
            }
        }
        None => {
            if let Value::Object(o) = object {
                o.remove(path);
            }
        }
    }
}

fn at_mut<'a>(object: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(object, |v, part| v.get_mut(part))
}

impl Books {
    /// Updates CompanyInfo (Id and SyncToken required; sparse or full). Read-only fields are
    /// accepted and ignored; a full update drops the writable fields it does not send and
    /// must carry CompanyName.
    pub fn update_company_info(&mut self, body: Value, now: DateTime<Utc>) -> Result<Value, Fault> {
        let object = as_object(body)?;
        for (key, value) in &object {
            if SYSTEM.contains(&key.as_str()) {
                continue;
            }
            let Some((_, kind)) = COMPANY_INFO.iter().find(|(name, _)| name == key) else {
                return Err(unsupported(
                    key,
                    format!(
                        "Property Name:Unrecognized field \"{key}\" (class com.intuit.schema.finance.v3.CompanyInfo), not marked as ignorable specified is unsupported or invalid"
                    ),
                ));
            };
            let ok = value.is_null()
                || match *kind {
                    "text" => value.is_string(),
                    "object" => value.is_object(),
                    "list" => value.is_array(),
                    "date" => value
                        .as_str()
                        .is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()),
                    "month" => value.as_str().is_some_and(|m| MONTHS.contains(&m)),
                    _ => false,
                };
            if !ok {
                return Err(unsupported(
                    key,
                    format!(
                        "Property Name:Can not construct instance of {key} from {value}: not a valid representation specified is unsupported or invalid"
                    ),
                ));
            }
        }
        let Value::Object(current) = self.company_info.clone() else {
            return Err(Fault::not_found("CompanyInfo", "1"));
        };
        if !object.contains_key("Id") {
            return Err(Fault::required("Id"));
        }
        check_version("CompanyInfo", &Value::Object(current.clone()), &object)?;
        let sparse = is_sparse(&object);
        let writable = |key: &str| !SYSTEM.contains(&key) && !COMPANY_INFO_READ_ONLY.contains(&key);
        let mut next: Map<String, Value> = if sparse {
            current
        } else {
            current.into_iter().filter(|(k, _)| !writable(k)).collect()
        };
        for (key, value) in object {
            if writable(&key) {
                next.insert(key, value);
            }
        }
        let named = next
            .get("CompanyName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.trim().is_empty());
        if !named {
            return Err(Fault::required("CompanyName"));
        }
        touch(&mut next, now);
        self.company_info = Value::Object(next);
        Ok(self.company_info.clone())
    }

    /// Updates Preferences (SyncToken required; sparse merges each section sent, full keeps
    /// only what is sent). A read-only preference sent with another value than it has is
    /// refused with 2010; sent unchanged (a read answer sent back, null and `""` read as not set)
    /// it is accepted.
    pub fn update_preferences(&mut self, body: Value, now: DateTime<Utc>) -> Result<Value, Fault> {
        let object = as_object(body)?;
        for (key, value) in &object {
            if SYSTEM.contains(&key.as_str()) {
                continue;
            }
            if !PREFERENCE_SECTIONS.contains(&key.as_str()) {
                return Err(unsupported(
                    key,
                    format!(
                        "Property Name:Unrecognized field \"{key}\" (class com.intuit.schema.finance.v3.Preferences), not marked as ignorable specified is unsupported or invalid"
                    ),
                ));
            }
            if !value.is_object() && !value.is_null() {
                return Err(unsupported(
                    key,
                    "Property Name:failed to parse json object; a property specified is unsupported or invalid".into(),
                ));
            }
        }
        let current = self.preferences.clone();
        check_version("Preferences", &current, &object)?;
        let sent = Value::Object(object.clone());
        for path in PREFERENCES_READ_ONLY {
            if let Some(value) = at(&sent, path)
                && !same(value, at(&current, path).unwrap_or(&Value::Null))
            {
                return Err(unsupported(
                    path,
                    "Property Name:failed to parse json object; a property specified is unsupported or invalid".into(),
                ));
            }
        }
        let sparse = is_sparse(&object);
        let mut next = if sparse {
            current.clone()
        } else {
            // A full update keeps what QuickBooks owns and the read-only preferences.
            let mut kept = json!({});
            for key in SYSTEM {
                if let Some(v) = current.get(*key) {
                    kept[*key] = v.clone();
                }
            }
            for path in PREFERENCES_READ_ONLY {
                if let Some(v) = at(&current, path) {
                    set(&mut kept, path, v.clone());
                }
            }
            kept
        };
        for (key, value) in object {
            if !SYSTEM.contains(&key.as_str()) {
                merge(&mut next[key.as_str()], value);
            }
        }
        for path in PREFERENCES_READ_ONLY {
            match at(&current, path) {
                Some(v) => set(&mut next, path, v.clone()),
                None => remove(&mut next, path),
            }
        }
        let Value::Object(mut next) = next else {
            return Err(Fault::not_found("Preferences", "1"));
        };
        touch(&mut next, now);
        self.preferences = Value::Object(next);
        Ok(self.preferences.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn books() -> Books {
        Books {
            company_info: json!({"CompanyName": "Acme", "Country": "US", "Email": {"Address": "a@acme.example"}, "Id": "1", "SyncToken": "3"}),
            preferences: json!({
                "AccountingInfoPrefs": {"TrackDepartments": true, "CustomerTerminology": "Customers"},
                "ReportPrefs": {"ReportBasis": "Accrual"},
                "CurrencyPrefs": {"HomeCurrency": {"value": "USD"}},
                "Id": "1", "SyncToken": "0",
            }),
            ..Default::default()
        }
    }

    #[test]
    fn company_info_updates_sparse_and_full() {
        let mut b = books();
        let now = Utc::now();
        let got = b
            .update_company_info(
                json!({"Id": "1", "SyncToken": "3", "sparse": true, "LegalName": "Acme LLC", "Country": "FR"}),
                now,
            )
            .unwrap();
        assert_eq!(got["LegalName"], "Acme LLC");
        assert_eq!(got["Country"], "US", "read-only: ignored");
        assert_eq!(got["Email"]["Address"], "a@acme.example");
        assert_eq!(got["SyncToken"], "4");
        let stale =
            b.update_company_info(json!({"Id": "1", "SyncToken": "3", "sparse": true}), now);
        assert_eq!(stale.unwrap_err().code, "5010");
        let full = b
            .update_company_info(
                json!({"Id": "1", "SyncToken": "4", "CompanyName": "Acme Two"}),
                now,
            )
            .unwrap();
        assert!(
            full.get("Email").is_none(),
            "a full update drops what it leaves out"
        );
        assert_eq!(full["Country"], "US");
        let unnamed =
            b.update_company_info(json!({"Id": "1", "SyncToken": "5", "LegalName": "x"}), now);
        assert_eq!(unnamed.unwrap_err().code, "2020");
        let odd = b.update_company_info(json!({"Id": "1", "SyncToken": "5", "Nope": 1}), now);
        assert_eq!(odd.unwrap_err().code, "2010");
    }

    #[test]
    fn preferences_refuse_read_only_changes() {
        let mut b = books();
        let now = Utc::now();
        let got = b
            .update_preferences(
                json!({"SyncToken": "0", "sparse": true, "AccountingInfoPrefs": {"TrackDepartments": false}}),
                now,
            )
            .unwrap();
        assert_eq!(got["AccountingInfoPrefs"]["TrackDepartments"], false);
        assert_eq!(
            got["AccountingInfoPrefs"]["CustomerTerminology"],
            "Customers"
        );
        assert_eq!(got["ReportPrefs"]["ReportBasis"], "Accrual");
        let refused = b.update_preferences(
            json!({"SyncToken": "1", "CurrencyPrefs": {"HomeCurrency": {"value": "EUR"}}}),
            now,
        );
        let fault = refused.unwrap_err();
        assert_eq!(
            (fault.code, fault.element.as_str()),
            ("2010", "CurrencyPrefs")
        );
        // The read answer sent back whole is accepted.
        let back = b.preferences.clone();
        let got = b.update_preferences(back, now).unwrap();
        assert_eq!(got["SyncToken"], "2");
        assert_eq!(
            b.update_preferences(json!({"ReportPrefs": {}}), now)
                .unwrap_err()
                .code,
            "2020"
        );
        // A full update drops the writable preferences it does not send.
        let got = b
            .update_preferences(
                json!({"SyncToken": "2", "ReportPrefs": {"ReportBasis": "Cash"}}),
                now,
            )
            .unwrap();
        assert!(
            got.get("AccountingInfoPrefs")
                .is_none_or(|a| a.get("TrackDepartments").is_none())
        );
        assert_eq!(
            got["AccountingInfoPrefs"]["CustomerTerminology"],
            "Customers"
        );
        assert_eq!(got["CurrencyPrefs"]["HomeCurrency"]["value"], "USD");
    }
}
