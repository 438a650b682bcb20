//! `[redis]` and `[denylist]`: the shared store and the revocation denylist kept in it (or in
//! process).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::duration::millis;
use super::{invalid, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// When set, the denylist lives in Redis (shared by every instance); else in process.
    pub url: Option<SecretString>,
    /// Prefix of every key Latchkey writes, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Connect and response timeout; a Redis slower than this counts as down (fail closed).
    #[serde(rename = "timeout_ms", deserialize_with = "millis")]
    pub timeout: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "latchkey:".into(),
            timeout: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenylistSettings {
    /// How often each instance replays new revocation-log entries into its denylist.
    #[serde(rename = "sync_interval_ms", deserialize_with = "millis")]
    pub sync_interval: Duration,
    /// The embedded denylist refuses to answer (503) when the log could not be read for
    /// this long.
    #[serde(rename = "max_staleness_ms", deserialize_with = "millis")]
    pub max_staleness: Duration,
}

impl Default for DenylistSettings {
    fn default() -> Self {
        Self {
            sync_interval: Duration::from_millis(250),
            max_staleness: Duration::from_millis(5000),
        }
    }
}

impl RedisSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            let url = url.expose_secret();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(invalid(
                    "redis.url (LATCHKEY_REDIS_URL) must start with redis://",
                ));
            }
            if url.starts_with("rediss://") {
                return Err(invalid(
                    "redis.url: TLS (rediss://) is not supported by this build; use a TLS tunnel or a private network",
                ));
            }
        }
        if self.key_prefix.is_empty() || self.key_prefix.len() > 64 {
            return Err(invalid("redis.key_prefix must be 1 to 64 characters"));
        }
        if !(50..=30_000).contains(&self.timeout.as_millis()) {
            return Err(invalid("redis.timeout_ms must be between 50 and 30000"));
        }
        Ok(())
    }
}

impl DenylistSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=1000).contains(&self.sync_interval.as_millis()) {
            return Err(invalid(
                "denylist.sync_interval_ms must be between 10 and 1000 (a revocation must reach every instance within a second)",
            ));
        }
        if self.max_staleness < 2 * self.sync_interval {
            return Err(invalid(
                "denylist.max_staleness_ms must be at least twice denylist.sync_interval_ms",
            ));
        }
        Ok(())
    }
}
