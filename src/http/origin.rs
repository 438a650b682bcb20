//! The client's address and user agent, for throttling and the audit trail.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::domain::RequestOrigin;

/// The peer's address, or, when the peer is a trusted proxy, the address the proxies saw:
/// `X-Forwarded-For` is read from the right (each proxy appends the address it received
/// from), trusted proxies are skipped, and the first other entry is the client. Entries left
/// of it were written by the client and are ignored; if that entry is not an address, the
/// peer is used. IPv4-mapped IPv6 addresses count as IPv4 (a server on `[::]` sees them).
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_canonical())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in req.headers().get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        hops.extend(text.split(',').map(str::trim));
    }
    for hop in hops.into_iter().rev() {
        match hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if trusted_proxies.contains(&ip) => continue,
            Ok(ip) => return ip,
            Err(_) => return peer,
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
        assert_eq!(client_ip(&junk, &[ip("10.0.0.1")]), ip("10.0.0.1"));
        // A proxy seen through an IPv6 socket as ::ffff:10.0.0.1 is still the proxy.
        let mapped = TestRequest::default()
            .peer_addr("[::ffff:10.0.0.1]:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "198.51.100.4"))
            .to_http_request();
        assert_eq!(client_ip(&mapped, &[ip("10.0.0.1")]), ip("198.51.100.4"));
    }
}
