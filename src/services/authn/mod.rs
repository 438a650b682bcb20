//! The login pipeline: every sign-in path goes through here. A credential names an account
//! and is verified (a password; a magic link or its code), the attempt is throttled and
//! audited, and the outcome is the signed-in user with the methods that proved it.
//!
//! The token endpoint's grants sign in through it; the account service confirms a signed-in
//! user's password through it. Throttling: an attempt is admitted (and counted against its
//! network) before the credential is checked, and held until its outcome is counted; right
//! credentials forgive the account and network pair's failures.

mod federated;
mod magic_link;
mod outcome;
mod passkey;
mod password;
mod policy;
mod second_factor;
mod steps;

use std::sync::Arc;

use super::audit::{AuditContext, AuditLog};
use super::mail::Mailer;
use super::revocation::RevocationService;
use super::throttle::Throttle;
use crate::clock::Clock;
use crate::crypto::passkey::PasskeyRp;
use crate::crypto::{AccountTokenCodec, BrowserSeal, PasswordHasher, TotpVault};
use crate::domain::{RequestOrigin, UserId};
use crate::storage::{AccountTokenStore, MfaStore, OneTimeStore, UserStore};
pub use magic_link::{MagicCredential, MAGIC_CODE_MAX_ATTEMPTS};
pub use outcome::{AuthMethod, AuthnError, Confirmation, Refusal, SignedIn, VerifiedPassword};
pub use passkey::{PasskeyChallenge, CEREMONY_TTL};
pub use policy::{MfaPolicy, SecondStep};
pub use second_factor::{EnrolmentStart, SecondFactor, MFA_TOKEN_TTL};

/// The rules of signing in, from the configuration.
#[derive(Debug, Clone)]
pub struct AuthnSettings {
    /// Longer passwords are refused before any work.
    pub password_max_length: usize,
    /// Unverified users may not sign in.
    pub require_verified_email: bool,
    /// Whether magic links may be used to sign in.
    pub magic_links: bool,
    /// Who must use a second factor (`[mfa]`, issue 15).
    pub mfa_policy: MfaPolicy,
}

/// The login pipeline. Cheap to share.
pub struct Authenticator {
    users: Arc<dyn UserStore>,
    account_tokens: Arc<dyn AccountTokenStore>,
    hasher: PasswordHasher,
    codec: Arc<AccountTokenCodec>,
    throttle: Arc<Throttle>,
    audit: Arc<AuditLog>,
    revocations: Arc<RevocationService>,
    clock: Arc<dyn Clock>,
    settings: AuthnSettings,
    mfa: Arc<dyn MfaStore>,
    totp: Arc<TotpVault>,
    /// Seals `mfa_token`s.
    seal: Arc<BrowserSeal>,
    /// Makes each `mfa_token` single use.
    one_time: Arc<dyn OneTimeStore>,
    /// Tells users when a recovery code was used.
    mailer: Arc<Mailer>,
    /// The WebAuthn relying party, when passkeys are on.
    passkeys: Option<Arc<PasskeyRp>>,
}

/// What the second step of a sign-in needs (issue 15).
pub struct SecondFactors {
    pub mfa: Arc<dyn MfaStore>,
    pub totp: Arc<TotpVault>,
    pub seal: Arc<BrowserSeal>,
    pub one_time: Arc<dyn OneTimeStore>,
    pub mailer: Arc<Mailer>,
    /// The WebAuthn relying party; `None` turns passkeys off.
    pub passkeys: Option<Arc<PasskeyRp>>,
}

impl Authenticator {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        users: Arc<dyn UserStore>,
        account_tokens: Arc<dyn AccountTokenStore>,
        hasher: PasswordHasher,
        codec: Arc<AccountTokenCodec>,
        throttle: Arc<Throttle>,
        audit: Arc<AuditLog>,
        revocations: Arc<RevocationService>,
        clock: Arc<dyn Clock>,
        settings: AuthnSettings,
        second: SecondFactors,
    ) -> Self {
        Self {
            mfa: second.mfa,
            totp: second.totp,
            seal: second.seal,
            one_time: second.one_time,
            mailer: second.mailer,
            passkeys: second.passkeys,
            users,
            account_tokens,
            hasher,
            codec,
            throttle,
            audit,
            revocations,
            clock,
            settings,
        }
    }
}

fn ctx<'a>(
    user_id: Option<&'a UserId>,
    client_id: Option<&'a str>,
    origin: &'a RequestOrigin,
) -> AuditContext<'a> {
    AuditContext {
        user_id,
        client_id,
        origin: Some(origin),
    }
}
