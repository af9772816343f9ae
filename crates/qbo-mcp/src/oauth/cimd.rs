//! Fetching Client ID Metadata Documents without becoming a proxy into the private network.
//!
//! A client ID that is an HTTPS URL names a JSON document describing the client; whoever
//! starts an authorization makes us fetch it. So the fetch refuses anything but public
//! addresses (checked after DNS resolution, and the connection is pinned to the checked
//! address so a second lookup cannot rebind it), follows no redirects, and is bounded in time
//! and size. Tests may allow plain HTTP to loopback (`QBO_MCP_TEST_ALLOW_LOOPBACK_CIMD`);
//! production never does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::Url;

/// The largest document we read.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a document could not be used; the sentence is shown to the client's developer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Whether a string is meant as a Client ID Metadata Document URL (rather than a registered id).
pub fn looks_like_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Checks a client ID URL against the CIMD rules before anything is fetched.
pub fn parse_client_id_url(raw: &str, allow_loopback: bool) -> Result<Url, FetchError> {
    let bad = |why: &str| FetchError(format!("The client_id `{raw}` {why}."));
    let url = Url::parse(raw).map_err(|_| bad("is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback => {}
        _ => return Err(bad("must be an https URL")),
    }
    if url.username() != "" || url.password().is_some() {
        return Err(bad("must not contain credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not contain a fragment"));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(bad("must have a path naming the document"));
    }
    // Dot segments are normalised away by the parser: the id must already be in that form.
    if url.as_str() != raw {
        return Err(bad(
            "is not in normal form (no dot segments, lower-case host)",
        ));
    }
    Ok(url)
}

/// Fetches and parses the document at `url`, refusing non-public addresses unless
/// `allow_loopback` (then loopback, and only loopback, is also allowed).
pub async fn fetch(url: &Url, allow_loopback: bool) -> Result<serde_json::Value, FetchError> {
    let host = url
        .host_str()
        .ok_or_else(|| FetchError("The client_id URL has no host.".into()))?
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| FetchError("The client_id URL has no port.".into()))?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match bare_host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(FETCH_TIMEOUT, tokio::net::lookup_host((bare_host, port)))
            .await
            .map_err(|_| FetchError(format!("Resolving {host} took too long.")))?
            .map_err(|_| FetchError(format!("{host} does not resolve.")))?
            .collect(),
    };
    let Some(first) = addresses.first().copied() else {
        return Err(FetchError(format!("{host} does not resolve.")));
    };
    // Every answer must be acceptable: a mixed answer is a rebinding attempt or a mistake.
    if let Some(refused) = addresses
        .iter()
        .find(|a| !address_allowed(a.ip(), allow_loopback))
    {
        tracing::warn!(%host, address = %refused.ip(), "refused to fetch a client metadata document from a non-public address");
        return Err(FetchError(format!(
            "{host} resolves to a private or reserved address; client metadata documents must be on the public internet."
        )));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .resolve(bare_host, first)
        .user_agent(concat!("qbo-mcp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError(format!("Cannot build an HTTP client: {e}.")))?;
    let response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| FetchError(format!("Fetching {url} failed: {}.", without_url(&e))))?;
    if !response.status().is_success() {
        return Err(FetchError(format!(
            "Fetching {url} answered HTTP {} (redirects are not followed).",
            response.status().as_u16()
        )));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(FetchError(format!(
            "The document at {url} is larger than {MAX_DOCUMENT_BYTES} bytes."
        )));
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError(format!("Reading {url} failed: {}.", without_url(&e))))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError(format!(
                "The document at {url} is larger than {MAX_DOCUMENT_BYTES} bytes."
            )));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| FetchError(format!("The document at {url} is not JSON: {e}.")))
}

fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url") {
        e.truncate(i);
    }
    e
}

/// Public unicast addresses only (plus loopback when tests ask for it).
pub fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => v4_public(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_public(v4) || (allow_loopback && v4.is_loopback()),
            None => v6_public(v6),
        },
    }
}

fn v4_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn v6_public(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 may reach private IPv4
        || (s[0] == 0x2002) // 6to4 may embed private IPv4
        || ip.to_ipv4().is_some()) // IPv4-compatible
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_allowed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(
                !address_allowed(private.parse().unwrap(), false),
                "{private}"
            );
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(address_allowed(public.parse().unwrap(), false), "{public}");
        }
        assert!(address_allowed("127.0.0.1".parse().unwrap(), true));
        assert!(address_allowed("::1".parse().unwrap(), true));
        assert!(!address_allowed("10.0.0.1".parse().unwrap(), true));
    }

    #[test]
    fn client_id_urls() {
        assert!(
            parse_client_id_url("https://claude.ai/oauth/mcp-oauth-client-metadata", false).is_ok()
        );
        for bad in [
            "http://claude.ai/x",
            "https://claude.ai/",
            "https://claude.ai",
            "https://u:p@claude.ai/x",
            "https://claude.ai/x#f",
            "https://claude.ai/a/../x",
            "ftp://claude.ai/x",
        ] {
            assert!(parse_client_id_url(bad, false).is_err(), "{bad}");
        }
        assert!(parse_client_id_url("http://127.0.0.1:9/x.json", true).is_ok());
    }
}
