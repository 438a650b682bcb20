//! Brute-force and abuse throttling: failed logins per account+IP pair (exponential back-off,
//! then a temporary lockout), a slower global rate per account (so an attacker elsewhere
//! cannot lock a real user out), a rate per IP, and caps on sign-up, verification resends,
//! reset and magic-link requests. Counters live in Redis when configured (shared by every
//! instance), in process otherwise.
//!
//! (Skeleton: the throttle work replaces the bodies; the signatures are the contract.)

use std::net::IpAddr;

/// A refused attempt: the caller answers 429 with `Retry-After` (or the token endpoint's
/// documented error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts; retry in {retry_after_secs} s")]
pub struct Throttled {
    pub retry_after_secs: u64,
}

/// Requests limited by count (each call counts one), keyed by address and by IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedAction {
    SignUp,
    VerificationResend,
    PasswordReset,
    MagicLink,
}

/// What a recorded failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureOutcome {
    /// Set when this failure started a lockout (for the audit trail): its length.
    pub locked_for_secs: Option<u64>,
}

pub struct Throttle {}

impl Throttle {
    /// Before checking credentials for `account` (a normalised login identifier, whether or
    /// not such an account exists) from `ip`.
    pub async fn check_login(&self, account: &str, ip: IpAddr) -> Result<(), Throttled> {
        let _ = (account, ip);
        Ok(())
    }

    /// After wrong credentials (or a wrong magic code) for `account` from `ip`.
    pub async fn login_failed(&self, account: &str, ip: IpAddr) -> FailureOutcome {
        let _ = (account, ip);
        FailureOutcome::default()
    }

    /// After a successful login: resets the account+IP pair.
    pub async fn login_succeeded(&self, account: &str, ip: IpAddr) {
        let _ = (account, ip);
    }

    /// Counts one `action` request for `address` (normalised email, if the action has one)
    /// from `ip`; refuses it past a cooldown or cap.
    pub async fn limit(
        &self,
        action: LimitedAction,
        address: Option<&str>,
        ip: IpAddr,
    ) -> Result<(), Throttled> {
        let _ = (action, address, ip);
        Ok(())
    }
}
