//! The audit trail: security events in an append-only table, mirrored to the structured log
//! (target `audit`).

use std::sync::Arc;

use tracing::{error, info};

use crate::clock::Clock;
use crate::domain::{AuditEvent, AuditFilter, LoggedAuditEvent, RequestOrigin, UserId};
use crate::storage::{AuditStore, StorageError};

/// The events Latchkey records (README, Audit trail).
pub mod events {
    pub const SIGNUP: &str = "signup";
    pub const SIGNUP_EXISTING_EMAIL: &str = "signup_existing_email";
    pub const EMAIL_VERIFIED: &str = "email_verified";
    pub const VERIFICATION_SENT: &str = "verification_sent";
    pub const LOGIN_SUCCEEDED: &str = "login_succeeded";
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const LOCKOUT: &str = "lockout";
    pub const THROTTLED: &str = "throttled";
    pub const PASSWORD_RESET_REQUESTED: &str = "password_reset_requested";
    pub const PASSWORD_RESET_COMPLETED: &str = "password_reset_completed";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const PASSWORD_CHANGE_FAILED: &str = "password_change_failed";
    pub const MAGIC_LINK_REQUESTED: &str = "magic_link_requested";
    pub const MAGIC_LINK_USED: &str = "magic_link_used";
    pub const PROFILE_UPDATED: &str = "profile_updated";
    pub const ACCOUNT_DELETED: &str = "account_deleted";
    pub const INVITE_CREATED: &str = "invite_created";
    pub const ADMIN_AUTH_FAILED: &str = "admin_auth_failed";
    pub const ADMIN_KEY_ROTATED: &str = "admin_key_rotated";
    pub const ADMIN_KEY_IMPORTED: &str = "admin_key_imported";
    pub const ADMIN_KEY_RETIRED: &str = "admin_key_retired";
    pub const ADMIN_KEY_REMOVED: &str = "admin_key_removed";
    pub const ADMIN_CLIENT_CREATED: &str = "admin_client_created";
    pub const ADMIN_CLIENT_UPDATED: &str = "admin_client_updated";
    pub const FEDERATION_SIGNUP: &str = "federation_signup";
    pub const FEDERATION_LINKED: &str = "federation_linked";
    pub const FEDERATION_UNLINKED: &str = "federation_unlinked";
    pub const FEDERATION_LINK_REFUSED: &str = "federation_link_refused";
    pub const FEDERATION_FAILED: &str = "federation_failed";
    pub const REFRESH_TOKEN_RETRY: &str = "refresh_token_retry";
    pub const MFA_ENROLMENT_STARTED: &str = "mfa_enrolment_started";
    pub const MFA_FACTOR_ADDED: &str = "mfa_factor_added";
    pub const MFA_FACTOR_REMOVED: &str = "mfa_factor_removed";
    pub const MFA_RESET: &str = "mfa_reset";
    pub const MFA_SUCCEEDED: &str = "mfa_succeeded";
    pub const MFA_FAILED: &str = "mfa_failed";
    pub const MFA_REQUIRED: &str = "mfa_required";
    pub const MFA_ENROLMENT_REQUIRED: &str = "mfa_enrolment_required";
    pub const MFA_ENROLMENT_SKIPPED: &str = "mfa_enrolment_skipped";
    pub const MFA_STEP_UP: &str = "mfa_step_up";
    pub const RECOVERY_CODE_USED: &str = "recovery_code_used";
    pub const RECOVERY_CODES_REGENERATED: &str = "recovery_codes_regenerated";
}

/// Who did what, from where.
#[derive(Debug, Clone, Default)]
pub struct AuditContext<'a> {
    pub user_id: Option<&'a UserId>,
    pub client_id: Option<&'a str>,
    pub origin: Option<&'a RequestOrigin>,
}

pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
}

impl AuditLog {
    pub fn new(store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Records an event. A failed write is logged (with the event) but does not fail the
    /// request: the structured log still carries it.
    pub async fn record(
        &self,
        event: &'static str,
        ctx: AuditContext<'_>,
        detail: serde_json::Map<String, serde_json::Value>,
    ) {
        let e = AuditEvent {
            at: self.clock.now(),
            event: event.to_owned(),
            user_id: ctx.user_id.map(|u| u.as_str().to_owned()),
            client_id: ctx.client_id.map(str::to_owned),
            ip: ctx.origin.map(|o| o.ip.to_string()),
            user_agent: ctx.origin.and_then(|o| o.user_agent.clone()),
            detail,
        };
        let detail_json = serde_json::Value::Object(e.detail.clone()).to_string();
        info!(
            target: "audit",
            event = e.event.as_str(),
            user_id = e.user_id.as_deref(),
            client_id = e.client_id.as_deref(),
            ip = e.ip.as_deref(),
            user_agent = e.user_agent.as_deref(),
            detail = detail_json.as_str(),
            "audit"
        );
        if let Err(err) = self.store.append(&e).await {
            error!(target: "audit", error = %err, event = e.event.as_str(), "audit event not stored");
        }
    }

    pub async fn list(&self, filter: &AuditFilter) -> Result<Vec<LoggedAuditEvent>, StorageError> {
        self.store.list(filter).await
    }

    /// A deleted user's events keep what happened and when, not where from.
    pub async fn scrub_user(&self, user_id: &UserId) -> Result<u64, StorageError> {
        self.store.scrub_user(user_id).await
    }
}

/// A detail object from pairs.
pub fn detail<const N: usize>(
    pairs: [(&str, serde_json::Value); N],
) -> serde_json::Map<String, serde_json::Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
