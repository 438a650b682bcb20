//! `[server]`: the public listener, the issuer, the proxies in front.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use url::Url;

use super::{host_of, invalid, is_loopback_host, ConfigError, Profile};

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub issuer: Issuer,
    /// Set when the issuer was derived from `bind` rather than configured.
    pub issuer_derived: bool,
    pub profile: Profile,
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// On SIGTERM or SIGINT: how long requests in flight may take to finish, and then how
    /// long queued mail may take to be delivered, before the process exits.
    pub shutdown_timeout: std::time::Duration,
    /// Origins allowed to call the token endpoint from a browser (CORS); `*` allows any.
    pub cors_allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed: the client's IP (throttling,
    /// audit trail) is then the last address in it that is not a proxy's.
    pub trusted_proxies: Vec<IpAddr>,
}

/// The issuer identifier (`iss`): an http(s) URL without query, fragment or trailing slash.
/// Relying parties compare it character for character, so the text is kept as configured
/// beside the parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    text: String,
    url: Url,
}

impl Issuer {
    pub(super) fn parse(text: &str) -> Option<Self> {
        let url = Url::parse(text).ok()?;
        Some(Self {
            text: text.to_owned(),
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `[server]` as written; `validate()` makes it a `ServerSettings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ServerToml {
    bind: String,
    issuer: Option<String>,
    profile: Profile,
    max_body_bytes: usize,
    workers: usize,
    #[serde(deserialize_with = "super::sessions::human_duration")]
    shutdown_timeout: std::time::Duration,
    cors_allowed_origins: Vec<String>,
    trusted_proxies: Vec<String>,
}

impl Default for ServerToml {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            issuer: None,
            profile: Profile::Development,
            max_body_bytes: 16 * 1024,
            workers: 0,
            shutdown_timeout: std::time::Duration::from_secs(30),
            cors_allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl ServerToml {
    pub(super) fn validate(self) -> Result<ServerSettings, ConfigError> {
        let bind: SocketAddr = self.bind.parse().map_err(|_| {
            invalid(format!(
                "server.bind must be host:port (an IP address and a port), got {:?}",
                self.bind
            ))
        })?;
        let mut issuer_derived = false;
        let issuer = match self.issuer {
            Some(i) => i.trim_end_matches('/').to_owned(),
            None if self.profile == Profile::Production => {
                return Err(invalid(
                    "server.issuer (LATCHKEY_ISSUER) is required in the production profile",
                ))
            }
            None => {
                issuer_derived = true;
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
        let Some(issuer) = Issuer::parse(&issuer) else {
            return Err(invalid(format!(
                "server.issuer must be an http(s) URL without query or fragment, got {issuer:?}"
            )));
        };
        if self.max_body_bytes < 1024 || self.max_body_bytes > 1024 * 1024 {
            return Err(invalid(
                "server.max_body_bytes must be between 1024 and 1048576",
            ));
        }
        if !(1..=600).contains(&self.shutdown_timeout.as_secs()) {
            return Err(invalid(
                "server.shutdown_timeout must be between 1 second and 10 minutes",
            ));
        }
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpAddr>().map_err(|_| {
                    invalid(format!(
                        "server.trusted_proxies: {p:?} is not an IP address"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ServerSettings {
            bind,
            issuer,
            issuer_derived,
            profile: self.profile,
            max_body_bytes: self.max_body_bytes,
            workers: self.workers,
            shutdown_timeout: self.shutdown_timeout,
            cors_allowed_origins: self.cors_allowed_origins,
            trusted_proxies,
        })
    }
}
