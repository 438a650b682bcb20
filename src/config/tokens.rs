//! `[tokens]`: token lifetimes, the default audience, the client cache.

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::domain::{Audience, Scope};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    pub access_token_ttl_secs: i64,
    pub refresh_idle_ttl_secs: i64,
    pub refresh_absolute_ttl_secs: i64,
    /// `aud` when neither the request nor the client names one; defaults to the issuer.
    pub default_audience: Option<String>,
    /// How long a client looked up by id is cached in process. A disabled client or rotated
    /// secret takes effect within this delay (at once for changes made through this process).
    pub client_cache_ttl_ms: u64,
    /// The scope an access token needs to call the introspection endpoint as a bearer.
    pub introspection_scope: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 600,
            refresh_idle_ttl_secs: 14 * 86_400,
            refresh_absolute_ttl_secs: 30 * 86_400,
            default_audience: None,
            client_cache_ttl_ms: 1000,
            introspection_scope: "latchkey.introspect".into(),
        }
    }
}

impl TokenSettings {
    /// Lifetimes, the default audience and the introspection scope.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        if let Some(a) = &self.default_audience {
            Audience::parse(a).map_err(|e| invalid(format!("tokens.default_audience: {e}")))?;
        }
        if Scope::parse(&self.introspection_scope)
            .map(|s| s.iter().count() != 1)
            .unwrap_or(true)
        {
            return Err(invalid(
                "tokens.introspection_scope must be a single scope token",
            ));
        }
        Ok(())
    }
}
