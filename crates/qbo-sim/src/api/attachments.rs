//! Attachments over HTTP, as Intuit serves them: `POST /v3/company/{realm}/upload` takes a
//! `multipart/form-data` body of `file_metadata_NN` (a JSON Attachable) and `file_content_NN`
//! (the bytes) pairs and answers one `AttachableResponse` element per pair, an `Attachable` or
//! a `Fault`; `GET /v3/company/{realm}/download/{id}` answers, as text, a temporary download
//! link, which serves the exact bytes for 15 minutes (Intuit's links are pre-signed S3 URLs
//! with `X-Amz-Expires=900`). The link needs no token: its signature is the permission, so
//! it is served outside the API gate (and by the Intuit-facing router, for demo mode).
//!
//! The multipart reader accepts what clients send: CRLF or bare LF line ends (python-quickbooks
//! writes LF) and `Content-Transfer-Encoding: base64` parts. It never panics on any body.

use super::{CallKind, Params, gate, write_once};
use crate::books::{Upload, fields};
use crate::fault::Fault;
use crate::simulator::SimState;
use crate::webhooks::{self, Change};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;

/// QuickBooks' limit on one file.
pub const MAX_FILE_BYTES: usize = 100 * 1024 * 1024;
/// The largest upload body read: a file at the limit, base64-encoded, with its metadata.
const MAX_UPLOAD_BODY: usize = MAX_FILE_BYTES / 3 * 4 + 4 * 1024 * 1024;
/// How long a temporary download link works (Intuit's `X-Amz-Expires=900`).
pub const LINK_SECONDS: i64 = 900;
/// The file extensions QuickBooks accepts.
pub const ALLOWED_EXTENSIONS: &[&str] = &[
    "ai", "csv", "doc", "docx", "eps", "gif", "jpeg", "jpg", "ods", "pdf", "png", "rtf", "tif",
    "txt", "xls", "xlsx", "xml",
];

const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The upload, download and temporary-link routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/v3/company/{realm}/upload",
            post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY)),
        )
        .route("/v3/company/{realm}/download/{id}", get(download))
        .route(
            "/qbo-attachments/{realm}/attachments/{id}/{name}",
            get(temporary_file),
        )
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A `key="value"` (or `key=value`) parameter of a header value.
fn parameter(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Reads a `multipart/form-data` body; the error says what is wrong with it.
pub fn parse_multipart(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Part>, String> {
    let content_type = content_type.unwrap_or_default();
    if !content_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(format!(
            "Content-Type must be multipart/form-data, not {:?}",
            content_type
        ));
    }
    let boundary = parameter(content_type, "boundary")
        .filter(|b| !b.is_empty() && b.len() <= 200)
        .ok_or("the multipart Content-Type has no boundary")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut at = find(body, &delimiter, 0).ok_or("the body has no multipart boundary")?;
    let mut parts = Vec::new();
    loop {
        let after = at + delimiter.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        // The rest of the delimiter line.
        let line_end = find(body, b"\n", after).ok_or("a part has no headers")?;
        let start = line_end + 1;
        let next =
            find(body, &delimiter, start).ok_or("the body ends without a closing boundary")?;
        let mut raw = &body[start..next];
        // The line break before a delimiter belongs to the delimiter.
        raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        parts.push(part(raw)?);
        at = next;
    }
    if parts.is_empty() {
        return Err("the multipart body has no parts".into());
    }
    Ok(parts)
}

fn part(raw: &[u8]) -> Result<Part, String> {
    let (head, body) = match (find(raw, b"\r\n\r\n", 0), find(raw, b"\n\n", 0)) {
        (Some(crlf), Some(lf)) if lf < crlf => (&raw[..lf], &raw[lf + 2..]),
        (Some(crlf), _) => (&raw[..crlf], &raw[crlf + 4..]),
        (None, Some(lf)) => (&raw[..lf], &raw[lf + 2..]),
        (None, None) => return Err("a part has no blank line after its headers".into()),
    };
    let head = String::from_utf8_lossy(head);
    let mut name = None;
    let mut file_name = None;
    let mut content_type = None;
    let mut base64 = false;
    for line in head.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("a part header is not `Name: value`: {line:?}"));
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => {
                name = parameter(value, "name");
                file_name = parameter(value, "filename");
            }
            "content-type" => content_type = Some(value.to_owned()),
            "content-transfer-encoding" => base64 = value.eq_ignore_ascii_case("base64"),
            _ => {}
        }
    }
    let name = name.ok_or("a part has no Content-Disposition name")?;
    let body = if base64 {
        let text: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("part {name} is not valid base64: {e}"))?
    } else {
        body.to_vec()
    };
    Ok(Part {
        name,
        file_name,
        content_type,
        body,
    })
}

/// The extension of a file name, lower case.
pub fn extension(file_name: &str) -> Option<String> {
    let (_, ext) = file_name.rsplit_once('.')?;
    (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

fn signature(state: &SimState, realm: &str, id: u64, date: &str) -> Option<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&state.attachment_key).ok()?;
    mac.update(format!("{realm}/{id}/{date}").as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// The path segment a file name becomes in a link: letters, digits, `.`, `-` and `_`.
fn link_name(file_name: &str) -> String {
    let cleaned: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.trim_matches('.').is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

/// A temporary download link for Attachable `id`'s file, valid [`LINK_SECONDS`] from `now`.
pub fn temporary_link(
    state: &SimState,
    base: &str,
    realm: &str,
    id: u64,
    file_name: &str,
    now: DateTime<Utc>,
) -> String {
    let date = now.format(DATE_FORMAT).to_string();
    let signed = signature(state, realm, id, &date).unwrap_or_default();
    format!(
        "{base}/qbo-attachments/{realm}/attachments/{id}/{}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}&X-Amz-SignedHeaders=host&X-Amz-Expires={LINK_SECONDS}&X-Amz-Signature={}",
        link_name(file_name),
        hex(&signed)
    )
}

/// Adds a fresh `TempDownloadUri` to an Attachable that has a file, as every answer carrying
/// one does at Intuit.
pub fn with_link(state: &SimState, base: &str, realm: &str, attachable: &mut Value) {
    if attachable.get("FileAccessUri").is_none() {
        return;
    }
    let id = fields::id(attachable);
    let name = fields::text(attachable, "FileName")
        .unwrap_or("file")
        .to_owned();
    let link = temporary_link(state, base, realm, id, &name, state.clock.now());
    if let Some(o) = attachable.as_object_mut() {
        o.insert("TempDownloadUri".into(), json!(link));
    }
}

/// Adds a fresh `TempDownloadUri` to every Attachable with a file in `found`'s `Attachable`
/// list: a query's, a batch item's or a change-data-capture section's rows.
pub fn with_links(state: &SimState, base: &str, realm: &str, found: &mut Value) {
    if let Some(Value::Array(rows)) = found.get_mut("Attachable") {
        for row in rows {
            with_link(state, base, realm, row);
        }
    }
}

/// One `file_metadata_NN` / `file_content_NN` pair.
#[derive(Debug, Default)]
struct Pair {
    metadata: Option<Part>,
    content: Option<Part>,
}

/// The Attachable one pair asks for, or the fault QuickBooks answers for it.
fn prepare(suffix: &str, pair: Pair) -> Result<(Map<String, Value>, Upload), Fault> {
    let Some(content) = pair.content else {
        return Err(Fault::required(&format!("file_content_{suffix}")));
    };
    let mut metadata = match pair.metadata {
        None => Map::new(),
        Some(part) => match serde_json::from_slice::<Value>(&part.body) {
            Ok(Value::Object(mut o)) => match o.remove("Attachable") {
                Some(Value::Object(inner)) if o.is_empty() => inner,
                Some(other) => {
                    o.insert("Attachable".into(), other);
                    o
                }
                None => o,
            },
            Ok(_) | Err(_) => {
                return Err(Fault::validation(
                    "2010",
                    "Request has invalid or unsupported property",
                    format!("file_metadata_{suffix} is not a JSON Attachable object"),
                ));
            }
        },
    };
    let text = |o: &Map<String, Value>, k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let file_name = text(&metadata, "FileName")
        .or(content.file_name.clone())
        .ok_or_else(|| Fault::required("FileName"))?;
    let allowed = extension(&file_name).is_some_and(|e| ALLOWED_EXTENSIONS.contains(&e.as_str()));
    if !allowed {
        return Err(Fault::validation(
            "2010",
            "Request has invalid or unsupported property",
            format!(
                "Unsupported file type: {file_name}. Supported types are {}",
                ALLOWED_EXTENSIONS.join(", ")
            ),
        )
        .at("FileName"));
    }
    if content.body.len() > MAX_FILE_BYTES {
        return Err(Fault::business(format!(
            "The file {file_name} is {} bytes; files may be at most 100 MB.",
            content.body.len()
        ))
        .at("Size"));
    }
    let content_type = text(&metadata, "ContentType")
        .or(content.content_type.clone())
        .unwrap_or_default();
    metadata.insert("FileName".into(), json!(file_name));
    Ok((
        metadata,
        Upload {
            file_name,
            content_type,
            bytes: Bytes::from(content.body),
        },
    ))
}

async fn upload(
    State(state): State<Arc<SimState>>,
    Path(realm): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Write).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parts = match parse_multipart(content_type, &body) {
        Ok(parts) => parts,
        Err(detail) => {
            return pass.fault(Fault::validation(
                "2010",
                "Request has invalid or unsupported property",
                format!("The upload is not a valid multipart/form-data body: {detail}"),
            ));
        }
    };
    let mut pairs: BTreeMap<String, Pair> = BTreeMap::new();
    for part in parts {
        if let Some(suffix) = part.name.strip_prefix("file_metadata_").map(str::to_owned) {
            pairs.entry(suffix).or_default().metadata = Some(part);
        } else if let Some(suffix) = part.name.strip_prefix("file_content_").map(str::to_owned) {
            pairs.entry(suffix).or_default().content = Some(part);
        }
    }
    if pairs.is_empty() {
        return pass.fault(Fault::required("file_content_01"));
    }
    let now = state.clock.now();
    let base = state.base_url(&headers);
    let time = pass.time.clone();
    let mut changes = Vec::new();
    let response = write_once(&pass, &params, |books| {
        let mut answers = Vec::new();
        for (suffix, pair) in pairs {
            let attached = prepare(&suffix, pair)
                .and_then(|(metadata, upload)| books.attach_file(&realm, metadata, upload, now));
            match attached {
                Ok(mut attachable) => {
                    changes.push(Change {
                        entity: "Attachable",
                        id: fields::id(&attachable).to_string(),
                        operation: "Create",
                    });
                    with_link(&state, &base, &realm, &mut attachable);
                    answers.push(json!({ "Attachable": attachable }));
                }
                Err(fault) => answers.push(json!({ "Fault": fault.body(&time)["Fault"] })),
            }
        }
        Ok(json!({ "AttachableResponse": answers, "time": time })
            .to_string()
            .into_bytes())
    });
    webhooks::notify(&state, &realm, changes);
    response
}

async fn download(
    State(state): State<Arc<SimState>>,
    Path((realm, id)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let pass = match gate(&state, &realm, &headers, &params, CallKind::Read).await {
        Ok(pass) => pass,
        Err(response) => return response,
    };
    let link = {
        let books = pass.company.books.read();
        let Some(attachable_type) = crate::books::entity_types::by_name("Attachable") else {
            return pass.fault(Fault::not_found("Attachable", &id));
        };
        books
            .get_by_text(attachable_type, &id)
            .filter(|a| books.file(fields::id(a)).is_some())
            .map(|a| {
                let name = fields::text(a, "FileName").unwrap_or("file");
                temporary_link(
                    &state,
                    &state.base_url(&headers),
                    &realm,
                    fields::id(a),
                    name,
                    state.clock.now(),
                )
            })
    };
    match link {
        Some(link) => {
            let mut response = (StatusCode::OK, link).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain;charset=UTF-8"),
            );
            response
        }
        None => pass.fault(Fault::not_found("Attachable", &id)),
    }
}

/// An S3-shaped refusal, as Intuit's attachment storage answers one.
fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

async fn temporary_file(
    State(state): State<Arc<SimState>>,
    Path((realm, id, _name)): Path<(String, String, String)>,
    Query(params): Params,
) -> Response {
    let denied = || storage_error(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied");
    let (Some(date), Some(given), Ok(id)) = (
        params.get("X-Amz-Date"),
        params.get("X-Amz-Signature").and_then(|s| unhex(s)),
        id.parse::<u64>(),
    ) else {
        return denied();
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&state.attachment_key) else {
        return denied();
    };
    mac.update(format!("{realm}/{id}/{date}").as_bytes());
    if mac.verify_slice(&given).is_err() {
        return storage_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let Ok(issued) = NaiveDateTime::parse_from_str(date, DATE_FORMAT) else {
        return denied();
    };
    if state.clock.now() > issued.and_utc() + chrono::Duration::seconds(LINK_SECONDS) {
        return storage_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let Some(company) = state.company(&realm) else {
        return denied();
    };
    let found = {
        let books = company.books.read();
        let content_type = crate::books::entity_types::by_name("Attachable")
            .and_then(|t| books.get(t, id))
            .and_then(|a| fields::text(a, "ContentType").map(str::to_owned));
        books.file(id).cloned().map(|bytes| (bytes, content_type))
    };
    let Some((bytes, content_type)) = found else {
        return storage_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let content_type = content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_parse_with_crlf_lf_and_base64() {
        let crlf = b"--XyZ\r\nContent-Disposition: form-data; name=\"file_metadata_01\"\r\nContent-Type: application/json\r\n\r\n{\"FileName\":\"a.pdf\"}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file_content_01\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n\x00\x01\r\n--XyZ--\r\n";
        let parts = parse_multipart(Some("multipart/form-data; boundary=XyZ"), crlf).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].body, b"%PDF\r\n\x00\x01");
        assert_eq!(parts[1].file_name.as_deref(), Some("a.pdf"));
        let lf = b"\n--B\nContent-Disposition: form-data; name=\"file_content_01\"\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n\n--B--\n";
        let parts = parse_multipart(Some("multipart/form-data; boundary=\"B\""), lf).unwrap();
        assert_eq!(parts[0].body, b"hello");
        for (ct, body) in [
            (Some("application/json"), &b"{}"[..]),
            (Some("multipart/form-data"), b"--x\n"),
            (Some("multipart/form-data; boundary=x"), b"no delimiter"),
            (
                Some("multipart/form-data; boundary=x"),
                b"--x\nContent-Disposition: form-data; name=\"a\"\n\nbody",
            ),
            (None, b""),
        ] {
            assert!(parse_multipart(ct, body).is_err(), "{ct:?}");
        }
    }

    #[test]
    fn extensions_and_link_names() {
        assert_eq!(extension("Receipt.PDF").as_deref(), Some("pdf"));
        assert_eq!(extension("noext"), None);
        assert_eq!(link_name("my receipt (1).pdf"), "my_receipt__1_.pdf");
        assert_eq!(unhex(&hex(&[0, 255, 16])), Some(vec![0, 255, 16]));
    }
}
