//! Reading QuickBooks JSON: dotted paths (`CustomerRef.value`, `MetaData.LastUpdatedTime`),
//! amounts, and money rounded to cents the way QuickBooks stores it.

use serde_json::Value;

/// The value at a dotted path, if every step exists.
pub fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, step| current.get(step))
}

/// The text at a dotted path (strings only).
pub fn text<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    at(value, path)?.as_str()
}

/// A number at a dotted path; QuickBooks sometimes sends amounts as strings.
pub fn amount(value: &Value, path: &str) -> f64 {
    match at(value, path) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Rounds to cents.
pub fn cents(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}

/// A money amount as QuickBooks writes it in entities (a JSON number, at most two decimals).
pub fn money(amount: f64) -> Value {
    serde_json::Number::from_f64(cents(amount)).map_or(Value::from(0), Value::Number)
}

/// A money amount as reports write it (`"1234.50"`, text).
pub fn money_text(amount: f64) -> String {
    let rounded = cents(amount);
    if rounded == 0.0 {
        "0.00".to_owned()
    } else {
        format!("{rounded:.2}")
    }
}

/// The `value` of a reference field (`CustomerRef`) as an id.
pub fn reference(value: &Value, field: &str) -> Option<u64> {
    at(value, field)?.get("value")?.as_str()?.parse().ok()
}

/// The entity's numeric id.
pub fn id(value: &Value) -> u64 {
    text(value, "Id").and_then(|t| t.parse().ok()).unwrap_or(0)
}

/// Whether a name-list entity is active (absent means active).
pub fn is_active(value: &Value) -> bool {
    value.get("Active").and_then(Value::as_bool).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_paths_and_amounts() {
        let v = json!({"CustomerRef": {"value": "7"}, "TotalAmt": "12.345", "Id": "3", "Active": false});
        assert_eq!(reference(&v, "CustomerRef"), Some(7));
        assert_eq!(cents(amount(&v, "TotalAmt")), 12.35);
        assert_eq!(id(&v), 3);
        assert!(!is_active(&v));
        assert_eq!(money_text(-0.001), "0.00");
        assert_eq!(money_text(5.5), "5.50");
        assert_eq!(text(&v, "CustomerRef.value"), Some("7"));
    }
}
