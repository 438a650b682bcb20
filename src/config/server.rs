//! `[server]`: the public listener, the issuer, the proxies in front.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{host_of, invalid, is_loopback_host, ConfigError, Profile};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub bind: String,
    pub issuer: Option<String>,
    pub profile: Profile,
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Origins allowed to call the token endpoint from a browser (CORS); `*` allows any.
    pub cors_allowed_origins: Vec<String>,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` is believed: the client's IP
    /// (throttling, audit trail) is then the last address in it that is not a proxy's.
    pub trusted_proxies: Vec<String>,
    /// Set when the issuer was derived from `bind` rather than configured.
    #[serde(skip)]
    pub issuer_derived: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            issuer: None,
            profile: Profile::Development,
            max_body_bytes: 16 * 1024,
            workers: 0,
            cors_allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            issuer_derived: false,
        }
    }
}

impl ServerSettings {
    /// The listener, the issuer (derived from `bind` when not configured), the request body
    /// limit and the trusted proxies.
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        let bind: SocketAddr = self.bind.parse().map_err(|_| {
            invalid(format!(
                "server.bind must be host:port (an IP address and a port), got {:?}",
                self.bind
            ))
        })?;
        let issuer = match self.issuer.take() {
            Some(i) => i.trim_end_matches('/').to_owned(),
            None if self.profile == Profile::Production => {
                return Err(invalid(
                    "server.issuer (LATCHKEY_ISSUER) is required in the production profile",
                ))
            }
            None => {
                self.issuer_derived = true;
                format!("http://{bind}")
            }
        };
        let scheme_ok = issuer.starts_with("https://") || issuer.starts_with("http://");
        if !scheme_ok || issuer.contains('?') || issuer.contains('#') || issuer.len() > 500 {
            return Err(invalid(format!(
                "server.issuer must be an http(s) URL without query or fragment, got {issuer:?}"
            )));
        }
        if self.profile == Profile::Production {
            if let Some(rest) = issuer.strip_prefix("http://") {
                let authority = rest.split('/').next().unwrap_or_default();
                if !is_loopback_host(host_of(authority)) {
                    return Err(invalid(format!(
                        "server.issuer must be an https URL in the production profile (plain \
                         http is allowed only on the loopback interface), got {issuer:?}"
                    )));
                }
            }
        }
        self.issuer = Some(issuer);
        if self.max_body_bytes < 1024 || self.max_body_bytes > 1024 * 1024 {
            return Err(invalid(
                "server.max_body_bytes must be between 1024 and 1048576",
            ));
        }
        for p in &self.trusted_proxies {
            p.parse::<std::net::IpAddr>().map_err(|_| {
                invalid(format!(
                    "server.trusted_proxies: {p:?} is not an IP address"
                ))
            })?;
        }
        Ok(())
    }
}
