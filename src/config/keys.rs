//! `[keys]`: the master key and the signing keys' lifecycle.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::SigningAlg;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// 32 random bytes, base64. Overrides `master_key_file`.
    pub master_key: Option<SecretString>,
    pub master_key_file: PathBuf,
    pub signing_alg: SigningAlg,
    /// How long a new key is published before it signs (scheduled rotation); JWKS caches
    /// (`Cache-Control: max-age`) are half of this, so a cached JWKS never misses a new key.
    pub publish_ahead_secs: i64,
    /// How often each instance re-reads the keys from the database (and runs the key
    /// lifecycle step).
    pub reload_interval_secs: u64,
    /// Age at which the active key is replaced by scheduled rotation; 0 disables it.
    pub rotation_interval_secs: i64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            master_key: None,
            master_key_file: PathBuf::from("keys/master.key"),
            signing_alg: SigningAlg::ES256,
            publish_ahead_secs: 7200,
            reload_interval_secs: 10,
            rotation_interval_secs: 30 * 86_400,
        }
    }
}

impl KeySettings {
    pub fn jwks_max_age_secs(&self) -> i64 {
        (self.publish_ahead_secs / 2).clamp(60, 86_400)
    }

    /// How long a retired key stays published: every token it signed has expired (the
    /// longest access-token lifetime, globally and per client), other instances have stopped
    /// signing with it (one reload interval), plus one JWKS cache lifetime as a margin.
    pub fn retired_grace_secs(&self) -> i64 {
        crate::domain::MAX_ACCESS_TOKEN_TTL
            + i64::try_from(self.reload_interval_secs).unwrap_or(i64::MAX / 4)
            + self.jwks_max_age_secs()
    }
}
