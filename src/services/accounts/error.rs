//! What can go wrong with an account request.

use super::super::authn::AuthnError;
use super::super::mail::MailError;
use super::super::revocation::RevocationError;
use super::super::throttle::Throttled;
use crate::domain::{PolicyViolation, ValidationError};
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The new password breaks the policy: every broken rule.
    #[error("the password breaks the password policy")]
    PasswordPolicy(Vec<PolicyViolation>),
    /// The link or code is unknown, expired, used or superseded (one answer for all).
    #[error("the link is invalid, expired or already used")]
    InvalidToken,
    /// The current password is wrong.
    #[error("the password is wrong")]
    InvalidCredentials,
    /// Confirming this address needs the password chosen at sign-up (or a session opened
    /// with it): the click alone proves only the mailbox.
    #[error(
        "enter the password chosen when this account was signed up to confirm the address; \
         if you did not sign up, set your own password with a password reset instead"
    )]
    PasswordRequired,
    #[error("sign-up is closed")]
    SignupClosed,
    #[error("sign-up needs an invitation")]
    InviteRequired,
    #[error("magic-link sign-in is not enabled")]
    MagicLinksDisabled,
    /// The bearer token's user was deleted or disabled.
    #[error("the account no longer exists or is disabled")]
    AccountGone,
    /// The bearer token belongs to a client, not to a user.
    #[error("this token was issued to a client, not to a user")]
    NotAUser,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// Something the request needs cannot answer now (mail queue full, denylist): retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("unexpected error")]
    Unexpected(#[source] anyhow::Error),
}

impl From<StorageError> for AccountError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(c) if c == "users_username_key" => {
                AccountError::Conflict("this username is taken".into())
            }
            other => AccountError::Unexpected(other.into()),
        }
    }
}

impl From<RevocationError> for AccountError {
    fn from(e: RevocationError) -> Self {
        match e {
            RevocationError::Unavailable(d) => AccountError::Unavailable(d),
            other => AccountError::Unexpected(other.into()),
        }
    }
}

impl From<AuthnError> for AccountError {
    fn from(e: AuthnError) -> Self {
        match e {
            AuthnError::InvalidCredentials
            | AuthnError::InvalidSecondFactor
            | AuthnError::InvalidPasskey => AccountError::InvalidCredentials,
            AuthnError::PasskeysUnavailable => {
                AccountError::InvalidRequest("passkeys are not available".into())
            }
            AuthnError::InvalidLink | AuthnError::InvalidMfaToken => AccountError::InvalidToken,
            AuthnError::SecondFactorRequired(_) => {
                AccountError::InvalidRequest("a second factor is required".into())
            }
            AuthnError::EnrolmentNeeded { .. } | AuthnError::EnrolmentRequired => {
                AccountError::InvalidRequest("a second factor must be set up first".into())
            }
            AuthnError::MagicLinksDisabled => AccountError::MagicLinksDisabled,
            AuthnError::Throttled(t) => AccountError::Throttled(t),
            AuthnError::Refused(r) => AccountError::InvalidRequest(r.as_str().into()),
            AuthnError::Unavailable(d) => AccountError::Unavailable(d),
            AuthnError::Unexpected(cause) => AccountError::Unexpected(cause),
        }
    }
}

impl From<MailError> for AccountError {
    fn from(e: MailError) -> Self {
        AccountError::Unavailable(e.to_string())
    }
}
