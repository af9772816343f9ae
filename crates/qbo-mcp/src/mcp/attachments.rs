//! The attachment tools: `attach_file` (a receipt or document onto an invoice, bill, …),
//! `list_attachments` and `get_attachment`, and the `intuit` profile's attachable tools
//! (`create_attachable`, `get_attachable`, `get_entity_attachments`, `download_attachment`, …)
//! run on the same handlers. Everything QuickBooks would refuse about a file (its base64,
//! type, size, the entity) is refused before any request is sent. An attachment is not held
//! by the approvals policy (docs/tools.md, "Attachments"). The audit entry names the entity,
//! the file name and size — never the content.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::future::BoxFuture;
use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::books::{self, before_write, company, explain, explain_error};
use super::intuit_calls::{Verb, normalize};
use super::tools::{
    Run, TOOLS, ToolContext, ToolError, ToolOutcome, ToolOutput, ToolSpec, arguments, schema,
};
use super::trail::shortened;
use crate::quickbooks::attachments::{FILE_TYPES, NewFile, attachables, check_file, extension};

/// The most bytes `get_attachment` returns inline (base64 in the answer).
pub const INLINE_LIMIT: usize = 5 * 1024 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachArgs {
    pub company: Option<String>,
    /// The entity the file belongs to: a transaction (`Invoice`, `Bill`, `Purchase`, …) or a
    /// `Customer`, `Vendor`, `Employee` or `Item`.
    pub entity: String,
    /// The entity's QuickBooks id.
    pub id: String,
    /// The file's name with its extension (`receipt.pdf`); QuickBooks takes ai, csv, doc,
    /// docx, eps, gif, jpeg, jpg, ods, pdf, png, rtf, tif, txt, xls, xlsx, xml.
    pub file_name: String,
    /// The file's type, matching its extension (`application/pdf`, `image/jpeg`, …).
    pub content_type: String,
    /// The file's bytes, base64-encoded (standard alphabet); at most 100 MB decoded.
    pub content_base64: String,
    /// A note kept with the attachment.
    pub note: Option<String>,
}

/// Decodes base64, tolerating line breaks and the URL-safe alphabet.
fn decode(text: &str) -> Result<Vec<u8>, ToolError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(&compact)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&compact))
        .map_err(|e| {
            ToolError(format!(
                "`content_base64` is not valid base64 ({e}); encode the file's bytes with standard base64. Nothing was sent."
            ))
        })
}

/// `attach_file`: uploads a file and links it to an entity.
pub async fn attach_file(cx: &ToolContext, args: AttachArgs) -> ToolOutcome {
    let bytes = decode(&args.content_base64)?;
    let file = NewFile {
        entity: args.entity.clone(),
        id: args.id.clone(),
        file_name: args.file_name.trim().to_owned(),
        content_type: args.content_type.trim().to_owned(),
        bytes: bytes.into(),
        note: args.note.clone(),
    };
    cx.trail.note(json!({
        "entity": shortened(&file.entity),
        "id": shortened(&file.id),
        "file_name": shortened(&file.file_name),
        "size": file.bytes.len(),
        "content_type": shortened(&file.content_type),
    }));
    check_file(&file).map_err(|e| ToolError(format!("{e} Nothing was sent.")))?;
    let c = company(cx, args.company.as_deref()).await?;
    before_write(cx, &c, json!({}), false).await?;
    let a = cx.state.quickbooks.attach_file(&c.realm_id, &file).await;
    let a = explain(cx, a).await?;
    let attachable = &a.value["Attachable"];
    cx.trail
        .note(json!({ "attachable_id": attachable["Id"].as_str().map(shortened) }));
    let summary = format!(
        "{} ({}) attached to {} {} in {} as attachable {}.",
        file.file_name,
        size(file.bytes.len()),
        file.entity,
        file.id,
        c.name,
        attachable["Id"].as_str().unwrap_or("?")
    );
    Ok(ToolOutput {
        summary,
        data: a.value,
    })
}

/// A size as people read it: `812 bytes`, `14.2 KB`, `3.1 MB`.
fn size(bytes: usize) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{:.1} KB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    pub company: Option<String>,
    /// The entity whose attachments to list (`Invoice`, `Bill`, …).
    pub entity: String,
    /// The entity's QuickBooks id.
    pub id: String,
}

/// `list_attachments`: the files and notes attached to one entity.
pub async fn list_attachments(cx: &ToolContext, args: ListArgs) -> ToolOutcome {
    cx.trail.note(json!({
        "entity": shortened(&args.entity),
        "id": shortened(&args.id),
    }));
    crate::quickbooks::attachments::check_entity(&args.entity).map_err(ToolError)?;
    let c = company(cx, args.company.as_deref()).await?;
    let a = cx
        .state
        .quickbooks
        .attachments_of(&c.realm_id, &args.entity, &args.id)
        .await;
    let a = explain(cx, a).await?;
    let rows = attachables(&a.value);
    cx.trail.note(json!({ "rows": rows.len() }));
    let names: Vec<String> = rows
        .iter()
        .map(|r| {
            let name = r["FileName"].as_str().unwrap_or("a note");
            format!("{name} (attachable {})", r["Id"].as_str().unwrap_or("?"))
        })
        .collect();
    let summary = match names.len() {
        0 => format!(
            "{} {} has no attachments in {}.",
            args.entity, args.id, c.name
        ),
        n => format!(
            "{} {} has {n} attachment{} in {}: {}.",
            args.entity,
            args.id,
            if n == 1 { "" } else { "s" },
            c.name,
            names.join(", ")
        ),
    };
    Ok(ToolOutput {
        summary,
        data: json!({ "entity": args.entity, "id": args.id, "attachables": rows }),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    pub company: Option<String>,
    /// The attachment's id, as list_attachments or attach_file answered it.
    pub attachable_id: String,
    /// Also return the file's bytes, base64-encoded, when it is at most 5 MB.
    pub include_content: Option<bool>,
}

/// `get_attachment`: an attachment's metadata, a temporary download link (15 minutes), and
/// with `include_content` its bytes when they are at most [`INLINE_LIMIT`].
pub async fn get_attachment(cx: &ToolContext, args: GetArgs) -> ToolOutcome {
    let id = args.attachable_id.trim().to_owned();
    cx.trail
        .note(json!({ "entity": "Attachable", "id": shortened(&id) }));
    let c = company(cx, args.company.as_deref()).await?;
    let a = cx
        .state
        .quickbooks
        .get_entity(&c.realm_id, "Attachable", &id)
        .await;
    let a = explain(cx, a).await?;
    let attachable = a.value["Attachable"].clone();
    let name = attachable["FileName"].as_str().unwrap_or("").to_owned();
    cx.trail.note(json!({
        "file_name": (!name.is_empty()).then(|| shortened(&name)),
        "size": attachable["Size"].as_u64(),
        "rows": 1,
    }));
    let mut data = json!({ "Attachable": attachable });
    if attachable.get("FileAccessUri").is_none() {
        return Ok(ToolOutput {
            summary: format!(
                "Attachable {id} in {} is a note without a file{}.",
                c.name,
                attachable["Note"]
                    .as_str()
                    .map(|n| format!(": {}", shortened(n)))
                    .unwrap_or_default()
            ),
            data,
        });
    }
    let link = cx.state.quickbooks.download_link(&c.realm_id, &id).await;
    let link = match link {
        Ok(link) => link,
        Err(e) => return Err(explain_error(cx, e).await),
    };
    data["download_url"] = json!(link);
    let declared = attachable["Size"].as_f64().map(|s| s as usize);
    let mut summary = format!(
        "{name} (attachable {id}{}) in {}; `download_url` works for 15 minutes.",
        declared
            .map(|s| format!(", {}", size(s)))
            .unwrap_or_default(),
        c.name
    );
    if args.include_content == Some(true) {
        if declared.is_some_and(|s| s > INLINE_LIMIT) {
            data["content_note"] = json!(format!(
                "The file is larger than 5 MB, so its bytes are not returned inline; fetch download_url instead."
            ));
            summary
                .push_str(" The file is over 5 MB: its content is not included; use download_url.");
        } else {
            let fetched = cx.state.quickbooks.fetch_file(&link, INLINE_LIMIT).await;
            match fetched {
                Ok(Some(bytes)) => {
                    data["content_base64"] = json!(STANDARD.encode(&bytes));
                    summary.push_str(&format!(
                        " Its {} are in `content_base64`.",
                        size(bytes.len())
                    ));
                }
                Ok(None) => {
                    data["content_note"] = json!(
                        "The file is larger than 5 MB, so its bytes are not returned inline; fetch download_url instead."
                    );
                    summary.push_str(
                        " The file is over 5 MB: its content is not included; use download_url.",
                    );
                }
                Err(e) => return Err(explain_error(cx, e).await),
            }
        }
    }
    Ok(ToolOutput { summary, data })
}

// ---- The `intuit` profile: Intuit's attachable tools on these handlers. ----

/// Intuit's `attachable_ref` object.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntuitRef {
    /// Entity type (`Invoice`, `Bill`, …).
    pub entity_ref_type: String,
    /// The entity's id.
    pub entity_ref_value: String,
    /// Whether to include the file when the entity is emailed.
    pub include_on_send: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntuitCreateArgs {
    pub company: Option<String>,
    /// File name with its extension.
    pub file_name: String,
    pub note: Option<String>,
    /// QuickBooks' attachment category (Document, Image, Receipt, …).
    pub category: Option<String>,
    /// The file's type; from the extension when omitted.
    pub content_type: Option<String>,
    /// The bytes, base64-encoded. Without them, a note-only attachment is created.
    pub base64_content: Option<String>,
    /// Not served: this server cannot read files on your machine; send `base64_content`.
    pub file_path: Option<String>,
    /// Not served: this server does not fetch URLs; send `base64_content`.
    pub file_url: Option<String>,
    /// The entity to attach to.
    pub attachable_ref: Option<IntuitRef>,
    /// Taken for calls written for Intuit's server; the link is always answered.
    pub return_download_uri: Option<bool>,
}

/// The content type QuickBooks expects for a file name's extension.
fn type_of(file_name: &str) -> Option<&'static str> {
    let ext = extension(file_name)?;
    FILE_TYPES
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, types)| types[0])
}

fn no_local_files(what: &str) -> ToolError {
    ToolError(format!(
        "This server runs away from your machine and cannot read {what}; pass the file's bytes as `base64_content` (create_attachable) or `content_base64` (attach_file). Nothing was sent."
    ))
}

/// `create_attachable`: a file (`base64_content`) as `attach_file`; without one, a note.
fn intuit_create<'a>(
    cx: &'a ToolContext,
    _spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(async move {
        let a: IntuitCreateArgs = arguments(args)?;
        if a.file_path.is_some() {
            return Err(no_local_files("`file_path`"));
        }
        if a.file_url.is_some() {
            return Err(no_local_files("`file_url`"));
        }
        let Some(target) = a.attachable_ref else {
            return Err(ToolError(
                "Give `attachable_ref` ({entity_ref_type, entity_ref_value}): this server attaches files to an entity. Nothing was sent.".into(),
            ));
        };
        let content_type = a
            .content_type
            .clone()
            .or_else(|| type_of(&a.file_name).map(str::to_owned))
            .unwrap_or_default();
        if let Some(content) = a.base64_content {
            return attach_file(
                cx,
                AttachArgs {
                    company: a.company,
                    entity: target.entity_ref_type,
                    id: target.entity_ref_value,
                    file_name: a.file_name,
                    content_type,
                    content_base64: content,
                    note: a.note,
                },
            )
            .await;
        }
        note_only(cx, a.company, target, a.file_name, a.note, a.category).await
    })
}

/// An attachable without a file (a note, or metadata), through `POST attachable`.
async fn note_only(
    cx: &ToolContext,
    company_arg: Option<String>,
    target: IntuitRef,
    file_name: String,
    note: Option<String>,
    category: Option<String>,
) -> ToolOutcome {
    crate::quickbooks::attachments::check_entity(&target.entity_ref_type)
        .map_err(|e| ToolError(format!("{e} Nothing was sent.")))?;
    let mut entity_ref =
        json!({"EntityRef": {"type": target.entity_ref_type, "value": target.entity_ref_value}});
    if let Some(send) = target.include_on_send {
        entity_ref["IncludeOnSend"] = json!(send);
    }
    let mut fields = json!({"AttachableRef": [entity_ref], "FileName": file_name});
    if let Some(n) = &note {
        fields["Note"] = json!(n);
    }
    if let Some(c) = &category {
        fields["Category"] = json!(c);
    }
    cx.trail.note(json!({
        "entity": shortened(&target.entity_ref_type),
        "id": shortened(&target.entity_ref_value),
        "file_name": shortened(&file_name),
    }));
    let c = company(cx, company_arg.as_deref()).await?;
    before_write(cx, &c, json!({}), false).await?;
    let a = cx
        .state
        .quickbooks
        .create_entity(&c.realm_id, "Attachable", &fields, false)
        .await;
    let a = explain(cx, a).await?;
    let id = a.value["Attachable"]["Id"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    cx.trail.note(json!({ "attachable_id": shortened(&id) }));
    Ok(ToolOutput {
        summary: format!(
            "Note attachable {id} ({file_name}, no file) added to {} {} in {}.",
            target.entity_ref_type, target.entity_ref_value, c.name
        ),
        data: a.value,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct IntuitUploadArgs {
    pub company: Option<String>,
    /// Not served: this server cannot read files on your machine.
    pub file_path: String,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
}

/// `upload_attachable`: Intuit's takes a local path, which a remote server cannot read.
fn intuit_upload<'a>(
    _cx: &'a ToolContext,
    _spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(async move {
        let _: IntuitUploadArgs = arguments(args)?;
        Err(no_local_files("`filePath`"))
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntuitGetArgs {
    pub company: Option<String>,
    /// The attachable's id.
    #[serde(alias = "attachable_id")]
    pub id: String,
    /// Intuit's `download_attachable` path: not served (this server writes no files); the
    /// bytes come back as `content_base64`.
    #[serde(alias = "outputPath", alias = "output_path")]
    pub output_path: Option<String>,
    /// Intuit's `download_attachment` `inline`: the bytes come back inline either way.
    pub inline: Option<bool>,
    /// Taken for calls written for Intuit's server; nothing is written.
    pub overwrite: Option<bool>,
}

/// `get_attachable` (metadata and link) and the download tools (with the bytes).
async fn intuit_get(cx: &ToolContext, args: JsonObject, with_content: bool) -> ToolOutcome {
    let a: IntuitGetArgs = arguments(args)?;
    let args = GetArgs {
        company: a.company,
        attachable_id: a.id,
        include_content: with_content.then_some(true),
    };
    get_attachment(cx, args).await
}

fn intuit_metadata<'a>(
    cx: &'a ToolContext,
    _spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(intuit_get(cx, args, false))
}

fn intuit_download<'a>(
    cx: &'a ToolContext,
    _spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(intuit_get(cx, args, true))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntuitEntityArgs {
    pub company: Option<String>,
    /// The entity type (`Bill`, `Invoice`, …).
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: String,
    /// Taken for calls written for Intuit's server; this server asks QuickBooks for the
    /// entity's attachments directly, so nothing is scanned.
    pub max_scan: Option<u64>,
}

fn intuit_entity_attachments<'a>(
    cx: &'a ToolContext,
    _spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(async move {
        let a: IntuitEntityArgs = arguments(args)?;
        list_attachments(
            cx,
            ListArgs {
                company: a.company,
                entity: a.entity_type,
                id: a.entity_id,
            },
        )
        .await
    })
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntuitSearchArgs {
    pub company: Option<String>,
    /// Exact file name.
    pub file_name: Option<String>,
    /// Part of the file name.
    pub file_name_like: Option<String>,
    pub content_type: Option<String>,
    /// Created on or after (YYYY-MM-DD or RFC 3339).
    pub created_after: Option<String>,
    /// Created on or before.
    pub created_before: Option<String>,
    /// At most this many (1–1000).
    pub limit: Option<u32>,
    /// 1-based first row (QuickBooks' STARTPOSITION).
    pub offset: Option<u32>,
    /// `MetaData.CreateTime DESC` (the default), `FileName ASC`, …
    pub orderby: Option<String>,
    /// The `next_cursor` of the previous answer.
    pub cursor: Option<String>,
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The query `search_attachables` means.
pub fn search_query(a: &IntuitSearchArgs) -> Result<String, ToolError> {
    let mut conditions = Vec::new();
    if let Some(f) = &a.file_name {
        conditions.push(format!("FileName = {}", quoted(f)));
    }
    if let Some(f) = &a.file_name_like {
        conditions.push(format!("FileName LIKE {}", quoted(&format!("%{f}%"))));
    }
    if let Some(t) = &a.content_type {
        conditions.push(format!("ContentType = {}", quoted(t)));
    }
    if let Some(d) = &a.created_after {
        conditions.push(format!("MetaData.CreateTime >= {}", quoted(d)));
    }
    if let Some(d) = &a.created_before {
        conditions.push(format!("MetaData.CreateTime <= {}", quoted(d)));
    }
    let mut q = String::from("SELECT * FROM Attachable");
    if !conditions.is_empty() {
        q.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    let order = a.orderby.as_deref().unwrap_or("MetaData.CreateTime DESC");
    let mut words = order.split_whitespace();
    let field = words.next().unwrap_or_default();
    let direction = words.next().unwrap_or("ASC").to_ascii_uppercase();
    let field_ok = !field.is_empty()
        && field.len() <= 64
        && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    if !field_ok || !matches!(direction.as_str(), "ASC" | "DESC") || words.next().is_some() {
        return Err(ToolError(format!(
            "`orderby` `{order}` is a field and ASC or DESC, like `MetaData.CreateTime DESC`."
        )));
    }
    q.push_str(&format!(" ORDERBY {field} {direction}"));
    if let Some(offset) = a.offset {
        q.push_str(&format!(" STARTPOSITION {}", offset.max(1)));
    }
    if let Some(limit) = a.limit {
        if !(1..=1000).contains(&limit) {
            return Err(ToolError("`limit` must be between 1 and 1000.".into()));
        }
        q.push_str(&format!(" MAXRESULTS {limit}"));
    }
    Ok(q)
}

fn intuit_search<'a>(
    cx: &'a ToolContext,
    _spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(async move {
        let a: IntuitSearchArgs = arguments(args)?;
        let query = books::QueryArgs {
            query: search_query(&a)?,
            company: a.company.clone(),
            cursor: a.cursor.clone(),
            ..Default::default()
        };
        books::query(cx, query).await
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntuitUpdateArgs {
    pub company: Option<String>,
    /// The attachable's id.
    pub id: String,
    /// Its current SyncToken; read from QuickBooks when omitted.
    pub sync_token: Option<String>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub note: Option<String>,
    pub category: Option<String>,
    /// Intuit's convenience: the file name (and content type) are taken from this path's
    /// last segment; no file is read.
    pub file_path: Option<String>,
    pub dry_run: Option<bool>,
}

fn intuit_update<'a>(
    cx: &'a ToolContext,
    _spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(async move {
        let a: IntuitUpdateArgs = arguments(args)?;
        let from_path = a
            .file_path
            .as_deref()
            .map(|p| p.rsplit(['/', '\\']).next().unwrap_or(p).to_owned());
        let file_name = a.file_name.or(from_path);
        let content_type = a
            .content_type
            .or_else(|| file_name.as_deref().and_then(type_of).map(str::to_owned));
        let mut fields = serde_json::Map::new();
        for (key, value) in [
            ("FileName", file_name),
            ("ContentType", content_type),
            ("Note", a.note),
            ("Category", a.category),
        ] {
            if let Some(v) = value {
                fields.insert(key.into(), json!(v));
            }
        }
        if fields.is_empty() {
            return Err(ToolError(
                "Give at least one of file_name, content_type, note, category to change. Nothing was sent."
                    .into(),
            ));
        }
        books::update_entity(
            cx,
            books::UpdateArgs {
                company: a.company,
                entity: "Attachable".into(),
                id: a.id,
                fields: Value::Object(fields),
                sync_token: a.sync_token,
                dry_run: a.dry_run,
            },
        )
        .await
    })
}

fn intuit_delete<'a>(
    cx: &'a ToolContext,
    spec: &'static ToolSpec,
    args: JsonObject,
) -> BoxFuture<'a, ToolOutcome> {
    Box::pin(async move {
        let args = normalize(Verb::Delete, spec.subject, args)?;
        let a: super::intuit::GetArgs = arguments(args)?;
        books::delete_entity(
            cx,
            books::DeleteArgs {
                company: a.company,
                entity: "Attachable".into(),
                id: a.id,
                mode: None,
            },
        )
        .await
    })
}

/// A tool of the `intuit` profile running as the compact tool `kind`.
fn intuit_tool(
    name: &'static str,
    kind: &'static str,
    description: &'static str,
    schema: fn() -> JsonObject,
    run: Run,
) -> &'static ToolSpec {
    let like = TOOLS
        .iter()
        .find(|t| t.name == kind)
        .unwrap_or_else(|| panic!("{kind} is a compact tool"));
    Box::leak(Box::new(ToolSpec {
        name,
        role: like.role,
        effect: like.effect,
        kind,
        description,
        subject: if kind == "delete_entity" || kind == "update_entity" {
            "Attachable"
        } else {
            ""
        },
        schema,
        run,
    }))
}

/// The attachment tools of the `intuit` profile: this server's three, and Intuit's attachable
/// tools under Intuit's names and call shapes (docs/mcp.md, "The `intuit` profile").
pub fn for_intuit_profile() -> Vec<&'static ToolSpec> {
    let mut out: Vec<&'static ToolSpec> = TOOLS
        .iter()
        .filter(|t| {
            matches!(
                t.name,
                "attach_file" | "list_attachments" | "get_attachment"
            )
        })
        .collect();
    out.extend([
        intuit_tool(
            "create_attachable",
            "attach_file",
            "Attach a file to a QuickBooks entity (`attachable_ref`: entity_ref_type, entity_ref_value) from `base64_content` (at most 100 MB decoded; QuickBooks' file types only); without `base64_content`, a note-only attachment. `file_path` and `file_url` are not served by this remote server.",
            schema::<IntuitCreateArgs>,
            intuit_create,
        ),
        intuit_tool(
            "upload_attachable",
            "attach_file",
            "Intuit's local-file upload: this server runs remotely and cannot read `filePath`; use create_attachable with `base64_content`, or attach_file.",
            schema::<IntuitUploadArgs>,
            intuit_upload,
        ),
        intuit_tool(
            "get_attachable",
            "get_attachment",
            "An attachable by id: its metadata and a temporary download link (15 minutes).",
            schema::<IntuitGetArgs>,
            intuit_metadata,
        ),
        intuit_tool(
            "download_attachable",
            "get_attachment",
            "An attachable's file: metadata, a temporary download link, and the bytes as `content_base64` when at most 5 MB (this server writes no files).",
            schema::<IntuitGetArgs>,
            intuit_download,
        ),
        intuit_tool(
            "download_attachment",
            "get_attachment",
            "The file attached to a transaction, by `attachable_id`: metadata, a temporary download link, and the bytes as `content_base64` when at most 5 MB (this server writes no files).",
            schema::<IntuitGetArgs>,
            intuit_download,
        ),
        intuit_tool(
            "get_entity_attachments",
            "list_attachments",
            "The attachments of one entity (`entity_type`, `entity_id`), asked of QuickBooks directly.",
            schema::<IntuitEntityArgs>,
            intuit_entity_attachments,
        ),
        intuit_tool(
            "search_attachables",
            "query",
            "Search attachables by file name (exact or `file_name_like`), content type and creation dates; newest first unless `orderby` says otherwise; `limit`/`offset` or the answer's `next_cursor` page.",
            schema::<IntuitSearchArgs>,
            intuit_search,
        ),
        intuit_tool(
            "update_attachable",
            "update_entity",
            "Change an attachable's metadata (file name, content type, note, category); the file's bytes cannot be replaced.",
            schema::<IntuitUpdateArgs>,
            intuit_update,
        ),
        intuit_tool(
            "delete_attachable",
            "delete_entity",
            "Delete an attachable (and its file) by id.",
            schema::<super::intuit::GetArgs>,
            intuit_delete,
        ),
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachable_searches_become_queries() {
        let q = search_query(&IntuitSearchArgs {
            file_name_like: Some("O'Brien".into()),
            limit: Some(5),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            q,
            "SELECT * FROM Attachable WHERE FileName LIKE '%O\\'Brien%' ORDERBY MetaData.CreateTime DESC MAXRESULTS 5"
        );
        assert!(
            search_query(&IntuitSearchArgs {
                orderby: Some("FileName; DROP".into()),
                ..Default::default()
            })
            .is_err()
        );
        assert_eq!(type_of("r.JPG"), Some("image/jpeg"));
        assert_eq!(size(2048), "2.0 KB");
    }
}
