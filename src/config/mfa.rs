//! `[mfa]`: second factors (issue 15).
//!
//! ```toml
//! [mfa]
//! reauth_within = "5m"   # LATCHKEY_MFA_REAUTH_WITHIN: adding or removing a factor needs a sign-in this recent
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaSettings {
    /// Adding or removing a factor needs a sign-in at most this old (else the password or a
    /// current second factor in the request).
    pub reauth_within: Duration,
}

impl Default for MfaSettings {
    fn default() -> Self {
        Self {
            reauth_within: Duration::from_secs(300),
        }
    }
}

/// `[mfa]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct MfaToml {
    #[serde(deserialize_with = "super::sessions::human_duration")]
    reauth_within: Duration,
}

impl Default for MfaToml {
    fn default() -> Self {
        Self {
            reauth_within: MfaSettings::default().reauth_within,
        }
    }
}

impl MfaToml {
    pub(super) fn validate(self) -> Result<MfaSettings, ConfigError> {
        let secs = self.reauth_within.as_secs();
        if !(30..=86_400).contains(&secs) {
            return Err(invalid(
                "mfa.reauth_within must be between 30 seconds and one day",
            ));
        }
        Ok(MfaSettings {
            reauth_within: self.reauth_within,
        })
    }
}
