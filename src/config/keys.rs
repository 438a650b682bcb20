//! `[keys]`: the master key and the signing keys' lifecycle.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::duration::checked_secs;
use super::{invalid, ConfigError, Profile};
use crate::domain::SigningAlg;

#[derive(Debug, Clone)]
pub struct KeySettings {
    /// 32 random bytes, base64. Overrides `master_key_file`.
    pub master_key: Option<SecretString>,
    pub master_key_file: PathBuf,
    /// The algorithm access tokens are signed with.
    pub signing_alg: SigningAlg,
    /// The algorithms ID tokens may be signed with (a client's
    /// `id_token_signed_response_alg`): each has an active key from start-up on. RS256 has
    /// one in any case, as OpenID Connect requires.
    pub id_token_algs: Vec<SigningAlg>,
    /// How long a new key is published before it signs (scheduled rotation); JWKS caches
    /// (`Cache-Control: max-age`) are half of this, so a cached JWKS never misses a new key.
    pub publish_ahead: Duration,
    /// How often each instance re-reads the keys from the database (and runs the key
    /// lifecycle step).
    pub reload_interval: Duration,
    /// Age at which the active key is replaced by scheduled rotation; `None`: never.
    pub rotation_interval: Option<Duration>,
}

impl KeySettings {
    /// How long a JWKS response may be cached.
    pub fn jwks_max_age(&self) -> Duration {
        Duration::from_secs(jwks_max_age_secs(self.publish_ahead.as_secs()))
    }

    /// How long a retired key stays published: every token it signed has expired (the
    /// longest access-token lifetime, globally and per client), other instances have stopped
    /// signing with it (one reload interval), plus one JWKS cache lifetime as a margin.
    pub fn retired_grace(&self) -> Duration {
        checked_secs(crate::domain::MAX_ACCESS_TOKEN_TTL)
            .saturating_add(self.reload_interval)
            .saturating_add(self.jwks_max_age())
    }
}

/// Half the publish-ahead time, between a minute and a day.
fn jwks_max_age_secs(publish_ahead_secs: u64) -> u64 {
    (publish_ahead_secs / 2).clamp(60, 86_400)
}

/// `[keys]` as written; `validate()` makes it a `KeySettings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct KeysToml {
    master_key: Option<SecretString>,
    master_key_file: PathBuf,
    signing_alg: SigningAlg,
    id_token_algs: Vec<SigningAlg>,
    publish_ahead_secs: i64,
    reload_interval_secs: u64,
    /// 0 disables scheduled rotation.
    rotation_interval_secs: i64,
}

impl Default for KeysToml {
    fn default() -> Self {
        Self {
            master_key: None,
            master_key_file: PathBuf::from("keys/master.key"),
            signing_alg: SigningAlg::ES256,
            id_token_algs: vec![SigningAlg::RS256],
            publish_ahead_secs: 7200,
            reload_interval_secs: 10,
            rotation_interval_secs: 30 * 86_400,
        }
    }
}

impl KeysToml {
    /// The master key (required in production) and the signing keys' lifecycle.
    pub(super) fn validate(self, profile: Profile) -> Result<KeySettings, ConfigError> {
        if profile == Profile::Production && self.master_key.is_none() {
            return Err(invalid(
                "keys.master_key (LATCHKEY_MASTER_KEY) is required in the production profile",
            ));
        }
        if self.publish_ahead_secs < 0 || self.reload_interval_secs == 0 {
            return Err(invalid(
                "keys.publish_ahead_secs must be >= 0 and keys.reload_interval_secs >= 1",
            ));
        }
        let publish_ahead = self.publish_ahead_secs.unsigned_abs();
        let needed = jwks_max_age_secs(publish_ahead).saturating_add(self.reload_interval_secs);
        if publish_ahead < needed {
            return Err(invalid(format!(
                "keys.publish_ahead_secs must cover one JWKS cache lifetime plus one reload interval \
                 (at least {needed} s with these settings), so that every instance publishes a new key \
                 before any cached JWKS could lack it"
            )));
        }
        if self.rotation_interval_secs != 0
            && (self.rotation_interval_secs < 3600
                || self.rotation_interval_secs <= self.publish_ahead_secs)
        {
            return Err(invalid(
                "keys.rotation_interval_secs must be 0 (disabled), or at least 3600 and longer than keys.publish_ahead_secs",
            ));
        }
        Ok(KeySettings {
            master_key: self.master_key,
            master_key_file: self.master_key_file,
            signing_alg: self.signing_alg,
            id_token_algs: self.id_token_algs,
            publish_ahead: Duration::from_secs(publish_ahead),
            reload_interval: Duration::from_secs(self.reload_interval_secs),
            rotation_interval: (self.rotation_interval_secs != 0)
                .then(|| checked_secs(self.rotation_interval_secs)),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::Settings;
    use crate::domain::SigningAlg;
    use std::time::Duration;

    #[test]
    fn key_rotation_and_admin_token_settings_are_validated() {
        let s = Settings::load(None, env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.keys.rotation_interval,
            Some(Duration::from_secs(2_592_000))
        );
        assert!(s.admin.token.is_none());
        assert_eq!(
            s.keys.retired_grace(),
            Duration::from_secs(86_400 + 10 + 3600)
        );
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_KEY_ROTATION_INTERVAL_SECS", "0"),
                ("LATCHKEY_ADMIN_TOKEN", "0123456789abcdef0123456789abcdef"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.keys.rotation_interval, None);
        assert_eq!(
            Settings::load(None, env(&[]))
                .map(|s| s.keys.id_token_algs)
                .unwrap_or_default(),
            [SigningAlg::RS256],
            "RS256 by default"
        );
        assert_eq!(
            Settings::load(
                None,
                env(&[("LATCHKEY_KEYS_ID_TOKEN_ALGS", "ES256, EdDSA")])
            )
            .map(|s| s.keys.id_token_algs)
            .unwrap_or_default(),
            [SigningAlg::ES256, SigningAlg::EdDSA]
        );
        assert!(s.admin.token.is_some());
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
        let err = |pairs: &[(&str, &str)]| {
            Settings::load(None, env(pairs))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(&[("LATCHKEY_ADMIN_TOKEN", "short")]).contains("at least 32"));
        assert!(err(&[("LATCHKEY_KEYS_ID_TOKEN_ALGS", "RS256,HS256")]).contains("HS256"));
        assert!(err(&[("LATCHKEY_KEY_ROTATION_INTERVAL_SECS", "600")])
            .contains("keys.rotation_interval_secs"));
        assert!(err(&[
            ("LATCHKEY_KEY_ROTATION_INTERVAL_SECS", "7200"),
            ("LATCHKEY_KEY_PUBLISH_AHEAD_SECS", "7200"),
        ])
        .contains("keys.rotation_interval_secs"));
        assert!(err(&[("LATCHKEY_KEY_ROTATION_INTERVAL_SECS", "soon")]).contains("integer"));
        assert!(
            err(&[("LATCHKEY_KEY_PUBLISH_AHEAD_SECS", "30")]).contains("keys.publish_ahead_secs")
        );
        assert!(err(&[
            ("LATCHKEY_KEY_PUBLISH_AHEAD_SECS", "600"),
            ("LATCHKEY_KEY_RELOAD_INTERVAL_SECS", "400"),
        ])
        .contains("keys.publish_ahead_secs"));
    }
}
