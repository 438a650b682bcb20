//! `[tokens]`: token lifetimes, the default audience, the client cache.

use std::time::Duration;

use serde::Deserialize;

use super::duration::checked_secs;
use super::{invalid, ConfigError};
use crate::domain::{Audience, Scope, MAX_REFRESH_GRACE_SECS, MAX_REFRESH_GRACE_USES};

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub access_token_ttl: Duration,
    pub refresh_idle_ttl: Duration,
    pub refresh_absolute_ttl: Duration,
    /// The refresh grace window of clients that set none (`refresh_grace_secs`; zero: none,
    /// strict rotation) and the retries it admits (`refresh_grace_uses`).
    pub refresh_grace: Duration,
    pub refresh_grace_uses: i64,
    /// `aud` when neither the request nor the client names one; defaults to the issuer.
    pub default_audience: Option<Audience>,
    /// How long a client looked up by id is cached in process. A disabled client or rotated
    /// secret takes effect within this delay (at once for changes made through this process).
    pub client_cache_ttl: Duration,
    /// The scope an access token needs to call the introspection endpoint as a bearer.
    pub introspection_scope: String,
}

/// `[tokens]` as written; `validate()` makes it a `TokenSettings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TokensToml {
    access_token_ttl_secs: i64,
    refresh_idle_ttl_secs: i64,
    refresh_absolute_ttl_secs: i64,
    refresh_grace_secs: i64,
    refresh_grace_uses: i64,
    default_audience: Option<String>,
    client_cache_ttl_ms: u64,
    introspection_scope: String,
}

impl Default for TokensToml {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 600,
            refresh_idle_ttl_secs: 14 * 86_400,
            refresh_absolute_ttl_secs: 30 * 86_400,
            refresh_grace_secs: 0,
            refresh_grace_uses: 1,
            default_audience: None,
            client_cache_ttl_ms: 1000,
            introspection_scope: "latchkey.introspect".into(),
        }
    }
}

impl TokensToml {
    /// Lifetimes, the default audience and the introspection scope.
    pub(super) fn validate(self) -> Result<TokenSettings, ConfigError> {
        if !(30..=86_400).contains(&self.access_token_ttl_secs) {
            return Err(invalid(
                "tokens.access_token_ttl_secs must be between 30 and 86400",
            ));
        }
        if self.refresh_idle_ttl_secs < 60 || self.refresh_absolute_ttl_secs < 60 {
            return Err(invalid(
                "refresh token lifetimes must be at least 60 seconds",
            ));
        }
        if !(0..=MAX_REFRESH_GRACE_SECS).contains(&self.refresh_grace_secs) {
            return Err(invalid(format!(
                "tokens.refresh_grace_secs must be between 0 (no grace window) and \
                 {MAX_REFRESH_GRACE_SECS}"
            )));
        }
        if !(1..=MAX_REFRESH_GRACE_USES).contains(&self.refresh_grace_uses) {
            return Err(invalid(format!(
                "tokens.refresh_grace_uses must be between 1 and {MAX_REFRESH_GRACE_USES}"
            )));
        }
        let default_audience = self
            .default_audience
            .as_deref()
            .map(Audience::parse)
            .transpose()
            .map_err(|e| invalid(format!("tokens.default_audience: {e}")))?;
        if Scope::parse(&self.introspection_scope)
            .map(|s| s.iter().count() != 1)
            .unwrap_or(true)
        {
            return Err(invalid(
                "tokens.introspection_scope must be a single scope token",
            ));
        }
        Ok(TokenSettings {
            access_token_ttl: checked_secs(self.access_token_ttl_secs),
            refresh_idle_ttl: checked_secs(self.refresh_idle_ttl_secs),
            refresh_absolute_ttl: checked_secs(self.refresh_absolute_ttl_secs),
            refresh_grace: checked_secs(self.refresh_grace_secs),
            refresh_grace_uses: self.refresh_grace_uses,
            default_audience,
            client_cache_ttl: Duration::from_millis(self.client_cache_ttl_ms),
            introspection_scope: self.introspection_scope,
        })
    }
}
