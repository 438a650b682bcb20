//! Brute-force throttling: the `RateLimitStore` contract checked against each adapter
//! (memory, Redis), and the `Throttle` scenarios on each store, with a mock clock: the Redis
//! axis of the backend matrix. Test names are `throttle::<store>::<scenario>`. Redis tests
//! fail loudly when Redis is unreachable.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey::clock::{Clock, MockClock};
use latchkey::config::Settings;
use latchkey::domain::{SlidingWindow, WindowCounts};
use latchkey::services::{LimitedAction, Throttle, Throttled};
use latchkey::storage::memory::MemoryRateLimitStore;
use latchkey::storage::redis::{RedisRateLimitStore, RedisSettings};
use latchkey::storage::{
    Admission, RateCooldown, RateLimit, RateLimitStore, RateSnapshot, RateWindow,
};

use crate::helpers::{redis_env, redis_url, require_redis, Backend};
use crate::scenarios;

scenarios!(
    redis:
    store_counts_per_window_and_slides_with_the_callers_clock,
    store_admits_only_when_every_limit_and_cooldown_allows,
    store_marks_keep_the_longer_and_expire_by_the_callers_clock,
    store_clear_forgets_counters_and_marks,
    free_failures_then_a_doubling_backoff_capped_at_the_lockout,
    retry_after_counts_down_and_the_lockout_ends_when_the_clock_moves,
    a_success_resets_the_pair_but_not_other_pairs,
    the_account_limit_refuses_a_new_ip_but_not_a_trusted_one,
    the_ip_limit_spans_accounts,
    an_address_cooldown_and_daily_cap_per_action,
    ip_caps_per_action_and_the_hourly_signup_cap,
    unknown_accounts_are_throttled_exactly_like_known_ones,
    a_disabled_throttle_refuses_nothing,
    parallel_attempts_from_one_network_never_exceed_the_ip_limit,
    a_right_password_refunds_the_attempt_counted_against_the_ip,
    store_refunds_from_the_window_that_counted,
    request_limits_count_per_minute_and_key,
    admin_failures_are_counted_before_the_check_and_refunded_on_success,
    store_admits_several_events_at_once_only_when_all_fit,
    large_request_limits_are_reserved_in_shares_and_never_exceeded,
);

/// The throttle uses no database: its tests run on the Redis axis of the matrix.
const MEMORY: Backend = Backend::named(&Backend::STORES, "memory");
const REDIS: Backend = Backend::named(&Backend::STORES, "redis");

/// Aligned to a day (so to every window the tests use): window arithmetic is easy to follow.
const T0: i64 = 1_800_057_600;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn unique_prefix() -> String {
    format!("lk_test_{}:", uuid::Uuid::new_v4().simple())
}

async fn raw_store(backend: Backend) -> Arc<dyn RateLimitStore> {
    if !backend.redis {
        return Arc::new(MemoryRateLimitStore::new(10_000));
    }
    let url = redis_url();
    require_redis(&url).await;
    Arc::new(
        RedisRateLimitStore::new(
            &url,
            &RedisSettings {
                key_prefix: unique_prefix(),
                timeout: Duration::from_secs(2),
            },
        )
        .unwrap(),
    )
}

fn settings(env: &[(&str, &str)]) -> Settings {
    Settings::load(
        None,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap()
}

/// A throttle built as start-up builds it, on `backend`'s store, with a mock clock at `T0`.
async fn throttle(backend: Backend, extra: &[(&str, &str)]) -> (Throttle, Arc<MockClock>) {
    let mut env = redis_env(backend).await;
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let clock = Arc::new(MockClock::new(T0));
    let t = latchkey::startup::build_throttle(&settings(&env), clock.clone()).unwrap();
    (Arc::try_unwrap(t).ok().unwrap(), clock)
}

fn counts(current: u64, previous: u64) -> WindowCounts {
    WindowCounts { current, previous }
}

fn retry<T>(r: Result<T, Throttled>) -> u64 {
    r.err().map_or(0, |t| t.retry_after_secs)
}

// ---- the store contract ---------------------------------------------------------------

async fn store_counts_per_window_and_slides_with_the_callers_clock(backend: Backend) {
    let s = raw_store(backend).await;
    let w = SlidingWindow::new(60);
    let a = RateWindow {
        key: "a",
        window: w,
    };
    let b = RateWindow {
        key: "b",
        window: w,
    };
    assert_eq!(s.hit(&[a], T0).await.unwrap(), vec![counts(1, 0)]);
    assert_eq!(
        s.hit(&[a, b], T0 + 59).await.unwrap(),
        vec![counts(2, 0), counts(1, 0)]
    );
    let read = |now| {
        let s = s.clone();
        async move { s.read(&[a, b], &[], now).await.unwrap().counts }
    };
    assert_eq!(read(T0 + 30).await, vec![counts(2, 0), counts(1, 0)]);
    assert_eq!(
        read(T0 + 60).await,
        vec![counts(0, 2), counts(0, 1)],
        "next window"
    );
    assert_eq!(read(T0 + 120).await, vec![counts(0, 0), counts(0, 0)]);
    assert_eq!(
        s.hit(&[a], T0 + 61).await.unwrap(),
        vec![counts(1, 2)],
        "the current window becomes the previous one"
    );
    assert_eq!(
        s.hit(&[a], T0 + 1000).await.unwrap(),
        vec![counts(1, 0)],
        "long after"
    );
    assert_eq!(s.read(&[], &[], T0).await.unwrap(), RateSnapshot::default());
}

async fn store_admits_only_when_every_limit_and_cooldown_allows(backend: Backend) {
    let s = raw_store(backend).await;
    let w = SlidingWindow::new(100);
    let tight = RateLimit {
        key: "tight",
        window: w,
        limit: 2,
        cost: 1,
    };
    let loose = RateLimit {
        key: "loose",
        window: w,
        limit: 10,
        cost: 1,
    };
    for _ in 0..2 {
        assert_eq!(
            s.admit(&[tight, loose], &[], T0).await.unwrap(),
            Admission::Admitted
        );
    }
    assert_eq!(
        s.admit(&[tight, loose], &[], T0).await.unwrap(),
        Admission::Refused(RateSnapshot {
            counts: vec![counts(2, 0), counts(2, 0)],
            marks: vec![],
        })
    );
    let loose_w = RateWindow {
        key: "loose",
        window: w,
    };
    assert_eq!(
        s.read(&[loose_w], &[], T0).await.unwrap().counts,
        vec![counts(2, 0)],
        "a refused request counts nowhere"
    );
    // The sliding estimate: at T0 + 150 the previous window (2) weighs 1: 0 + 1 < 2.
    assert_eq!(
        s.admit(&[tight], &[], T0 + 150).await.unwrap(),
        Admission::Admitted
    );
    assert!(matches!(
        s.admit(&[tight], &[], T0 + 150).await.unwrap(),
        Admission::Refused(_)
    ));
    // Cooldowns: refused while the mark lies ahead; set only when admitted.
    let cool = |until| RateCooldown { key: "cool", until };
    assert_eq!(
        s.admit(&[loose], &[cool(T0 + 60)], T0).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        s.admit(&[loose], &[cool(T0 + 90)], T0 + 30).await.unwrap(),
        Admission::Refused(RateSnapshot {
            counts: vec![counts(3, 0)],
            marks: vec![Some(T0 + 60)],
        })
    );
    assert_eq!(
        s.admit(&[loose], &[cool(T0 + 120)], T0 + 60).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        s.read(&[], &["cool"], T0 + 61).await.unwrap().marks,
        vec![Some(T0 + 120)]
    );
    assert_eq!(s.admit(&[], &[], T0).await.unwrap(), Admission::Admitted);
}

async fn store_marks_keep_the_longer_and_expire_by_the_callers_clock(backend: Backend) {
    let s = raw_store(backend).await;
    s.mark("m", T0 + 10, T0).await.unwrap();
    s.mark("m", T0 + 5, T0 + 1).await.unwrap();
    assert_eq!(
        s.read(&[], &["m", "other"], T0 + 2).await.unwrap().marks,
        vec![Some(T0 + 10), None]
    );
    assert_eq!(
        s.read(&[], &["m"], T0 + 10).await.unwrap().marks,
        vec![None],
        "over at its time"
    );
    s.mark("m", T0 + 30, T0 + 20).await.unwrap();
    assert_eq!(
        s.read(&[], &["m"], T0 + 20).await.unwrap().marks,
        vec![Some(T0 + 30)],
        "a past mark is replaced"
    );
}

async fn store_clear_forgets_counters_and_marks(backend: Backend) {
    let s = raw_store(backend).await;
    let w = RateWindow {
        key: "c",
        window: SlidingWindow::new(60),
    };
    s.hit(&[w], T0).await.unwrap();
    s.mark("m", T0 + 60, T0).await.unwrap();
    s.mark("keep", T0 + 60, T0).await.unwrap();
    s.clear(&["c", "m"]).await.unwrap();
    s.clear(&[]).await.unwrap();
    let snap = s.read(&[w], &["m", "keep"], T0).await.unwrap();
    assert_eq!(snap.counts, vec![counts(0, 0)]);
    assert_eq!(snap.marks, vec![None, Some(T0 + 60)]);
}

// ---- throttle scenarios ---------------------------------------------------------------

async fn free_failures_then_a_doubling_backoff_capped_at_the_lockout(backend: Backend) {
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

async fn retry_after_counts_down_and_the_lockout_ends_when_the_clock_moves(backend: Backend) {
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

async fn a_success_resets_the_pair_but_not_other_pairs(backend: Backend) {
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

async fn the_account_limit_refuses_a_new_ip_but_not_a_trusted_one(backend: Backend) {
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

async fn the_ip_limit_spans_accounts(backend: Backend) {
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

async fn an_address_cooldown_and_daily_cap_per_action(backend: Backend) {
    let (t, clock) = throttle(backend, &[]).await;
    let (a, from) = ("grace@example.com", ip("192.0.2.50"));
    let reset = LimitedAction::PasswordReset;
    t.limit(reset, Some(a), from).await.unwrap();
    assert_eq!(retry(t.limit(reset, Some(a), from).await), 60);
    clock.advance(25);
    assert_eq!(
        retry(t.limit(reset, Some(a), from).await),
        35,
        "not counted"
    );
    t.limit(reset, Some("heidi@example.com"), from)
        .await
        .expect("another address");
    t.limit(LimitedAction::MagicLink, Some(a), from)
        .await
        .expect("another action");
    t.limit(LimitedAction::VerificationResend, Some(a), from)
        .await
        .expect("another action");
    for _ in 0..4 {
        clock.advance(60);
        t.limit(reset, Some(a), from).await.unwrap();
    }
    clock.advance(60);
    // Five at T0 .. T0 + 265 from this network: allowed again one second into the next day.
    let elapsed = clock.now() - T0;
    assert_eq!(
        retry(t.limit(reset, Some(a), from).await),
        u64::try_from(86_400 - elapsed + 1).unwrap(),
        "the daily cap per network"
    );
    // Another network has its own five (a stranger cannot cut the owner off), up to four
    // times the cap over all networks...
    for n in 0..15u8 {
        clock.advance(60);
        t.limit(reset, Some(a), ip(&format!("198.51.100.{}", 10 + n / 5)))
            .await
            .unwrap_or_else(|e| panic!("request {n}: {e}"));
    }
    clock.advance(60);
    assert!(
        retry(t.limit(reset, Some(a), ip("203.0.113.77")).await) > 0,
        "twenty a day over all networks"
    );
    // ... which a network the account signed in from is exempt from.
    let home = ip("203.0.113.78");
    t.login_succeeded(a, home).await;
    t.limit(reset, Some(a), home)
        .await
        .expect("trusted network");
    t.limit(LimitedAction::MagicLink, Some(a), from)
        .await
        .expect("actions count apart");
    clock.set(T0 + 86_401);
    t.limit(reset, Some(a), from).await.unwrap();
    // Sign-up: the address cooldown applies (the same address twice within a minute).
    let signup = LimitedAction::SignUp;
    t.limit(signup, Some("ivan@example.com"), from)
        .await
        .unwrap();
    assert_eq!(
        retry(t.limit(signup, Some("ivan@example.com"), from).await),
        60
    );
}

async fn ip_caps_per_action_and_the_hourly_signup_cap(backend: Backend) {
    let (t, clock) = throttle(
        backend,
        &[
            ("LATCHKEY_THROTTLE_IP_DAILY_CAP", "3"),
            ("LATCHKEY_THROTTLE_SIGNUP_PER_IP_PER_HOUR", "2"),
        ],
    )
    .await;
    let from = ip("203.0.113.77");
    let resend = LimitedAction::VerificationResend;
    for n in 0..3 {
        t.limit(resend, Some(&format!("r{n}@example.com")), from)
            .await
            .unwrap();
    }
    assert_eq!(
        retry(t.limit(resend, Some("r9@example.com"), from).await),
        86_401
    );
    assert_eq!(retry(t.limit(resend, None, from).await), 86_401);
    t.limit(resend, Some("r9@example.com"), ip("203.0.113.78"))
        .await
        .expect("another IP");
    t.limit(LimitedAction::PasswordReset, Some("r9@example.com"), from)
        .await
        .expect("another action");
    let signup = LimitedAction::SignUp;
    t.limit(signup, Some("s1@example.com"), from).await.unwrap();
    t.limit(signup, None, from).await.unwrap();
    assert_eq!(
        retry(t.limit(signup, Some("s2@example.com"), from).await),
        3601
    );
    clock.advance(3601);
    t.limit(signup, Some("s2@example.com"), from).await.unwrap();
}

async fn unknown_accounts_are_throttled_exactly_like_known_ones(backend: Backend) {
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

async fn a_disabled_throttle_refuses_nothing(backend: Backend) {
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

// ---- one store only -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_memory_store_stays_within_its_cap_and_keeps_running_lockouts() {
    let s = MemoryRateLimitStore::new(1000);
    s.mark("lockout", T0 + 900, T0).await.unwrap();
    s.mark("short", T0 + 5, T0).await.unwrap();
    let w = SlidingWindow::new(900);
    for n in 0..20_000 {
        let key = format!("cycled-{n}");
        s.hit(
            &[RateWindow {
                key: &key,
                window: w,
            }],
            T0 + 10,
        )
        .await
        .unwrap();
        assert!(s.len() <= 1000, "{} entries", s.len());
    }
    let snap = s.read(&[], &["lockout", "short"], T0 + 10).await.unwrap();
    assert_eq!(
        snap.marks,
        vec![Some(T0 + 900), None],
        "the running lockout survived the flood"
    );
    let recent = RateWindow {
        key: "cycled-19999",
        window: w,
    };
    assert_eq!(
        s.read(&[recent], &[], T0 + 10).await.unwrap().counts,
        vec![counts(1, 0)],
        "recent counters survive, old ones go first"
    );
    // Expired entries go before live ones.
    let s = MemoryRateLimitStore::new(1000);
    for n in 0..999 {
        s.mark(&format!("old-{n}"), T0 + 1, T0).await.unwrap();
    }
    s.mark("live", T0 + 100, T0).await.unwrap();
    s.mark("newcomer", T0 + 100, T0 + 50).await.unwrap();
    assert_eq!(s.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_redis_keys_hold_no_raw_identifiers() {
    let env = redis_env(REDIS).await;
    let prefix = env[1].1.clone();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let clock = Arc::new(MockClock::new(T0));
    let t = latchkey::startup::build_throttle(&settings(&env), clock).unwrap();
    let who = "Judy.Secret@example.com";
    let from = ip("192.0.2.99");
    t.login_failed(who, from).await;
    t.login_succeeded(who, from).await;
    t.login_failed(who, from).await;
    t.limit(LimitedAction::PasswordReset, Some(who), from)
        .await
        .unwrap();
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 5, "{keys:?}");
    for k in &keys {
        assert!(k.starts_with(&format!("{prefix}throttle:")), "{k}");
        let lower = k.to_lowercase();
        assert!(
            !lower.contains("judy") && !lower.contains("example") && !k.contains("192.0.2"),
            "{k}"
        );
        let ttl: i64 = ::redis::cmd("TTL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{k} has a TTL (garbage collection)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_two_instances_on_one_redis_share_counters() {
    let env = redis_env(REDIS).await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let clock = Arc::new(MockClock::new(T0));
    let s = settings(&env);
    let one = latchkey::startup::build_throttle(&s, clock.clone()).unwrap();
    let two = latchkey::startup::build_throttle(&s, clock.clone()).unwrap();
    let (who, from) = ("kim@example.com", ip("198.51.100.33"));
    for n in 0..5 {
        let instance = if n % 2 == 0 { &one } else { &two };
        assert_eq!(instance.login_failed(who, from).await.locked_for_secs, None);
    }
    assert_eq!(two.login_failed(who, from).await.locked_for_secs, Some(1));
    assert_eq!(retry(one.check_login(who, from).await), 1);
    clock.advance(1);
    one.login_succeeded(who, from).await;
    assert_eq!(two.login_failed(who, from).await.locked_for_secs, None);
    one.limit(LimitedAction::MagicLink, Some(who), from)
        .await
        .unwrap();
    assert_eq!(
        retry(two.limit(LimitedAction::MagicLink, Some(who), from).await),
        60
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_falls_back_in_process_while_redis_is_unreachable_and_returns_to_it() {
    let port = crate::redis_outage::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let prefix = unique_prefix();
    let s = settings(&[
        ("LATCHKEY_REDIS_URL", &url),
        ("LATCHKEY_REDIS_KEY_PREFIX", &prefix),
        ("LATCHKEY_REDIS_TIMEOUT_MS", "200"),
    ]);
    let clock = Arc::new(MockClock::new(T0));
    let t = latchkey::startup::build_throttle(&s, clock.clone()).unwrap();
    let (who, from) = ("lee@example.com", ip("192.0.2.123"));
    // Nothing listens: logins still work, and are still limited (in process).
    let _ = t.check_login(who, from).await.unwrap();
    assert!(!t.shared_store_up());
    for _ in 0..5 {
        assert_eq!(t.login_failed(who, from).await.locked_for_secs, None);
    }
    assert_eq!(t.login_failed(who, from).await.locked_for_secs, Some(1));
    assert_eq!(
        retry(t.check_login(who, from).await),
        1,
        "fails closed, not open"
    );
    t.limit(LimitedAction::PasswordReset, Some(who), from)
        .await
        .unwrap();
    assert_eq!(
        retry(t.limit(LimitedAction::PasswordReset, Some(who), from).await),
        60
    );
    // Redis comes up: after the probe interval the throttle uses it again.
    let _redis = crate::redis_outage::PrivateRedis::start(port);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        clock.advance(2);
        let _ = t.check_login("probe@example.com", from).await.unwrap();
        if t.shared_store_up() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the throttle never went back to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.login_failed("mia@example.com", from).await;
    let client = ::redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}throttle:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 3, "the pair, the account and the IP: {keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_for_one_account_are_checked_one_after_the_other() {
    assert_eq!(
        parallel_guesses_admitted("1").await,
        6,
        "five free failures, the sixth starts the back-off"
    );
    let two = parallel_guesses_admitted("2").await;
    assert!(
        (6..=7).contains(&two),
        "{two}: at most one more per extra check in flight"
    );
}

async fn parallel_guesses_admitted(concurrency: &str) -> usize {
    let (t, _clock) = throttle(
        MEMORY,
        &[(
            "LATCHKEY_THROTTLE_LOGIN_CONCURRENCY_PER_ACCOUNT",
            concurrency,
        )],
    )
    .await;
    // Forty guesses at once: each holds its guard while "verifying", then fails. Without
    // serialisation all forty would pass the check before the first failure is counted.
    parallel_attempts(
        &[Arc::new(t)],
        ip("198.51.100.77"),
        |_| "dana@example.com".to_owned(),
        Duration::from_millis(5),
    )
    .await
}

// ---- admission before the check (security review, finding 2) --------------------------

/// Forty simultaneous attempts for forty accounts from one address, with room for ten: the
/// IP is counted before each credential check, atomically, so exactly ten are admitted.
async fn parallel_attempts_from_one_network_never_exceed_the_ip_limit(backend: Backend) {
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

async fn a_right_password_refunds_the_attempt_counted_against_the_ip(backend: Backend) {
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

async fn store_refunds_from_the_window_that_counted(backend: Backend) {
    let s = raw_store(backend).await;
    let w = RateWindow {
        key: "li:refund",
        window: SlidingWindow::new(60),
    };
    s.hit(&[w], T0).await.unwrap();
    s.hit(&[w], T0).await.unwrap();
    s.refund(w, T0, T0 + 1).await.unwrap();
    let snap = s.read(&[w], &[], T0 + 1).await.unwrap();
    assert_eq!(snap.counts, vec![counts(1, 0)]);
    // Counted in one window, refunded in the next: taken from the previous window.
    s.refund(w, T0, T0 + 61).await.unwrap();
    assert_eq!(
        s.read(&[w], &[], T0 + 61).await.unwrap().counts,
        vec![counts(0, 0)]
    );
    // Never below zero, and nothing for a key never counted.
    s.refund(w, T0, T0 + 61).await.unwrap();
    s.refund(
        RateWindow {
            key: "li:never",
            window: SlidingWindow::new(60),
        },
        T0,
        T0,
    )
    .await
    .unwrap();
    assert_eq!(
        s.read(&[w], &[], T0 + 61).await.unwrap().counts,
        vec![counts(0, 0)]
    );
}

async fn request_limits_count_per_minute_and_key(backend: Backend) {
    use latchkey::services::RequestLimit;
    let (t, clock) = throttle(
        backend,
        &[("LATCHKEY_THROTTLE_USER_REQUESTS_PER_MINUTE", "3")],
    )
    .await;
    for _ in 0..3 {
        t.limit_request(RequestLimit::Session, "family-a")
            .await
            .unwrap();
    }
    let r = retry(t.limit_request(RequestLimit::Session, "family-a").await);
    assert_eq!(
        r, 61,
        "three at the start of a minute: one second into the next"
    );
    t.limit_request(RequestLimit::Session, "family-b")
        .await
        .expect("another session has its own count");
    t.limit_request(RequestLimit::Subject, "family-a")
        .await
        .expect("another kind has its own count");
    clock.advance(120);
    t.limit_request(RequestLimit::Session, "family-a")
        .await
        .unwrap();
    // 0 turns a limit off.
    let (off, _) = throttle(
        backend,
        &[("LATCHKEY_THROTTLE_CLIENT_REQUESTS_PER_MINUTE", "0")],
    )
    .await;
    for _ in 0..100 {
        off.limit_request(RequestLimit::Client, "busy")
            .await
            .unwrap();
    }
}

async fn admin_failures_are_counted_before_the_check_and_refunded_on_success(backend: Backend) {
    let (t, _clock) = throttle(backend, &[("LATCHKEY_THROTTLE_ADMIN_MAX_FAILURES", "3")]).await;
    let operator = ip("10.1.2.3");
    for _ in 0..10 {
        let attempt = t.check_admin(operator).await.unwrap();
        t.admin_succeeded(attempt).await;
    }
    for _ in 0..3 {
        let _failed = t.check_admin(operator).await.unwrap();
    }
    assert!(retry(t.check_admin(operator).await) > 0);
    let _other = t
        .check_admin(ip("10.1.2.4"))
        .await
        .expect("another address has its own count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_two_instances_on_one_redis_admit_at_most_the_ip_limit_together() {
    let mut env = redis_env(REDIS).await;
    env.push(("LATCHKEY_THROTTLE_IP_MAX_FAILURES".into(), "10".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let clock = Arc::new(MockClock::new(T0));
    let s = settings(&env);
    let instances = [
        latchkey::startup::build_throttle(&s, clock.clone()).unwrap(),
        latchkey::startup::build_throttle(&s, clock.clone()).unwrap(),
    ];
    let admitted = parallel_attempts(&instances, ip("203.0.113.78"), many, HOLD).await;
    assert_eq!(admitted, 10, "over both instances");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_in_flight_from_one_network_are_bounded_per_instance() {
    let (t, _clock) = throttle(
        MEMORY,
        &[("LATCHKEY_THROTTLE_LOGIN_CONCURRENCY_PER_NETWORK", "2")],
    )
    .await;
    let t = Arc::new(t);
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let from = ip("198.51.100.200");
    let tasks: Vec<_> = (0..12)
        .map(|n| {
            let (t, in_flight, most) = (t.clone(), in_flight.clone(), most.clone());
            tokio::spawn(async move {
                use std::sync::atomic::Ordering::SeqCst;
                let who = format!("user{n}@example.com");
                let attempt = t.check_login(&who, from).await.unwrap();
                let now = in_flight.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
                in_flight.fetch_sub(1, SeqCst);
                t.attempt_failed(attempt, &who, from).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
}

async fn store_admits_several_events_at_once_only_when_all_fit(backend: Backend) {
    let s = raw_store(backend).await;
    let w = SlidingWindow::new(60);
    let share = |cost| RateLimit {
        key: "rc:shares",
        window: w,
        limit: 10,
        cost,
    };
    assert_eq!(
        s.admit(&[share(4)], &[], T0).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        s.admit(&[share(4)], &[], T0).await.unwrap(),
        Admission::Admitted
    );
    // 8 counted: 4 more do not fit, 2 do.
    assert!(matches!(
        s.admit(&[share(4)], &[], T0).await.unwrap(),
        Admission::Refused(_)
    ));
    assert_eq!(
        s.admit(&[share(2)], &[], T0).await.unwrap(),
        Admission::Admitted
    );
    let snap = s
        .read(
            &[RateWindow {
                key: "rc:shares",
                window: w,
            }],
            &[],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(snap.counts, vec![counts(10, 0)]);
}

async fn large_request_limits_are_reserved_in_shares_and_never_exceeded(backend: Backend) {
    use latchkey::services::RequestLimit;
    let env = [("LATCHKEY_THROTTLE_CLIENT_REQUESTS_PER_MINUTE", "640")];
    let (one, clock) = throttle(backend, &env).await;
    let mut admitted = 0;
    for _ in 0..700 {
        if one
            .limit_request(RequestLimit::Client, "busy")
            .await
            .is_ok()
        {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 640, "shares of 10, then one by one to the limit");
    clock.advance(120);
    assert!(one
        .limit_request(RequestLimit::Client, "busy")
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_two_instances_share_large_request_limits_without_exceeding_them() {
    use latchkey::services::RequestLimit;
    let mut env = redis_env(REDIS).await;
    env.push((
        "LATCHKEY_THROTTLE_INTROSPECTIONS_PER_CLIENT_PER_MINUTE".into(),
        "6400".into(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let clock = Arc::new(MockClock::new(T0));
    let s = settings(&env);
    let one = latchkey::startup::build_throttle(&s, clock.clone()).unwrap();
    let two = latchkey::startup::build_throttle(&s, clock.clone()).unwrap();
    let mut admitted = 0;
    for n in 0..8000 {
        let t = if n % 3 == 0 { &one } else { &two };
        if t.limit_request(RequestLimit::Introspections, "gateway")
            .await
            .is_ok()
        {
            admitted += 1;
        }
    }
    // Shares of 100: at most one share per instance left unspent.
    assert!((6200..=6400).contains(&admitted), "{admitted}");
}

/// How long an admitted attempt holds its place in `parallel_attempts`.
const HOLD: Duration = Duration::from_millis(20);

/// Forty accounts, one per attempt.
fn many(n: usize) -> String {
    format!("user{n}@example.com")
}

/// Forty simultaneous wrong logins from `from`, attempt `n` for `account(n)`, spread over
/// `instances`; each admitted one holds its place for `hold`, then fails. How many were
/// admitted.
async fn parallel_attempts(
    instances: &[Arc<Throttle>],
    from: IpAddr,
    account: fn(usize) -> String,
    hold: Duration,
) -> usize {
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let t = instances[n % instances.len()].clone();
            tokio::spawn(async move {
                let who = account(n);
                match t.check_login(&who, from).await {
                    Ok(attempt) => {
                        tokio::time::sleep(hold).await;
                        t.attempt_failed(attempt, &who, from).await;
                        true
                    }
                    Err(_) => false,
                }
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        if task.await.unwrap() {
            admitted += 1;
        }
    }
    admitted
}
