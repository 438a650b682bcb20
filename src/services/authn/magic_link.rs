//! Magic-link credentials: the secret of a mailed sign-in link, or its code with the
//! address it was sent to.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Map;
use tracing::warn;

use super::super::audit::events;
use super::{ctx, AuthMethod, Authenticator, AuthnError, Refusal, SignedIn};
use crate::clock::UnixTime;
use crate::crypto::constant_time_eq;
use crate::domain::{AccountTokenPurpose, ClientId, CodeOutcome, LoginName, RequestOrigin, User};
use crate::storage::UserPatch;

/// Wrong codes a magic link survives.
pub const MAGIC_CODE_MAX_ATTEMPTS: i64 = 5;

/// How a magic link is presented at the token endpoint.
#[derive(Debug)]
pub enum MagicCredential {
    /// The secret from the link.
    Token(SecretString),
    /// The code from the mail, with the address it was sent to.
    Code {
        email: LoginName,
        code: SecretString,
    },
}

impl Authenticator {
    /// Signs in with a magic link (or its code) for `client_id`. Wrong codes count as failed
    /// logins. The link reached the mailbox: an unverified address is verified by it.
    pub async fn redeem_magic_link(
        &self,
        credential: MagicCredential,
        client_id: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<SignedIn, AuthnError> {
        if !self.settings.magic_links {
            return Err(AuthnError::MagicLinksDisabled);
        }
        let now = self.clock.now();
        let (token, account, attempt, method) = match credential {
            MagicCredential::Token(secret) => {
                let hash = self
                    .codec
                    .hash(secret.expose_secret().trim())
                    .ok_or(AuthnError::InvalidLink)?;
                let token = self
                    .account_tokens
                    .find_live(AccountTokenPurpose::MagicLink, &hash, now)
                    .await?
                    .ok_or(AuthnError::InvalidLink)?;
                if token.client_id.as_ref() != Some(client_id) {
                    return Err(AuthnError::InvalidLink);
                }
                let used = self
                    .account_tokens
                    .consume(AccountTokenPurpose::MagicLink, &token.token_hash, now)
                    .await?
                    .ok_or(AuthnError::InvalidLink)?;
                let account = used.email.to_string();
                (used, account, None, AuthMethod::MagicLink)
            }
            MagicCredential::Code { email, code } => {
                let email = email.email().ok_or(AuthnError::InvalidLink)?;
                let attempt = self.admit(email.as_str(), origin).await?;
                let candidate = self
                    .codec
                    .code_hash(email.as_str(), code.expose_secret().trim());
                let matches =
                    move |stored: &str| constant_time_eq(stored.as_bytes(), candidate.as_bytes());
                match self
                    .account_tokens
                    .consume_code(email, &matches, MAGIC_CODE_MAX_ATTEMPTS, now)
                    .await?
                {
                    CodeOutcome::Consumed(t) if t.client_id.as_ref() == Some(client_id) => {
                        (*t, email.to_string(), Some(attempt), AuthMethod::MagicCode)
                    }
                    CodeOutcome::Consumed(_) | CodeOutcome::Wrong | CodeOutcome::NoToken => {
                        self.failed(
                            attempt,
                            email.as_str(),
                            None,
                            Some(client_id.as_str()),
                            origin,
                            AuthMethod::MagicCode.as_str(),
                        )
                        .await;
                        return Err(AuthnError::InvalidLink);
                    }
                }
            }
        };
        let user = match &token.user_id {
            Some(id) => self.users.find_by_id(id).await?,
            None => None,
        };
        let Some(user) = user.filter(|u| u.is_active && u.email.as_ref() == Some(&token.email))
        else {
            return Err(AuthnError::InvalidLink);
        };
        if !user.email_verified {
            self.claimed_by_mailbox(&user, now).await?;
        }
        match attempt {
            Some(attempt) => self.accepted(attempt, &account, origin).await,
            None => self.throttle.login_succeeded(&account, origin.ip).await,
        }
        self.audit
            .record(
                events::MAGIC_LINK_USED,
                ctx(Some(&user.id), Some(client_id.as_str()), origin),
                Map::new(),
            )
            .await;
        if user.must_change_password {
            return Err(AuthnError::Refused(Refusal::PasswordChangeRequired));
        }
        Ok(SignedIn {
            user: User {
                email_verified: true,
                ..user
            },
            methods: vec![method],
            password: None,
            provider: None,
            session: None,
            claims: None,
        })
    }

    /// The link reached the mailbox: the address is proven. Whoever signed the account up
    /// may not have been its owner (pre-registration of someone else's address): the
    /// password they chose and every session they hold end here.
    async fn claimed_by_mailbox(&self, user: &User, now: UnixTime) -> Result<(), AuthnError> {
        self.users
            .update(
                &user.id,
                &UserPatch {
                    email_verified: Some(true),
                    ..Default::default()
                },
                now,
            )
            .await?;
        if user.password_hash.is_some() {
            self.users.set_password_hash(&user.id, None, now).await?;
            // Every session, not a watermark: the tokens about to be issued in this same
            // second must live (access tokens without a session expire on their own).
            self.revocations
                .revoke_other_sessions(&user.id, None, "unverified account claimed by its mailbox")
                .await?;
            warn!(
                user_id = user.id.as_str(),
                "magic link on an unverified account: its password was removed"
            );
        }
        Ok(())
    }
}
