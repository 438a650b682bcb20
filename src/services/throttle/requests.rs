//! Request limits: per minute on the token, revocation and introspection endpoints
//! (`limit_request`: counted one by one, or in shares leased from the store), and per address
//! and network on sign-up, verification resends, resets and magic links (`limit`).

use std::net::IpAddr;

use super::login::LoginKeys;
use super::{key, Throttle, Throttled};
use crate::domain::{client_network, seconds_until, SlidingWindow};
use crate::storage::{Admission, RateCooldown, RateLimit};

/// Requests limited by count (each call counts one), keyed by address and by IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedAction {
    SignUp,
    VerificationResend,
    PasswordReset,
    MagicLink,
    /// Starting a federated sign-in (each start keeps a single-use state until it expires).
    FederationStart,
}

/// Federated sign-ins one network may start per hour: far above what people behind one
/// address do, low enough that a flood cannot fill the state table.
pub const FEDERATION_STARTS_PER_HOUR: u64 = 120;

impl LimitedAction {
    fn code(self) -> &'static str {
        match self {
            LimitedAction::SignUp => "su",
            LimitedAction::VerificationResend => "vr",
            LimitedAction::PasswordReset => "pr",
            LimitedAction::MagicLink => "ml",
            LimitedAction::FederationStart => "fs",
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

const DAY: u64 = 86_400;
const HOUR: u64 = 3600;

/// Part of a request allowance reserved in the store at once, spent here without a store
/// call per request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lease {
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

/// The daily cap of an address over all networks, as a multiple of its per-network cap.
const ADDRESS_NETWORKS_FACTOR: u64 = 4;

impl Throttle {
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
            LimitedAction::FederationStart => (HOUR, FEDERATION_STARTS_PER_HOUR),
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
