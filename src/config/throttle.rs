//! `[throttle]`: brute-force and abuse limits.

use std::time::Duration;

use serde::Deserialize;

use super::duration::secs;
use super::{invalid, ConfigError};

/// Brute-force and abuse throttling (README, Brute-force protection).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// `false` turns every limit off (tests, or a proxy that throttles already).
    pub enabled: bool,
    /// Failed logins an account+IP pair may make within `login_window_secs` before back-off.
    pub login_free_failures: u64,
    #[serde(rename = "login_window_secs", deserialize_with = "secs")]
    pub login_window: Duration,
    /// The first back-off delay; it doubles with each further failure.
    #[serde(rename = "login_backoff_base_secs", deserialize_with = "secs")]
    pub login_backoff_base: Duration,
    /// The longest delay: a temporary lockout of the pair.
    #[serde(rename = "login_lockout_secs", deserialize_with = "secs")]
    pub login_lockout: Duration,
    /// Failures per account over all IPs within `account_window_secs`, beyond which only IPs
    /// the account logged in from recently may try.
    pub account_max_failures: u64,
    #[serde(rename = "account_window_secs", deserialize_with = "secs")]
    pub account_window: Duration,
    /// How long a successful login exempts its IP from the account-wide limit; 0: never.
    #[serde(rename = "trusted_ip_ttl_secs", deserialize_with = "secs")]
    pub trusted_ip_ttl: Duration,
    /// Failures per IP (IPv6: per /64) over all accounts within `ip_window_secs`.
    pub ip_max_failures: u64,
    #[serde(rename = "ip_window_secs", deserialize_with = "secs")]
    pub ip_window: Duration,
    /// Seconds between two mails (sign-up, verification, reset, magic link) to one address.
    #[serde(rename = "email_cooldown_secs", deserialize_with = "secs")]
    pub email_cooldown: Duration,
    /// Requests per address, per action, per day.
    pub email_daily_cap: u64,
    /// Verification, reset and magic-link requests per IP, per action, per day.
    pub ip_daily_cap: u64,
    /// Sign-ups per IP per hour.
    pub signup_per_ip_per_hour: u64,
    /// Bound of the in-process counters (per instance; also the fallback while Redis is down).
    pub memory_max_entries: u64,
    /// Credential checks for one account in flight at once on one instance (a burst of
    /// parallel guesses overshoots the limits by at most this many, less one).
    pub login_concurrency_per_account: u64,
    /// Credential checks from one network (IPv4 address, IPv6 /64) in flight at once on one
    /// instance: the argon2 work one network can queue.
    pub login_concurrency_per_network: u64,
    /// Failed admin-API authentications per IP within `ip_window_secs`.
    pub admin_max_failures: u64,
    /// Refresh grants per session and revocations per token subject, per minute (0: none).
    pub user_requests_per_minute: u64,
    /// Token requests per client (public: per client and network), per minute (0: none).
    pub client_requests_per_minute: u64,
    /// Revocation requests per client (public: per client and network), per minute.
    pub revocations_per_client_per_minute: u64,
    /// Introspection requests per client, per minute (0: none).
    pub introspections_per_client_per_minute: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            login_free_failures: 5,
            login_window: Duration::from_secs(900),
            login_backoff_base: Duration::from_secs(1),
            login_lockout: Duration::from_secs(900),
            account_max_failures: 50,
            account_window: Duration::from_secs(3600),
            trusted_ip_ttl: Duration::from_secs(30 * 86_400),
            ip_max_failures: 100,
            ip_window: Duration::from_secs(900),
            email_cooldown: Duration::from_secs(60),
            email_daily_cap: 5,
            ip_daily_cap: 50,
            signup_per_ip_per_hour: 10,
            memory_max_entries: 100_000,
            login_concurrency_per_account: 2,
            login_concurrency_per_network: 8,
            admin_max_failures: 10,
            user_requests_per_minute: 60,
            client_requests_per_minute: 30_000,
            revocations_per_client_per_minute: 1_200,
            introspections_per_client_per_minute: 300_000,
        }
    }
}

impl ThrottleSettings {
    /// Throttle settings: every limit at least 1, every window and delay in a sane range.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        const DAY: u64 = 86_400;
        let t = self;
        for (name, v, range) in [
            (
                "throttle.login_free_failures",
                t.login_free_failures,
                1..=1000,
            ),
            (
                "throttle.login_window_secs",
                t.login_window.as_secs(),
                60..=DAY,
            ),
            (
                "throttle.login_lockout_secs",
                t.login_lockout.as_secs(),
                1..=DAY,
            ),
            (
                "throttle.account_max_failures",
                t.account_max_failures,
                1..=1_000_000,
            ),
            (
                "throttle.account_window_secs",
                t.account_window.as_secs(),
                60..=7 * DAY,
            ),
            (
                "throttle.trusted_ip_ttl_secs",
                t.trusted_ip_ttl.as_secs(),
                0..=365 * DAY,
            ),
            ("throttle.ip_max_failures", t.ip_max_failures, 1..=1_000_000),
            ("throttle.ip_window_secs", t.ip_window.as_secs(), 60..=DAY),
            (
                "throttle.email_cooldown_secs",
                t.email_cooldown.as_secs(),
                0..=DAY,
            ),
            ("throttle.email_daily_cap", t.email_daily_cap, 1..=100_000),
            ("throttle.ip_daily_cap", t.ip_daily_cap, 1..=1_000_000),
            (
                "throttle.signup_per_ip_per_hour",
                t.signup_per_ip_per_hour,
                1..=100_000,
            ),
            (
                "throttle.memory_max_entries",
                t.memory_max_entries,
                1000..=10_000_000,
            ),
            (
                "throttle.login_concurrency_per_account",
                t.login_concurrency_per_account,
                1..=64,
            ),
            (
                "throttle.login_concurrency_per_network",
                t.login_concurrency_per_network,
                1..=1024,
            ),
            (
                "throttle.admin_max_failures",
                t.admin_max_failures,
                1..=10_000,
            ),
            (
                "throttle.user_requests_per_minute",
                t.user_requests_per_minute,
                0..=100_000_000,
            ),
            (
                "throttle.client_requests_per_minute",
                t.client_requests_per_minute,
                0..=100_000_000,
            ),
            (
                "throttle.revocations_per_client_per_minute",
                t.revocations_per_client_per_minute,
                0..=100_000_000,
            ),
            (
                "throttle.introspections_per_client_per_minute",
                t.introspections_per_client_per_minute,
                0..=100_000_000,
            ),
        ] {
            if !range.contains(&v) {
                return Err(invalid(format!(
                    "{name} must be between {} and {}, got {v}",
                    range.start(),
                    range.end()
                )));
            }
        }
        if !(1..=t.login_lockout.as_secs()).contains(&t.login_backoff_base.as_secs()) {
            return Err(invalid(
                "throttle.login_backoff_base_secs must be between 1 and throttle.login_lockout_secs",
            ));
        }
        if t.account_max_failures < t.login_free_failures {
            return Err(invalid(
                "throttle.account_max_failures must be at least throttle.login_free_failures \
                 (the account-wide limit is the slower one)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::Settings;

    fn err(pairs: &[(&str, &str)]) -> String {
        Settings::load(None, env(pairs))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn throttle_defaults_are_valid_and_every_key_has_an_env_override() {
        let s = Settings::load(None, env(&[])).unwrap();
        let t = &s.throttle;
        assert!(t.enabled);
        assert_eq!(
            (
                t.login_free_failures,
                t.login_window.as_secs(),
                t.login_backoff_base.as_secs()
            ),
            (5, 900, 1)
        );
        assert_eq!(
            (t.login_lockout.as_secs(), t.account_max_failures),
            (900, 50)
        );
        assert_eq!(
            (t.account_window.as_secs(), t.trusted_ip_ttl.as_secs()),
            (3600, 2_592_000)
        );
        assert_eq!((t.ip_max_failures, t.ip_window.as_secs()), (100, 900));
        assert_eq!((t.email_cooldown.as_secs(), t.email_daily_cap), (60, 5));
        assert_eq!((t.ip_daily_cap, t.signup_per_ip_per_hour), (50, 10));
        assert_eq!(t.memory_max_entries, 100_000);
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_THROTTLE_ENABLED", "false"),
                ("LATCHKEY_THROTTLE_LOGIN_FREE_FAILURES", "3"),
                ("LATCHKEY_THROTTLE_LOGIN_WINDOW_SECS", "600"),
                ("LATCHKEY_THROTTLE_LOGIN_BACKOFF_BASE_SECS", "2"),
                ("LATCHKEY_THROTTLE_LOGIN_LOCKOUT_SECS", "1800"),
                ("LATCHKEY_THROTTLE_ACCOUNT_MAX_FAILURES", "20"),
                ("LATCHKEY_THROTTLE_ACCOUNT_WINDOW_SECS", "7200"),
                ("LATCHKEY_THROTTLE_TRUSTED_IP_TTL_SECS", "0"),
                ("LATCHKEY_THROTTLE_IP_MAX_FAILURES", "40"),
                ("LATCHKEY_THROTTLE_IP_WINDOW_SECS", "300"),
                ("LATCHKEY_THROTTLE_EMAIL_COOLDOWN_SECS", "30"),
                ("LATCHKEY_THROTTLE_EMAIL_DAILY_CAP", "3"),
                ("LATCHKEY_THROTTLE_IP_DAILY_CAP", "10"),
                ("LATCHKEY_THROTTLE_SIGNUP_PER_IP_PER_HOUR", "4"),
                ("LATCHKEY_THROTTLE_MEMORY_MAX_ENTRIES", "5000"),
            ]),
        )
        .unwrap();
        let t = &s.throttle;
        assert!(!t.enabled);
        assert_eq!(
            (
                t.login_free_failures,
                t.login_window.as_secs(),
                t.login_backoff_base.as_secs()
            ),
            (3, 600, 2)
        );
        assert_eq!(
            (t.login_lockout.as_secs(), t.account_max_failures),
            (1800, 20)
        );
        assert_eq!(
            (t.account_window.as_secs(), t.trusted_ip_ttl.as_secs()),
            (7200, 0)
        );
        assert_eq!((t.ip_max_failures, t.ip_window.as_secs()), (40, 300));
        assert_eq!((t.email_cooldown.as_secs(), t.email_daily_cap), (30, 3));
        assert_eq!((t.ip_daily_cap, t.signup_per_ip_per_hour), (10, 4));
        assert_eq!(t.memory_max_entries, 5000);
    }

    #[test]
    fn throttle_values_out_of_range_stop_start_up_naming_the_key() {
        for (var, value, key) in [
            (
                "LATCHKEY_THROTTLE_LOGIN_FREE_FAILURES",
                "0",
                "throttle.login_free_failures",
            ),
            (
                "LATCHKEY_THROTTLE_LOGIN_WINDOW_SECS",
                "10",
                "throttle.login_window_secs",
            ),
            (
                "LATCHKEY_THROTTLE_LOGIN_BACKOFF_BASE_SECS",
                "0",
                "throttle.login_backoff_base_secs",
            ),
            (
                "LATCHKEY_THROTTLE_LOGIN_BACKOFF_BASE_SECS",
                "1000",
                "throttle.login_backoff_base_secs",
            ),
            (
                "LATCHKEY_THROTTLE_LOGIN_LOCKOUT_SECS",
                "999999",
                "throttle.login_lockout_secs",
            ),
            (
                "LATCHKEY_THROTTLE_ACCOUNT_MAX_FAILURES",
                "4",
                "throttle.account_max_failures",
            ),
            (
                "LATCHKEY_THROTTLE_ACCOUNT_WINDOW_SECS",
                "0",
                "throttle.account_window_secs",
            ),
            (
                "LATCHKEY_THROTTLE_TRUSTED_IP_TTL_SECS",
                "99999999999",
                "throttle.trusted_ip_ttl_secs",
            ),
            (
                "LATCHKEY_THROTTLE_IP_MAX_FAILURES",
                "0",
                "throttle.ip_max_failures",
            ),
            (
                "LATCHKEY_THROTTLE_IP_WINDOW_SECS",
                "5",
                "throttle.ip_window_secs",
            ),
            (
                "LATCHKEY_THROTTLE_EMAIL_COOLDOWN_SECS",
                "100000",
                "throttle.email_cooldown_secs",
            ),
            (
                "LATCHKEY_THROTTLE_EMAIL_DAILY_CAP",
                "0",
                "throttle.email_daily_cap",
            ),
            (
                "LATCHKEY_THROTTLE_IP_DAILY_CAP",
                "0",
                "throttle.ip_daily_cap",
            ),
            (
                "LATCHKEY_THROTTLE_SIGNUP_PER_IP_PER_HOUR",
                "0",
                "throttle.signup_per_ip_per_hour",
            ),
            (
                "LATCHKEY_THROTTLE_MEMORY_MAX_ENTRIES",
                "10",
                "throttle.memory_max_entries",
            ),
        ] {
            let e = err(&[(var, value)]);
            assert!(e.contains(key), "{var}={value}: {e}");
        }
        assert!(err(&[("LATCHKEY_THROTTLE_ENABLED", "sometimes")]).contains("true or false"));
        assert!(!err(&[("LATCHKEY_THROTTLE_IP_MAX_FAILURES", "-1")]).is_empty());
    }

    #[test]
    fn throttle_settings_are_read_from_the_config_file() {
        let dir = std::env::temp_dir().join(format!("latchkey-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("throttle.toml");
        std::fs::write(
            &file,
            "[throttle]\nlogin_free_failures = 8\nenabled = false\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file), env(&[])).unwrap();
        assert_eq!(s.throttle.login_free_failures, 8);
        assert!(!s.throttle.enabled);
        std::fs::write(&file, "[throttle]\nlogin_free_failure = 8\n").unwrap();
        assert!(Settings::load(Some(&file), env(&[])).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
