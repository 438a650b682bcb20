//! Brute-force and abuse throttling: failed logins per account+IP pair (exponential back-off,
//! then a temporary lockout), a slower global rate per account (so an attacker elsewhere
//! cannot lock a real user out), a rate per IP, and caps on sign-up, verification resends,
//! reset and magic-link requests. Counters live in Redis when configured (shared by every
//! instance), in process otherwise.
//!
//! Rules (defaults in `ThrottlePolicy::default`, README "Brute-force protection"):
//! - **Account+IP pair.** After `login_free_failures` failures within `login_window_secs`,
//!   each further failure refuses the pair for `login_backoff_base_secs`, doubling per
//!   failure, at most `login_lockout_secs`. A successful login resets the pair.
//! - **Account, over every IP.** Past `account_max_failures` per `account_window_secs`, the
//!   account refuses logins until the window has slid, except from an IP that logged in to
//!   it successfully within `trusted_ip_ttl_secs`. This is the answer to "an attacker on other
//!   IPs locks the real user out": the limit stops a distributed guessing attack on one
//!   account, while the user's usual devices (the IPs they logged in from) keep working.
//!   Trusted IPs keep their own pair limit.
//! - **IP, over every account** (credential stuffing): `ip_max_failures` per
//!   `ip_window_secs`. IPv6 addresses count by their /64. An attempt is counted against
//!   its network atomically *before* its credentials are checked and refunded when they
//!   prove right, so parallel attempts cannot pass the limit together (see `LoginGuard`).
//! - **Requests** on the token, revocation and introspection endpoints (`limit_request`):
//!   per session, subject and client, per minute.
//! - **Admin API** (`check_admin`): failed authentications per network.
//! - **Requests** (`limit`): per address and action, a cooldown between two requests and a
//!   daily cap; per IP and action, a daily cap (sign-up: an hourly one). A sign-up for an
//!   address that already has an account mails its owner, so the address rules apply to it
//!   too: nobody can flood an inbox through any of the four actions.
//!
//! Identifiers are hashed (SHA-256, truncated) before they become store keys: the stores
//! hold no email or IP address. Whether an account exists plays no part: an unknown account
//! is counted and locked exactly like a real one.
//!
//! When the shared store fails, the throttle uses this instance's in-process store (limits
//! keep working, per instance) and warns once; it probes the shared store again every
//! second of clock time and goes back to it when it answers. Counts made during the outage
//! stay in process.
//!
//! This file holds the policy, the store keys and the shared store with its fallback;
//! `login.rs` admits logins, `requests.rs` limits requests, `admin.rs` limits the admin API.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use crate::clock::{Clock, UnixTime};
use crate::crypto::sha256_hex;
use crate::domain::{SlidingWindow, WindowCounts};
use crate::storage::{
    Admission, RateCooldown, RateLimit, RateLimitError, RateLimitStore, RateSnapshot, RateWindow,
};

mod admin;
mod login;
mod requests;

pub use admin::AdminAttempt;
pub use login::{FailureOutcome, LoginGuard};
pub use requests::{client_key, LimitedAction, RequestLimit, FEDERATION_STARTS_PER_HOUR};

use login::InFlight;
use requests::Lease;

/// A refused attempt: the caller answers 429 with `Retry-After` (or the token endpoint's
/// documented error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts; retry in {retry_after_secs} s")]
pub struct Throttled {
    pub retry_after_secs: u64,
}

/// The limits (README, Brute-force protection). Built from `throttle.*` at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// `false`: every check passes and nothing is counted.
    pub enabled: bool,
    pub login_free_failures: u64,
    pub login_window_secs: u64,
    pub login_backoff_base_secs: u64,
    pub login_lockout_secs: u64,
    pub account_max_failures: u64,
    pub account_window_secs: u64,
    /// 0: no IP is ever exempt from the account-wide limit.
    pub trusted_ip_ttl_secs: u64,
    pub ip_max_failures: u64,
    pub ip_window_secs: u64,
    /// 0: no cooldown.
    pub email_cooldown_secs: u64,
    pub email_daily_cap: u64,
    pub ip_daily_cap: u64,
    pub signup_per_ip_per_hour: u64,
    /// Credential checks for one account in flight at once on this instance.
    pub login_concurrency: usize,
    /// Credential checks from one network (IPv4 address, IPv6 /64) in flight at once on this
    /// instance.
    pub network_concurrency: usize,
    /// Failed admin-API authentications per IP (IPv6: per /64) within `ip_window_secs`.
    pub admin_max_failures: u64,
    /// Refresh grants per session and revocations per subject, per minute (0: no limit).
    pub user_requests_per_minute: u64,
    /// Token requests per client (a public client: per client and network), per minute.
    pub client_requests_per_minute: u64,
    /// Revocation requests per client (a public client: per client and network), per minute.
    pub revocations_per_client_per_minute: u64,
    /// Introspection requests per client, per minute.
    pub introspections_per_client_per_minute: u64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            login_free_failures: 5,
            login_window_secs: 900,
            login_backoff_base_secs: 1,
            login_lockout_secs: 900,
            account_max_failures: 50,
            account_window_secs: 3600,
            trusted_ip_ttl_secs: 30 * 86_400,
            ip_max_failures: 100,
            ip_window_secs: 900,
            email_cooldown_secs: 60,
            email_daily_cap: 5,
            ip_daily_cap: 50,
            signup_per_ip_per_hour: 10,
            login_concurrency: 2,
            network_concurrency: 8,
            admin_max_failures: 10,
            user_requests_per_minute: 60,
            client_requests_per_minute: 30_000,
            revocations_per_client_per_minute: 1_200,
            introspections_per_client_per_minute: 300_000,
        }
    }
}

/// Clock seconds between two probes of a shared store that failed.
const PROBE_EVERY_SECS: i64 = 1;
/// `down_since` while the shared store is healthy.
const UP: i64 = i64::MIN;

/// An opaque store key: a kind and a truncated SHA-256 of the identifiers (128 bits, so
/// collisions are out of reach, and no personal data in the store).
fn key(kind: &str, parts: &[&str]) -> String {
    let mut input = String::from("latchkey-throttle");
    for p in std::iter::once(&kind).chain(parts) {
        input.push('\0');
        input.push_str(p);
    }
    let digest = sha256_hex(input.as_bytes());
    format!("{kind}:{}", digest.get(..32).unwrap_or(&digest))
}

pub struct Throttle {
    store: Arc<dyn RateLimitStore>,
    fallback: Arc<dyn RateLimitStore>,
    clock: Arc<dyn Clock>,
    policy: ThrottlePolicy,
    /// Clock time the shared store last failed, or `UP`.
    down_since: AtomicI64,
    /// Clock time of the last probe of a failed shared store.
    last_probe: AtomicI64,
    /// Whether the outage was reported (once per outage).
    warned: AtomicBool,
    /// Credential checks in flight per account on this instance (see `LoginGuard`).
    in_flight: InFlight,
    /// Credential checks in flight per network on this instance.
    in_flight_networks: InFlight,
    /// Shares of large request allowances this instance reserved in the store (see
    /// `limit_request`).
    leases: std::sync::Mutex<std::collections::HashMap<String, Lease>>,
}

/// Runs one store call on the shared store, or on the fallback while the shared store is
/// down (or when it just failed).
macro_rules! on_store {
    ($self:ident, $now:expr, $store:ident => $call:expr) => {{
        let mut answer = None;
        if $self.shared_usable($now) {
            let $store = &*$self.store;
            match $call.await {
                Ok(v) => {
                    $self.shared_answered();
                    answer = Some(Ok(v));
                }
                Err(e) => $self.shared_failed(&e, $now),
            }
        }
        match answer {
            Some(a) => a,
            None => {
                let $store = &*$self.fallback;
                $call.await
            }
        }
    }};
}

impl Throttle {
    /// `store` holds the counters (Redis, or the in-process store); `fallback` is this
    /// instance's in-process store, used while `store` fails (it may be `store` itself).
    pub fn new(
        store: Arc<dyn RateLimitStore>,
        fallback: Arc<dyn RateLimitStore>,
        clock: Arc<dyn Clock>,
        policy: ThrottlePolicy,
    ) -> Self {
        Self {
            store,
            fallback,
            clock,
            policy,
            down_since: AtomicI64::new(UP),
            last_probe: AtomicI64::new(UP),
            warned: AtomicBool::new(false),
            in_flight: std::sync::Mutex::new(std::collections::HashMap::new()),
            in_flight_networks: std::sync::Mutex::new(std::collections::HashMap::new()),
            leases: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// Whether the shared store is being used (false during an outage).
    pub fn shared_store_up(&self) -> bool {
        self.down_since.load(Ordering::SeqCst) == UP
    }

    fn shared_usable(&self, now: UnixTime) -> bool {
        if self.shared_store_up() {
            return true;
        }
        // One caller per probe interval tries the shared store; the others use the fallback.
        let last = self.last_probe.load(Ordering::SeqCst);
        now >= last.saturating_add(PROBE_EVERY_SECS)
            && self
                .last_probe
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    fn shared_answered(&self) {
        if self.down_since.swap(UP, Ordering::SeqCst) != UP
            && self.warned.swap(false, Ordering::SeqCst)
        {
            tracing::info!(
                store = self.store.name(),
                "throttle: the shared rate-limit store answers again; using it"
            );
        }
    }

    fn shared_failed(&self, error: &RateLimitError, now: UnixTime) {
        let _ = self
            .down_since
            .compare_exchange(UP, now, Ordering::SeqCst, Ordering::SeqCst);
        self.last_probe.store(now, Ordering::SeqCst);
        if !self.warned.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                store = self.store.name(),
                error = %error,
                "throttle: the shared rate-limit store is unavailable; counting in process \
                 (per instance) until it answers"
            );
        }
    }

    async fn read(
        &self,
        windows: &[RateWindow<'_>],
        marks: &[&str],
        now: UnixTime,
    ) -> Result<RateSnapshot, RateLimitError> {
        on_store!(self, now, s => s.read(windows, marks, now))
    }

    async fn hit(
        &self,
        windows: &[RateWindow<'_>],
        now: UnixTime,
    ) -> Result<Vec<WindowCounts>, RateLimitError> {
        on_store!(self, now, s => s.hit(windows, now))
    }

    async fn admit(
        &self,
        limits: &[RateLimit<'_>],
        cooldowns: &[RateCooldown<'_>],
        now: UnixTime,
    ) -> Result<Admission, RateLimitError> {
        on_store!(self, now, s => s.admit(limits, cooldowns, now))
    }

    async fn mark(&self, key: &str, until: UnixTime, now: UnixTime) -> Result<(), RateLimitError> {
        on_store!(self, now, s => s.mark(key, until, now))
    }

    async fn clear(&self, keys: &[&str], now: UnixTime) -> Result<(), RateLimitError> {
        on_store!(self, now, s => s.clear(keys))
    }

    async fn refund(
        &self,
        window: RateWindow<'_>,
        counted_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), RateLimitError> {
        on_store!(self, now, s => s.refund(window, counted_at, now))
    }

    fn login_window(&self) -> SlidingWindow {
        SlidingWindow::new(self.policy.login_window_secs)
    }

    fn account_window(&self) -> SlidingWindow {
        SlidingWindow::new(self.policy.account_window_secs)
    }

    fn ip_window(&self) -> SlidingWindow {
        SlidingWindow::new(self.policy.ip_window_secs)
    }

    /// Counts one event in `key` if `limit` allows it within `window` (one atomic admission);
    /// the refusal carries the time until it would be allowed.
    async fn admit_one(
        &self,
        key: &str,
        window: SlidingWindow,
        limit: u64,
        now: UnixTime,
    ) -> Result<(), Throttled> {
        let one = [RateLimit {
            key,
            window,
            limit,
            cost: 1,
        }];
        match self.admit(&one, &[], now).await {
            Ok(Admission::Admitted) => Ok(()),
            Ok(Admission::Refused(snap)) => {
                let counts = snap.counts.first().copied().unwrap_or_default();
                Err(Throttled {
                    retry_after_secs: window.retry_after(counts, limit, now).max(1),
                })
            }
            Err(e) => Err(Self::unavailable(&e)),
        }
    }

    /// Neither store answers (a poisoned in-process lock: a bug). Refusing is the safe side.
    fn unavailable(error: &RateLimitError) -> Throttled {
        tracing::error!(error = %error, "throttle: no rate-limit store answers; refusing");
        Throttled {
            retry_after_secs: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_opaque_and_distinct_per_kind_and_identifier() {
        let a = key("la", &["alice@example.com"]);
        assert!(!a.contains("alice") && a.starts_with("la:") && a.len() == 3 + 32);
        assert_ne!(a, key("la", &["bob@example.com"]));
        assert_ne!(a, key("lp", &["alice@example.com"]));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(key("lp", &["ab", "c"]), key("lp", &["a", "bc"]));
    }
}
