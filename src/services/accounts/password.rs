//! Passwords: reset by mail, change by a signed-in user, and the forced change.

use secrecy::SecretString;
use serde_json::{json, Map};
use tracing::warn;

use super::super::audit::{detail, events};
use super::super::authn::Confirmation;
use super::super::mail::{Mail, MailKind};
use super::super::throttle::LimitedAction;
use super::{
    ctx, greeting_name, link, mail_address, minutes, unexpected, AccountError, AccountService,
    Inner,
};
use crate::domain::{
    AccountTokenPurpose, Email, FamilyId, PasswordContext, Principal, RequestOrigin, SessionId,
    User, UserId,
};
use crate::storage::UserPatch;

pub struct PasswordChange {
    pub current_password: SecretString,
    pub new_password: SecretString,
    /// Keep the session the bearer token belongs to (its refresh-token family).
    pub keep_current_session: bool,
}

impl AccountService {
    /// Mails a reset link if the address has an active account. Same answer, same time,
    /// either way.
    pub async fn request_password_reset(
        &self,
        email: &Email,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let email = i.admit(LimitedAction::PasswordReset, email, origin).await?;
        let deferred = self.reserve()?;
        let origin = origin.clone();
        deferred.run("password reset request", move |i| async move {
            let user = i
                .stores
                .users
                .find_by_email(&email)
                .await?
                .filter(|u| u.is_active);
            i.audit
                .record(
                    events::PASSWORD_RESET_REQUESTED,
                    ctx(user.as_ref().map(|u| &u.id), None, &origin),
                    detail([("account_found", json!(user.is_some()))]),
                )
                .await;
            let Some(user) = user else { return Ok(()) };
            let secret = i
                .issue(
                    AccountTokenPurpose::PasswordReset,
                    &user,
                    None,
                    None,
                    Map::new(),
                )
                .await?;
            i.mailer.enqueue(Mail {
                kind: MailKind::PasswordReset,
                to: mail_address(&user)?,
                display_name: greeting_name(&user),
                vars: vec![
                    ("link", link(&i.policy.reset_url, &secret)),
                    ("expires_in_minutes", minutes(i.policy.reset_ttl)),
                ],
            })?;
            Ok(())
        });
        Ok(())
    }

    /// Sets a new password with a reset link; every token of the user is revoked.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: SecretString,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let found = i
            .live_token(AccountTokenPurpose::PasswordReset, token)
            .await?;
        let user = match &found.user_id {
            Some(id) => i.stores.users.find_by_id(id).await?,
            None => None,
        };
        let Some(user) = user.filter(|u| u.is_active && u.email.as_ref() == Some(&found.email))
        else {
            return Err(AccountError::InvalidToken);
        };
        i.check_new_password(&new_password, &password_context(&user))?;
        let hash = i.hash(new_password).await?;
        // The policy is checked before the link is used, so a refused password keeps it.
        if i.stores
            .account_tokens
            .consume(
                AccountTokenPurpose::PasswordReset,
                &found.token_hash,
                i.clock.now(),
            )
            .await?
            .is_none()
        {
            return Err(AccountError::InvalidToken);
        }
        i.set_password(&user, &hash, true).await?;
        i.revocations
            .revoke_user(&user.id, "password reset")
            .await?;
        i.audit
            .record(
                events::PASSWORD_RESET_COMPLETED,
                ctx(Some(&user.id), None, origin),
                Map::new(),
            )
            .await;
        i.notify_password_changed(&user);
        Ok(())
    }

    /// A signed-in user changes their password. Every other session is revoked; the caller's
    /// own too unless it asks to keep it.
    pub async fn change_password(
        &self,
        caller: &Principal,
        change: PasswordChange,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let user = self.inner.caller(caller).await?;
        let keep = match (&caller.session, change.keep_current_session) {
            (Some(sid), true) => Some(KeptSession::Family(sid)),
            _ => None,
        };
        self.change_password_of(user, caller.client_id.as_str(), change, keep, origin)
            .await
    }

    /// A user signed in on Latchkey's account page changes their password: every other
    /// session and token is revoked, the browser's SSO session is kept.
    pub async fn change_password_in_session(
        &self,
        user_id: &UserId,
        session: &SessionId,
        client_id: &str,
        change: PasswordChange,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let user = self.inner.active_user(user_id).await?;
        self.change_password_of(
            user,
            client_id,
            change,
            Some(KeptSession::Sso(session)),
            origin,
        )
        .await
    }

    async fn change_password_of(
        &self,
        user: User,
        client_id: &str,
        change: PasswordChange,
        keep: Option<KeptSession<'_>>,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        i.authn
            .confirm_password(
                &user,
                change.current_password,
                Some(client_id),
                origin,
                Confirmation::PasswordChange,
            )
            .await?;
        i.check_new_password(&change.new_password, &password_context(&user))?;
        let hash = i.hash(change.new_password).await?;
        i.set_password(&user, &hash, false).await?;
        match keep {
            Some(KeptSession::Family(sid)) => {
                i.revocations
                    .revoke_other_sessions(&user.id, Some(sid), "password changed")
                    .await?;
                i.revocations
                    .end_user_sessions(&user.id, None, "password changed")
                    .await?;
            }
            Some(KeptSession::Sso(session)) => {
                i.revocations
                    .revoke_other_sessions(&user.id, None, "password changed")
                    .await?;
                i.revocations
                    .end_user_sessions(&user.id, Some(session), "password changed")
                    .await?;
            }
            None => {
                i.revocations
                    .revoke_user(&user.id, "password changed")
                    .await?
            }
        }
        i.audit
            .record(
                events::PASSWORD_CHANGED,
                ctx(Some(&user.id), Some(client_id), origin),
                detail([("kept_session", json!(keep.is_some()))]),
            )
            .await;
        i.notify_password_changed(&user);
        Ok(())
    }

    /// The forced change of a user flagged `must_change_password`: the current credentials
    /// and a new password. Throttled like a login.
    pub async fn change_required_password(
        &self,
        email: &Email,
        current_password: SecretString,
        new_password: SecretString,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let user = i
            .authn
            .check_credentials(email, current_password, origin)
            .await?;
        if !user.must_change_password {
            return Err(AccountError::InvalidRequest(
                "no password change is pending for this account; sign in as usual".into(),
            ));
        }
        i.check_new_password(&new_password, &password_context(&user))?;
        let hash = i.hash(new_password).await?;
        i.set_password(&user, &hash, false).await?;
        i.revocations
            .revoke_user(&user.id, "password changed")
            .await?;
        i.audit
            .record(
                events::PASSWORD_CHANGED,
                ctx(Some(&user.id), None, origin),
                detail([("required", json!(true))]),
            )
            .await;
        i.notify_password_changed(&user);
        Ok(())
    }
}

fn password_context(u: &User) -> PasswordContext<'_> {
    PasswordContext {
        email: u.email.as_ref().map(Email::as_str),
        username: u.username.as_deref(),
        display_name: u.display_name.as_deref(),
    }
}

impl Inner {
    pub(super) fn check_new_password(
        &self,
        password: &SecretString,
        context: &PasswordContext<'_>,
    ) -> Result<(), AccountError> {
        let violations = self.rules.violations(password, context);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(AccountError::PasswordPolicy(violations))
        }
    }

    pub(super) async fn hash(&self, password: SecretString) -> Result<String, AccountError> {
        self.hasher.hash(password).await.map_err(unexpected)
    }

    /// Sets the password hash; clears a pending forced change; with `verified`, marks the
    /// address verified (a reset link reached it).
    pub(super) async fn set_password(
        &self,
        user: &User,
        hash: &str,
        verified: bool,
    ) -> Result<(), AccountError> {
        let now = self.clock.now();
        self.stores
            .users
            .set_password_hash(&user.id, Some(hash), now)
            .await?;
        if user.must_change_password || (verified && !user.email_verified) {
            self.stores
                .users
                .update(
                    &user.id,
                    &UserPatch {
                        must_change_password: Some(false),
                        email_verified: verified.then_some(true),
                        ..Default::default()
                    },
                    now,
                )
                .await?;
        }
        Ok(())
    }

    pub(super) fn notify_password_changed(&self, user: &User) {
        // A user without an address has no mailbox to tell.
        let Some(to) = user.email.clone() else { return };
        if let Err(e) = self.mailer.enqueue(Mail {
            kind: MailKind::PasswordChanged,
            to,
            display_name: greeting_name(user),
            vars: vec![],
        }) {
            warn!(error = %e, "password-changed notice not queued");
        }
    }
}

/// The session a password change keeps: the caller's refresh-token family (the JSON API), or
/// the browser's SSO session (the account page).
enum KeptSession<'a> {
    Family(&'a FamilyId),
    Sso(&'a SessionId),
}
