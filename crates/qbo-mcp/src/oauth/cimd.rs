//! Fetching Client ID Metadata Documents without becoming a proxy into the private network.
//!
//! A client ID that is an HTTPS URL names a JSON document describing the client; whoever
//! starts an authorization makes us fetch it. So the fetch refuses anything but public
//! addresses (checked after DNS resolution, and the connection is pinned to the checked
//! address so a second lookup cannot rebind it), goes through no proxy (a proxy would resolve
//! the name again, unchecked), follows no redirects, is bounded in time and size, and is
//! rate-limited per address for people not signed in. Tests may allow plain HTTP to loopback
//! (`QBO_MCP_TEST_ALLOW_LOOPBACK_CIMD`); production never does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::LazyLock;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use url::Url;

/// The largest document we read.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Fetches one client address may cause per hour before signing in (documents already cached
/// cost nothing). A real client needs one; more is someone using us to probe the internet.
const ANONYMOUS_FETCHES_PER_HOUR: u32 = 30;
/// Addresses remembered by the limiter before idle ones are dropped.
const LIMITER_ADDRESSES: usize = 10_000;

static ANONYMOUS_FETCHES: LazyLock<DefaultKeyedRateLimiter<IpAddr>> = LazyLock::new(|| {
    let per_hour = NonZeroU32::new(ANONYMOUS_FETCHES_PER_HOUR).unwrap_or(NonZeroU32::MIN);
    DefaultKeyedRateLimiter::keyed(Quota::per_hour(per_hour))
});

/// Takes one anonymous fetch from `address`'s budget; `false`: the budget is spent (per
/// process: each replica counts its own, which bounds the amplification all the same).
pub fn anonymous_fetch_allowed(address: IpAddr) -> bool {
    if ANONYMOUS_FETCHES.len() > LIMITER_ADDRESSES {
        ANONYMOUS_FETCHES.retain_recent();
    }
    ANONYMOUS_FETCHES.check_key(&address).is_ok()
}

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
        .no_proxy()
        .https_only(!allow_loopback)
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
    if allow_loopback && ip.is_loopback() {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => v4_public(v4),
        IpAddr::V6(v6) => v6_public(v6),
    }
}

/// IPv4 ranges that are not public unicast (IANA special-purpose registry, RFC 6890).
const V4_REFUSED: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network", with the unspecified address
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 shared address space (CGNAT)
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local, cloud metadata
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 documentation
    (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay anycast
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 documentation
    (0xcb00_7100, 24), // 203.0.113.0/24 documentation
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, with the broadcast address
];

fn v4_public(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !V4_REFUSED.iter().any(|&(net, prefix)| {
        let mask = u32::MAX << (32 - prefix);
        bits & mask == net
    })
}

/// Only global unicast (2000::/3) is public. Outside it lie loopback, unspecified,
/// IPv4-mapped (::ffff:0:0/96) and -compatible addresses, NAT64 (64:ff9b::/96 and
/// 64:ff9b:1::/48), discard-only, unique-local (fc00::/7), link-local (fe80::/10) and multicast.
const V6_GLOBAL_UNICAST: (u128, u32) = (0x2000 << 112, 3);

/// Ranges inside global unicast that are still not public, or embed an IPv4 address a
/// gateway would forward to.
const V6_REFUSED: &[(u128, u32)] = &[
    (0x2001 << 112, 23),     // IETF protocol assignments, with Teredo 2001::/32
    (0x2001_0db8 << 96, 32), // documentation
    (0x2002 << 112, 16),     // 6to4 embeds an IPv4 address
    (0x3fff << 112, 20),     // documentation (RFC 9637)
];

fn v6_within(bits: u128, (net, prefix): (u128, u32)) -> bool {
    let mask = u128::MAX << (128 - prefix);
    bits & mask == net
}

fn v6_public(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    v6_within(bits, V6_GLOBAL_UNICAST) && !V6_REFUSED.iter().any(|&r| v6_within(bits, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refused range, both sides of each boundary: (address, allowed).
    const TABLE: &[(&str, bool)] = &[
        ("0.0.0.0", false),
        ("0.255.255.255", false),
        ("1.0.0.0", true),
        ("8.8.8.8", true),
        ("9.255.255.255", true),
        ("10.0.0.0", false),
        ("10.255.255.255", false),
        ("11.0.0.0", true),
        ("100.63.255.255", true),
        ("100.64.0.0", false),
        ("100.127.255.255", false),
        ("100.128.0.0", true),
        ("126.255.255.255", true),
        ("127.0.0.0", false),
        ("127.0.0.1", false),
        ("127.255.255.255", false),
        ("128.0.0.0", true),
        ("169.253.255.255", true),
        ("169.254.0.0", false),
        ("169.254.169.254", false),
        ("169.254.255.255", false),
        ("169.255.0.0", true),
        ("172.15.255.255", true),
        ("172.16.0.0", false),
        ("172.31.255.255", false),
        ("172.32.0.0", true),
        ("191.255.255.255", true),
        ("192.0.0.0", false),
        ("192.0.0.255", false),
        ("192.0.1.0", true),
        ("192.0.1.255", true),
        ("192.0.2.0", false),
        ("192.0.2.255", false),
        ("192.0.3.0", true),
        ("192.88.98.255", true),
        ("192.88.99.0", false),
        ("192.88.99.255", false),
        ("192.88.100.0", true),
        ("192.167.255.255", true),
        ("192.168.0.0", false),
        ("192.168.255.255", false),
        ("192.169.0.0", true),
        ("198.17.255.255", true),
        ("198.18.0.0", false),
        ("198.19.255.255", false),
        ("198.20.0.0", true),
        ("198.51.99.255", true),
        ("198.51.100.0", false),
        ("198.51.100.255", false),
        ("198.51.101.0", true),
        ("203.0.112.255", true),
        ("203.0.113.0", false),
        ("203.0.113.255", false),
        ("203.0.114.0", true),
        ("223.255.255.255", true),
        ("224.0.0.0", false),
        ("239.255.255.255", false),
        ("240.0.0.0", false),
        ("255.255.255.254", false),
        ("255.255.255.255", false),
        // IPv6: unspecified, loopback, IPv4-compatible and -mapped (even of public IPv4).
        ("::", false),
        ("::1", false),
        ("::8.8.8.8", false),
        ("::ffff:0.0.0.0", false),
        ("::ffff:8.8.8.8", false),
        ("::ffff:10.0.0.1", false),
        ("::ffff:127.0.0.1", false),
        ("::ffff:169.254.169.254", false),
        // NAT64, both prefixes, first and last addresses and their neighbours.
        ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("64:ff9b::", false),
        ("64:ff9b::a00:1", false),
        ("64:ff9b::808:808", false),
        ("64:ff9b::ffff:ffff", false),
        ("64:ff9b::1:0:0", false),
        ("64:ff9b:1::", false),
        ("64:ff9b:1:a00:1::", false),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", false),
        ("64:ff9b:2::", false),
        ("100::", false),
        // Global unicast starts at 2000::/3 and ends before 4000::.
        ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("2000::", true),
        ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        // Teredo 2001::/32 inside the IETF block 2001::/23.
        ("2001::", false),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
        ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("2001:1::1", false),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("2001:200::", true),
        ("2001:4860:4860::8888", true),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("2001:db8::", false),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("2001:db9::", true),
        ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        // 6to4 embeds IPv4.
        ("2002::", false),
        ("2002:a00:1::", false),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("2003::", true),
        ("2606:4700:4700::1111", true),
        ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("3fff::", false),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("3fff:1000::", true),
        ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("4000::", false),
        // Unique-local fc00::/7, link-local fe80::/10, site-local, multicast.
        ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("fc00::", false),
        ("fd12:3456::1", false),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("fe80::", false),
        ("fe80::1", false),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("fec0::1", false),
        ("ff02::1", false),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    ];

    #[test]
    fn only_public_addresses_are_allowed() {
        for &(address, allowed) in TABLE {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(address_allowed(ip, false), allowed, "{address}");
        }
    }

    #[test]
    fn tests_may_allow_loopback_and_only_loopback() {
        assert!(address_allowed("127.0.0.1".parse().unwrap(), true));
        assert!(address_allowed("127.1.2.3".parse().unwrap(), true));
        assert!(address_allowed("::1".parse().unwrap(), true));
        for private in ["10.0.0.1", "169.254.169.254", "fd00::1", "::ffff:10.0.0.1"] {
            assert!(
                !address_allowed(private.parse().unwrap(), true),
                "{private}"
            );
        }
    }

    mod embeddings {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

        use proptest::prelude::*;

        use super::super::{V4_REFUSED, address_allowed};

        /// Any IPv4 address in a refused range.
        fn non_public_v4() -> impl Strategy<Value = Ipv4Addr> {
            (0..V4_REFUSED.len(), any::<u32>()).prop_map(|(i, noise)| {
                let (net, prefix) = V4_REFUSED[i];
                let host = noise & !(u32::MAX << (32 - prefix));
                Ipv4Addr::from(net | host)
            })
        }

        fn v6(bits: u128) -> IpAddr {
            IpAddr::V6(Ipv6Addr::from(bits))
        }

        proptest! {
            #[test]
            fn embedded_non_public_ipv4_is_refused(
                v4 in non_public_v4(),
                server in any::<u32>(),
                flags in any::<u16>(),
                port in any::<u16>(),
                suffix in any::<u64>(),
            ) {
                let a = u128::from(u32::from(v4));
                let o = v4.octets();
                // RFC 6052 /48: octets 1-2 at bits 48-63, bits 64-71 zero, octets 3-4 after.
                let nat64_local = (0x0064_ff9b_0001_u128 << 80)
                    | (u128::from(o[0]) << 72)
                    | (u128::from(o[1]) << 64)
                    | (u128::from(o[2]) << 48)
                    | (u128::from(o[3]) << 40);
                let forms = [
                    ("IPv4-mapped", (0xffff_u128 << 32) | a),
                    ("IPv4-compatible", a),
                    ("NAT64 64:ff9b::/96", (0x0064_ff9b_u128 << 96) | a),
                    ("NAT64 64:ff9b:1::/48", nat64_local),
                    // Teredo: the server's IPv4, flags, the obfuscated port and client IPv4.
                    ("Teredo client", (0x2001_0000_u128 << 96)
                        | (u128::from(server) << 64)
                        | (u128::from(flags) << 48)
                        | (u128::from(!port) << 32)
                        | u128::from(!u32::from(v4))),
                    ("Teredo server", (0x2001_0000_u128 << 96) | (a << 64) | u128::from(suffix)),
                    ("6to4", (0x2002_u128 << 112) | (a << 80) | u128::from(suffix)),
                ];
                for (form, bits) in forms {
                    let ip = v6(bits);
                    prop_assert!(!address_allowed(ip, false), "{form} {ip} embeds {v4}");
                }
                prop_assert!(!address_allowed(IpAddr::V4(v4), false), "{v4}");
            }
        }
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
