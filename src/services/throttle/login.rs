//! Login admission: the attempt counted against its network before the credential check,
//! the account and network places held meanwhile (`LoginGuard`), and what its outcome
//! records: back-off and lockout on failure; on success a refund, a reset and a trusted IP.

use std::net::IpAddr;
use std::sync::Arc;

use super::{key, Throttle, Throttled};
use crate::clock::UnixTime;
use crate::crypto::sha256_hex;
use crate::domain::{client_network, login_backoff, seconds_until};
use crate::storage::RateWindow;

/// What a recorded failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureOutcome {
    /// Set when this failure started a lockout (for the audit trail): its length.
    pub locked_for_secs: Option<u64>,
}

/// The keys of one login attempt.
pub(super) struct LoginKeys {
    pair: String,
    pair_lock: String,
    pub(super) trusted: String,
    account: String,
    ip: String,
}

impl LoginKeys {
    pub(super) fn new(account: &str, ip: IpAddr) -> Self {
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

/// Semaphores per key (an account, a network), created on first use and pruned when idle.
pub(super) type InFlight =
    std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>;

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

/// How long an attempt waits for the one before it on the same account.
const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Idle entries of the in-flight map are pruned past this size.
const IN_FLIGHT_PRUNE_AT: usize = 1024;

impl Throttle {
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
}
