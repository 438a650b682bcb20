//! `[redis]` and `[denylist]`: the shared store and the revocation denylist kept in it (or in
//! process).

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// When set, the denylist lives in Redis (shared by every instance); else in process.
    pub url: Option<SecretString>,
    /// Prefix of every key Latchkey writes, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Connect and response timeout; a Redis slower than this counts as down (fail closed).
    pub timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "latchkey:".into(),
            timeout_ms: 500,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenylistSettings {
    /// How often each instance replays new revocation-log entries into its denylist.
    pub sync_interval_ms: u64,
    /// The embedded denylist refuses to answer (503) when the log could not be read for
    /// this long.
    pub max_staleness_ms: u64,
}

impl Default for DenylistSettings {
    fn default() -> Self {
        Self {
            sync_interval_ms: 250,
            max_staleness_ms: 5000,
        }
    }
}
