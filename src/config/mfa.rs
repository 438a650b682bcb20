//! `[mfa]`: second factors (issue 15).
//!
//! ```toml
//! [mfa]
//! reauth_within = "5m"       # LATCHKEY_MFA_REAUTH_WITHIN: adding or removing a factor needs a sign-in this recent
//! required = "optional"      # LATCHKEY_MFA_REQUIRED: off | optional | required
//! enrolment_grace = "0s"     # LATCHKEY_MFA_ENROLMENT_GRACE: how long a covered user may put off setting up a factor
//! after_federation = true    # LATCHKEY_MFA_AFTER_FEDERATION: ask a user's second factor after Google/GitHub too
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
        let required = MfaRequirement::parse(self.required.trim())
            .ok_or_else(|| invalid("mfa.required must be \"off\", \"optional\" or \"required\""))?;
        if self.enrolment_grace.as_secs() > 365 * 86_400 {
            return Err(invalid("mfa.enrolment_grace must be at most a year"));
        }
        Ok(MfaSettings {
            reauth_within: self.reauth_within,
            required,
            enrolment_grace: self.enrolment_grace,
            after_federation: self.after_federation,
        })
    }
}
