//! Who sent a request when qbo-mcp runs behind reverse proxies (docs/deployment.md). The peer's
//! address is the client's unless the peer is in `QBO_MCP_TRUSTED_PROXIES`; then the one header
//! `QBO_MCP_CLIENT_IP_HEADER` names (`X-Forwarded-For`, or the standard `Forwarded` of RFC 7239)
//! is read from the right, skipping trusted proxies, and the first address no trusted proxy
//! claims is the client. The other header is never read: a proxy maintains one of them, and a
//! client could write the other. Sign-in limits and the audit log take their address from here.

use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;

use crate::config::{ClientIpHeader, Config};

/// The address the request came from, as far as trusted proxies vouch for it.
pub fn client_address(config: &Config, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = |ip: IpAddr| config.trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(peer) {
        return peer;
    }
    let hops = match config.client_ip_header {
        ClientIpHeader::XForwardedFor => x_forwarded_for(headers),
        ClientIpHeader::Forwarded => forwarded(headers),
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        // A hop nobody can check (`unknown`, an obfuscated name, garbage): the nearest
        // address a trusted proxy vouched for stands.
        let Some(ip) = hop else { break };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    client
}

/// Every `X-Forwarded-For` hop, left to right (`None` for one that is not an address).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(text) => text.split(',').map(|s| s.trim().parse().ok()).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// Every `Forwarded` element's `for=` node, left to right (`None` for an element without one,
/// or with one that is not an address).
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(text) => text.split(',').map(for_node).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// The address in one `Forwarded` element's `for=` parameter: `for=192.0.2.60`,
/// `for="192.0.2.60:4711"`, `for="[2001:db8::17]:4711"`, `For=...` (names are case-insensitive).
fn for_node(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })?;
    if let Some(rest) = value.strip_prefix('[') {
        let (v6, _) = rest.split_once(']')?;
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let host = match value.split_once(':') {
        // One colon: an IPv4 address with a port.
        Some((host, port)) if !port.contains(':') => host,
        _ => value,
    };
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn config(header: &str) -> Config {
        Config::load_from(
            None,
            [
                (
                    "QBO_MCP_TRUSTED_PROXIES".to_owned(),
                    "10.0.0.0/8".to_owned(),
                ),
                ("QBO_MCP_CLIENT_IP_HEADER".to_owned(), header.to_owned()),
            ],
        )
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_nodes() {
        assert_eq!(
            for_node("for=192.0.2.60;proto=https"),
            Some(ip("192.0.2.60"))
        );
        assert_eq!(
            for_node("proto=https; For=\"192.0.2.60:4711\""),
            Some(ip("192.0.2.60"))
        );
        assert_eq!(
            for_node("for=\"[2001:db8:cafe::17]:4711\""),
            Some(ip("2001:db8:cafe::17"))
        );
        assert_eq!(
            for_node("for=\"[2001:db8:cafe::17]\""),
            Some(ip("2001:db8:cafe::17"))
        );
        assert_eq!(for_node("for=unknown"), None);
        assert_eq!(for_node("for=_hidden"), None);
        assert_eq!(for_node("by=10.0.0.1"), None);
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let c = config("forwarded");
        let h = headers(&[("forwarded", "for=198.51.100.7")]);
        assert_eq!(client_address(&c, ip("203.0.113.1"), &h), ip("203.0.113.1"));
        assert_eq!(client_address(&c, ip("10.0.0.2"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let c = config("forwarded");
        // The client wrote the first element itself; the proxies appended the rest.
        let h = headers(&[
            ("forwarded", "for=1.2.3.4"),
            ("forwarded", "for=198.51.100.7;proto=https, for=10.0.0.9"),
        ]);
        assert_eq!(client_address(&c, ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // An unreadable hop stops the walk at the last trusted proxy.
        let h = headers(&[("forwarded", "for=1.2.3.4, for=unknown, for=10.0.0.9")]);
        assert_eq!(client_address(&c, ip("10.0.0.2"), &h), ip("10.0.0.9"));
    }

    #[test]
    fn the_header_not_chosen_is_ignored() {
        let h = headers(&[
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8, 198.51.100.7"),
        ]);
        let c = config("x-forwarded-for");
        assert_eq!(client_address(&c, ip("10.0.0.2"), &h), ip("198.51.100.7"));
        let c = config("forwarded");
        assert_eq!(client_address(&c, ip("10.0.0.2"), &h), ip("1.2.3.4"));
        let none = headers(&[]);
        assert_eq!(client_address(&c, ip("10.0.0.2"), &none), ip("10.0.0.2"));
    }
}
