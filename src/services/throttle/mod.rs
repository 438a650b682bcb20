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

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use crate::clock::{Clock, UnixTime};
use crate::crypto::sha256_hex;
use crate::domain::{client_network, login_backoff, seconds_until, SlidingWindow, WindowCounts};
use crate::storage::{
    Admission, RateCooldown, RateLimit, RateLimitError, RateLimitStore, RateSnapshot, RateWindow,
};

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

impl LimitedAction {
    fn code(self) -> &'static str {
        match self {
            LimitedAction::SignUp => "su",
            LimitedAction::VerificationResend => "vr",
            LimitedAction::PasswordReset => "pr",
            LimitedAction::MagicLink => "ml",
        }
    }
}

/// Requests limited per minute on the token, revocation and introspection endpoints, keyed
/// by what they concern (README, Brute-force protection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestLimit {
    /// A refresh grant, per session (the refresh-token family, which is one user's):
    /// counted before any database work.
    Session,
    /// A revocation, per subject of the revoked token (a user, or a client for its own
    /// client_credentials tokens).
    Subject,
    /// A token request, per client.
    Client,
    /// A revocation request, per client.
    Revocations,
    /// An introspection request, per client.
    Introspections,
}

impl RequestLimit {
    fn code(self) -> &'static str {
        match self {
            RequestLimit::Session => "rs",
            RequestLimit::Subject => "ru",
            RequestLimit::Client => "rc",
            RequestLimit::Revocations => "rv",
            RequestLimit::Introspections => "ri",
        }
    }
}

/// The key of a client for the request limits: a confidential client is one caller; a
/// public client (no secret: anyone can name it) counts per network, so one abuser cannot
/// spend a popular app's allowance for everyone.
pub fn client_key(client_id: &str, confidential: bool, ip: IpAddr) -> String {
    if confidential {
        client_id.to_owned()
    } else {
        format!("{client_id}\u{0}{}", client_network(ip))
    }
}

/// What a recorded failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureOutcome {
    /// Set when this failure started a lockout (for the audit trail): its length.
    pub locked_for_secs: Option<u64>,
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

const DAY: u64 = 86_400;
const HOUR: u64 = 3600;
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

/// The keys of one login attempt.
struct LoginKeys {
    pair: String,
    pair_lock: String,
    trusted: String,
    account: String,
    ip: String,
}

impl LoginKeys {
    fn new(account: &str, ip: IpAddr) -> Self {
        let net = client_network(ip);
        Self {
            pair: key("lp", &[account, &net]),
            pair_lock: key("ll", &[account, &net]),
            trusted: key("lt", &[account, &net]),
            account: key("la", &[account]),
            ip: key("li", &[&net]),
        }
    }
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

/// Part of a request allowance reserved in the store at once, spent here without a store
/// call per request.
#[derive(Debug, Clone, Copy)]
struct Lease {
    /// The minute window it was reserved in; a lease does not outlive it.
    window: i64,
    left: u64,
}

/// A large allowance is reserved in shares of 1/`LEASE_SHARES`: limits of 128 or more a
/// minute cost one store call per share instead of one per request.
const LEASE_SHARES: u64 = 64;
/// Leases of past windows are dropped past this many entries; when it is full of current
/// ones, requests go to the store one by one.
const LEASES_MAX: usize = 16_384;

/// Semaphores per key (an account, a network), created on first use and pruned when idle.
type InFlight = std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>;

/// An admitted login attempt, from `check_login` until its outcome is recorded
/// (`attempt_failed`, `attempt_succeeded`).
///
/// - At most `login_concurrency` attempts for one account are checked at once on each
///   instance, so a burst of parallel guesses cannot all pass the check before the first
///   failure is counted (each waits, then sees the failures before it); the account limits
///   are overshot by at most `login_concurrency - 1` guesses per instance.
/// - At most `network_concurrency` attempts from one network are checked at once on each
///   instance (the argon2 work one network can queue).
/// - The attempt was counted in its network's window before the credential check (one
///   atomic admission in the store, shared by every instance with Redis): parallel attempts
///   across many accounts cannot pass the per-IP limit together, and the attempts one
///   network has in flight over all instances never exceed `ip_max_failures`. A success
///   refunds it, so the per-IP limit counts failures (and attempts in flight).
#[must_use = "hold the guard until the attempt's outcome is recorded"]
pub struct LoginGuard {
    _account: Option<tokio::sync::OwnedSemaphorePermit>,
    _network: Option<tokio::sync::OwnedSemaphorePermit>,
    /// When the attempt was counted in its network's window (`None`: throttle disabled).
    counted_at: Option<UnixTime>,
}

/// An admin-API request admitted by `check_admin`: counted against its network until its
/// token proves right (`admin_succeeded`).
#[must_use = "report a right token with admin_succeeded"]
#[derive(Debug)]
pub struct AdminAttempt {
    key: String,
    counted_at: Option<UnixTime>,
}

impl LoginGuard {
    /// A guard that holds nothing and counted nothing (throttle disabled).
    fn free() -> Self {
        Self {
            _account: None,
            _network: None,
            counted_at: None,
        }
    }
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginGuard")
    }
}

/// The daily cap of an address over all networks, as a multiple of its per-network cap.
const ADDRESS_NETWORKS_FACTOR: u64 = 4;

/// How long an attempt waits for the one before it on the same account.
const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Idle entries of the in-flight map are pruned past this size.
const IN_FLIGHT_PRUNE_AT: usize = 1024;

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

    /// Spends one request of a lease for `key` reserved in `window`, if this instance holds
    /// one.
    fn spend_lease(&self, key: &str, window: i64) -> bool {
        let Ok(mut leases) = self.leases.lock() else {
            return false;
        };
        match leases.get_mut(key) {
            Some(l) if l.window == window && l.left > 0 => {
                l.left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Keeps `left` requests of a share just reserved for `key` in `window`.
    fn keep_lease(&self, key: &str, window: i64, left: u64) {
        let Ok(mut leases) = self.leases.lock() else {
            return;
        };
        if leases.len() >= LEASES_MAX {
            leases.retain(|_, l| l.window >= window && l.left > 0);
            if leases.len() >= LEASES_MAX {
                return;
            }
        }
        leases.insert(key.to_owned(), Lease { window, left });
    }

    /// Waits for one of the `permits` places of `key` in `map` on this instance (at most
    /// `IN_FLIGHT_WAIT`, then a 1 s `Retry-After`).
    async fn take_place(
        map: &InFlight,
        key: &str,
        permits: usize,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, Throttled> {
        let lock = {
            let Ok(mut map) = map.lock() else {
                return Err(Throttled {
                    retry_after_secs: 1,
                });
            };
            if map.len() >= IN_FLIGHT_PRUNE_AT {
                map.retain(|_, l| Arc::strong_count(l) > 1);
            }
            map.entry(sha256_hex(key.as_bytes()))
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(permits.max(1))))
                .clone()
        };
        match tokio::time::timeout(IN_FLIGHT_WAIT, lock.acquire_owned()).await {
            Ok(Ok(held)) => Ok(held),
            _ => Err(Throttled {
                retry_after_secs: 1,
            }),
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

    /// Before checking credentials for `account` (a normalised login identifier, whether or
    /// not such an account exists) from `ip`: admits the attempt or refuses it.
    /// Hold the returned guard until `attempt_failed` or `attempt_succeeded` was called with
    /// it (a guard dropped without an outcome leaves the attempt counted against the IP).
    pub async fn check_login(&self, account: &str, ip: IpAddr) -> Result<LoginGuard, Throttled> {
        if !self.policy.enabled {
            return Ok(LoginGuard::free());
        }
        // The network's place first: an attacker waiting for places holds only its own
        // network's, never those of the accounts it targets.
        let network = Self::take_place(
            &self.in_flight_networks,
            &client_network(ip),
            self.policy.network_concurrency,
        )
        .await?;
        let held =
            Self::take_place(&self.in_flight, account, self.policy.login_concurrency).await?;
        let now = self.clock.now();
        let k = LoginKeys::new(account, ip);
        let (account_w, ip_w) = (self.account_window(), self.ip_window());
        let windows = [RateWindow {
            key: &k.account,
            window: account_w,
        }];
        let snap = self
            .read(&windows, &[&k.pair_lock, &k.trusted], now)
            .await
            .map_err(|e| Self::unavailable(&e))?;
        let count = |i: usize| snap.counts.get(i).copied().unwrap_or_default();
        let mark = |i: usize| snap.marks.get(i).copied().flatten();
        let mut retry = mark(0).map_or(0, |until| seconds_until(until, now));
        if mark(1).is_none() {
            retry =
                retry.max(account_w.retry_after(count(0), self.policy.account_max_failures, now));
        }
        if retry > 0 {
            return Err(Throttled {
                retry_after_secs: retry,
            });
        }
        // Counted before the credential check, atomically with the test of the limit.
        self.admit_one(&k.ip, ip_w, self.policy.ip_max_failures, now)
            .await?;
        Ok(LoginGuard {
            _account: Some(held),
            _network: Some(network),
            counted_at: Some(now),
        })
    }

    /// The admitted attempt `guard` failed (wrong credentials, or a wrong magic code): the
    /// account+IP pair and the account count it (the IP counted it at admission).
    pub async fn attempt_failed(
        &self,
        guard: LoginGuard,
        account: &str,
        ip: IpAddr,
    ) -> FailureOutcome {
        match guard.counted_at {
            Some(_) => self.count_failure(account, ip, false).await,
            None => self.login_failed(account, ip).await,
        }
    }

    /// The admitted attempt `guard` presented the right credentials (whether or not tokens
    /// follow): its count against the IP is refunded, and the pair is reset and trusted
    /// (`login_succeeded`).
    pub async fn attempt_succeeded(&self, guard: LoginGuard, account: &str, ip: IpAddr) {
        if let Some(counted_at) = guard.counted_at {
            let now = self.clock.now();
            let k = LoginKeys::new(account, ip);
            let window = RateWindow {
                key: &k.ip,
                window: self.ip_window(),
            };
            if let Err(e) = self.refund(window, counted_at, now).await {
                tracing::error!(error = %e, "throttle: a successful login could not be refunded");
            }
        }
        drop(guard);
        self.login_succeeded(account, ip).await;
    }

    /// Wrong credentials (or a wrong magic code) for `account` from `ip` in an attempt that
    /// was not admitted by `check_login`: counted against the pair, the account and the IP.
    pub async fn login_failed(&self, account: &str, ip: IpAddr) -> FailureOutcome {
        self.count_failure(account, ip, true).await
    }

    async fn count_failure(&self, account: &str, ip: IpAddr, count_ip: bool) -> FailureOutcome {
        if !self.policy.enabled {
            return FailureOutcome::default();
        }
        let now = self.clock.now();
        let k = LoginKeys::new(account, ip);
        let pair_w = self.login_window();
        let mut windows = vec![
            RateWindow {
                key: &k.pair,
                window: pair_w,
            },
            RateWindow {
                key: &k.account,
                window: self.account_window(),
            },
        ];
        if count_ip {
            windows.push(RateWindow {
                key: &k.ip,
                window: self.ip_window(),
            });
        }
        let counts = match self.hit(&windows, now).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "throttle: a failed login could not be counted");
                return FailureOutcome::default();
            }
        };
        let failures = pair_w.estimate(counts.first().copied().unwrap_or_default(), now);
        let p = &self.policy;
        let Some(delay) = login_backoff(
            failures,
            p.login_free_failures,
            p.login_backoff_base_secs,
            p.login_lockout_secs,
        ) else {
            return FailureOutcome::default();
        };
        let until = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX / 4));
        if let Err(e) = self.mark(&k.pair_lock, until, now).await {
            tracing::error!(error = %e, "throttle: a login back-off could not be recorded");
        }
        FailureOutcome {
            locked_for_secs: Some(delay),
        }
    }

    /// After a successful login: resets the account+IP pair, and trusts the pair for
    /// `trusted_ip_ttl_secs` (it may then log in past the account-wide limit).
    pub async fn login_succeeded(&self, account: &str, ip: IpAddr) {
        if !self.policy.enabled {
            return;
        }
        let now = self.clock.now();
        let k = LoginKeys::new(account, ip);
        if let Err(e) = self.clear(&[&k.pair, &k.pair_lock], now).await {
            tracing::error!(error = %e, "throttle: a login could not reset its counters");
        }
        if self.policy.trusted_ip_ttl_secs > 0 {
            let ttl = i64::try_from(self.policy.trusted_ip_ttl_secs).unwrap_or(i64::MAX / 4);
            if let Err(e) = self.mark(&k.trusted, now.saturating_add(ttl), now).await {
                tracing::error!(error = %e, "throttle: a trusted login IP could not be recorded");
            }
        }
    }

    /// Before an admin-API token is checked: counts the request against its network's
    /// allowance of failures (atomically, so parallel guesses cannot pass together), or
    /// refuses it once `admin_max_failures` have failed within `ip_window_secs`.
    pub async fn check_admin(&self, ip: IpAddr) -> Result<AdminAttempt, Throttled> {
        let key = key("ad", &[&client_network(ip)]);
        if !self.policy.enabled {
            return Ok(AdminAttempt {
                key,
                counted_at: None,
            });
        }
        let now = self.clock.now();
        self.admit_one(&key, self.ip_window(), self.policy.admin_max_failures, now)
            .await?;
        Ok(AdminAttempt {
            key,
            counted_at: Some(now),
        })
    }

    /// The admin token was right: the request's count is taken back.
    pub async fn admin_succeeded(&self, attempt: AdminAttempt) {
        if let Some(counted_at) = attempt.counted_at {
            let now = self.clock.now();
            let window = RateWindow {
                key: &attempt.key,
                window: self.ip_window(),
            };
            if let Err(e) = self.refund(window, counted_at, now).await {
                tracing::error!(error = %e, "throttle: an admin request could not be refunded");
            }
        }
    }

    /// Counts one request of `kind` for `id` (a session, subject or client key); refuses it
    /// past the limit per minute. A refused request is not counted.
    ///
    /// Limits of at least 2 x `LEASE_SHARES` a minute are reserved in shares (1/64 of the limit,
    /// counted in the store at once, atomically like a single request) that this instance
    /// then spends without a store call; a share does not outlive its minute window. The
    /// limit is never exceeded over all instances; an instance may leave up to one share
    /// unspent (counted, unused), so a client is refused at most one share early. When a
    /// whole share no longer fits, requests are counted one by one until the limit.
    pub async fn limit_request(&self, kind: RequestLimit, id: &str) -> Result<(), Throttled> {
        let p = &self.policy;
        let per_minute = match kind {
            RequestLimit::Session | RequestLimit::Subject => p.user_requests_per_minute,
            RequestLimit::Client => p.client_requests_per_minute,
            RequestLimit::Revocations => p.revocations_per_client_per_minute,
            RequestLimit::Introspections => p.introspections_per_client_per_minute,
        };
        if !p.enabled || per_minute == 0 {
            return Ok(());
        }
        let now = self.clock.now();
        let window = SlidingWindow::new(60);
        let share = per_minute / LEASE_SHARES;
        // The lease is found by kind and id as given (this process's memory only), so that
        // spending one costs no hashing; the store key is derived when a share is reserved.
        let lease_key = format!("{}\u{0}{id}", kind.code());
        if share > 1 && self.spend_lease(&lease_key, window.index(now)) {
            return Ok(());
        }
        let key = key(kind.code(), &[id]);
        if share > 1 {
            let index = window.index(now);
            let reserve = [RateLimit {
                key: &key,
                window,
                limit: per_minute,
                cost: share,
            }];
            match self.admit(&reserve, &[], now).await {
                Ok(Admission::Admitted) => {
                    self.keep_lease(&lease_key, index, share - 1);
                    return Ok(());
                }
                Ok(Admission::Refused(_)) => {}
                Err(e) => return Err(Self::unavailable(&e)),
            }
        }
        self.admit_one(&key, window, per_minute, now).await
    }

    /// Counts one `action` request for `address` (normalised email, if the action has one)
    /// from `ip`; refuses it past a cooldown or cap. A refused request is not counted, so
    /// `retry_after_secs` holds: a request then is allowed (unless others came meanwhile).
    pub async fn limit(
        &self,
        action: LimitedAction,
        address: Option<&str>,
        ip: IpAddr,
    ) -> Result<(), Throttled> {
        if !self.policy.enabled {
            return Ok(());
        }
        let now = self.clock.now();
        let p = &self.policy;
        let code = action.code();
        let net = client_network(ip);
        let (ip_window, ip_cap) = match action {
            LimitedAction::SignUp => (HOUR, p.signup_per_ip_per_hour),
            _ => (DAY, p.ip_daily_cap),
        };
        let ip_key = key(&format!("{code}i"), &[&net]);
        // Per address: a cooldown, a daily cap per (address, network), and a wider daily cap
        // over all networks (mail bombing) that networks the account signed in from are
        // exempt from, so a stranger who exhausts it cannot cut the owner off from resets
        // and magic links (README, Brute-force protection).
        let address_keys = address.map(|a| {
            (
                key(&format!("{code}a"), &[a, &net]),
                key(&format!("{code}c"), &[a]),
                key(&format!("{code}g"), &[a]),
            )
        });
        let trusted = match address {
            Some(a) => {
                let trusted_key = LoginKeys::new(a, ip).trusted;
                self.read(&[], &[&trusted_key], now)
                    .await
                    .map(|snap| snap.marks.first().copied().flatten().is_some())
                    .unwrap_or(false)
            }
            None => false,
        };
        let mut limits = vec![RateLimit {
            key: &ip_key,
            window: SlidingWindow::new(ip_window),
            limit: ip_cap,
            cost: 1,
        }];
        let mut cooldowns = Vec::new();
        if let Some((daily, cooldown, all_networks)) = &address_keys {
            limits.push(RateLimit {
                key: daily,
                window: SlidingWindow::new(DAY),
                limit: p.email_daily_cap,
                cost: 1,
            });
            if !trusted {
                limits.push(RateLimit {
                    key: all_networks,
                    window: SlidingWindow::new(DAY),
                    limit: p.email_daily_cap.saturating_mul(ADDRESS_NETWORKS_FACTOR),
                    cost: 1,
                });
            }
            if p.email_cooldown_secs > 0 {
                let secs = i64::try_from(p.email_cooldown_secs).unwrap_or(i64::MAX / 4);
                cooldowns.push(RateCooldown {
                    key: cooldown,
                    until: now.saturating_add(secs),
                });
            }
        }
        let snap = match self.admit(&limits, &cooldowns, now).await {
            Ok(Admission::Admitted) => return Ok(()),
            Ok(Admission::Refused(snap)) => snap,
            Err(e) => return Err(Self::unavailable(&e)),
        };
        let counters = limits
            .iter()
            .zip(&snap.counts)
            .map(|(l, c)| l.window.retry_after(*c, l.limit, now));
        let marks = snap
            .marks
            .iter()
            .flatten()
            .map(|until| seconds_until(*until, now));
        let retry = counters.chain(marks).max().unwrap_or(1).max(1);
        Err(Throttled {
            retry_after_secs: retry,
        })
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
