//! Login throttling: free failures, the back-off, the account and IP limits, admission
//! before the credential check.

use std::sync::Arc;

use latchkey::clock::MockClock;
use latchkey::services::{LimitedAction, Throttle};

use super::{ip, many, parallel_attempts, retry, throttle, HOLD};
use crate::helpers::Backend;

// ---- throttle scenarios ---------------------------------------------------------------

pub(super) async fn free_failures_then_a_doubling_backoff_capped_at_the_lockout(backend: Backend) {
    let (t, clock) = throttle(backend, &[("LATCHKEY_THROTTLE_LOGIN_LOCKOUT_SECS", "60")]).await;
    let (who, from) = ("alice@example.com", ip("198.51.100.7"));
    for _ in 0..5 {
        let attempt = t.check_login(who, from).await.unwrap();
        assert_eq!(
            t.attempt_failed(attempt, who, from).await.locked_for_secs,
            None
        );
    }
    let mut delays = Vec::new();
    for _ in 0..9 {
        let attempt = t.check_login(who, from).await.unwrap();
        let delay = t
            .attempt_failed(attempt, who, from)
            .await
            .locked_for_secs
            .unwrap();
        assert_eq!(retry(t.check_login(who, from).await), delay);
        delays.push(delay);
        clock.advance(i64::try_from(delay).unwrap());
    }
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
}

pub(super) async fn retry_after_counts_down_and_the_lockout_ends_when_the_clock_moves(
    backend: Backend,
) {
    let (t, clock) = throttle(
        backend,
        &[("LATCHKEY_THROTTLE_LOGIN_BACKOFF_BASE_SECS", "30")],
    )
    .await;
    let (who, from) = ("bob@example.com", ip("2001:db8:7:7::1"));
    for _ in 0..5 {
        t.login_failed(who, from).await;
    }
    assert_eq!(t.login_failed(who, from).await.locked_for_secs, Some(30));
    assert_eq!(retry(t.check_login(who, from).await), 30);
    clock.advance(12);
    assert_eq!(retry(t.check_login(who, from).await), 18);
    assert_eq!(
        retry(t.check_login(who, ip("2001:db8:7:7:ffff::2")).await),
        18,
        "the same IPv6 /64"
    );
    assert_eq!(
        retry(t.check_login(who, ip("198.51.100.8")).await),
        0,
        "another IP is another pair"
    );
    assert_eq!(
        retry(t.check_login("carol@example.com", from).await),
        0,
        "another account is another pair"
    );
    clock.advance(18);
    let attempt = t.check_login(who, from).await.unwrap();
    assert_eq!(
        t.attempt_failed(attempt, who, from).await.locked_for_secs,
        Some(60)
    );
    assert_eq!(retry(t.check_login(who, from).await), 60);
}

pub(super) async fn a_success_resets_the_pair_but_not_other_pairs(backend: Backend) {
    let (t, clock) = throttle(backend, &[]).await;
    let who = "dave@example.com";
    let (home, away) = (ip("203.0.113.1"), ip("203.0.113.2"));
    for _ in 0..6 {
        t.login_failed(who, home).await;
        t.login_failed(who, away).await;
    }
    clock.advance(1);
    let _ = t.check_login(who, home).await.unwrap();
    t.login_succeeded(who, home).await;
    for _ in 0..5 {
        assert_eq!(t.login_failed(who, home).await.locked_for_secs, None);
    }
    assert_eq!(t.login_failed(who, home).await.locked_for_secs, Some(1));
    assert_eq!(
        t.login_failed(who, away).await.locked_for_secs,
        Some(2),
        "the other pair kept its count"
    );
}

pub(super) async fn the_account_limit_refuses_a_new_ip_but_not_a_trusted_one(backend: Backend) {
    let (t, clock) = throttle(backend, &[("LATCHKEY_THROTTLE_ACCOUNT_MAX_FAILURES", "10")]).await;
    let who = "erin@example.com";
    let usual = ip("192.0.2.10");
    t.login_succeeded(who, usual).await;
    // A distributed attack: two failures from each of five IPs, below every pair limit.
    for n in 0..5 {
        let attacker = ip(&format!("198.18.0.{n}"));
        for _ in 0..2 {
            let attempt = t.check_login(who, attacker).await.unwrap();
            assert_eq!(
                t.attempt_failed(attempt, who, attacker)
                    .await
                    .locked_for_secs,
                None
            );
        }
    }
    let newcomer = ip("198.18.1.1");
    // At the start of an hour window with 10 counted: allowed again one second into the
    // next window (10 * 3599 / 3600 < 10).
    assert_eq!(retry(t.check_login(who, newcomer).await), 3601);
    let _ = t
        .check_login(who, usual)
        .await
        .expect("the user's usual IP is exempt");
    let _ = t.check_login("frank@example.com", newcomer).await.unwrap();
    clock.advance(3601);
    let _ = t.check_login(who, newcomer).await.unwrap();
    // The trusted IP still has its own pair limit.
    for _ in 0..5 {
        t.login_failed(who, usual).await;
    }
    assert_eq!(t.login_failed(who, usual).await.locked_for_secs, Some(1));
    assert_eq!(retry(t.check_login(who, usual).await), 1);
    // Trust expires.
    let (t, clock) = throttle(
        backend,
        &[
            ("LATCHKEY_THROTTLE_ACCOUNT_MAX_FAILURES", "5"),
            ("LATCHKEY_THROTTLE_TRUSTED_IP_TTL_SECS", "600"),
        ],
    )
    .await;
    t.login_succeeded(who, usual).await;
    for n in 0..5 {
        t.login_failed(who, ip(&format!("198.18.2.{n}"))).await;
    }
    let _ = t.check_login(who, usual).await.unwrap();
    clock.advance(600);
    assert!(t.check_login(who, usual).await.is_err());
}

pub(super) async fn the_ip_limit_spans_accounts(backend: Backend) {
    let (t, _clock) = throttle(backend, &[("LATCHKEY_THROTTLE_IP_MAX_FAILURES", "20")]).await;
    let stuffer = ip("100.64.0.9");
    for n in 0..20 {
        let who = format!("user{n}@example.com");
        let attempt = t.check_login(&who, stuffer).await.unwrap();
        t.attempt_failed(attempt, &who, stuffer).await;
    }
    // 15-minute window, 20 counted at its start: the next window, one second in.
    assert_eq!(
        retry(t.check_login("fresh@example.com", stuffer).await),
        901
    );
    let _ = t
        .check_login("fresh@example.com", ip("100.64.0.10"))
        .await
        .unwrap();
}

pub(super) async fn unknown_accounts_are_throttled_exactly_like_known_ones(backend: Backend) {
    // The throttle never learns whether an account exists: the same sequence gives the
    // same answers for an address with an account and one without.
    async fn run(t: &Throttle, clock: &MockClock, who: &str) -> Vec<String> {
        let from = ip("198.51.100.200");
        let mut seen = Vec::new();
        for _ in 0..8 {
            seen.push(format!("{:?}", t.check_login(who, from).await));
            seen.push(format!("{:?}", t.login_failed(who, from).await));
            clock.advance(1);
        }
        for action in [LimitedAction::PasswordReset, LimitedAction::MagicLink] {
            for _ in 0..3 {
                seen.push(format!("{:?}", t.limit(action, Some(who), from).await));
                clock.advance(20);
            }
        }
        seen
    }
    let (t, clock) = throttle(backend, &[]).await;
    let known = run(&t, &clock, "known@example.com").await;
    let (t, clock) = throttle(backend, &[]).await;
    let unknown = run(&t, &clock, "nobody-here@example.com").await;
    assert_eq!(known, unknown);
    assert!(known.iter().any(|s| s.contains("retry_after_secs")));
}

pub(super) async fn a_disabled_throttle_refuses_nothing(backend: Backend) {
    let (t, _clock) = throttle(backend, &[("LATCHKEY_THROTTLE_ENABLED", "false")]).await;
    let from = ip("192.0.2.1");
    for _ in 0..200 {
        assert_eq!(
            t.login_failed("x@example.com", from).await.locked_for_secs,
            None
        );
        t.limit(LimitedAction::PasswordReset, Some("x@example.com"), from)
            .await
            .unwrap();
    }
    let _ = t.check_login("x@example.com", from).await.unwrap();
}

// ---- admission before the check (security review, finding 2) --------------------------

/// Forty simultaneous attempts for forty accounts from one address, with room for ten: the
/// IP is counted before each credential check, atomically, so exactly ten are admitted.
pub(super) async fn parallel_attempts_from_one_network_never_exceed_the_ip_limit(backend: Backend) {
    let (t, _clock) = throttle(
        backend,
        &[
            ("LATCHKEY_THROTTLE_IP_MAX_FAILURES", "10"),
            ("LATCHKEY_THROTTLE_LOGIN_CONCURRENCY_PER_NETWORK", "64"),
        ],
    )
    .await;
    let t = Arc::new(t);
    let admitted = parallel_attempts(&[t], ip("203.0.113.77"), many, HOLD).await;
    assert_eq!(admitted, 10);
}

pub(super) async fn a_right_password_refunds_the_attempt_counted_against_the_ip(backend: Backend) {
    let (t, _clock) = throttle(backend, &[("LATCHKEY_THROTTLE_IP_MAX_FAILURES", "3")]).await;
    let from = ip("192.0.2.99");
    // An office: many users sign in correctly from one address.
    for n in 0..20 {
        let who = format!("colleague{n}@example.com");
        let attempt = t.check_login(&who, from).await.unwrap();
        t.attempt_succeeded(attempt, &who, from).await;
    }
    // Failures still count: three, then the address is refused.
    for n in 0..3 {
        let who = format!("guess{n}@example.com");
        let attempt = t.check_login(&who, from).await.unwrap();
        assert_eq!(
            t.attempt_failed(attempt, &who, from).await.locked_for_secs,
            None
        );
    }
    assert!(retry(t.check_login("another@example.com", from).await) > 0);
}
