//! Brute-force throttling: the `RateLimitStore` contract checked against each adapter
//! (memory, Redis; `store`), and the `Throttle` scenarios on each store (`login`, `limits`),
//! with a mock clock: the Redis axis of the backend matrix. Test names are
//! `throttle::<store>::<scenario>`. Here: the shared fixtures, and the tests of one store
//! or of several instances. Redis tests fail loudly when Redis is unreachable.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey::clock::MockClock;
use latchkey::config::Settings;
use latchkey::domain::{SlidingWindow, WindowCounts};
use latchkey::services::{LimitedAction, Throttle, Throttled};
use latchkey::storage::memory::MemoryRateLimitStore;
use latchkey::storage::{RateLimitStore, RateWindow};

use crate::helpers::{redis_env, redis_url, Backend};
use crate::scenarios;

mod limits;
mod login;
mod store;

use limits::*;
use login::*;
use store::*;

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
