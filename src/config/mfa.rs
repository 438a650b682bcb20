//! `[mfa]`: second factors (issue 15).
//!
//! ```toml
//! [mfa]
//! reauth_within = "5m"   # LATCHKEY_MFA_REAUTH_WITHIN: adding or removing a factor needs a sign-in this recent
//! passkeys = true        # LATCHKEY_MFA_PASSKEYS: WebAuthn passkeys (sign-in without a password, second factor)
//! rp_id = "example.com"  # LATCHKEY_MFA_RP_ID: the WebAuthn relying party id; default: the issuer's host
//! rp_name = "Example"    # LATCHKEY_MFA_RP_NAME: the name browsers show; default: the product name, or "Latchkey"
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaSettings {
    /// Adding or removing a factor needs a sign-in at most this old (else the password or a
    /// current second factor in the request).
    pub reauth_within: Duration,
    /// Whether passkeys are offered (when the relying party id can work).
    pub passkeys: bool,
    /// The WebAuthn relying party id, when set; else the issuer's host.
    pub rp_id: Option<String>,
    /// The relying party's name in browsers' prompts, when set.
    pub rp_name: Option<String>,
}

impl Default for MfaSettings {
    fn default() -> Self {
        Self {
            reauth_within: Duration::from_secs(300),
            passkeys: true,
            rp_id: None,
            rp_name: None,
        }
    }
}

/// `[mfa]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct MfaToml {
    #[serde(deserialize_with = "super::sessions::human_duration")]
    reauth_within: Duration,
    passkeys: bool,
    rp_id: Option<String>,
    rp_name: Option<String>,
}

impl Default for MfaToml {
    fn default() -> Self {
        let d = MfaSettings::default();
        Self {
            reauth_within: d.reauth_within,
            passkeys: d.passkeys,
            rp_id: d.rp_id,
            rp_name: d.rp_name,
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
        let rp_id = self
            .rp_id
            .map(|id| id.trim().to_ascii_lowercase())
            .filter(|id| !id.is_empty());
        if let Some(id) = &rp_id {
            let domain_like = id.len() <= 253
                && id.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                })
                && id.parse::<std::net::IpAddr>().is_err();
            if !domain_like {
                return Err(invalid(
                    "mfa.rp_id must be a domain name (the issuer's host or a parent domain of it), not a URL or an IP address",
                ));
            }
        }
        let rp_name = self
            .rp_name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if rp_name.as_ref().is_some_and(|n| n.chars().count() > 64) {
            return Err(invalid("mfa.rp_name must be at most 64 characters"));
        }
        Ok(MfaSettings {
            reauth_within: self.reauth_within,
            passkeys: self.passkeys,
            rp_id,
            rp_name,
        })
    }
}
