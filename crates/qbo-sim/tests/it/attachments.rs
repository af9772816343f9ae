//! Attachments as Intuit serves them: a multipart upload of `file_metadata_NN` /
//! `file_content_NN` pairs answered one `AttachableResponse` element per pair (a fault per bad
//! pair), the `download` link that serves the exact bytes for 15 minutes, and the Attachable
//! as an entity (read, note-only create, sparse update, delete, query by the entity it is
//! attached to). What QuickBooks refuses — a file type outside its list, a file over 100 MB,
//! a reference to nothing, a malformed body — is refused with a QuickBooks-shaped fault.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn path(rest: &str) -> String {
    format!("/v3/company/{REALM}/{rest}")
}

/// A multipart body: `(name, filename, content type, bytes)` per part, CRLF line ends.
fn form(parts: &[(&str, Option<&str>, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "sim-test-boundary-42";
    let mut body = Vec::new();
    for (name, file_name, content_type, bytes) in parts {
        let file = file_name
            .map(|f| format!("; filename=\"{f}\""))
            .unwrap_or_default();
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(sim: &Sim, token: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = sim
        .http
        .post(sim.url(&path("upload?minorversion=75")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn metadata(entity: &str, id: &str, file_name: &str, content_type: &str) -> Vec<u8> {
    json!({"AttachableRef": [{"EntityRef": {"type": entity, "value": id}, "IncludeOnSend": false}],
           "FileName": file_name, "ContentType": content_type})
    .to_string()
    .into_bytes()
}

fn pdf() -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.extend((0..=255u8).cycle().take(3000));
    bytes
}

/// Uploads `bytes` as `receipt.pdf`, attached to invoice 1: one metadata/content pair.
async fn upload_receipt(sim: &Sim, token: &str, bytes: &[u8]) -> (StatusCode, Value) {
    let meta = metadata("Invoice", "1", "receipt.pdf", "application/pdf");
    let (content_type, body) = form(&[
        ("file_metadata_01", None, "application/json", &meta),
        (
            "file_content_01",
            Some("receipt.pdf"),
            "application/pdf",
            bytes,
        ),
    ]);
    upload(sim, token, &content_type, body).await
}

#[tokio::test]
async fn an_uploaded_file_is_listed_queried_and_downloaded_byte_for_byte() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let bytes = pdf();
    let (status, answer) = upload_receipt(&sim, &tokens.access, &bytes).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let made = &answer["AttachableResponse"][0]["Attachable"];
    let id = made["Id"].as_str().expect("an id").to_owned();
    assert_eq!(made["Size"], bytes.len());
    assert_eq!(made["FileName"], "receipt.pdf");
    assert_eq!(made["SyncToken"], "0");
    assert_eq!(
        made["FileAccessUri"],
        format!("/v3/company/{REALM}/download/{id}")
    );
    assert!(made["MetaData"]["CreateTime"].is_string());
    assert!(answer["time"].is_string());
    let temp = made["TempDownloadUri"].as_str().unwrap();
    assert!(temp.contains("X-Amz-Expires=900"), "{temp}");

    // Read by id and queried by the entity it is attached to (any case of the type).
    let (status, read) = sim
        .get(&tokens.access, &path(&format!("attachable/{id}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert!(read["Attachable"]["TempDownloadUri"].is_string());
    let (_, found) = sim
        .query(
            &tokens.access,
            "select * from Attachable where AttachableRef.EntityRef.Type = 'invoice' and AttachableRef.EntityRef.value = '1'",
        )
        .await;
    let rows = found["QueryResponse"]["Attachable"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{found}");
    assert_eq!(rows[0]["Id"], id.as_str());
    let (_, none) = sim
        .query(
            &tokens.access,
            "select * from Attachable where AttachableRef.EntityRef.Type = 'Invoice' and AttachableRef.EntityRef.value = '2'",
        )
        .await;
    assert_eq!(none["QueryResponse"], json!({}), "{none}");

    // `download` answers a link as text; the link serves the bytes without a token.
    let response = sim
        .http
        .get(sim.url(&path(&format!("download/{id}"))))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let link = response.text().await.unwrap();
    assert!(link.starts_with(&sim.base), "{link}");
    let file = sim.http.get(&link).send().await.unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "application/pdf");
    assert_eq!(file.bytes().await.unwrap().to_vec(), bytes);
    // A forged signature is refused as S3 refuses it.
    let forged = link.replace("X-Amz-Signature=", "X-Amz-Signature=00");
    let r = sim.http.get(&forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // After 15 minutes the link has expired; a new download answers a fresh one.
    let r = sim
        .http
        .post(sim.url("/_sim/advance-clock"))
        .json(&json!({"seconds": 901}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = sim.http.get(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Request has expired"));

    // Sparse update of the metadata, then delete: the bytes go with it.
    let (status, updated) = sim
        .post(
            &tokens.access,
            &path("attachable"),
            &json!({"Id": id, "SyncToken": "0", "sparse": true, "Note": "Scanned"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["Attachable"]["Note"], "Scanned");
    assert_eq!(updated["Attachable"]["Size"], bytes.len(), "kept");
    let (status, deleted) = sim
        .post(
            &tokens.access,
            &path("attachable?operation=delete"),
            &json!({"Id": id, "SyncToken": "1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let (status, gone) = sim
        .get(&tokens.access, &path(&format!("download/{id}")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&gone), "610");
}

/// Batch and change-data-capture answers carry an Attachable as a read or query does: with a
/// fresh `TempDownloadUri` that serves the bytes (a note, with no file, has none).
#[tokio::test]
async fn batch_and_change_data_capture_answers_carry_the_download_link() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let bytes = pdf();
    let (status, answer) = upload_receipt(&sim, &tokens.access, &bytes).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["AttachableResponse"][0]["Attachable"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let serves_the_file = |link: Value| {
        let sim = &sim;
        let bytes = &bytes;
        async move {
            let link = link.as_str().unwrap_or_else(|| panic!("no link: {link}"));
            let file = sim.http.get(link).send().await.unwrap();
            assert_eq!(file.status(), StatusCode::OK, "{link}");
            assert_eq!(&file.bytes().await.unwrap().to_vec(), bytes);
        }
    };

    let (status, batch) = sim
        .post(
            &tokens.access,
            &path("batch"),
            &json!({"BatchItemRequest": [
                {"bId": "q", "Query": "select * from Attachable"},
                {"bId": "u", "operation": "update",
                 "Attachable": {"Id": id, "SyncToken": "0", "sparse": true, "Note": "Scanned"}},
                {"bId": "n", "operation": "create", "Attachable": {"Note": "Call the customer"}},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    let items = batch["BatchItemResponse"].as_array().unwrap();
    let found = &items[0]["QueryResponse"]["Attachable"];
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{batch}");
    serves_the_file(found[0]["TempDownloadUri"].clone()).await;
    assert_eq!(items[1]["Attachable"]["Note"], "Scanned", "{batch}");
    serves_the_file(items[1]["Attachable"]["TempDownloadUri"].clone()).await;
    assert!(items[2]["Attachable"]["Id"].is_string(), "{batch}");
    assert!(
        items[2]["Attachable"].get("TempDownloadUri").is_none(),
        "{batch}"
    );

    let since = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let (status, cdc) = sim
        .get(
            &tokens.access,
            &path(&format!("cdc?entities=Attachable&changedSince={since}")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cdc}");
    let changed = cdc["CDCResponse"][0]["QueryResponse"][0]["Attachable"]
        .as_array()
        .unwrap_or_else(|| panic!("no Attachable section: {cdc}"));
    let with_file: Vec<&Value> = changed.iter().filter(|a| a["Id"] == id.as_str()).collect();
    assert_eq!(with_file.len(), 1, "{cdc}");
    serves_the_file(with_file[0]["TempDownloadUri"].clone()).await;
    assert!(
        changed
            .iter()
            .filter(|a| a["Id"] != id.as_str())
            .all(|a| a.get("TempDownloadUri").is_none()),
        "{cdc}"
    );
}

#[tokio::test]
async fn a_note_is_an_attachable_without_a_file() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let (status, note) = sim
        .post(
            &tokens.access,
            &path("attachable"),
            &json!({"Note": "Call the customer", "AttachableRef": [{"EntityRef": {"type": "Customer", "value": "1"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{note}");
    assert!(note["Attachable"].get("TempDownloadUri").is_none());
    let (status, refused) = sim
        .post(
            &tokens.access,
            &path("attachable"),
            &json!({"Note": "x", "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": "99999"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fault_code(&refused), "2500");
    let (_, refused) = sim
        .post(
            &tokens.access,
            &path("attachable"),
            &json!({"Category": "Document"}),
        )
        .await;
    assert_eq!(fault_code(&refused), "2020", "a file name or a note");
}

#[tokio::test]
async fn what_quickbooks_refuses_in_an_upload_is_refused_per_pair() {
    let sim = Sim::start().await;
    let tokens = sim.connect().await;
    let good = metadata("Invoice", "1", "ok.png", "image/png");
    let exe = metadata("Invoice", "1", "setup.exe", "application/octet-stream");
    let nowhere = metadata("Bill", "99999", "bill.pdf", "application/pdf");
    let (content_type, body) = form(&[
        ("file_metadata_01", None, "application/json", &good),
        ("file_content_01", Some("ok.png"), "image/png", b"\x89PNG"),
        ("file_metadata_02", None, "application/json", &exe),
        (
            "file_content_02",
            Some("setup.exe"),
            "application/octet-stream",
            b"MZ",
        ),
        ("file_metadata_03", None, "application/json", &nowhere),
        (
            "file_content_03",
            Some("bill.pdf"),
            "application/pdf",
            b"%PDF",
        ),
        ("file_metadata_04", None, "application/json", b"{not json"),
        ("file_content_04", Some("x.pdf"), "application/pdf", b"%PDF"),
    ]);
    let (status, answer) = upload(&sim, &tokens.access, &content_type, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let items = answer["AttachableResponse"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{answer}");
    assert!(items[0]["Attachable"]["Id"].is_string(), "{answer}");
    let code = |i: usize| items[i]["Fault"]["Error"][0]["code"].as_str().unwrap_or("");
    assert_eq!(code(1), "2010", "{answer}");
    assert_eq!(items[1]["Fault"]["Error"][0]["element"], "FileName");
    assert_eq!(code(2), "2500", "{answer}");
    assert_eq!(code(3), "2010", "{answer}");
    assert_eq!(items[1]["Fault"]["type"], "ValidationFault");

    // A file over 100 MB.
    let big = vec![b'a'; 100 * 1024 * 1024 + 1];
    let meta = metadata("Invoice", "1", "big.txt", "text/plain");
    let (content_type, body) = form(&[
        ("file_metadata_01", None, "application/json", &meta),
        ("file_content_01", Some("big.txt"), "text/plain", &big),
    ]);
    drop(big);
    let (_, answer) = upload(&sim, &tokens.access, &content_type, body).await;
    assert_eq!(
        answer["AttachableResponse"][0]["Fault"]["Error"][0]["code"],
        "6000",
        "{}",
        answer.to_string().chars().take(400).collect::<String>()
    );

    // A body that is not multipart at all, or has no closing boundary.
    for (content_type, body) in [
        ("application/json", b"{}".to_vec()),
        (
            "multipart/form-data; boundary=abc",
            b"--abc\r\nContent-Disposition: form-data; name=\"file_content_01\"\r\n\r\nx".to_vec(),
        ),
    ] {
        let (status, answer) = upload(&sim, &tokens.access, content_type, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(fault_code(&answer), "2010", "{answer}");
    }
}
