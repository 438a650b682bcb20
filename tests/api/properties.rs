//! Property tests (issue 16, "Fuzzing and properties"): where inputs form a space, proptest
//! draws from it. Scopes (parsing, the wire form, the set laws the consent and token code
//! rely on), redirect-URI matching (exact, with the one loopback-port exception of RFC 8252),
//! the sliding-window throttle (never more than the limit in a window; `retry_after` is
//! honest), the login back-off, TOTP (one step of drift, never a used step) and recovery
//! codes (normalisation forgives only case, spaces and dashes).
//!
//! Pure functions only: these run in a second on every backend-free test run. Failures
//! proptest finds are kept by it in `tests/api/properties.proptest-regressions`.

use latchkey::crypto::{recovery_code, totp, TotpSecret};
use latchkey::domain::{
    login_backoff, matches_redirect_uri, RedirectUse, Scope, SlidingWindow, WindowCounts,
};
use proptest::prelude::*;

/// A scope token: printable ASCII but space, quote and backslash (RFC 6749 §3.3).
fn token() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[!#-\\[\\]-~]{1,12}").unwrap()
}

fn tokens() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(token(), 0..8)
}

fn scope_of(tokens: &[String]) -> Scope {
    Scope::parse(&tokens.join(" ")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_scope_reads_back_from_its_wire_form(ts in tokens(), spaces in 1usize..4) {
        let raw = ts.join(&" ".repeat(spaces));
        let scope = Scope::parse(&raw).unwrap();
        prop_assert_eq!(Scope::parse(&scope.to_wire()).unwrap(), scope.clone());
        for t in &ts {
            prop_assert!(scope.contains(t));
        }
        prop_assert_eq!(scope.iter().count(), ts.iter().collect::<std::collections::BTreeSet<_>>().len());
        // The wire form is canonical: one space between tokens, none around them.
        let wire = scope.to_wire();
        prop_assert!(!wire.starts_with(' ') && !wire.ends_with(' ') && !wire.contains("  "));
    }

    #[test]
    fn scope_set_laws_hold(a in tokens(), b in tokens()) {
        let (a, b) = (scope_of(&a), scope_of(&b));
        let both = a.intersection(&b);
        let either = a.union(&b);
        prop_assert!(both.is_subset_of(&a) && both.is_subset_of(&b));
        prop_assert!(a.is_subset_of(&either) && b.is_subset_of(&either));
        prop_assert_eq!(a.intersection(&b), b.intersection(&a));
        prop_assert_eq!(a.union(&b), b.union(&a));
        prop_assert!(a.is_subset_of(&a));
        prop_assert_eq!(a.is_subset_of(&b) && b.is_subset_of(&a), a == b);
        for t in a.iter() {
            prop_assert!(!a.without(t).contains(t));
            prop_assert!(a.without(t).is_subset_of(&a));
        }
    }

    #[test]
    fn a_scope_with_a_forbidden_character_is_refused(
        ts in proptest::collection::vec(token(), 1..4),
        bad in prop_oneof![Just('"'), Just('\\'), Just('\u{7f}'), Just('\u{1}'), Just('é')],
        at in 0usize..4,
    ) {
        let mut ts = ts;
        let i = at % ts.len();
        ts[i].push(bad);
        prop_assert!(Scope::parse(&ts.join(" ")).is_err());
    }

    #[test]
    fn a_redirect_uri_matches_itself_and_nothing_longer_or_shorter(
        host in "[a-z]{1,10}\\.example\\.com",
        path in "(/[a-z0-9]{0,6}){0,3}",
        extra in "[a-z0-9/?=&]{1,5}",
        native in any::<bool>(),
    ) {
        let usage = if native { RedirectUse::Native } else { RedirectUse::Web };
        let uri = format!("https://{host}{path}");
        prop_assert!(matches_redirect_uri(&uri, &uri, usage));
        let longer = format!("{uri}{extra}");
        prop_assert!(!matches_redirect_uri(&uri, &longer, usage));
        prop_assert!(!matches_redirect_uri(&longer, &uri, usage));
        prop_assert!(!matches_redirect_uri(&uri, &uri.to_uppercase(), usage) || uri == uri.to_uppercase());
    }

    #[test]
    fn only_a_native_apps_loopback_ip_may_change_its_port(
        ip in prop_oneof![Just("127.0.0.1"), Just("[::1]")],
        reg_port in proptest::option::of(1u16..),
        req_port in proptest::option::of(1u16..),
        path in "(/[a-z0-9]{1,6}){0,2}",
        query in proptest::option::of("[a-z]{1,4}=[a-z0-9]{1,4}"),
    ) {
        let with = |port: Option<u16>| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let query = query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
            format!("http://{ip}{port}{path}{query}")
        };
        let (registered, requested) = (with(reg_port), with(req_port));
        prop_assert!(matches_redirect_uri(&registered, &requested, RedirectUse::Native));
        prop_assert_eq!(
            matches_redirect_uri(&registered, &requested, RedirectUse::Web),
            registered == requested
        );
        // Anything else that differs, however slightly, does not match.
        let longer = format!("{requested}x");
        let fragment = format!("{requested}#f");
        prop_assert!(!matches_redirect_uri(&registered, &longer, RedirectUse::Native));
        prop_assert!(!matches_redirect_uri(&registered, &fragment, RedirectUse::Native));
        let localhost = requested.replace(ip, "localhost");
        prop_assert!(!matches_redirect_uri(&registered, &localhost, RedirectUse::Native));
        let https = requested.replacen("http://", "https://", 1);
        prop_assert!(!matches_redirect_uri(&registered, &https, RedirectUse::Native));
    }

    /// Admitting by the sliding window never lets more than `limit` hits into any window's
    /// span, and `retry_after` always names a time at which the next hit is admitted.
    #[test]
    fn the_sliding_window_admits_at_most_its_limit(
        secs in 1u64..120,
        limit in 1u64..50,
        gaps in proptest::collection::vec(0i64..40, 1..300),
        start in 0i64..1_000_000,
    ) {
        let w = SlidingWindow::new(secs);
        let (mut index, mut counts, mut now) = (w.index(start), WindowCounts::default(), start);
        let mut admitted: Vec<i64> = Vec::new();
        for gap in gaps {
            now += gap;
            counts = w.shift(index, counts, now);
            index = w.index(now);
            if w.allows(counts, limit, now) {
                counts = SlidingWindow::hit(counts);
                admitted.push(now);
                prop_assert_eq!(w.retry_after(counts, limit, now) == 0, w.allows(counts, limit, now));
            } else {
                let wait = w.retry_after(counts, limit, now);
                prop_assert!(wait >= 1);
                let later = now + i64::try_from(wait).unwrap();
                let shifted = w.shift(index, counts, later);
                prop_assert!(w.allows(shifted, limit, later), "retry_after {} is too early", wait);
            }
        }
        // Within one fixed window (the current one alone), never more than the limit.
        let span = i64::try_from(secs).unwrap();
        for win in admitted.iter().map(|t| t.div_euclid(span)) {
            let inside = admitted.iter().filter(|t| t.div_euclid(span) == win).count();
            prop_assert!(u64::try_from(inside).unwrap() <= limit);
        }
    }

    #[test]
    fn the_login_back_off_grows_and_is_capped(
        free in 0u64..10,
        base in 1u64..60,
        cap in 1u64..3600,
        failures in 0u64..200,
    ) {
        let now = login_backoff(failures, free, base, cap);
        let next = login_backoff(failures + 1, free, base, cap);
        prop_assert_eq!(now.is_none(), failures <= free);
        if let (Some(a), Some(b)) = (now, next) {
            prop_assert!(b >= a);
        }
        if let Some(d) = next {
            prop_assert!(d >= 1 && d <= cap.max(1));
        }
    }

    /// A TOTP code is accepted one step early or late, not two; never for a used step.
    #[test]
    fn totp_accepts_one_step_of_drift_and_no_used_step(
        secret in proptest::collection::vec(any::<u8>(), 20),
        now in 1_000_000i64..4_000_000_000,
        drift in -3i64..=3,
        used_back in 0i64..4,
    ) {
        let secret = TotpSecret::from_bytes(secret);
        let step = totp::step_of(now) + drift;
        let code = format!("{:06}", totp::code_at(&secret, step));
        let found = totp::check(&secret, &code, now, 0);
        if drift.abs() <= 1 {
            // Accepted; when another step of the window has the same code (1 in 10^6), the
            // later one is answered.
            prop_assert!(found.is_some_and(|s| s >= step));
        } else {
            prop_assert!(found != Some(step));
        }
        // Once its step is used (or a later one), the same code never passes again.
        let last = step + used_back;
        let again = totp::check(&secret, &code, now, last);
        prop_assert!(again.is_none_or(|s| s > last), "a used step came back");
        let spaced = format!(" {} {} ", &code[..3], &code[3..]);
        prop_assert_eq!(totp::check(&secret, &spaced, now, 0), found);
    }

    #[test]
    fn recovery_codes_forgive_only_case_spaces_and_dashes(
        seps in proptest::collection::vec(prop_oneof![Just(""), Just("-"), Just(" "), Just(" - ")], 16),
        upper in proptest::collection::vec(any::<bool>(), 16),
        cut in 1usize..16,
    ) {
        use secrecy::ExposeSecret;
        let code = recovery_code::generate();
        let code = code.expose_secret();
        let canonical = recovery_code::normalize(code).unwrap();
        let again = recovery_code::normalize(&canonical);
        prop_assert_eq!(again.as_deref(), Some(canonical.as_str()));
        let typed: String = canonical
            .chars()
            .zip(seps.iter().zip(upper.iter()))
            .map(|(c, (sep, up))| format!("{sep}{}", if *up { c.to_ascii_uppercase() } else { c }))
            .collect();
        prop_assert_eq!(recovery_code::normalize(&typed), Some(canonical.clone()));
        prop_assert_eq!(recovery_code::normalize(&canonical[..cut]), None);
        prop_assert_eq!(recovery_code::normalize(&format!("{canonical}a")), None);
        let hash = recovery_code::hash(&canonical);
        prop_assert_eq!(hash.len(), 64);
        prop_assert_ne!(recovery_code::hash(&canonical[..15]), hash);
    }
}
