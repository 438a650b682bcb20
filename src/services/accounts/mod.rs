//! Self-service accounts: sign-up, email verification, password reset and change, forced
//! password change, profile, account deletion, magic-link requests and invitations. This
//! file holds the service and the helpers its flows share; passwords are confirmed, and
//! magic links redeemed, by the login pipeline (`services::authn`).
//!
//! Enumeration: every answer that takes an email address (sign-up, resend, reset, magic
//! link) is the same whether or not an account exists, and takes the same time: whatever
//! depends on the account (looking it up, issuing a token, sending the mail) runs after the
//! answer, in a background task. Sign-up hashes the password in both cases.

mod deferred;
mod error;
mod invitation;
mod magic_link;
mod password;
mod profile;
mod signup;
mod verification;

use std::sync::Arc;

use serde_json::{Map, Value};

use super::audit::{AuditContext, AuditLog};
use super::authn::Authenticator;
use super::mail::Mailer;
use super::password_rules::PasswordRules;
use super::revocation::RevocationService;
use super::throttle::{LimitedAction, Throttle};
use super::Stores;
use crate::clock::Clock;
use crate::crypto::{AccountTokenCodec, PasswordHasher};
use crate::domain::{
    AccountPolicy, AccountToken, AccountTokenPurpose, ClientId, Email, MailedSecret, RequestOrigin,
    User, UserId,
};
use crate::storage::StorageError;
use deferred::MAX_DEFERRED;
pub use error::AccountError;
pub use invitation::{Invitation, InviteView};
pub use password::PasswordChange;
pub use profile::{ProfileUpdate, ProfileView};
pub use signup::SignupInput;
pub use verification::{SignupProof, VerifiedEmail};

struct Inner {
    stores: Stores,
    authn: Arc<Authenticator>,
    hasher: PasswordHasher,
    rules: Arc<PasswordRules>,
    revocations: Arc<RevocationService>,
    throttle: Arc<Throttle>,
    mailer: Arc<Mailer>,
    audit: Arc<AuditLog>,
    codec: Arc<AccountTokenCodec>,
    clock: Arc<dyn Clock>,
    policy: AccountPolicy,
    /// Places for deferred work.
    deferred: Arc<tokio::sync::Semaphore>,
    /// The runtime the service was built on (the process's main one): deferred work runs
    /// there, not on the HTTP worker that answered, whose runtime ends with the worker at
    /// shutdown and would drop the work half done.
    runtime: Option<tokio::runtime::Handle>,
}

/// The account use cases. Cheap to clone.
#[derive(Clone)]
pub struct AccountService {
    inner: Arc<Inner>,
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

fn link(template: &str, token: &MailedSecret) -> String {
    template.replace("{token}", token.expose_secret())
}

fn minutes(secs: i64) -> String {
    (secs / 60).max(1).to_string()
}

fn unexpected(e: impl Into<anyhow::Error>) -> AccountError {
    AccountError::Unexpected(e.into())
}

impl AccountService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stores: Stores,
        authn: Arc<Authenticator>,
        hasher: PasswordHasher,
        rules: Arc<PasswordRules>,
        revocations: Arc<RevocationService>,
        throttle: Arc<Throttle>,
        mailer: Arc<Mailer>,
        audit: Arc<AuditLog>,
        codec: Arc<AccountTokenCodec>,
        clock: Arc<dyn Clock>,
        policy: AccountPolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                stores,
                authn,
                hasher,
                rules,
                revocations,
                throttle,
                mailer,
                audit,
                codec,
                clock,
                policy,
                deferred: Arc::new(tokio::sync::Semaphore::new(MAX_DEFERRED)),
                runtime: tokio::runtime::Handle::try_current().ok(),
            }),
        }
    }

    pub fn policy(&self) -> &AccountPolicy {
        &self.inner.policy
    }

    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.inner.audit
    }

    /// Whether a link is still usable (the hosted pages show a form only for one that is).
    pub async fn link_is_live(
        &self,
        purpose: AccountTokenPurpose,
        token: &str,
    ) -> Result<bool, AccountError> {
        match self.inner.live_token(purpose, token).await {
            Ok(_) => Ok(true),
            Err(AccountError::InvalidToken) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes expired account tokens (housekeeping).
    pub async fn purge_expired(&self) -> Result<u64, StorageError> {
        let i = &self.inner;
        i.stores.account_tokens.purge_expired(i.clock.now()).await
    }
}

/// The name a mail greets with: only a verified account's (a stranger who signed up with
/// someone else's address must not put words into the mail sent to it).
fn greeting_name(u: &User) -> Option<String> {
    u.display_name.clone().filter(|_| u.email_verified)
}

impl Inner {
    /// Counts a mail-sending request against its limits (`Throttled` past them).
    async fn admit(
        &self,
        action: LimitedAction,
        email: &Email,
        origin: &RequestOrigin,
    ) -> Result<Email, AccountError> {
        self.throttle
            .limit(action, Some(email.as_str()), origin.ip)
            .await?;
        Ok(email.clone())
    }

    /// Stores a new token of `purpose` for `user` (superseding older ones); returns the
    /// secret for the link.
    async fn issue(
        &self,
        purpose: AccountTokenPurpose,
        user: &User,
        client_id: Option<ClientId>,
        code_hash: Option<String>,
        data: Map<String, Value>,
    ) -> Result<MailedSecret, AccountError> {
        let ttl = match purpose {
            AccountTokenPurpose::VerifyEmail => self.policy.verification_ttl,
            AccountTokenPurpose::PasswordReset => self.policy.reset_ttl,
            AccountTokenPurpose::MagicLink => self.policy.magic_link_ttl,
            AccountTokenPurpose::Invite => self.policy.invite_ttl,
        };
        let email = mail_address(user)?;
        let now = self.clock.now();
        let secret = self.codec.mint();
        self.stores
            .account_tokens
            .issue(&AccountToken {
                id: uuid::Uuid::new_v4().to_string(),
                purpose,
                token_hash: secret.hash,
                code_hash,
                user_id: Some(user.id.clone()),
                email,
                client_id,
                data,
                attempts: 0,
                created_at: now,
                expires_at: now + ttl,
                used_at: None,
            })
            .await?;
        Ok(secret.value)
    }

    /// The stored form of a presented link secret; `InvalidToken` for one that cannot be ours.
    fn presented_hash(&self, presented: &str) -> Result<String, AccountError> {
        self.codec
            .hash(presented.trim())
            .ok_or(AccountError::InvalidToken)
    }

    async fn live_token(
        &self,
        purpose: AccountTokenPurpose,
        presented: &str,
    ) -> Result<AccountToken, AccountError> {
        let hash = self.presented_hash(presented)?;
        self.stores
            .account_tokens
            .find_live(purpose, &hash, self.clock.now())
            .await?
            .ok_or(AccountError::InvalidToken)
    }

    /// Uses a presented link secret, or `InvalidToken`.
    async fn consume(
        &self,
        purpose: AccountTokenPurpose,
        presented: &str,
    ) -> Result<AccountToken, AccountError> {
        let hash = self.presented_hash(presented)?;
        self.stores
            .account_tokens
            .consume(purpose, &hash, self.clock.now())
            .await?
            .ok_or(AccountError::InvalidToken)
    }
}

/// The address mail for `user` goes to. Every caller found the user by it; a user without any
/// (signed up through a provider that gave none) gets no mail.
pub(super) fn mail_address(user: &User) -> Result<Email, AccountError> {
    user.email
        .clone()
        .ok_or_else(|| AccountError::InvalidRequest("the account has no email address".into()))
}
