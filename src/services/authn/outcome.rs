//! What the login pipeline answers: the signed-in user and how they proved it, or why not.

use super::super::throttle::Throttled;
use crate::domain::{User, UserClaims};

/// How a credential was proved (the audit trail's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Password,
    /// The secret of a mailed sign-in link.
    MagicLink,
    /// The code of a mailed sign-in link, with the address it was sent to.
    MagicCode,
    /// An identity asserted by an upstream provider (federated sign-in).
    Federated,
    /// A TOTP code from the user's authenticator app (a second factor).
    Totp,
    /// One of the user's recovery codes (standing in for a second factor).
    RecoveryCode,
    /// A WebAuthn passkey bound to its device (hardware-secured key, `hwk`), with user
    /// verification: two factors by itself, or the second after a password.
    Passkey,
    /// A passkey that may be synced between devices (backup eligible: a software-secured
    /// key, `swk`), with user verification.
    SyncedPasskey,
}

impl AuthMethod {
    /// A method by its name (`as_str`), for a first step carried in an `mfa_token`.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            AuthMethod::Password,
            AuthMethod::MagicLink,
            AuthMethod::MagicCode,
            AuthMethod::Federated,
            AuthMethod::Totp,
            AuthMethod::RecoveryCode,
            AuthMethod::Passkey,
            AuthMethod::SyncedPasskey,
        ]
        .into_iter()
        .find(|m| m.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::MagicLink => "magic_link",
            AuthMethod::MagicCode => "magic_code",
            AuthMethod::Federated => "federated",
            AuthMethod::Totp => "totp",
            AuthMethod::RecoveryCode => "recovery_code",
            AuthMethod::Passkey => "passkey",
            AuthMethod::SyncedPasskey => "synced_passkey",
        }
    }

    /// Whether this method is a second factor (after a first one).
    pub fn is_second_factor(self) -> bool {
        matches!(
            self,
            AuthMethod::Totp
                | AuthMethod::RecoveryCode
                | AuthMethod::Passkey
                | AuthMethod::SyncedPasskey
        )
    }

    /// Whether this method proves two factors by itself (a passkey with user verification:
    /// the device, and the PIN or biometric that unlocked it).
    pub fn is_multi_factor(self) -> bool {
        matches!(self, AuthMethod::Passkey | AuthMethod::SyncedPasskey)
    }
}

/// Why a signed-in user confirms their password (the audit trail's `method` of a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    EmailVerification,
    PasswordChange,
    AccountDeletion,
    /// Before a provider's identity is linked to the account through the API.
    IdentityLink,
    /// Before a second factor is added or removed, or recovery codes are made anew.
    MfaChange,
    /// An authorization request's `max_age` asks for a recent sign-in (issue 15).
    Reauthentication,
}

impl Confirmation {
    pub fn as_str(self) -> &'static str {
        match self {
            Confirmation::EmailVerification => "email_verification",
            Confirmation::PasswordChange => "password_change",
            Confirmation::AccountDeletion => "account_deletion",
            Confirmation::IdentityLink => "identity_link",
            Confirmation::MfaChange => "mfa_change",
            Confirmation::Reauthentication => "reauthentication",
        }
    }
}

/// The stored hash a password matched, and its replacement when it was re-hashed with
/// current parameters.
pub struct VerifiedPassword {
    pub hash: String,
    pub rehashed: Option<String>,
}

/// A successful sign-in.
pub struct SignedIn {
    pub user: User,
    /// The methods the credentials were proved with, in the order they were.
    pub methods: Vec<AuthMethod>,
    /// For a password sign-in: the hash it matched (still to be the stored one when the
    /// login is recorded).
    pub password: Option<VerifiedPassword>,
    /// For a federated first step: the upstream provider (it joins `fed` in `amr`).
    pub provider: Option<crate::domain::ProviderId>,
    /// A step-up (issue 15): the SSO session this proof is added to, rather than a new one.
    pub session: Option<crate::domain::SessionId>,
    /// The user's roles and permissions, when the sign-in read them with the user (one
    /// query): tokens are then issued without reading them again.
    pub claims: Option<UserClaims>,
}

/// Right credentials, but the account may not sign in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Disabled,
    PasswordChangeRequired,
    EmailNotVerified,
}

impl Refusal {
    /// The audit trail's `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Disabled => "disabled",
            Refusal::PasswordChangeRequired => "password_change_required",
            Refusal::EmailNotVerified => "email_not_verified",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// No such account, or the wrong password (one answer for both).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The link or code is unknown, expired, used, or for another client or address.
    #[error("the link or code is invalid, expired or already used")]
    InvalidLink,
    #[error("magic-link sign-in is not enabled")]
    MagicLinksDisabled,
    /// The one-time or recovery code is wrong, was used already, or the user has no factor
    /// it could be for (one answer for all).
    #[error("the code is invalid or was used already")]
    InvalidSecondFactor,
    /// The `mfa_token` is unknown, expired, used, or for another client.
    #[error("the mfa_token is invalid, expired or already used")]
    InvalidMfaToken,
    /// The passkey's answer does not verify, its ceremony is expired or used, or the
    /// credential is unknown (one answer for all).
    #[error("the passkey was not accepted")]
    InvalidPasskey,
    /// Passkeys are not available (turned off, or the issuer's host cannot be a WebAuthn
    /// relying party id).
    #[error("passkeys are not available on this server")]
    PasskeysUnavailable,
    /// The first factor was right and the user has a second one: the sign-in continues with
    /// it, carried by this `mfa_token`.
    #[error("a second factor is required")]
    SecondFactorRequired(secrecy::SecretString),
    /// The first factor was right and a policy covers the user, who has no second factor: the
    /// sign-in continues on the enrolment page, carried by this token (`may_skip`: within the
    /// grace period).
    #[error("a second factor must be set up first")]
    EnrolmentNeeded {
        token: secrecy::SecretString,
        may_skip: bool,
    },
    /// A policy covers the user, who has no second factor, and it cannot be set up here (the
    /// token endpoint, or `mfa.required = "off"`): refused.
    #[error("a second factor is required and none is set up")]
    EnrolmentRequired,
    #[error(transparent)]
    Throttled(#[from] Throttled),
    #[error("the sign-in was refused: {}", .0.as_str())]
    Refused(Refusal),
    /// Something the sign-in needs cannot answer now: retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("unexpected error")]
    Unexpected(#[source] anyhow::Error),
}

impl From<crate::storage::StorageError> for AuthnError {
    fn from(e: crate::storage::StorageError) -> Self {
        AuthnError::Unexpected(e.into())
    }
}

impl From<super::super::revocation::RevocationError> for AuthnError {
    fn from(e: super::super::revocation::RevocationError) -> Self {
        match e {
            super::super::revocation::RevocationError::Unavailable(d) => AuthnError::Unavailable(d),
            other => AuthnError::Unexpected(other.into()),
        }
    }
}

pub(super) fn unexpected(e: impl Into<anyhow::Error>) -> AuthnError {
    AuthnError::Unexpected(e.into())
}
