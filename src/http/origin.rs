//! The client's address and user agent, for throttling and the audit trail.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::domain::RequestOrigin;

/// The peer's address, or, when the peer is a trusted proxy, the last address in
/// `X-Forwarded-For` that is not a trusted proxy (addresses left of it can be forged by the
/// client). Anything unparsable counts as the peer.
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in req.headers().get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for part in text.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip),
                Err(_) => return peer,
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !trusted_proxies.contains(ip))
        .unwrap_or(peer)
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
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:4000".parse().unwrap_or_else(|_| unreachable!()))
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2"))
            .to_http_request();
        assert_eq!(client_ip(&req, &[]), ip("10.0.0.1"));
        assert_eq!(
            client_ip(&req, &[ip("10.0.0.1"), ip("10.0.0.2")]),
            ip("203.0.113.9")
        );
        let junk = TestRequest::default()
            .peer_addr("10.0.0.1:4000".parse().unwrap_or_else(|_| unreachable!()))
            .insert_header(("x-forwarded-for", "not-an-ip"))
            .to_http_request();
        assert_eq!(client_ip(&junk, &[ip("10.0.0.1")]), ip("10.0.0.1"));
    }
}
