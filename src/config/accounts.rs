//! `[accounts]`: self-service sign-up, verification, reset, magic links, invitations.

use std::time::Duration;

use serde::Deserialize;

use super::duration::checked_secs;
use super::{invalid, ConfigError};
use crate::domain::{SignupMode, VerificationPolicy};

/// Self-service accounts: sign-up, verification, reset, magic links (`/api/v1`).
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// Who may sign up: `open`, `invite` (an operator's invitation is required) or `closed`.
    pub signup: SignupMode,
    /// `optional`: unverified users can sign in; `mandatory`: they cannot obtain tokens.
    pub email_verification: VerificationPolicy,
    /// Lifetime of an email-verification link.
    pub verification_ttl: Duration,
    /// Lifetime of a password-reset link.
    pub reset_ttl: Duration,
    /// Lifetime of a magic sign-in link or code.
    pub magic_link_ttl: Duration,
    /// Lifetime of an invitation.
    pub invite_ttl: Duration,
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

/// `[accounts]` as written; `validate()` makes it an `AccountSettings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct AccountsToml {
    signup: SignupMode,
    email_verification: VerificationPolicy,
    verification_ttl_secs: i64,
    reset_ttl_secs: i64,
    magic_link_ttl_secs: i64,
    invite_ttl_secs: i64,
    magic_links: bool,
    profile_attributes: Vec<String>,
    verify_url: Option<String>,
    reset_url: Option<String>,
    magic_link_url: Option<String>,
    invite_url: Option<String>,
}

impl Default for AccountsToml {
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

impl AccountsToml {
    /// Link lifetimes, link templates and profile attribute names.
    pub(super) fn validate(self) -> Result<AccountSettings, ConfigError> {
        let a = &self;
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
        Ok(AccountSettings {
            signup: self.signup,
            email_verification: self.email_verification,
            verification_ttl: checked_secs(self.verification_ttl_secs),
            reset_ttl: checked_secs(self.reset_ttl_secs),
            magic_link_ttl: checked_secs(self.magic_link_ttl_secs),
            invite_ttl: checked_secs(self.invite_ttl_secs),
            magic_links: self.magic_links,
            profile_attributes: self.profile_attributes,
            verify_url: self.verify_url,
            reset_url: self.reset_url,
            magic_link_url: self.magic_link_url,
            invite_url: self.invite_url,
        })
    }
}
