//! The batch endpoint (`POST /batch`): up to 30 operations in one request, each answered on
//! its own (`BatchItemResponse` with the entity, a `QueryResponse`, or a `Fault`), as
//! Intuit's SDKs expect. One item's fault does not stop the others.

use super::query;
use crate::books::entity_types::{self, EntityType};
use crate::books::{Books, fields};
use crate::fault::Fault;
use crate::webhooks::Change;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The most items one batch may carry.
pub const MAX_ITEMS: usize = 30;

/// One parsed batch item.
#[derive(Debug)]
pub struct Item {
    id: String,
    action: Action,
}

#[derive(Debug)]
enum Action {
    Query(String),
    Write {
        operation: String,
        entity: &'static EntityType,
        body: Value,
    },
    Invalid(Fault),
}

/// Reads a batch request body; the whole batch is refused only when it is not one.
pub fn parse(body: &[u8]) -> Result<Vec<Item>, Fault> {
    let request: Value = serde_json::from_slice(body).map_err(|e| {
        Fault::validation(
            "2010",
            "Request has invalid or unsupported property",
            format!("Batch body is not JSON: {e}"),
        )
    })?;
    let Some(items) = request.get("BatchItemRequest").and_then(Value::as_array) else {
        return Err(Fault::required("BatchItemRequest"));
    };
    if items.len() > MAX_ITEMS {
        return Err(Fault::validation(
            "1040",
            "Batch request size limit exceeded",
            format!(
                "A batch may carry at most {MAX_ITEMS} items; this one carries {}",
                items.len()
            ),
        ));
    }
    Ok(items.iter().map(item).collect())
}

fn item(value: &Value) -> Item {
    let id = value
        .get("bId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let action = if let Some(text) = value.get("Query").and_then(Value::as_str) {
        Action::Query(text.to_owned())
    } else {
        let operation = value
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or("create")
            .to_owned();
        let found = value.as_object().and_then(|object| {
            object.iter().find_map(|(key, body)| {
                entity_types::by_name(key).map(|entity| (entity, body.clone()))
            })
        });
        match found {
            Some((entity, body)) => Action::Write {
                operation,
                entity,
                body,
            },
            None => Action::Invalid(Fault::required("entity")),
        }
    };
    Item { id, action }
}

fn fault_object(fault: &Fault, time: &str) -> Value {
    fault
        .body(time)
        .get("Fault")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Runs every item against the books; answers the whole batch response and the changes made.
/// `link` adds download links to the Attachables in an item's answer (`Attachable`: one written;
/// `QueryResponse`: those found), as the same request outside a batch would.
pub fn run(
    items: Vec<Item>,
    books: &mut Books,
    now: DateTime<Utc>,
    time: &str,
    link: impl Fn(&str, &mut Value),
) -> (Value, Vec<Change>) {
    let mut responses = Vec::with_capacity(items.len());
    let mut changes = Vec::new();
    for item in items {
        let mut response = Map::new();
        response.insert("bId".into(), json!(item.id));
        let outcome = match item.action {
            Action::Query(text) => query::parse(&text)
                .and_then(|parsed| query::run(&parsed, books))
                .map(|found| ("QueryResponse".to_owned(), found)),
            Action::Write {
                operation,
                entity,
                body,
            } => {
                let written = match operation.as_str() {
                    "create" => books.create(entity, body, now).map(|v| (v, "Create")),
                    "update" => books.update(entity, body, now).map(|v| (v, "Update")),
                    "delete" => books.delete(entity, body, now).map(|v| (v, "Delete")),
                    "void" => books.void(entity, body, now).map(|v| (v, "Void")),
                    other => Err(Fault::unsupported(other)),
                };
                written.map(|(value, operation)| {
                    let id = fields::text(&value, "Id").unwrap_or_default().to_owned();
                    changes.push(Change {
                        entity: entity.name,
                        id,
                        operation,
                    });
                    (entity.name.to_owned(), value)
                })
            }
            Action::Invalid(fault) => Err(fault),
        };
        match outcome {
            Ok((key, mut value)) => {
                link(&key, &mut value);
                response.insert(key, value)
            }
            Err(fault) => response.insert("Fault".into(), fault_object(&fault, time)),
        };
        responses.push(Value::Object(response));
    }
    (
        json!({"BatchItemResponse": responses, "time": time}),
        changes,
    )
}
