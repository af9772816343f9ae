//! References by name (docs/tools.md, "References by name"): in a write's fields, any `…Ref`
//! given as `{"name": "…"}` without `value` is resolved to the id of the one active record of
//! the referenced type whose display name or fully qualified name is that name (exactly, any
//! case). No match, or several, is an argument error listing up to five candidates, and nothing
//! is written. Each referenced type is read once per write (one query per 1,000 records).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::entities;
use super::{QboError, QuickBooks};

/// Most candidates an error lists.
const CANDIDATES: usize = 5;

/// The entity type a `…Ref` field points at, or `Err` saying why it cannot be resolved by name.
/// `entity` is the type being written (a `ParentRef` points at its own type).
pub fn referenced_type(
    key: &str,
    reference: &Map<String, Value>,
    entity: &str,
) -> Result<String, String> {
    let stem = key.strip_suffix("Ref").unwrap_or(key);
    let named = match stem {
        "Parent" => Some(entity.to_owned()),
        "Entity" => reference
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned),
        "SalesTerm" => Some("Term".to_owned()),
        s if s.ends_with("Account") => Some("Account".to_owned()),
        s => Some(s.to_owned()),
    };
    match named {
        Some(t) if entities::by_name(&t).is_some() && t != "Attachable" => Ok(t),
        Some(_) | None => Err(format!(
            "`{key}` cannot be given by name here; give its `value` (the id), e.g. found with query."
        )),
    }
}

/// A reference that needs resolving: where it is (a JSON pointer), its type and name.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub pointer: String,
    pub entity: String,
    pub name: String,
}

/// Every `…Ref` in `fields` given by name only, in document order.
pub fn wanted(fields: &Value, entity: &str) -> Result<Vec<Wanted>, String> {
    let mut out = Vec::new();
    walk(fields, "", entity, &mut out)?;
    Ok(out)
}

fn walk(v: &Value, at: &str, entity: &str, out: &mut Vec<Wanted>) -> Result<(), String> {
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                if let (true, Value::Object(reference)) = (key.ends_with("Ref"), child) {
                    let has_value = reference.get("value").is_some_and(|v| !v.is_null());
                    if let (false, Some(name)) = (has_value, reference.get("name")) {
                        let Some(name) = name.as_str().map(str::trim).filter(|n| !n.is_empty())
                        else {
                            return Err(format!("`{key}`'s name must be a non-empty string."));
                        };
                        out.push(Wanted {
                            pointer: here,
                            entity: referenced_type(key, reference, entity)?,
                            name: name.to_owned(),
                        });
                        continue;
                    }
                }
                walk(child, &here, entity, out)?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{at}/{i}"), entity, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The names a record answers to: display name, name, fully qualified name.
fn names_of(record: &Value) -> Vec<&str> {
    ["DisplayName", "Name", "FullyQualifiedName"]
        .iter()
        .filter_map(|k| record[*k].as_str())
        .collect()
}

fn label(record: &Value) -> String {
    let name = names_of(record)
        .last()
        .copied()
        .unwrap_or_default()
        .to_owned();
    format!("{name} (id {})", record["Id"].as_str().unwrap_or("?"))
}

/// The one record of `records` called `name` (any case), or an error listing candidates.
pub fn pick<'a>(records: &'a [Value], entity: &str, name: &str) -> Result<&'a Value, String> {
    let wanted = name.to_lowercase();
    let matches: Vec<&Value> = records
        .iter()
        .filter(|r| names_of(r).iter().any(|n| n.to_lowercase() == wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let close: Vec<String> = records
                .iter()
                .filter(|r| {
                    names_of(r).iter().any(|n| {
                        let n = n.to_lowercase();
                        n.contains(&wanted) || wanted.contains(&n)
                    })
                })
                .take(CANDIDATES)
                .map(label)
                .collect();
            Err(if close.is_empty() {
                format!(
                    "No active {entity} is named `{name}`; check the spelling, or give the id as `value`."
                )
            } else {
                format!(
                    "No active {entity} is named exactly `{name}`. Close: {}. Give the exact name, or the id as `value`.",
                    close.join(", ")
                )
            })
        }
        several => Err(format!(
            "{} active {entity} records are named `{name}`: {}. Give the id as `value`.",
            several.len(),
            several
                .iter()
                .take(CANDIDATES)
                .map(|r| label(r))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

impl QuickBooks {
    /// Resolves every `…Ref` given by name in `body` (the fields of a write to `entity`) to
    /// `{"value": id, "name": …}`; `InvalidArgument` when one cannot be.
    pub async fn resolve_names(
        &self,
        realm_id: &str,
        entity: &str,
        body: &mut Value,
    ) -> Result<(), QboError> {
        let invalid = |message: String| QboError::InvalidArgument { message };
        let wanted = wanted(body, entity).map_err(invalid)?;
        let mut records: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for w in &wanted {
            if !records.contains_key(&w.entity) {
                let query = format!("SELECT * FROM {} WHERE Active = true", w.entity);
                let found = self.query(realm_id, &query, true).await?;
                let rows = found.value["QueryResponse"][&w.entity]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                records.insert(w.entity.clone(), rows);
            }
            let all = records
                .get(&w.entity)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let record = pick(all, &w.entity, &w.name).map_err(invalid)?;
            let resolved = json!({
                "value": record["Id"],
                "name": names_of(record).first().copied().unwrap_or(&w.name),
            });
            if let Some(slot) = body.pointer_mut(&w.pointer) {
                *slot = resolved;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_by_name_are_found_with_their_type() {
        let fields = json!({
            "CustomerRef": {"name": "Cool Cars"},
            "SalesTermRef": {"name": "Net 30"},
            "Line": [{"SalesItemLineDetail": {"ItemRef": {"name": "Design"}, "ClassRef": {"value": "3"}}}],
            "DepositToAccountRef": {"name": "Checking", "value": null},
        });
        let w = wanted(&fields, "Invoice").unwrap();
        let mut found: Vec<(&str, &str, &str)> = w
            .iter()
            .map(|w| (w.pointer.as_str(), w.entity.as_str(), w.name.as_str()))
            .collect();
        found.sort_unstable();
        assert_eq!(
            found,
            vec![
                ("/CustomerRef", "Customer", "Cool Cars"),
                ("/DepositToAccountRef", "Account", "Checking"),
                ("/Line/0/SalesItemLineDetail/ItemRef", "Item", "Design"),
                ("/SalesTermRef", "Term", "Net 30"),
            ]
        );
        assert!(wanted(&json!({"CurrencyRef": {"name": "USD"}}), "Invoice").is_err());
        assert!(wanted(&json!({"CustomerRef": {"name": " "}}), "Invoice").is_err());
        let entity = json!({"EntityRef": {"name": "Bob", "type": "Vendor"}});
        assert_eq!(wanted(&entity, "Purchase").unwrap()[0].entity, "Vendor");
    }

    #[test]
    fn names_match_exactly_in_any_case() {
        let records = vec![
            json!({"Id": "1", "DisplayName": "Cool Cars", "FullyQualifiedName": "Cool Cars"}),
            json!({"Id": "2", "DisplayName": "Cool Cars Too"}),
            json!({"Id": "3", "Name": "Garden", "FullyQualifiedName": "Landscaping:Garden"}),
            json!({"Id": "4", "Name": "Garden", "FullyQualifiedName": "Design:Garden"}),
        ];
        assert_eq!(pick(&records, "Customer", "cool cars").unwrap()["Id"], "1");
        assert_eq!(
            pick(&records, "Item", "landscaping:garden").unwrap()["Id"],
            "3"
        );
        let several = pick(&records, "Item", "Garden").unwrap_err();
        assert!(
            several.contains("id 3") && several.contains("id 4"),
            "{several}"
        );
        let none = pick(&records, "Customer", "Cool").unwrap_err();
        assert!(none.contains("Cool Cars (id 1)"), "{none}");
        let none = pick(&records, "Customer", "Zebra").unwrap_err();
        assert!(none.contains("No active Customer"), "{none}");
    }
}
