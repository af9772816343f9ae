//! Attachments as QuickBooks keeps them: an `Attachable` names the entities it belongs to
//! (`AttachableRef[].EntityRef`, each of which must exist) and, when it carries a file, where
//! the file lives (`FileAccessUri`), its `Size` and `ContentType`. The bytes stay in memory
//! with the company's books; the HTTP side (upload, download, temporary links) is
//! `api::attachments`.

use super::entity_types;
use super::{Books, fields};
use crate::fault::Fault;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// A file to store with its metadata.
#[derive(Debug)]
pub struct Upload {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Bytes,
}

impl Books {
    /// Every `AttachableRef[].EntityRef` must name an entity type and an existing entity of it
    /// (2500 otherwise, at `AttachableRef.EntityRef`).
    pub(super) fn check_attached_entities(&self, object: &Map<String, Value>) -> Result<(), Fault> {
        let refs = object
            .get("AttachableRef")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for item in refs {
            let Some(entity_ref) = item.get("EntityRef").filter(|r| !r.is_null()) else {
                continue;
            };
            let kind = fields::text(entity_ref, "type").unwrap_or_default();
            let id = match entity_ref.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let exists = entity_types::by_name(kind)
                .or_else(|| entity_types::by_path(kind))
                .filter(|t| t.name != "Attachable")
                .and_then(|t| self.get_by_text(t, &id))
                .is_some();
            if !exists {
                return Err(Fault::invalid_reference(
                    "AttachableRef.EntityRef",
                    format!("{kind} {id}").trim(),
                ));
            }
        }
        Ok(())
    }

    /// Creates an Attachable from upload metadata and stores its file: the metadata is checked
    /// as a create, then QuickBooks' own fields are set (`FileAccessUri`, `Size`, and
    /// `FileName`/`ContentType` from the file part when the metadata gives none).
    pub fn attach_file(
        &mut self,
        realm_id: &str,
        metadata: Map<String, Value>,
        upload: Upload,
        now: DateTime<Utc>,
    ) -> Result<Value, Fault> {
        let Some(attachable) = entity_types::by_name("Attachable") else {
            return Err(Fault::unsupported("Upload"));
        };
        let mut metadata = metadata;
        for (field, given) in [
            ("FileName", &upload.file_name),
            ("ContentType", &upload.content_type),
        ] {
            let empty = metadata
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(|s| s.trim().is_empty());
            if empty && !given.is_empty() {
                metadata.insert(field.into(), json!(given));
            }
        }
        let created = self.create(attachable, Value::Object(metadata), now)?;
        let id = fields::id(&created);
        let Some(Value::Object(mut stored)) = self.get(attachable, id).cloned() else {
            return Err(Fault::not_found("Attachable", &id.to_string()));
        };
        stored.insert(
            "FileAccessUri".into(),
            json!(format!("/v3/company/{realm_id}/download/{id}")),
        );
        stored.insert("Size".into(), json!(upload.bytes.len()));
        self.files.insert(id, upload.bytes);
        self.store(attachable, id, Value::Object(stored));
        self.get(attachable, id)
            .cloned()
            .ok_or_else(|| Fault::not_found("Attachable", &id.to_string()))
    }

    /// The bytes of an Attachable's file, if it has one.
    pub fn file(&self, id: u64) -> Option<&Bytes> {
        self.files.get(&id)
    }
}
