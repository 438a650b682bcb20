//! The rules of self-service accounts an operator chooses.

use std::collections::BTreeSet;

use serde::Deserialize;

/// Who may sign up: anyone, the invited, or no one (operators create the accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    Open,
    Invite,
    Closed,
}

/// Whether users whose email is not verified may obtain tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerificationPolicy {
    Optional,
    Mandatory,
}

/// The rules of self-service accounts, from the configuration.
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    pub signup: SignupMode,
    pub verification: VerificationPolicy,
    pub verification_ttl: i64,
    pub reset_ttl: i64,
    pub magic_link_ttl: i64,
    pub invite_ttl: i64,
    pub magic_links: bool,
    pub profile_attributes: BTreeSet<String>,
    /// Link templates with `{token}`.
    pub verify_url: String,
    pub reset_url: String,
    pub invite_url: String,
    /// Without it, magic-link mails for applications carry only the code.
    pub magic_link_url: Option<String>,
    /// The link in magic-link mails asked for on the hosted sign-in page (with `{token}`).
    pub pages_magic_link_url: String,
}
