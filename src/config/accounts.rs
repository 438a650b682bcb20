//! `[accounts]`: self-service sign-up, verification, reset, magic links, invitations.

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::domain::{SignupMode, VerificationPolicy};

/// Self-service accounts: sign-up, verification, reset, magic links (`/api/v1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// Who may sign up: `open`, `invite` (an operator's invitation is required) or `closed`.
    pub signup: SignupMode,
    /// `optional`: unverified users can sign in; `mandatory`: they cannot obtain tokens.
    pub email_verification: VerificationPolicy,
    /// Lifetime of an email-verification link.
    pub verification_ttl_secs: i64,
    /// Lifetime of a password-reset link.
    pub reset_ttl_secs: i64,
    /// Lifetime of a magic sign-in link or code.
    pub magic_link_ttl_secs: i64,
    /// Lifetime of an invitation.
    pub invite_ttl_secs: i64,
    /// Whether magic-link sign-in is offered.
    pub magic_links: bool,
    /// User attributes a user may set on their own profile (and at sign-up).
    pub profile_attributes: Vec<String>,
    /// Link templates; `{token}` is replaced. Defaults point at Latchkey's own pages.
    pub verify_url: Option<String>,
    pub reset_url: Option<String>,
    pub magic_link_url: Option<String>,
    pub invite_url: Option<String>,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            signup: SignupMode::Open,
            email_verification: VerificationPolicy::Optional,
            verification_ttl_secs: 86_400,
            reset_ttl_secs: 3_600,
            // OWASP ASVS 4.0 V2.7.2: out-of-band codes live at most 10 minutes.
            magic_link_ttl_secs: 600,
            invite_ttl_secs: 7 * 86_400,
            magic_links: true,
            profile_attributes: Vec::new(),
            verify_url: None,
            reset_url: None,
            magic_link_url: None,
            invite_url: None,
        }
    }
}

impl AccountSettings {
    /// Self-service account settings.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let a = self;
        for (name, v) in [
            ("accounts.verification_ttl_secs", a.verification_ttl_secs),
            ("accounts.reset_ttl_secs", a.reset_ttl_secs),
            ("accounts.magic_link_ttl_secs", a.magic_link_ttl_secs),
            ("accounts.invite_ttl_secs", a.invite_ttl_secs),
        ] {
            if !(60..=30 * 86_400).contains(&v) {
                return Err(invalid(format!(
                    "{name} must be between 60 and 2592000 seconds"
                )));
            }
        }
        for (name, url) in [
            ("accounts.verify_url", &a.verify_url),
            ("accounts.reset_url", &a.reset_url),
            ("accounts.magic_link_url", &a.magic_link_url),
            ("accounts.invite_url", &a.invite_url),
        ] {
            if let Some(u) = url {
                let scheme_ok = u.starts_with("https://") || u.starts_with("http://");
                if !scheme_ok || !u.contains("{token}") {
                    return Err(invalid(format!(
                        "{name} must be an http(s) URL containing {{token}}, got {u:?}"
                    )));
                }
            }
        }
        for attr in &a.profile_attributes {
            if attr.is_empty()
                || attr.len() > 64
                || !attr
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(invalid(format!(
                    "accounts.profile_attributes: {attr:?} is not a valid attribute name"
                )));
            }
        }
        Ok(())
    }
}
