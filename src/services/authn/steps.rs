//! The throttle and audit steps every sign-in takes: admit the attempt, then count and record
//! its outcome.

use serde_json::json;

use super::super::audit::{detail, events};
use super::super::throttle::{LoginGuard, Throttled};
use super::{ctx, Authenticator, Refusal, SignedIn};
use crate::domain::{RequestOrigin, User, UserId};

impl Authenticator {
    /// Before credentials for `account` are checked: admits the attempt or refuses it (a
    /// refusal is recorded). Hand the guard to `failed` or `accepted` once the outcome is
    /// known.
    pub(super) async fn admit(
        &self,
        account: &str,
        origin: &RequestOrigin,
    ) -> Result<LoginGuard, Throttled> {
        let r = self.throttle.check_login(account, origin.ip).await;
        if let Err(t) = &r {
            self.audit
                .record(
                    events::THROTTLED,
                    ctx(None, None, origin),
                    detail([("retry_after_secs", json!(t.retry_after_secs))]),
                )
                .await;
        }
        r
    }

    /// Wrong credentials for `account`: counted, and recorded (with a lockout it started).
    pub(super) async fn failed(
        &self,
        attempt: LoginGuard,
        account: &str,
        user_id: Option<&UserId>,
        client_id: Option<&str>,
        origin: &RequestOrigin,
        method: &str,
    ) {
        let outcome = self
            .throttle
            .attempt_failed(attempt, account, origin.ip)
            .await;
        self.audit
            .record(
                events::LOGIN_FAILED,
                ctx(user_id, client_id, origin),
                detail([("method", json!(method))]),
            )
            .await;
        if let Some(secs) = outcome.locked_for_secs {
            self.audit
                .record(
                    events::LOCKOUT,
                    ctx(user_id, client_id, origin),
                    detail([("seconds", json!(secs))]),
                )
                .await;
        }
    }

    /// Right credentials: the account and network pair's failures are forgiven (whether or
    /// not the sign-in then goes on).
    pub(super) async fn accepted(
        &self,
        attempt: LoginGuard,
        account: &str,
        origin: &RequestOrigin,
    ) {
        self.throttle
            .attempt_succeeded(attempt, account, origin.ip)
            .await;
    }

    /// Why an account whose credentials were right may not sign in now (disabled, a
    /// password change required, an address to confirm first), if it may not.
    pub(super) fn refusal_of(&self, user: &User) -> Option<Refusal> {
        if !user.is_active {
            Some(Refusal::Disabled)
        } else if user.must_change_password {
            Some(Refusal::PasswordChangeRequired)
        } else if self.settings.require_verified_email && !user.email_verified {
            Some(Refusal::EmailNotVerified)
        } else {
            None
        }
    }

    /// A sign-in refused after its credentials were accepted: recorded with the reason.
    pub(super) async fn refused(
        &self,
        user_id: &UserId,
        client_id: &str,
        origin: &RequestOrigin,
        refusal: Refusal,
    ) {
        self.audit
            .record(
                events::LOGIN_FAILED,
                ctx(Some(user_id), Some(client_id), origin),
                detail([
                    ("method", json!("password")),
                    ("reason", json!(refusal.as_str())),
                ]),
            )
            .await;
    }

    /// A password sign-in that issued tokens: recorded.
    pub async fn record_sign_in(
        &self,
        signed_in: &SignedIn,
        client_id: &str,
        origin: &RequestOrigin,
    ) {
        let method = signed_in.methods.first().map(|m| m.as_str());
        self.audit
            .record(
                events::LOGIN_SUCCEEDED,
                ctx(Some(&signed_in.user.id), Some(client_id), origin),
                detail([("method", json!(method))]),
            )
            .await;
    }
}
