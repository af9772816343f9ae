//! Change data capture (`GET /cdc?entities=A,B&changedSince=…`): every entity of the named
//! types changed since a moment at most 30 days back, deleted ones as `status: Deleted`,
//! at most 1000 objects in one answer, as Intuit does. Preferences (a singleton) is reported
//! when it changed; CompanyInfo is not among Intuit's CDC entities.

use crate::books::entity_types;
use crate::books::{Books, fields};
use crate::clock::{metadata_time, parse_time};
use crate::fault::Fault;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The most objects one answer carries.
pub const MAX_OBJECTS: usize = 1000;
/// How far back `changedSince` may reach.
pub const MAX_DAYS_BACK: i64 = 30;

/// Builds the `CDCResponse` item.
pub fn run(
    params: &HashMap<String, String>,
    books: &Books,
    now: DateTime<Utc>,
) -> Result<Value, Fault> {
    let Some(entities) = params.get("entities").filter(|e| !e.trim().is_empty()) else {
        return Err(Fault::required("entities"));
    };
    let Some(since_text) = params.get("changedSince") else {
        return Err(Fault::required("changedSince"));
    };
    let Some(since) = parse_time(since_text) else {
        return Err(Fault::validation(
            "2010",
            "Invalid date",
            format!("changedSince {since_text} is not a date or time"),
        ));
    };
    if now - since > Duration::days(MAX_DAYS_BACK) {
        return Err(Fault::validation(
            "2010",
            "Invalid changedSince",
            format!("changedSince may not be more than {MAX_DAYS_BACK} days in the past"),
        ));
    }
    let mut sections = Vec::new();
    let mut budget = MAX_OBJECTS;
    for name in entities.split(',').map(str::trim) {
        // Preferences is a singleton: reported when it changed since then.
        if name.eq_ignore_ascii_case("Preferences") {
            let changed = fields::text(&books.preferences, "MetaData.LastUpdatedTime")
                .and_then(parse_time)
                .is_some_and(|t| t >= since)
                && budget > 0;
            let count = usize::from(changed);
            budget -= count;
            let mut section = Map::new();
            if changed {
                section.insert("Preferences".into(), json!([books.preferences]));
            }
            section.insert("startPosition".into(), json!(1));
            section.insert("maxResults".into(), json!(count));
            section.insert("totalCount".into(), json!(count));
            sections.push(Value::Object(section));
            continue;
        }
        let Some(entity) = entity_types::by_name(name).or_else(|| entity_types::by_path(name))
        else {
            return Err(Fault::validation(
                "2010",
                "Invalid entity",
                format!("CDC does not support entity {name}"),
            ));
        };
        let mut changed: Vec<Value> = books
            .all(entity)
            .filter(|e| {
                fields::text(e, "MetaData.LastUpdatedTime")
                    .and_then(parse_time)
                    .is_some_and(|t| t >= since)
            })
            .cloned()
            .collect();
        changed.extend(books.tombstones.iter().filter(|t| t.entity == entity.name && t.at >= since).map(|t| {
            json!({"domain": "QBO", "status": "Deleted", "Id": t.id.to_string(), "MetaData": {"LastUpdatedTime": metadata_time(t.at)}})
        }));
        changed.truncate(budget);
        budget -= changed.len();
        let mut section = Map::new();
        let count = changed.len();
        if count > 0 {
            section.insert(entity.name.to_owned(), Value::Array(changed));
        }
        section.insert("startPosition".into(), json!(1));
        section.insert("maxResults".into(), json!(count));
        section.insert("totalCount".into(), json!(count));
        sections.push(Value::Object(section));
    }
    Ok(json!({"QueryResponse": sections}))
}
