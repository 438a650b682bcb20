//! The other limits: per action (address cooldowns, daily caps, sign-up), per request,
//! and the admin API's failures.

use latchkey::clock::Clock;
use latchkey::services::LimitedAction;

use super::{ip, retry, throttle, T0};
use crate::helpers::Backend;

pub(super) async fn an_address_cooldown_and_daily_cap_per_action(backend: Backend) {
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

pub(super) async fn ip_caps_per_action_and_the_hourly_signup_cap(backend: Backend) {
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

pub(super) async fn request_limits_count_per_minute_and_key(backend: Backend) {
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

pub(super) async fn admin_failures_are_counted_before_the_check_and_refunded_on_success(
    backend: Backend,
) {
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

pub(super) async fn large_request_limits_are_reserved_in_shares_and_never_exceeded(
    backend: Backend,
) {
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
