//! The token endpoint's failures.

use super::super::authn::{AuthnError, Refusal};
use super::super::client_registry::ClientAuthError;
use crate::storage::StorageError;

/// Failures, named after the RFC 6749 §5.2 (and RFC 8707) error codes.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidTarget(String),
    /// Too many failed attempts: `invalid_grant` with `Retry-After` (README).
    #[error("too many failed attempts; retry in {0} s")]
    Throttled(u64),
    /// Past a request limit (per client, per session): `429 too_many_requests` with
    /// `Retry-After`.
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    /// The credentials are right, but an operator requires a new password first.
    #[error("the password must be changed before signing in")]
    PasswordChangeRequired,
    /// The credentials are right, but the address is not verified (mandatory policy).
    #[error("the email address must be verified before signing in")]
    EmailNotVerified,
    /// The password is right and the user has a second factor: `403 mfa_required` with the
    /// `mfa_token` the MFA grant completes the sign-in with.
    #[error("a second factor is required")]
    MfaRequired(secrecy::SecretString),
    /// A policy requires a second factor of the user, who has none (past the grace period):
    /// `403 mfa_enrollment_required`; the user sets one up on the hosted pages.
    #[error("a second factor must be set up first")]
    MfaEnrollmentRequired,
    /// Something the grant needs cannot answer now: `503 temporarily_unavailable`.
    #[error("{0}")]
    Unavailable(String),
    #[error("unexpected error")]
    Unexpected(#[source] anyhow::Error),
}

impl From<StorageError> for TokenError {
    fn from(e: StorageError) -> Self {
        TokenError::Unexpected(e.into())
    }
}

impl From<ClientAuthError> for TokenError {
    fn from(e: ClientAuthError) -> Self {
        match e {
            ClientAuthError::InvalidRequest(m) => TokenError::InvalidRequest(m.into()),
            ClientAuthError::InvalidClient => TokenError::InvalidClient,
            ClientAuthError::Storage(s) => s.into(),
        }
    }
}

/// The token endpoint's answers to a failed sign-in.
impl From<AuthnError> for TokenError {
    fn from(e: AuthnError) -> Self {
        match e {
            AuthnError::InvalidCredentials => {
                TokenError::InvalidGrant("invalid username or password".into())
            }
            AuthnError::InvalidLink => TokenError::InvalidGrant(
                "the link or code is invalid, expired or already used".into(),
            ),
            AuthnError::InvalidSecondFactor => TokenError::InvalidGrant(
                "the one-time or recovery code is invalid or was used already".into(),
            ),
            AuthnError::SecondFactorRequired(token) => TokenError::MfaRequired(token),
            AuthnError::EnrolmentNeeded { .. } | AuthnError::EnrolmentRequired => {
                TokenError::MfaEnrollmentRequired
            }
            AuthnError::InvalidPasskey => {
                TokenError::InvalidGrant("the passkey was not accepted".into())
            }
            AuthnError::PasskeysUnavailable => {
                TokenError::InvalidGrant("passkeys are not available".into())
            }
            AuthnError::InvalidMfaToken => TokenError::InvalidGrant(
                "the mfa_token is invalid, expired, used, or for another client".into(),
            ),
            AuthnError::MagicLinksDisabled => {
                TokenError::UnsupportedGrantType("magic-link sign-in is not enabled".into())
            }
            AuthnError::Throttled(t) => TokenError::Throttled(t.retry_after_secs),
            AuthnError::Refused(Refusal::Disabled) => {
                TokenError::InvalidGrant("the account is disabled".into())
            }
            AuthnError::Refused(Refusal::PasswordChangeRequired) => {
                TokenError::PasswordChangeRequired
            }
            AuthnError::Refused(Refusal::EmailNotVerified) => TokenError::EmailNotVerified,
            AuthnError::Unavailable(d) => TokenError::Unavailable(d),
            AuthnError::Unexpected(cause) => TokenError::Unexpected(cause),
        }
    }
}
