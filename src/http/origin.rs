//! The client's address and user agent, for throttling and the audit trail.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::domain::RequestOrigin;

/// Whether an unreadable `X-Forwarded-For` entry was reported (once per process).
static WARNED_UNREADABLE: AtomicBool = AtomicBool::new(false);

/// One `X-Forwarded-For` entry as an address: `ip`, `ip:port`, `[v6]` or `[v6]:port` (some
/// proxies append the port).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// A stand-in address for an entry that is not an address (`unknown`, an obfuscated
/// identifier): a network of its own in the documentation range `2001:db8::/32`, derived
/// from the entry, so that it is throttled apart from the proxy and from other clients.
fn unreadable_hop(hop: &str) -> IpAddr {
    if !WARNED_UNREADABLE.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "an X-Forwarded-For entry from a trusted proxy is not an address; such clients \
             count as clients of their own (an address in 2001:db8::/32), not as the proxy \
             (reported once)"
        );
    }
    let digest = crate::crypto::sha256_hex(hop.as_bytes());
    let word = |i: usize| {
        digest
            .get(i * 4..i * 4 + 4)
            .and_then(|h| u16::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x0db8, word(0), word(1), 0, 0, 0, 1))
}

/// The peer's address, or, when the peer is a trusted proxy, the address the proxies saw:
/// `X-Forwarded-For` is read from the right (each proxy appends the address it received
/// from), trusted proxies are skipped, and the first other entry is the client. Entries left
/// of it were written by the client and are ignored. An entry may carry a port (`ip:port`,
/// `[v6]:port`); one that is not an address at all counts as a client of its own (see
/// `unreadable_hop`), never as the proxy, so that clients behind a proxy never share the
/// proxy's throttle bucket. IPv4-mapped IPv6 addresses count as IPv4 (a server on `[::]`
/// sees them).
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_canonical())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let mut hops: Vec<String> = Vec::new();
    for value in req.headers().get_all("x-forwarded-for") {
        let text = String::from_utf8_lossy(value.as_bytes());
        hops.extend(text.split(',').map(|h| h.trim().to_owned()));
    }
    for hop in hops.iter().rev().filter(|h| !h.is_empty()) {
        match parse_hop(hop).map(|ip| ip.to_canonical()) {
            Some(ip) if trusted_proxies.contains(&ip) => continue,
            Some(ip) => return ip,
            None => return unreadable_hop(hop),
        }
    }
    peer
}

pub fn origin(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> RequestOrigin {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    RequestOrigin::new(client_ip(req, trusted_proxies), user_agent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2"))
            .to_http_request();
        assert_eq!(client_ip(&req, &[]), ip("10.0.0.1"));
        assert_eq!(
            client_ip(&req, &[ip("10.0.0.1"), ip("10.0.0.2")]),
            ip("203.0.113.9")
        );
        // What the client wrote left of the real entry is ignored.
        let spoofed = TestRequest::default()
            .peer_addr("10.0.0.1:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "junk, 203.0.113.9"))
            .to_http_request();
        assert_eq!(client_ip(&spoofed, &[ip("10.0.0.1")]), ip("203.0.113.9"));
        let junk = TestRequest::default()
            .peer_addr("10.0.0.1:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "not-an-ip"))
            .to_http_request();
        assert_ne!(client_ip(&junk, &[ip("10.0.0.1")]), ip("10.0.0.1"));
        // A proxy seen through an IPv6 socket as ::ffff:10.0.0.1 is still the proxy.
        let mapped = TestRequest::default()
            .peer_addr("[::ffff:10.0.0.1]:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "198.51.100.4"))
            .to_http_request();
        assert_eq!(client_ip(&mapped, &[ip("10.0.0.1")]), ip("198.51.100.4"));
    }

    fn behind_proxy(forwarded: &str) -> IpAddr {
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", forwarded))
            .to_http_request();
        client_ip(&req, &[ip("10.0.0.1"), ip("10.0.0.2")])
    }

    #[test]
    fn forwarded_entries_with_ports_and_brackets_are_addresses() {
        assert_eq!(behind_proxy("203.0.113.9:51000"), ip("203.0.113.9"));
        assert_eq!(behind_proxy("[2001:db8:5::7]:443"), ip("2001:db8:5::7"));
        assert_eq!(behind_proxy("[2001:db8:5::7]"), ip("2001:db8:5::7"));
        assert_eq!(behind_proxy("2001:db8:5::7"), ip("2001:db8:5::7"));
        assert_eq!(
            behind_proxy("[::ffff:198.51.100.4]:80, 10.0.0.2:9000"),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn an_unreadable_entry_is_a_client_of_its_own_never_the_proxy() {
        let unknown = behind_proxy("unknown");
        assert_ne!(unknown, ip("10.0.0.1"));
        assert_eq!(unknown, behind_proxy("unknown"), "stable");
        assert_ne!(unknown, behind_proxy("_hidden"), "one per distinct entry");
        let IpAddr::V6(v6) = unknown else {
            panic!("{unknown}")
        };
        assert_eq!(v6.segments()[..2], [0x2001, 0x0db8]);
        // Distinct entries are distinct networks (IPv6 counts by /64).
        assert_ne!(
            crate::domain::client_network(unknown),
            crate::domain::client_network(behind_proxy("_hidden"))
        );
        // Not UTF-8: read lossily, still not the proxy.
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:4000".parse().unwrap())
            .insert_header((
                "x-forwarded-for",
                actix_web::http::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
            ))
            .to_http_request();
        assert_ne!(client_ip(&req, &[ip("10.0.0.1")]), ip("10.0.0.1"));
    }
}
