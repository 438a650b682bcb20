//! `[mfa]`: second factors (issue 15).
//!
//! ```toml
//! [mfa]
//! reauth_within = "5m"   # LATCHKEY_MFA_REAUTH_WITHIN: adding or removing a factor needs a sign-in this recent
//! passkeys = true        # LATCHKEY_MFA_PASSKEYS: WebAuthn passkeys (sign-in without a password, second factor)
//! rp_id = "example.com"  # LATCHKEY_MFA_RP_ID: the WebAuthn relying party id; default: the issuer's host
//! rp_name = "Example"    # LATCHKEY_MFA_RP_NAME: the name browsers show; default: the product name, or "Latchkey"
//! required = "optional"  # LATCHKEY_MFA_REQUIRED: off | optional | required
//! enrolment_grace = "0s" # LATCHKEY_MFA_ENROLMENT_GRACE: how long a covered user may put off setting up a factor
//! after_federation = true # LATCHKEY_MFA_AFTER_FEDERATION: ask a user's second factor after Google/GitHub too
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::domain::MfaRequirement;

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
    /// `off`: no new enrolment; `optional`: users, roles and clients choose; `required`:
    /// everyone.
    pub required: MfaRequirement,
    /// How long a user a policy covers may put off setting up a second factor, from the
    /// first time they were asked (0: not at all).
    pub enrolment_grace: Duration,
    /// A user with a second factor is asked for it after a federated sign-in too (`false`:
    /// the upstream sign-in is trusted, unless a policy covers the user).
    pub after_federation: bool,
}

impl Default for MfaSettings {
    fn default() -> Self {
        Self {
            reauth_within: Duration::from_secs(300),
            passkeys: true,
            rp_id: None,
            rp_name: None,
            required: MfaRequirement::Optional,
            enrolment_grace: Duration::ZERO,
            after_federation: true,
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
    required: String,
    #[serde(deserialize_with = "super::sessions::human_duration")]
    enrolment_grace: Duration,
    after_federation: bool,
}

impl Default for MfaToml {
    fn default() -> Self {
        let d = MfaSettings::default();
        Self {
            reauth_within: d.reauth_within,
            passkeys: d.passkeys,
            rp_id: d.rp_id,
            rp_name: d.rp_name,
            required: d.required.as_str().to_owned(),
            enrolment_grace: d.enrolment_grace,
            after_federation: d.after_federation,
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
        let required = MfaRequirement::parse(self.required.trim())
            .ok_or_else(|| invalid("mfa.required must be \"off\", \"optional\" or \"required\""))?;
        if self.enrolment_grace.as_secs() > 365 * 86_400 {
            return Err(invalid("mfa.enrolment_grace must be at most a year"));
        }
        Ok(MfaSettings {
            reauth_within: self.reauth_within,
            passkeys: self.passkeys,
            rp_id,
            rp_name,
            required,
            enrolment_grace: self.enrolment_grace,
            after_federation: self.after_federation,
        })
    }
}
