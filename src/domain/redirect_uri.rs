//! Redirect URIs: what may be registered (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §4.1) and
//! when a requested one matches a registered one.

use super::{ClientKind, ValidationError};

/// Who a redirect goes to: a native or browser app (public client) may use loopback redirects
/// with any port (RFC 8252 §7.3); a server-side web app may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectUse {
    Native,
    Web,
}

/// Schemes no redirect may use: they run code or read local files in the browser.
const FORBIDDEN_SCHEMES: [&str; 4] = ["javascript", "data", "vbscript", "file"];

/// Whether the URL's host is a loopback address (`127.0.0.1`, `[::1]`, `localhost`).
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks a URI a client registers as a (post-logout) redirect: absolute, no fragment, not
/// too long; https, or plain http on loopback, or (public clients: native apps, RFC 8252 §7.1)
/// a private-use scheme such as `com.example.app:/callback`.
pub fn check_redirect_uri(
    field: &'static str,
    uri: &str,
    kind: ClientKind,
) -> Result<(), ValidationError> {
    let bad = |why: &str| ValidationError::new(field, format!("{uri:?} {why}"));
    if uri.is_empty() || uri.len() > 2000 {
        return Err(bad("must be 1 to 2000 characters"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces"));
    }
    if uri.contains('#') {
        return Err(bad("must not have a fragment"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| bad("must be an absolute URI"))?;
    match parsed.scheme() {
        "https" => {
            if parsed.host().is_none() {
                return Err(bad("must name a host"));
            }
            Ok(())
        }
        "http" if is_loopback_host(&parsed) => Ok(()),
        "http" => Err(bad("must be https (plain http only on loopback)")),
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => Err(bad("uses a forbidden scheme")),
        _ if kind == ClientKind::Public => Ok(()),
        _ => Err(bad(
            "must be https (private-use schemes are for public clients: native apps)",
        )),
    }
}

/// Whether `requested` matches the registered `registered`: character for character, or, for
/// a native app, both loopback IP literals (`127.0.0.1` or `[::1]`, RFC 8252 §7.3) differing
/// only in the port.
pub fn matches_redirect_uri(registered: &str, requested: &str, usage: RedirectUse) -> bool {
    if registered == requested {
        return true;
    }
    if usage != RedirectUse::Native {
        return false;
    }
    let (Ok(reg), Ok(req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let ip_loopback = |u: &url::Url| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    if reg.scheme() != "http" || req.scheme() != "http" || !ip_loopback(&reg) {
        return false;
    }
    // Everything but the port must be the same, as written: compare the text with the port
    // taken out of both, so that no normalisation makes two different URIs equal.
    strip_port(registered) == strip_port(requested)
        && reg.host() == req.host()
        && !requested.contains('#')
}

/// `http://host:port/rest` without `:port`; `None` if it is not of that form.
fn strip_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return None;
    }
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => {
            let port = &authority[i + 1..];
            if !port.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            &authority[..i]
        }
        _ => authority,
    };
    Some(format!("http://{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_accepts_https_loopback_and_native_schemes() {
        let ok = |u, k| check_redirect_uri("redirect_uris", u, k).is_ok();
        assert!(ok("https://app.example.com/cb", ClientKind::Confidential));
        assert!(ok("http://127.0.0.1:5173/callback", ClientKind::Public));
        assert!(ok("http://[::1]/callback", ClientKind::Public));
        assert!(ok("http://localhost:3000/cb", ClientKind::Confidential));
        assert!(ok("com.example.app:/oauth2redirect", ClientKind::Public));
        assert!(!ok(
            "com.example.app:/oauth2redirect",
            ClientKind::Confidential
        ));
        assert!(!ok("http://app.example.com/cb", ClientKind::Public));
        assert!(!ok("https://app.example.com/cb#x", ClientKind::Public));
        assert!(!ok("/relative", ClientKind::Public));
        assert!(!ok("javascript:alert(1)", ClientKind::Public));
        assert!(!ok("data:text/html,x", ClientKind::Public));
        assert!(!ok("https://app.example.com/a b", ClientKind::Public));
    }

    #[test]
    fn matching_is_exact_except_the_loopback_port_of_native_apps() {
        let reg = "https://app.example.com/cb";
        let web = RedirectUse::Web;
        assert!(matches_redirect_uri(reg, reg, web));
        for other in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/CB",
            "https://evil.example.com/cb",
            "https://app.example.com:443/cb",
            "https://app.example.com/cb#",
        ] {
            assert!(!matches_redirect_uri(reg, other, web), "{other}");
            assert!(
                !matches_redirect_uri(reg, other, RedirectUse::Native),
                "{other}"
            );
        }
        let native = RedirectUse::Native;
        let lo = "http://127.0.0.1/callback";
        assert!(matches_redirect_uri(
            lo,
            "http://127.0.0.1:51004/callback",
            native
        ));
        assert!(matches_redirect_uri(
            "http://127.0.0.1:5173/callback",
            "http://127.0.0.1:9/callback",
            native
        ));
        assert!(matches_redirect_uri(
            "http://[::1]/cb",
            "http://[::1]:8080/cb",
            native
        ));
        assert!(!matches_redirect_uri(
            lo,
            "http://127.0.0.1:51004/callback",
            web
        ));
        for other in [
            "http://127.0.0.1:51004/other",
            "http://127.0.0.1:51004/callback?x",
            "http://127.0.0.2:51004/callback",
            "http://[::1]:51004/callback",
            "http://127.0.0.1:51004@evil.example/callback",
            "http://127.0.0.1:x/callback",
            "https://127.0.0.1:51004/callback",
        ] {
            assert!(!matches_redirect_uri(lo, other, native), "{other}");
        }
        // `localhost` is not an IP literal: exact match only (RFC 8252 §8.3).
        assert!(!matches_redirect_uri(
            "http://localhost/cb",
            "http://localhost:8080/cb",
            native
        ));
    }
}
