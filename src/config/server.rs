//! `[server]`: the public listener, the issuer, the proxies in front.

use serde::Deserialize;

use super::Profile;

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
