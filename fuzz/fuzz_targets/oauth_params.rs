//! The authorization server's parameters, from any bytes: a dynamic registration body
//! (`check_registration`), an authorization request's query and a token request's form
//! (percent-decoded into `AuthorizeParams` / `TokenRequest` as axum does, then the pure checks
//! on their values: resource, redirect URI, client ID URL), an `Authorization: Basic` header
//! (base64, then percent-decoding) and a metadata-fetch address. Never a panic, and what the
//! checks accept keeps their promises.
#![no_main]

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use qbo_mcp::oauth::checks::{
    AuthorizeParams, TokenRequest, address_allowed, basic_client_id, check_redirect_uri,
    check_registration, check_resource, parse_client_id_url, redirect_matches,
};
use serde_json::Value;
use url::Url;

const REGISTERED: &[&str] = &[
    "https://claude.ai/api/mcp/auth_callback",
    "http://127.0.0.1/callback",
    "http://localhost/cb?x=1",
    "cursor://anysphere.cursor-retrieval/oauth/callback",
];

fn redirect_uri(uri: &str) {
    let checked = check_redirect_uri(uri);
    if checked.is_ok() {
        let url = Url::parse(uri).expect("an accepted redirect URI is a URL");
        assert!(url.fragment().is_none(), "{uri:?}");
        assert!(
            !matches!(url.scheme(), "javascript" | "data" | "file" | "vbscript"),
            "{uri:?}"
        );
    }
    let registered: Vec<String> = REGISTERED.iter().map(|s| (*s).to_owned()).collect();
    if redirect_matches(&registered, uri) && !REGISTERED.contains(&uri) {
        // Only the loopback rule matches anything but an exact registered URI.
        let url = Url::parse(uri).expect("a matching redirect URI is a URL");
        assert_eq!(url.scheme(), "http", "{uri:?}");
        assert!(
            matches!(url.host_str(), Some("127.0.0.1" | "localhost")),
            "{uri:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // A registration body.
    if let Ok(Value::Object(metadata)) = serde_json::from_slice::<Value>(data)
        && let Ok(uris) = check_registration(&metadata)
    {
        assert!(!uris.is_empty() && uris.len() <= 20);
        for uri in &uris {
            assert!(check_redirect_uri(uri).is_ok(), "{uri:?}");
        }
    }
    // An authorization request's query string.
    if let Ok(params) = serde_urlencoded::from_bytes::<AuthorizeParams>(data) {
        let public = Url::parse("https://qbo.example.com").expect("a URL");
        if let Ok(resource) = check_resource(params.resource.as_deref(), &public) {
            assert_eq!(resource, "https://qbo.example.com/mcp");
        }
        if let Some(uri) = params.redirect_uri.as_deref() {
            redirect_uri(uri);
        }
        if let Some(id) = params.client_id.as_deref()
            && let Ok(url) = parse_client_id_url(id, false)
        {
            assert_eq!(url.scheme(), "https");
            assert_eq!(url.as_str(), id);
            assert!(url.fragment().is_none() && url.username().is_empty());
        }
    }
    // A token request's form body.
    let _ = serde_urlencoded::from_bytes::<TokenRequest>(data);
    // An Authorization header: as sent, and as the base64 of the input.
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.insert(header::AUTHORIZATION, value);
        let _ = basic_client_id(&headers);
    }
    let encoded = format!("Basic {}", STANDARD.encode(data));
    if let Ok(value) = HeaderValue::from_str(&encoded) {
        headers.insert(header::AUTHORIZATION, value);
        if let Some(id) = basic_client_id(&headers) {
            assert!(!id.is_empty());
        }
    }
    // An address a metadata document would be fetched from.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(ip) = text.trim().parse::<IpAddr>()
        && address_allowed(ip, false)
    {
        assert!(
            !ip.is_loopback() && !ip.is_unspecified() && !ip.is_multicast(),
            "{ip}"
        );
    }
});
