//! Files attached to QuickBooks entities: what QuickBooks accepts (its file types, 100 MB,
//! the entities that carry attachments), checked before anything is sent; the upload
//! (`POST upload`, a multipart form of `file_metadata_01` and `file_content_01`) and the
//! `download` link, through the same paced, authenticated, retrying client as every other
//! request (`api`); and fetching a link's bytes, only from a host this server trusts to be
//! QuickBooks' own (never an arbitrary URL an answer names).

use axum::body::Bytes;
use serde_json::{Value, json};
use url::Url;

use super::api::{ApiRequest, RawBody, parse_fault};
use super::operations::Answer;
use super::{QboError, QuickBooks};

/// QuickBooks' limit on one file.
pub const MAX_FILE_BYTES: usize = 100 * 1024 * 1024;

/// The file types QuickBooks accepts: each extension with the content types that name it
/// (the first is the one to suggest).
pub const FILE_TYPES: &[(&str, &[&str])] = &[
    ("ai", &["application/postscript"]),
    ("csv", &["text/csv"]),
    ("doc", &["application/msword"]),
    (
        "docx",
        &["application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
    ),
    ("eps", &["application/postscript"]),
    ("gif", &["image/gif"]),
    ("jpeg", &["image/jpeg", "image/jpg"]),
    ("jpg", &["image/jpeg", "image/jpg"]),
    ("ods", &["application/vnd.oasis.opendocument.spreadsheet"]),
    ("pdf", &["application/pdf"]),
    ("png", &["image/png"]),
    ("rtf", &["text/rtf", "application/rtf"]),
    ("tif", &["image/tif", "image/tiff"]),
    ("txt", &["text/plain"]),
    ("xls", &["application/vnd.ms-excel"]),
    (
        "xlsx",
        &["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
    ),
    ("xml", &["text/xml", "application/xml"]),
];

/// The entities a file may be attached to: transactions, and the customers, vendors,
/// employees and items they name.
pub const ATTACHABLE_TO: &[&str] = &[
    "Invoice",
    "Estimate",
    "SalesReceipt",
    "CreditMemo",
    "RefundReceipt",
    "Payment",
    "Bill",
    "BillPayment",
    "Purchase",
    "PurchaseOrder",
    "VendorCredit",
    "JournalEntry",
    "Deposit",
    "Transfer",
    "TimeActivity",
    "Customer",
    "Vendor",
    "Employee",
    "Item",
];

/// A file to attach to an entity.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub entity: String,
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub bytes: Bytes,
    pub note: Option<String>,
}

/// The extension of a file name, lower case.
pub fn extension(file_name: &str) -> Option<String> {
    let (_, ext) = file_name.rsplit_once('.')?;
    (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// Whether files may be attached to `entity`; the error says to which ones they may.
pub fn check_entity(entity: &str) -> Result<(), String> {
    if ATTACHABLE_TO.contains(&entity) {
        return Ok(());
    }
    let hint = ATTACHABLE_TO
        .iter()
        .find(|e| e.eq_ignore_ascii_case(entity))
        .map(|e| format!(" (names are case-sensitive: `{e}`)"))
        .unwrap_or_default();
    Err(format!(
        "Files cannot be attached to `{entity}`{hint}; QuickBooks takes attachments on {}.",
        ATTACHABLE_TO.join(", ")
    ))
}

/// Everything QuickBooks would refuse about a file, checked before it is sent: the entity,
/// the id, the name (an extension QuickBooks accepts; no path, quote or control character),
/// the content type (one that names that extension), the size (1 byte to 100 MB).
pub fn check_file(file: &NewFile) -> Result<(), String> {
    check_entity(&file.entity)?;
    let id_ok = !file.id.is_empty()
        && file.id.len() <= 32
        && file
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !id_ok {
        return Err(format!(
            "`{}` is not a QuickBooks entity id (like \"42\").",
            file.id
        ));
    }
    let name = file.file_name.trim();
    if name.is_empty()
        || name.len() > 200
        || name
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '/' | '\\'))
    {
        return Err(format!(
            "`{}` is not a usable file name: give a plain name of at most 200 characters, without quotes, slashes or control characters, like `receipt.pdf`.",
            file.file_name
        ));
    }
    let allowed = || {
        FILE_TYPES
            .iter()
            .map(|(e, _)| *e)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some((ext, types)) = extension(name)
        .and_then(|ext| FILE_TYPES.iter().find(|(e, _)| *e == ext))
        .map(|(e, t)| (*e, *t))
    else {
        return Err(format!(
            "QuickBooks does not take `{name}`: its file types are {}. Convert the file or name it with its real extension.",
            allowed()
        ));
    };
    let given = file
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !types.contains(&given.as_str()) {
        return Err(format!(
            "`content_type` `{}` does not match a .{ext} file; use `{}`.",
            file.content_type, types[0]
        ));
    }
    if file.bytes.is_empty() {
        return Err(
            "The file is empty (content_base64 decodes to 0 bytes); nothing was sent.".into(),
        );
    }
    if file.bytes.len() > MAX_FILE_BYTES {
        return Err(format!(
            "The file is {} bytes; QuickBooks takes files of at most 100 MB (104857600 bytes).",
            file.bytes.len()
        ));
    }
    Ok(())
}

/// The multipart form QuickBooks' upload takes: `file_metadata_01` (the Attachable, linked to
/// the entity) and `file_content_01` (the bytes), with a fresh boundary.
pub fn upload_form(file: &NewFile) -> RawBody {
    let boundary = format!("qbo-mcp-{}", uuid::Uuid::new_v4().simple());
    let mut metadata = json!({
        "AttachableRef": [{"EntityRef": {"type": file.entity, "value": file.id}}],
        "FileName": file.file_name,
        "ContentType": file.content_type,
    });
    if let Some(note) = file.note.as_deref().filter(|n| !n.trim().is_empty()) {
        metadata["Note"] = json!(note);
    }
    let mut body = Vec::with_capacity(file.bytes.len() + 1024);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file_metadata_01\"\r\nContent-Type: application/json\r\n\r\n{metadata}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file_content_01\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            file.file_name, file.content_type
        )
        .as_bytes(),
    );
    body.extend_from_slice(&file.bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    RawBody {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        bytes: Bytes::from(body),
    }
}

/// Whether a download link may be fetched: its host must be the QuickBooks API base this
/// server is configured with (the simulator serves its links there), or, against Intuit's own
/// API (`*.intuit.com`), one of Intuit's attachment buckets over HTTPS
/// (`intuit-qbo-….s3.amazonaws.com`, as Intuit's answers name them). Anything else is refused.
pub fn check_link(link: &str, api_base: &Url) -> Result<Url, String> {
    let url = Url::parse(link.trim())
        .map_err(|_| "QuickBooks answered a download link that is not a URL.".to_owned())?;
    let same_origin = url.scheme() == api_base.scheme()
        && url.host_str() == api_base.host_str()
        && url.port_or_known_default() == api_base.port_or_known_default();
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let intuit = api_base
        .host_str()
        .is_some_and(|h| h.ends_with(".intuit.com"))
        && url.scheme() == "https"
        && url.port_or_known_default() == Some(443)
        && host.starts_with("intuit-qbo-")
        && host.ends_with(".s3.amazonaws.com");
    if same_origin || intuit {
        Ok(url)
    } else {
        Err(format!(
            "QuickBooks answered a download link on `{host}`, which is not QuickBooks' own host; it was not fetched."
        ))
    }
}

impl QuickBooks {
    /// Uploads a file and links it to its entity; answers `{"Attachable": {…}}`. QuickBooks
    /// answers a refused file inside `AttachableResponse`, which becomes a fault here.
    pub async fn attach_file(&self, realm_id: &str, file: &NewFile) -> Result<Answer, QboError> {
        check_file(file).map_err(|message| QboError::InvalidArgument { message })?;
        let r = self
            .call(realm_id, ApiRequest::post_raw("upload", upload_form(file)))
            .await?;
        let first = &r.body["AttachableResponse"][0];
        if let Some(fault) = parse_fault(400, first) {
            return Err(QboError::Fault {
                fault: Box::new(fault),
                intuit_tid: r.intuit_tid,
            });
        }
        let Some(attachable) = first.get("Attachable").filter(|a| a.is_object()) else {
            return Err(QboError::Internal(anyhow::anyhow!(
                "the upload answer has no Attachable"
            )));
        };
        Ok(Answer {
            value: json!({ "Attachable": attachable }),
            intuit_tid: r.intuit_tid,
            request_id: r.request_id,
        })
    }

    /// The attachments of one entity (`AttachableRef.EntityRef`), at most 1000.
    pub async fn attachments_of(
        &self,
        realm_id: &str,
        entity: &str,
        id: &str,
    ) -> Result<Answer, QboError> {
        check_entity(entity).map_err(|message| QboError::InvalidArgument { message })?;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(QboError::InvalidArgument {
                message: format!("`{id}` is not a QuickBooks entity id (like \"42\")."),
            });
        }
        let query = format!(
            "SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Type = '{entity}' AND AttachableRef.EntityRef.value = '{id}' MAXRESULTS 1000"
        );
        self.query(realm_id, &query, false).await
    }

    /// A temporary link to an attachment's file (`GET download/{id}`, answered as text).
    pub async fn download_link(&self, realm_id: &str, id: &str) -> Result<String, QboError> {
        if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(QboError::InvalidArgument {
                message: format!("`{id}` is not an attachable id (like \"5000000000000012345\")."),
            });
        }
        let r = self
            .call(realm_id, ApiRequest::get(format!("download/{id}")))
            .await?;
        Ok(String::from_utf8_lossy(&r.raw).trim().to_owned())
    }

    /// The bytes behind a download link, at most `limit` of them (`None` when larger). The
    /// link's host is checked first ([`check_link`]); no token is sent with it and no
    /// redirect is followed.
    pub async fn fetch_file(&self, link: &str, limit: usize) -> Result<Option<Bytes>, QboError> {
        let url = check_link(link, &self.oauth.endpoints.api_base)
            .map_err(|message| QboError::InvalidArgument { message })?;
        let unavailable = |detail: String| QboError::Unavailable { detail };
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(super::intuit::without_url(e)))?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "the download link answered HTTP {} (links last 15 minutes; ask again for a fresh one)",
                response.status().as_u16()
            )));
        }
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(super::intuit::without_url(e)))?
        {
            if bytes.len() + chunk.len() > limit {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(Bytes::from(bytes)))
    }

    /// The configured QuickBooks API base (download links must live there).
    pub fn api_base(&self) -> &Url {
        &self.oauth.endpoints.api_base
    }
}

/// Rows of a query answer for `Attachable`.
pub fn attachables(answer: &Value) -> Vec<Value> {
    answer["QueryResponse"]["Attachable"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content_type: &str, size: usize) -> NewFile {
        NewFile {
            entity: "Invoice".into(),
            id: "95".into(),
            file_name: name.into(),
            content_type: content_type.into(),
            bytes: Bytes::from(vec![1u8; size]),
            note: None,
        }
    }

    #[test]
    fn files_are_checked_as_quickbooks_would() {
        assert!(check_file(&file("r.pdf", "application/pdf", 10)).is_ok());
        assert!(check_file(&file("R.JPG", "image/jpeg; charset=x", 10)).is_ok());
        for (f, says) in [
            (file("r.exe", "application/pdf", 10), "file types"),
            (file("r.pdf", "image/png", 10), "use `application/pdf`"),
            (file("r.pdf", "application/pdf", 0), "empty"),
            (
                file("r.txt", "text/plain", MAX_FILE_BYTES + 1),
                "at most 100 MB",
            ),
            (file("a/r.pdf", "application/pdf", 1), "file name"),
            (
                NewFile {
                    entity: "Account".into(),
                    ..file("r.pdf", "application/pdf", 1)
                },
                "cannot be attached",
            ),
        ] {
            let e = check_file(&f).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn links_must_be_on_quickbooks_hosts() {
        let sim = Url::parse("http://127.0.0.1:9111/").unwrap();
        assert!(check_link("http://127.0.0.1:9111/qbo-attachments/1/a", &sim).is_ok());
        assert!(check_link("http://127.0.0.1:9112/x", &sim).is_err());
        assert!(check_link("http://169.254.169.254/latest/meta-data", &sim).is_err());
        assert!(check_link("not a url", &sim).is_err());
        let intuit = Url::parse("https://quickbooks.api.intuit.com").unwrap();
        assert!(
            check_link(
                "https://intuit-qbo-prod-19.s3.amazonaws.com/1/attachments/a.pdf?X-Amz-Expires=900",
                &intuit
            )
            .is_ok()
        );
        assert!(check_link("http://intuit-qbo-prod-19.s3.amazonaws.com/a", &intuit).is_err());
        assert!(check_link("https://evil.s3.amazonaws.com/a", &intuit).is_err());
        assert!(check_link("https://intuit-qbo-prod-19.s3.amazonaws.com/a", &sim).is_err());
    }

    #[test]
    fn the_upload_form_has_both_parts() {
        let form = upload_form(&file("r.pdf", "application/pdf", 3));
        let text = String::from_utf8_lossy(&form.bytes);
        assert!(
            form.content_type
                .starts_with("multipart/form-data; boundary=")
        );
        assert!(text.contains("name=\"file_metadata_01\""));
        assert!(text.contains("\"EntityRef\":{\"type\":\"Invoice\",\"value\":\"95\"}"));
        assert!(text.contains("name=\"file_content_01\"; filename=\"r.pdf\""));
    }
}
