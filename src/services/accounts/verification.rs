//! Email verification: the link, the proof that goes with it, and resending it.

use secrecy::SecretString;
use serde_json::Map;

use super::super::audit::events;
use super::super::authn::Confirmation;
use super::super::mail::{Mail, MailKind};
use super::super::throttle::LimitedAction;
use super::{ctx, greeting_name, link, mail_address, minutes, AccountError, AccountService, Inner};
use crate::domain::{AccountToken, AccountTokenPurpose, Email, RequestOrigin, User, UserId};
use crate::storage::UserPatch;

/// The answer given for a verified address.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifiedEmail {
    pub email: String,
    pub email_verified: bool,
}

impl AccountService {
    /// Uses a verification link. The click proves only that the mailbox owner opened it,
    /// not that they chose the account's password (someone may have signed up with another
    /// person's address): while an unverified account has a password, confirming needs that
    /// password (`proof`), or a session opened with it, else `PasswordRequired` and nothing
    /// changes. The mailbox owner who did not sign up uses a password reset or a magic link
    /// instead, which removes the stranger's password and sessions.
    pub async fn verify_email(
        &self,
        token: &str,
        proof: SignupProof,
        origin: &RequestOrigin,
    ) -> Result<VerifiedEmail, AccountError> {
        let i = &self.inner;
        let live = i
            .live_token(AccountTokenPurpose::VerifyEmail, token)
            .await?;
        let user = i.token_user(&live).await?;
        if needs_signup_proof(&user) {
            match proof {
                SignupProof::Session(id) if id == user.id => {}
                SignupProof::Password(password) => {
                    i.authn
                        .confirm_password(
                            &user,
                            password,
                            None,
                            origin,
                            Confirmation::EmailVerification,
                        )
                        .await?
                }
                _ => return Err(AccountError::PasswordRequired),
            }
        }
        let used = i.consume(AccountTokenPurpose::VerifyEmail, token).await?;
        if used.user_id.as_ref() != Some(&user.id) {
            return Err(AccountError::InvalidToken);
        }
        i.stores
            .users
            .update(
                &user.id,
                &UserPatch {
                    email_verified: Some(true),
                    ..Default::default()
                },
                i.clock.now(),
            )
            .await?;
        i.audit
            .record(
                events::EMAIL_VERIFIED,
                ctx(Some(&user.id), None, origin),
                Map::new(),
            )
            .await;
        Ok(VerifiedEmail {
            email: live.email.to_string(),
            email_verified: true,
        })
    }

    /// Whether the verification link `token` can be used, and if so whether confirming it
    /// needs the password chosen at sign-up (for the page the link opens).
    pub async fn verification_link(&self, token: &str) -> Result<Option<bool>, AccountError> {
        let i = &self.inner;
        let live = match i.live_token(AccountTokenPurpose::VerifyEmail, token).await {
            Ok(t) => t,
            Err(AccountError::InvalidToken) => return Ok(None),
            Err(e) => return Err(e),
        };
        match i.token_user(&live).await {
            Ok(user) => Ok(Some(needs_signup_proof(&user))),
            Err(AccountError::InvalidToken) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends a new verification link (the older ones stop working), if the address has an
    /// unverified account. Same answer either way.
    pub async fn resend_verification(
        &self,
        email: &Email,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let email = i
            .admit(LimitedAction::VerificationResend, email, origin)
            .await?;
        let deferred = self.reserve()?;
        let origin = origin.clone();
        deferred.run("verification resend", move |i| async move {
            match i.stores.users.find_by_email(&email).await? {
                Some(u) if u.is_active && !u.email_verified => {
                    i.send_verification(&u, &origin).await
                }
                _ => Ok(()),
            }
        });
        Ok(())
    }
}

/// What shows that whoever confirms an address also chose the account's password.
#[derive(Debug)]
pub enum SignupProof {
    /// Nothing but the link.
    None,
    /// The password, as typed.
    Password(SecretString),
    /// A session of this user (a bearer access token's subject): opened with the password.
    Session(UserId),
}

/// An unverified account with a password: whoever chose it may not own the mailbox.
fn needs_signup_proof(user: &User) -> bool {
    !user.email_verified && user.password_hash.is_some()
}

impl Inner {
    pub(super) async fn send_verification(
        &self,
        user: &User,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let secret = self
            .issue(
                AccountTokenPurpose::VerifyEmail,
                user,
                None,
                None,
                Map::new(),
            )
            .await?;
        self.mailer.enqueue(Mail {
            kind: MailKind::VerifyEmail,
            to: mail_address(user)?,
            display_name: greeting_name(user),
            vars: vec![
                ("link", link(&self.policy.verify_url, &secret)),
                ("expires_in_minutes", minutes(self.policy.verification_ttl)),
            ],
        })?;
        self.audit
            .record(
                events::VERIFICATION_SENT,
                ctx(Some(&user.id), None, origin),
                Map::new(),
            )
            .await;
        Ok(())
    }

    /// The live token a presented link secret names, or `InvalidToken`.
    /// The user a verification token was issued to, while its address is still theirs.
    pub(super) async fn token_user(&self, token: &AccountToken) -> Result<User, AccountError> {
        let Some(user_id) = &token.user_id else {
            return Err(AccountError::InvalidToken);
        };
        match self.stores.users.find_by_id(user_id).await? {
            Some(user) if user.email.as_ref() == Some(&token.email) => Ok(user),
            _ => Err(AccountError::InvalidToken),
        }
    }
}
