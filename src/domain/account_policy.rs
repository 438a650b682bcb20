//! The rules of self-service accounts an operator chooses.

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
