//! Attachments end to end (docs/tools.md, "Attachments"): the real server against an external
//! simulator, tools called over `/mcp`. A PDF attached to an invoice is listed and comes back
//! byte for byte; files QuickBooks would refuse are refused without a request to it; a viewer
//! cannot attach; the audit entry names the file, never its content; and a download link on a
//! host that is not QuickBooks' is never fetched.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use qbo_mcp::quickbooks::attachments::NewFile;
use qbo_sim::Simulator;
use reqwest::Method;
use serde_json::{Value, json};

use crate::connections::{CRAIG, REALM, consent_as, simulator, stat};
use crate::harness::{Backend, TestDb, TestServer, client, personal_token};
use crate::on_both_backends;
use crate::people::{Browser, add_person, first_admin};
use crate::proposals::Assistant;
use crate::replicas::{connect_company, replica};
use crate::tools::{connected_through, forwarded, relayed};

on_both_backends!(
    a_pdf_attached_to_an_invoice_comes_back_byte_for_byte,
    files_quickbooks_would_refuse_are_refused_before_it_sees_them,
    a_download_link_off_quickbooks_host_is_never_fetched
);

struct Office {
    _db: TestDb,
    sim: Simulator,
    _server: TestServer,
    admin: Browser,
    bea: Assistant,
    vic: Assistant,
}

/// A company connected through a server using an external simulator; `bea` a bookkeeper and
/// `vic` a viewer, each with an assistant.
async fn office(backend: Backend) -> Office {
    let db = TestDb::fresh(backend).await;
    let sim = simulator(consent_as(CRAIG)).await;
    let server = replica(&db, &sim, None).await;
    let admin = first_admin(&server).await;
    connect_company(&admin).await;
    add_person(&admin, "bea", "bookkeeper").await;
    add_person(&admin, "vic", "viewer").await;
    let bea = Assistant::new(&server, &personal_token(&db, "bea").await);
    let vic = Assistant::new(&server, &personal_token(&db, "vic").await);
    Office {
        _db: db,
        sim,
        _server: server,
        admin,
        bea,
        vic,
    }
}

/// A small PDF with every byte value in it, so any mangling (text decoding, line ends) shows.
fn pdf() -> Vec<u8> {
    let mut bytes =
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\r\n".to_vec();
    bytes.extend((0..=255u8).cycle().take(4096));
    bytes.extend_from_slice(b"\n%%EOF\n");
    bytes
}

async fn first_invoice(who: &Assistant) -> String {
    let found = who
        .ok(
            "query",
            json!({"query": "SELECT * FROM Invoice ORDERBY Id", "limit": 1}),
        )
        .await;
    found["QueryResponse"]["Invoice"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_pdf_attached_to_an_invoice_comes_back_byte_for_byte(backend: Backend) {
    let o = office(backend).await;
    let invoice = first_invoice(&o.bea).await;
    let bytes = pdf();

    let r = o
        .bea
        .call(
            "attach_file",
            json!({"entity": "Invoice", "id": invoice, "file_name": "receipt.pdf",
                   "content_type": "application/pdf", "content_base64": STANDARD.encode(&bytes),
                   "note": "Paid by card"}),
        )
        .await;
    assert_eq!(r["isError"], false, "{r}");
    let attached = &r["structuredContent"]["Attachable"];
    let id = attached["Id"].as_str().unwrap().to_owned();
    assert_eq!(attached["Size"], bytes.len(), "{attached}");
    assert_eq!(attached["ContentType"], "application/pdf");
    assert_eq!(
        attached["AttachableRef"][0]["EntityRef"],
        json!({"type": "Invoice", "value": invoice})
    );
    let summary = r["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        summary,
        format!(
            "receipt.pdf (4.1 KB) attached to Invoice {invoice} in Craig's Design and Landscaping Services as attachable {id}."
        )
    );

    // A viewer lists it and reads it back, byte for byte.
    let listed = o
        .vic
        .ok(
            "list_attachments",
            json!({"entity": "Invoice", "id": invoice}),
        )
        .await;
    let rows = listed["attachables"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["Id"], id.as_str());
    assert_eq!(rows[0]["FileName"], "receipt.pdf");
    let got = o
        .vic
        .ok(
            "get_attachment",
            json!({"attachable_id": id, "include_content": true}),
        )
        .await;
    let back = STANDARD
        .decode(got["content_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(back, bytes, "the same bytes");
    let link = got["download_url"].as_str().unwrap();
    assert!(link.starts_with(&o.sim.base_url()), "{link}");
    let fetched = client().get(link).send().await.unwrap();
    assert_eq!(fetched.headers()["content-type"], "application/pdf");
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), bytes);
    // Without include_content: the metadata and the link only.
    let meta = o
        .vic
        .ok("get_attachment", json!({"attachable_id": id}))
        .await;
    assert!(meta.get("content_base64").is_none(), "{meta}");
    let other = o
        .vic
        .ok(
            "list_attachments",
            json!({"entity": "Invoice", "id": "999999"}),
        )
        .await;
    assert_eq!(other["attachables"], json!([]));

    // A 6 MB file fits the `/mcp` body limit (24 MiB by default; the rest of the server's
    // is 1 MiB). It is over 5 MB, so it is not returned inline: its link serves it whole.
    let large: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let big = o
        .bea
        .ok(
            "attach_file",
            json!({"entity": "Invoice", "id": invoice, "file_name": "ledger.txt",
                   "content_type": "text/plain", "content_base64": STANDARD.encode(&large)}),
        )
        .await;
    let big_id = big["Attachable"]["Id"].as_str().unwrap();
    let got = o
        .vic
        .ok(
            "get_attachment",
            json!({"attachable_id": big_id, "include_content": true}),
        )
        .await;
    assert!(
        got.get("content_base64").is_none(),
        "{}",
        got["content_note"]
    );
    assert!(
        got["content_note"]
            .as_str()
            .unwrap()
            .contains("larger than 5 MB"),
        "{got}"
    );
    let link = got["download_url"].as_str().unwrap().to_owned();
    let fetched = client()
        .get(&link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(fetched.to_vec(), large);

    // A viewer cannot attach.
    let before = stat(&o.sim, "api_requests");
    let refused = o
        .vic
        .error(
            "attach_file",
            json!({"entity": "Invoice", "id": invoice, "file_name": "x.pdf",
                   "content_type": "application/pdf", "content_base64": STANDARD.encode(b"%PDF")}),
        )
        .await;
    assert!(refused.contains("needs the bookkeeper role"), "{refused}");
    assert_eq!(stat(&o.sim, "api_requests"), before);

    // The audit entry names the file and its size, never its content.
    let audit: Value = o
        .admin
        .call(Method::GET, "/api/v1/audit?action=tool.call", None)
        .await
        .json()
        .await
        .unwrap();
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tool"] == "attach_file" && e["details"]["file_name"] == "receipt.pdf")
        .cloned()
        .unwrap_or_else(|| panic!("no attach_file entry: {audit}"));
    let d = &entry["details"];
    assert_eq!(d["entity"], "Invoice", "{entry}");
    assert_eq!(d["id"], invoice.as_str(), "{entry}");
    assert_eq!(d["file_name"], "receipt.pdf", "{entry}");
    assert_eq!(d["size"], bytes.len(), "{entry}");
    assert_eq!(d["attachable_id"], id.as_str(), "{entry}");
    let encoded = STANDARD.encode(&bytes);
    assert!(!entry.to_string().contains(&encoded[..40]), "{entry}");
}

async fn files_quickbooks_would_refuse_are_refused_before_it_sees_them(backend: Backend) {
    let o = office(backend).await;
    let invoice = first_invoice(&o.bea).await;
    let before = stat(&o.sim, "api_requests");
    let pdf64 = STANDARD.encode(pdf());
    for (args, says) in [
        (
            json!({"entity": "Invoice", "id": invoice, "file_name": "r.pdf", "content_type": "application/pdf", "content_base64": "not base64!"}),
            "not valid base64",
        ),
        (
            json!({"entity": "Invoice", "id": invoice, "file_name": "r.pdf", "content_type": "application/pdf", "content_base64": ""}),
            "empty",
        ),
        (
            json!({"entity": "Invoice", "id": invoice, "file_name": "setup.exe", "content_type": "application/pdf", "content_base64": pdf64}),
            "does not take `setup.exe`",
        ),
        (
            json!({"entity": "Invoice", "id": invoice, "file_name": "r.pdf", "content_type": "image/png", "content_base64": pdf64}),
            "use `application/pdf`",
        ),
        (
            json!({"entity": "Account", "id": "1", "file_name": "r.pdf", "content_type": "application/pdf", "content_base64": pdf64}),
            "cannot be attached to `Account`",
        ),
    ] {
        let text = o.bea.error("attach_file", args).await;
        assert!(text.contains(says), "{says}: {text}");
        assert!(text.contains("Nothing was sent"), "{text}");
    }
    assert_eq!(
        stat(&o.sim, "api_requests"),
        before,
        "no request reached QuickBooks"
    );

    // What only QuickBooks knows (the invoice does not exist) comes back as its fault.
    let text = o
        .bea
        .error(
            "attach_file",
            json!({"entity": "Invoice", "id": "999999", "file_name": "r.pdf", "content_type": "application/pdf", "content_base64": pdf64}),
        )
        .await;
    assert!(text.contains("code 2500"), "{text}");
}

/// `/mcp`'s own body limit (24 MiB by default), at its edge: a message of exactly that size is
/// read and answered; one byte more is refused with `413 body_too_large` before the token is
/// even checked, so an `attach_file` carrying a file of about 19 MB reaches neither the tool,
/// nor QuickBooks, nor the audit log — and the refusal says what the limit is for.
#[tokio::test]
async fn a_message_over_the_mcp_body_limit_is_refused_whole() {
    let o = office(Backend::Sqlite).await;
    let limit = 24 * 1024 * 1024;
    let token = personal_token(&o._db, "bea").await;
    let post = |body: Vec<u8>| {
        client()
            .post(format!("{}/mcp", o._server.url))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body)
            .send()
    };
    // A `ping` padded to exactly the limit.
    let frame =
        json!({"jsonrpc": "2.0", "id": 7, "method": "ping", "params": {"_meta": {"pad": ""}}})
            .to_string();
    let padded = frame.replace(
        r#""pad":"""#,
        &format!(r#""pad":"{}""#, "x".repeat(limit - frame.len())),
    );
    assert_eq!(padded.len(), limit);
    let r = post(padded.into_bytes()).await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["id"], 7, "{answer}");
    assert!(answer.get("error").is_none(), "{answer}");

    let invoice = first_invoice(&o.bea).await;
    let before = stat(&o.sim, "api_requests");
    let db = o._db.connect().await;
    let entries = || async {
        qbo_mcp::on_db!(&db, pool => {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_entries WHERE action = 'tool.call'")
                .fetch_one(pool)
                .await
                .unwrap()
        })
    };
    let audited = entries().await;
    let file: Vec<u8> = (0..19_000_000u32).map(|i| (i % 251) as u8).collect();
    let call = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {
        "name": "attach_file",
        "arguments": {"entity": "Invoice", "id": invoice, "file_name": "scan.pdf",
                      "content_type": "application/pdf", "content_base64": STANDARD.encode(&file)}}})
    .to_string();
    assert!(call.len() > limit);
    let r = post(call.into_bytes()).await.unwrap();
    assert_eq!(r.status(), 413);
    let refusal: Value = r.json().await.unwrap();
    assert_eq!(refusal["error"]["code"], "body_too_large", "{refusal}");
    let says = refusal["error"]["message"].as_str().unwrap();
    assert!(
        says.contains("25165824 bytes")
            && says.contains("attach_file can be at most about 18.8 MB"),
        "{says}"
    );
    assert_eq!(
        stat(&o.sim, "api_requests"),
        before,
        "nothing reached QuickBooks"
    );
    assert_eq!(
        entries().await,
        audited,
        "a refused message is not a tool call"
    );
    // The same message one byte over, without a token: refused for its size all the same.
    let r = client()
        .post(format!("{}/mcp", o._server.url))
        .header("content-type", "application/json")
        .body(vec![b' '; limit + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

/// A proxy in front of the simulator that answers every `download/{id}` with a link on
/// `elsewhere` (a server that counts what reaches it).
async fn lying_proxy(sim: String, elsewhere: String) -> String {
    let forward = move |request: axum::extract::Request| {
        let (sim, elsewhere) = (sim.clone(), elsewhere.clone());
        async move {
            let (parts, body) = request.into_parts();
            if parts.uri.path().contains("/download/") {
                return axum::http::Response::builder()
                    .status(200)
                    .header("content-type", "text/plain")
                    .body(axum::body::Body::from(format!(
                        "{elsewhere}/latest/meta-data?X-Amz-Expires=900"
                    )))
                    .unwrap();
            }
            let body = axum::body::to_bytes(body, 1 << 22).await.unwrap();
            let url = format!("{sim}{}", parts.uri);
            relayed(forwarded(&parts, body, &url).send().await.unwrap()).await
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(forward)).await });
    at
}

async fn a_download_link_off_quickbooks_host_is_never_fetched(backend: Backend) {
    let test_db = TestDb::fresh(backend).await;
    let sim = simulator(consent_as(CRAIG)).await;
    // The host a lying answer points at: it must never be asked anything.
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere = format!("http://{}", listener.local_addr().unwrap());
    let trap = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            "secret"
        }
    });
    tokio::spawn(async move { axum::serve(listener, trap).await });
    let proxy = lying_proxy(sim.base_url(), elsewhere).await;
    let qb = connected_through(&test_db, &proxy).await;

    let file = NewFile {
        entity: "Invoice".into(),
        id: "1".into(),
        file_name: "r.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: pdf().into(),
        note: None,
    };
    let attached = qb.attach_file(REALM, &file).await.unwrap();
    let id = attached.value["Attachable"]["Id"].as_str().unwrap();
    let link = qb.download_link(REALM, id).await.unwrap();
    let e = qb.fetch_file(&link, 1 << 20).await.unwrap_err();
    assert!(e.to_string().contains("not QuickBooks' own host"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the other host saw nothing");
}

on_both_backends!(attachable_calls_written_for_intuits_server_run_on_the_intuit_profile);

/// Intuit's attachable tools, called exactly as Intuit's server takes them, on the `intuit`
/// profile in demo mode (the simulator mounted in the server): every result matches its
/// tool's output schema.
async fn attachable_calls_written_for_intuits_server_run_on_the_intuit_profile(backend: Backend) {
    let (_db, server, root) = crate::tools::books(backend, "intuit").await;
    let c = crate::tools::Checked::new(&server, &root).await;
    let (_, invoices) = c
        .ok(
            "search_invoices",
            json!({"params": {"criteria": [], "limit": 1}}),
        )
        .await;
    let invoice = invoices["QueryResponse"]["Invoice"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = pdf();
    let target = json!({"entity_ref_type": "Invoice", "entity_ref_value": invoice});
    let (s, made) = c
        .ok(
            "create_attachable",
            json!({"params": {"file_name": "receipt.pdf", "base64_content": STANDARD.encode(&bytes), "attachable_ref": target}}),
        )
        .await;
    let id = made["Attachable"]["Id"].as_str().unwrap().to_owned();
    assert_eq!(
        made["Attachable"]["ContentType"], "application/pdf",
        "{made}"
    );
    assert!(s.contains("receipt.pdf"), "{s}");
    let (_, note) = c
        .ok(
            "create_attachable",
            json!({"params": {"file_name": "call.txt", "note": "Call back Monday", "attachable_ref": target}}),
        )
        .await;
    let note_id = note["Attachable"]["Id"].as_str().unwrap().to_owned();
    let (s, listed) = c
        .ok(
            "get_entity_attachments",
            json!({"params": {"entity_type": "Invoice", "entity_id": invoice, "max_scan": 500}}),
        )
        .await;
    assert_eq!(
        listed["attachables"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    assert!(s.contains("2 attachments"), "{s}");
    let (_, got) = c.ok("get_attachable", json!({"params": {"id": id}})).await;
    assert!(got["download_url"].is_string(), "{got}");
    for call in [
        json!({"params": {"attachable_id": id, "inline": true}}),
        json!({"params": {"id": id}}),
    ] {
        let tool = if call["params"].get("inline").is_some() {
            "download_attachment"
        } else {
            "download_attachable"
        };
        let (_, file) = c.ok(tool, call).await;
        let back = STANDARD
            .decode(file["content_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(back, bytes, "{tool}: the same bytes");
    }
    let (s, note_read) = c
        .ok("get_attachable", json!({"params": {"id": note_id}}))
        .await;
    assert!(s.contains("a note without a file"), "{s}");
    assert!(note_read.get("download_url").is_none(), "{note_read}");
    let (_, found) = c
        .ok(
            "search_attachables",
            json!({"params": {"file_name_like": "receipt", "limit": 10}}),
        )
        .await;
    assert_eq!(
        found["QueryResponse"]["Attachable"][0]["Id"],
        id.as_str(),
        "{found}"
    );
    let (_, updated) = c
        .ok(
            "update_attachable",
            json!({"params": {"id": id, "sync_token": "0", "note": "Scanned"}}),
        )
        .await;
    assert_eq!(updated["Attachable"]["Note"], "Scanned", "{updated}");
    let refused = c
        .refused(
            "upload_attachable",
            json!({"params": {"filePath": "/tmp/receipt.pdf", "entityType": "Invoice", "entityId": invoice}}),
        )
        .await;
    assert!(refused.contains("base64_content"), "{refused}");
    let (s, _) = c
        .ok("delete_attachable", json!({"params": {"id": note_id}}))
        .await;
    assert!(s.contains("deleted"), "{s}");
    // This server's own attachment tools are in the profile too.
    c.ok(
        "list_attachments",
        json!({"entity": "Invoice", "id": invoice}),
    )
    .await;
}
