//! Client ID Metadata Documents: any bytes, read as the fetch reads them (JSON), validated by
//! `client_from_document` for the URL the document names (checked first, as
//! `clients::find` does) or for a fixed one. Never a panic, and an accepted client has only
//! redirect URIs that registration would accept, at most 20, and a name of at most 100
//! characters or else its client ID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qbo_mcp::oauth::checks::{
    check_redirect_uri, client_from_document, looks_like_document_url, parse_client_id_url,
    redirect_matches,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(document) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let named = document
        .get("client_id")
        .and_then(Value::as_str)
        .filter(|id| looks_like_document_url(id))
        .filter(|id| parse_client_id_url(id, false).is_ok());
    for client_id in ["https://client.example/oauth/metadata.json"]
        .into_iter()
        .chain(named)
    {
        let Ok(client) = client_from_document(client_id, &document) else {
            continue;
        };
        assert_eq!(client.client_id, client_id);
        assert!(!client.redirect_uris.is_empty() && client.redirect_uris.len() <= 20);
        for uri in &client.redirect_uris {
            assert!(check_redirect_uri(uri).is_ok(), "{uri:?}");
            assert!(redirect_matches(&client.redirect_uris, uri), "{uri:?}");
        }
        // The name the consent page shows: the document's own, trimmed to 100 characters, or
        // else the client ID itself (however long the URL is).
        let name_chars = client.client_name.chars().count();
        assert!(
            (name_chars > 0 && name_chars <= 100) || client.client_name == client_id,
            "{:?}",
            client.client_name
        );
        assert!(document.get("client_secret").is_none());
    }
});
