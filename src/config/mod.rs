//! Configuration: defaults, then an optional TOML file, then `LATCHKEY_*` environment
//! variables. Unknown keys and unknown `LATCHKEY_*` variables are rejected; the result is
//! validated once, at start-up, into typed settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::crypto::Argon2Settings;
use crate::domain::{Audience, SigningAlg};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Generates a master key file under `keys/` if none is configured.
    Development,
    /// Requires an explicit master key and issuer.
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub bind: String,
    pub issuer: Option<String>,
    pub profile: Profile,
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Origins allowed to call the token endpoint from a browser (CORS); `*` allows any.
    pub cors_allowed_origins: Vec<String>,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` is believed: the client's IP
    /// (throttling, audit trail) is then the last address in it that is not a proxy's.
    pub trusted_proxies: Vec<String>,
    /// Set when the issuer was derived from `bind` rather than configured.
    #[serde(skip)]
    pub issuer_derived: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            issuer: None,
            profile: Profile::Development,
            max_body_bytes: 16 * 1024,
            workers: 0,
            cors_allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            issuer_derived: false,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://./data/latchkey.db".into(),
            max_connections: 16,
        }
    }
}

/// The URL may carry a password (`postgres://user:secret@host/db`): `Debug` hides it.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url_password(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `scheme://user:secret@host/...` -> `scheme://user:[redacted]@host/...`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// When set, the denylist lives in Redis (shared by every instance); else in process.
    pub url: Option<SecretString>,
    /// Prefix of every key Latchkey writes, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Connect and response timeout; a Redis slower than this counts as down (fail closed).
    pub timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "latchkey:".into(),
            timeout_ms: 500,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenylistSettings {
    /// How often each instance replays new revocation-log entries into its denylist.
    pub sync_interval_ms: u64,
    /// The embedded denylist refuses to answer (503) when the log could not be read for
    /// this long.
    pub max_staleness_ms: u64,
}

impl Default for DenylistSettings {
    fn default() -> Self {
        Self {
            sync_interval_ms: 250,
            max_staleness_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// 32 random bytes, base64. Overrides `master_key_file`.
    pub master_key: Option<SecretString>,
    pub master_key_file: PathBuf,
    pub signing_alg: SigningAlg,
    /// How long a new key is published before it signs (scheduled rotation); JWKS caches
    /// (`Cache-Control: max-age`) are half of this, so a cached JWKS never misses a new key.
    pub publish_ahead_secs: i64,
    /// How often each instance re-reads the keys from the database (and runs the key
    /// lifecycle step).
    pub reload_interval_secs: u64,
    /// Age at which the active key is replaced by scheduled rotation; 0 disables it.
    pub rotation_interval_secs: i64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            master_key: None,
            master_key_file: PathBuf::from("keys/master.key"),
            signing_alg: SigningAlg::ES256,
            publish_ahead_secs: 7200,
            reload_interval_secs: 10,
            rotation_interval_secs: 30 * 86_400,
        }
    }
}

impl KeySettings {
    pub fn jwks_max_age_secs(&self) -> i64 {
        (self.publish_ahead_secs / 2).clamp(60, 86_400)
    }

    /// How long a retired key stays published: every token it signed has expired (the
    /// longest access-token lifetime, globally and per client), other instances have stopped
    /// signing with it (one reload interval), plus one JWKS cache lifetime as a margin.
    pub fn retired_grace_secs(&self) -> i64 {
        crate::domain::MAX_ACCESS_TOKEN_TTL
            + i64::try_from(self.reload_interval_secs).unwrap_or(i64::MAX / 4)
            + self.jwks_max_age_secs()
    }
}

/// The admin HTTP API (`/admin/v1/...`): disabled (404) unless a token is configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// The bearer token for the admin API; a high-entropy secret of at least 32 characters.
    pub token: Option<SecretString>,
    /// A listener of its own for the admin API (`host:port`, e.g. on an operator network);
    /// the public listener then answers 404 on admin paths.
    pub bind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    pub access_token_ttl_secs: i64,
    pub refresh_idle_ttl_secs: i64,
    pub refresh_absolute_ttl_secs: i64,
    /// `aud` when neither the request nor the client names one; defaults to the issuer.
    pub default_audience: Option<String>,
    /// How long a client looked up by id is cached in process. A disabled client or rotated
    /// secret takes effect within this delay (at once for changes made through this process).
    pub client_cache_ttl_ms: u64,
    /// The scope an access token needs to call the introspection endpoint as a bearer.
    pub introspection_scope: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 600,
            refresh_idle_ttl_secs: 14 * 86_400,
            refresh_absolute_ttl_secs: 30 * 86_400,
            default_audience: None,
            client_cache_ttl_ms: 1000,
            introspection_scope: "latchkey.introspect".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    pub argon2: Argon2Settings,
    /// Concurrent argon2 computations; 0 means one per core.
    pub hashing_threads: usize,
    /// Longer passwords are rejected before hashing.
    pub max_length: usize,
    /// Password policy for new passwords (the password grant is not affected).
    pub min_length: usize,
    /// Refuse passwords too similar to the email, username or display name.
    pub reject_similar: bool,
    /// Refuse passwords made only of digits.
    pub reject_numeric: bool,
    /// Refuse the 30,000 most common passwords.
    pub reject_common: bool,
    /// A file of breached passwords (SHA-1 hex, `HASH[:COUNT]`, or plain), refused too.
    pub breach_corpus_file: Option<PathBuf>,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            argon2: Argon2Settings::default(),
            hashing_threads: 0,
            max_length: 1024,
            // OWASP ASVS 4.0 V2.1.1: at least 12 characters.
            min_length: 12,
            reject_similar: true,
            reject_numeric: true,
            reject_common: true,
            breach_corpus_file: None,
        }
    }
}

/// Self-service accounts: sign-up, verification, reset, magic links (`/api/v1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// Who may sign up: `open`, `invite` (an operator's invitation is required) or `closed`.
    pub signup: SignupMode,
    /// `optional`: unverified users can sign in; `mandatory`: they cannot obtain tokens.
    pub email_verification: VerificationPolicy,
    /// Lifetime of an email-verification link.
    pub verification_ttl_secs: i64,
    /// Lifetime of a password-reset link.
    pub reset_ttl_secs: i64,
    /// Lifetime of a magic sign-in link or code.
    pub magic_link_ttl_secs: i64,
    /// Lifetime of an invitation.
    pub invite_ttl_secs: i64,
    /// Whether magic-link sign-in is offered.
    pub magic_links: bool,
    /// User attributes a user may set on their own profile (and at sign-up).
    pub profile_attributes: Vec<String>,
    /// Link templates; `{token}` is replaced. Defaults point at Latchkey's own pages.
    pub verify_url: Option<String>,
    pub reset_url: Option<String>,
    pub magic_link_url: Option<String>,
    pub invite_url: Option<String>,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            signup: SignupMode::Open,
            email_verification: VerificationPolicy::Optional,
            verification_ttl_secs: 86_400,
            reset_ttl_secs: 3_600,
            // OWASP ASVS 4.0 V2.7.2: out-of-band codes live at most 10 minutes.
            magic_link_ttl_secs: 600,
            invite_ttl_secs: 7 * 86_400,
            magic_links: true,
            profile_attributes: Vec::new(),
            verify_url: None,
            reset_url: None,
            magic_link_url: None,
            invite_url: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    Open,
    Invite,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerificationPolicy {
    Optional,
    Mandatory,
}

/// Outgoing mail: the transport, the sender, templates and the SMTP relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// `outbox` (development: `.eml` files plus a log line) or `smtp`.
    pub transport: MailTransportKind,
    /// The sender mailbox, such as `Example <no-reply@example.com>`.
    pub from: String,
    /// `{{ product_name }}` in the templates.
    pub product_name: String,
    /// Where the outbox transport writes its `.eml` files (created with mode 0700).
    pub outbox_dir: PathBuf,
    /// A folder of template files overriding the built-in ones, file by file.
    pub templates_dir: Option<PathBuf>,
    /// Messages waiting for delivery; past this, requests that send mail answer 503.
    pub queue_capacity: usize,
    pub smtp_host: Option<String>,
    /// Defaults by security mode: 587 (`starttls`), 465 (`tls`), 25 (`none`).
    pub smtp_port: Option<u16>,
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    /// Connect and per-command timeout.
    pub smtp_timeout_ms: u64,
    /// A PEM file of CA certificates trusted besides the public web roots.
    pub smtp_ca_file: Option<PathBuf>,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: MailTransportKind::Outbox,
            from: "Latchkey <no-reply@localhost>".into(),
            product_name: "Latchkey".into(),
            outbox_dir: PathBuf::from("./data/outbox"),
            templates_dir: None,
            queue_capacity: 1000,
            smtp_host: None,
            smtp_port: None,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password: None,
            smtp_timeout_ms: 10_000,
            smtp_ca_file: None,
        }
    }
}

impl MailSettings {
    /// The configured port, else the usual one for the security mode.
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.smtp_security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    Outbox,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP upgraded with a STARTTLS that must succeed.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption: only for a relay on the loopback interface.
    None,
}

/// The host of a URL authority (`host`, `host:port`, `[v6]`, `[v6]:port`; user info dropped).
fn host_of(authority: &str) -> &str {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.starts_with('[') {
        return authority.split(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// `localhost`, or an IP address on the loopback interface.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Brute-force and abuse throttling (README, Brute-force protection).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// `false` turns every limit off (tests, or a proxy that throttles already).
    pub enabled: bool,
    /// Failed logins an account+IP pair may make within `login_window_secs` before back-off.
    pub login_free_failures: u64,
    pub login_window_secs: u64,
    /// The first back-off delay; it doubles with each further failure.
    pub login_backoff_base_secs: u64,
    /// The longest delay: a temporary lockout of the pair.
    pub login_lockout_secs: u64,
    /// Failures per account over all IPs within `account_window_secs`, beyond which only IPs
    /// the account logged in from recently may try.
    pub account_max_failures: u64,
    pub account_window_secs: u64,
    /// How long a successful login exempts its IP from the account-wide limit; 0: never.
    pub trusted_ip_ttl_secs: u64,
    /// Failures per IP (IPv6: per /64) over all accounts within `ip_window_secs`.
    pub ip_max_failures: u64,
    pub ip_window_secs: u64,
    /// Seconds between two mails (sign-up, verification, reset, magic link) to one address.
    pub email_cooldown_secs: u64,
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

#[cfg(test)]
mod throttle_settings_tests {
    use super::Settings;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

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
                t.login_window_secs,
                t.login_backoff_base_secs
            ),
            (5, 900, 1)
        );
        assert_eq!((t.login_lockout_secs, t.account_max_failures), (900, 50));
        assert_eq!(
            (t.account_window_secs, t.trusted_ip_ttl_secs),
            (3600, 2_592_000)
        );
        assert_eq!((t.ip_max_failures, t.ip_window_secs), (100, 900));
        assert_eq!((t.email_cooldown_secs, t.email_daily_cap), (60, 5));
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
                t.login_window_secs,
                t.login_backoff_base_secs
            ),
            (3, 600, 2)
        );
        assert_eq!((t.login_lockout_secs, t.account_max_failures), (1800, 20));
        assert_eq!((t.account_window_secs, t.trusted_ip_ttl_secs), (7200, 0));
        assert_eq!((t.ip_max_failures, t.ip_window_secs), (40, 300));
        assert_eq!((t.email_cooldown_secs, t.email_daily_cap), (30, 3));
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `latchkey=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub denylist: DenylistSettings,
    pub keys: KeySettings,
    pub admin: AdminSettings,
    pub tokens: TokenSettings,
    pub passwords: PasswordSettings,
    pub log: LogSettings,
    pub accounts: AccountSettings,
    pub mail: MailSettings,
    pub throttle: ThrottleSettings,
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    List,
}

/// Every environment variable, the config key it overrides, and how its value is read.
const ENV_KEYS: &[(&str, &str, Kind)] = &[
    ("LATCHKEY_BIND", "server.bind", Kind::Str),
    ("LATCHKEY_ISSUER", "server.issuer", Kind::Str),
    ("LATCHKEY_PROFILE", "server.profile", Kind::Str),
    (
        "LATCHKEY_MAX_BODY_BYTES",
        "server.max_body_bytes",
        Kind::Int,
    ),
    ("LATCHKEY_WORKERS", "server.workers", Kind::Int),
    (
        "LATCHKEY_CORS_ALLOWED_ORIGINS",
        "server.cors_allowed_origins",
        Kind::List,
    ),
    (
        "LATCHKEY_TRUSTED_PROXIES",
        "server.trusted_proxies",
        Kind::List,
    ),
    ("LATCHKEY_DATABASE_URL", "database.url", Kind::Str),
    (
        "LATCHKEY_DATABASE_MAX_CONNECTIONS",
        "database.max_connections",
        Kind::Int,
    ),
    ("LATCHKEY_REDIS_URL", "redis.url", Kind::Str),
    ("LATCHKEY_REDIS_KEY_PREFIX", "redis.key_prefix", Kind::Str),
    ("LATCHKEY_REDIS_TIMEOUT_MS", "redis.timeout_ms", Kind::Int),
    (
        "LATCHKEY_DENYLIST_SYNC_INTERVAL_MS",
        "denylist.sync_interval_ms",
        Kind::Int,
    ),
    (
        "LATCHKEY_DENYLIST_MAX_STALENESS_MS",
        "denylist.max_staleness_ms",
        Kind::Int,
    ),
    (
        "LATCHKEY_INTROSPECTION_SCOPE",
        "tokens.introspection_scope",
        Kind::Str,
    ),
    ("LATCHKEY_MASTER_KEY", "keys.master_key", Kind::Str),
    (
        "LATCHKEY_MASTER_KEY_FILE",
        "keys.master_key_file",
        Kind::Str,
    ),
    ("LATCHKEY_SIGNING_ALG", "keys.signing_alg", Kind::Str),
    (
        "LATCHKEY_KEY_PUBLISH_AHEAD_SECS",
        "keys.publish_ahead_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_KEY_RELOAD_INTERVAL_SECS",
        "keys.reload_interval_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_KEY_ROTATION_INTERVAL_SECS",
        "keys.rotation_interval_secs",
        Kind::Int,
    ),
    ("LATCHKEY_ADMIN_TOKEN", "admin.token", Kind::Str),
    ("LATCHKEY_ADMIN_BIND", "admin.bind", Kind::Str),
    (
        "LATCHKEY_ACCESS_TOKEN_TTL_SECS",
        "tokens.access_token_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_REFRESH_IDLE_TTL_SECS",
        "tokens.refresh_idle_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_REFRESH_ABSOLUTE_TTL_SECS",
        "tokens.refresh_absolute_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_DEFAULT_AUDIENCE",
        "tokens.default_audience",
        Kind::Str,
    ),
    (
        "LATCHKEY_CLIENT_CACHE_TTL_MS",
        "tokens.client_cache_ttl_ms",
        Kind::Int,
    ),
    (
        "LATCHKEY_ARGON2_MEMORY_KIB",
        "passwords.argon2.memory_kib",
        Kind::Int,
    ),
    (
        "LATCHKEY_ARGON2_ITERATIONS",
        "passwords.argon2.iterations",
        Kind::Int,
    ),
    (
        "LATCHKEY_ARGON2_PARALLELISM",
        "passwords.argon2.parallelism",
        Kind::Int,
    ),
    (
        "LATCHKEY_HASHING_THREADS",
        "passwords.hashing_threads",
        Kind::Int,
    ),
    (
        "LATCHKEY_PASSWORD_MAX_LENGTH",
        "passwords.max_length",
        Kind::Int,
    ),
    (
        "LATCHKEY_PASSWORD_MIN_LENGTH",
        "passwords.min_length",
        Kind::Int,
    ),
    (
        "LATCHKEY_PASSWORD_REJECT_SIMILAR",
        "passwords.reject_similar",
        Kind::Bool,
    ),
    (
        "LATCHKEY_PASSWORD_REJECT_NUMERIC",
        "passwords.reject_numeric",
        Kind::Bool,
    ),
    (
        "LATCHKEY_PASSWORD_REJECT_COMMON",
        "passwords.reject_common",
        Kind::Bool,
    ),
    (
        "LATCHKEY_PASSWORD_BREACH_CORPUS_FILE",
        "passwords.breach_corpus_file",
        Kind::Str,
    ),
    // accounts.*
    ("LATCHKEY_SIGNUP", "accounts.signup", Kind::Str),
    (
        "LATCHKEY_EMAIL_VERIFICATION",
        "accounts.email_verification",
        Kind::Str,
    ),
    (
        "LATCHKEY_VERIFICATION_TTL_SECS",
        "accounts.verification_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_RESET_TTL_SECS",
        "accounts.reset_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_MAGIC_LINK_TTL_SECS",
        "accounts.magic_link_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_INVITE_TTL_SECS",
        "accounts.invite_ttl_secs",
        Kind::Int,
    ),
    ("LATCHKEY_MAGIC_LINKS", "accounts.magic_links", Kind::Bool),
    (
        "LATCHKEY_PROFILE_ATTRIBUTES",
        "accounts.profile_attributes",
        Kind::List,
    ),
    ("LATCHKEY_VERIFY_URL", "accounts.verify_url", Kind::Str),
    ("LATCHKEY_RESET_URL", "accounts.reset_url", Kind::Str),
    (
        "LATCHKEY_MAGIC_LINK_URL",
        "accounts.magic_link_url",
        Kind::Str,
    ),
    ("LATCHKEY_INVITE_URL", "accounts.invite_url", Kind::Str),
    // mail.* (the mail work adds its variables here)
    ("LATCHKEY_MAIL_TRANSPORT", "mail.transport", Kind::Str),
    ("LATCHKEY_MAIL_FROM", "mail.from", Kind::Str),
    ("LATCHKEY_MAIL_PRODUCT_NAME", "mail.product_name", Kind::Str),
    ("LATCHKEY_MAIL_OUTBOX_DIR", "mail.outbox_dir", Kind::Str),
    (
        "LATCHKEY_MAIL_TEMPLATES_DIR",
        "mail.templates_dir",
        Kind::Str,
    ),
    (
        "LATCHKEY_MAIL_QUEUE_CAPACITY",
        "mail.queue_capacity",
        Kind::Int,
    ),
    ("LATCHKEY_SMTP_HOST", "mail.smtp_host", Kind::Str),
    ("LATCHKEY_SMTP_PORT", "mail.smtp_port", Kind::Int),
    ("LATCHKEY_SMTP_SECURITY", "mail.smtp_security", Kind::Str),
    ("LATCHKEY_SMTP_USERNAME", "mail.smtp_username", Kind::Str),
    ("LATCHKEY_SMTP_PASSWORD", "mail.smtp_password", Kind::Str),
    (
        "LATCHKEY_SMTP_TIMEOUT_MS",
        "mail.smtp_timeout_ms",
        Kind::Int,
    ),
    ("LATCHKEY_SMTP_CA_FILE", "mail.smtp_ca_file", Kind::Str),
    ("LATCHKEY_LOG_FORMAT", "log.format", Kind::Str),
    // throttle.*
    ("LATCHKEY_THROTTLE_ENABLED", "throttle.enabled", Kind::Bool),
    (
        "LATCHKEY_THROTTLE_LOGIN_FREE_FAILURES",
        "throttle.login_free_failures",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_WINDOW_SECS",
        "throttle.login_window_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_BACKOFF_BASE_SECS",
        "throttle.login_backoff_base_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_LOCKOUT_SECS",
        "throttle.login_lockout_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_ACCOUNT_MAX_FAILURES",
        "throttle.account_max_failures",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_ACCOUNT_WINDOW_SECS",
        "throttle.account_window_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_TRUSTED_IP_TTL_SECS",
        "throttle.trusted_ip_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_IP_MAX_FAILURES",
        "throttle.ip_max_failures",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_IP_WINDOW_SECS",
        "throttle.ip_window_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_EMAIL_COOLDOWN_SECS",
        "throttle.email_cooldown_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_EMAIL_DAILY_CAP",
        "throttle.email_daily_cap",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_IP_DAILY_CAP",
        "throttle.ip_daily_cap",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_SIGNUP_PER_IP_PER_HOUR",
        "throttle.signup_per_ip_per_hour",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_MEMORY_MAX_ENTRIES",
        "throttle.memory_max_entries",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_CONCURRENCY_PER_ACCOUNT",
        "throttle.login_concurrency_per_account",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_CONCURRENCY_PER_NETWORK",
        "throttle.login_concurrency_per_network",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_ADMIN_MAX_FAILURES",
        "throttle.admin_max_failures",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_USER_REQUESTS_PER_MINUTE",
        "throttle.user_requests_per_minute",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_CLIENT_REQUESTS_PER_MINUTE",
        "throttle.client_requests_per_minute",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_REVOCATIONS_PER_CLIENT_PER_MINUTE",
        "throttle.revocations_per_client_per_minute",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_INTROSPECTIONS_PER_CLIENT_PER_MINUTE",
        "throttle.introspections_per_client_per_minute",
        Kind::Int,
    ),
    ("LATCHKEY_LOG_LEVEL", "log.level", Kind::Str),
];

/// Variables read before the others (not config keys).
const META_ENV: &[&str] = &["LATCHKEY_CONFIG"];

fn set_path(root: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), ConfigError> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().ok_or_else(|| invalid("empty key"))?;
    let mut table = root;
    for p in parts {
        let entry = table
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| invalid(format!("{p} must be a table")))?;
    }
    table.insert(last.to_owned(), value);
    Ok(())
}

impl Settings {
    /// Loads from the process environment (and `LATCHKEY_CONFIG` or `./latchkey.toml`).
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let file = vars
            .iter()
            .find(|(k, _)| k == "LATCHKEY_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        let file = match file {
            Some(f) => Some(f),
            None => Some(PathBuf::from("latchkey.toml")).filter(|p| p.exists()),
        };
        Self::load(file.as_deref(), vars)
    }

    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut root = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            if !name.starts_with("LATCHKEY_") || META_ENV.contains(&name.as_str()) {
                continue;
            }
            let Some((_, path, kind)) = ENV_KEYS.iter().find(|(n, _, _)| *n == name) else {
                return Err(invalid(format!(
                    "unknown environment variable {name} (see README, Configuration)"
                )));
            };
            let v =
                match kind {
                    Kind::Str => toml::Value::String(value),
                    Kind::Int => toml::Value::Integer(value.trim().parse().map_err(|_| {
                        invalid(format!("{name} must be an integer, got {value:?}"))
                    })?),
                    Kind::Bool => {
                        toml::Value::Boolean(match value.trim().to_ascii_lowercase().as_str() {
                            "true" | "1" | "yes" => true,
                            "false" | "0" | "no" => false,
                            _ => {
                                return Err(invalid(format!(
                                    "{name} must be true or false, got {value:?}"
                                )))
                            }
                        })
                    }
                    Kind::List => toml::Value::Array(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| toml::Value::String(s.to_owned()))
                            .collect(),
                    ),
                };
            set_path(&mut root, path, v)?;
        }
        let settings: Settings = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.message().to_owned()))?;
        settings.validated()
    }

    fn validated(mut self) -> Result<Self, ConfigError> {
        let bind: SocketAddr = self.server.bind.parse().map_err(|_| {
            invalid(format!(
                "server.bind must be host:port (an IP address and a port), got {:?}",
                self.server.bind
            ))
        })?;
        let issuer = match self.server.issuer.take() {
            Some(i) => i.trim_end_matches('/').to_owned(),
            None if self.server.profile == Profile::Production => {
                return Err(invalid(
                    "server.issuer (LATCHKEY_ISSUER) is required in the production profile",
                ))
            }
            None => {
                self.server.issuer_derived = true;
                format!("http://{bind}")
            }
        };
        let scheme_ok = issuer.starts_with("https://") || issuer.starts_with("http://");
        if !scheme_ok || issuer.contains('?') || issuer.contains('#') || issuer.len() > 500 {
            return Err(invalid(format!(
                "server.issuer must be an http(s) URL without query or fragment, got {issuer:?}"
            )));
        }
        if self.server.profile == Profile::Production {
            if let Some(rest) = issuer.strip_prefix("http://") {
                let authority = rest.split('/').next().unwrap_or_default();
                if !is_loopback_host(host_of(authority)) {
                    return Err(invalid(format!(
                        "server.issuer must be an https URL in the production profile (plain \
                         http is allowed only on the loopback interface), got {issuer:?}"
                    )));
                }
            }
        }
        self.server.issuer = Some(issuer);
        if self.server.max_body_bytes < 1024 || self.server.max_body_bytes > 1024 * 1024 {
            return Err(invalid(
                "server.max_body_bytes must be between 1024 and 1048576",
            ));
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url must start with sqlite: or postgres://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections must be at least 1"));
        }
        if self.server.profile == Profile::Production && self.keys.master_key.is_none() {
            return Err(invalid(
                "keys.master_key (LATCHKEY_MASTER_KEY) is required in the production profile",
            ));
        }
        let t = &self.tokens;
        if !(30..=86_400).contains(&t.access_token_ttl_secs) {
            return Err(invalid(
                "tokens.access_token_ttl_secs must be between 30 and 86400",
            ));
        }
        if t.refresh_idle_ttl_secs < 60 || t.refresh_absolute_ttl_secs < 60 {
            return Err(invalid(
                "refresh token lifetimes must be at least 60 seconds",
            ));
        }
        if let Some(a) = &t.default_audience {
            Audience::parse(a).map_err(|e| invalid(format!("tokens.default_audience: {e}")))?;
        }
        if self.keys.publish_ahead_secs < 0 || self.keys.reload_interval_secs == 0 {
            return Err(invalid(
                "keys.publish_ahead_secs must be >= 0 and keys.reload_interval_secs >= 1",
            ));
        }
        if let Some(url) = &self.redis.url {
            let url = secrecy::ExposeSecret::expose_secret(url);
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(invalid(
                    "redis.url (LATCHKEY_REDIS_URL) must start with redis://",
                ));
            }
            if url.starts_with("rediss://") {
                return Err(invalid(
                    "redis.url: TLS (rediss://) is not supported by this build; use a TLS tunnel or a private network",
                ));
            }
        }
        if self.redis.key_prefix.is_empty() || self.redis.key_prefix.len() > 64 {
            return Err(invalid("redis.key_prefix must be 1 to 64 characters"));
        }
        if !(50..=30_000).contains(&self.redis.timeout_ms) {
            return Err(invalid("redis.timeout_ms must be between 50 and 30000"));
        }
        let d = &self.denylist;
        if !(10..=1000).contains(&d.sync_interval_ms) {
            return Err(invalid(
                "denylist.sync_interval_ms must be between 10 and 1000 (a revocation must reach every instance within a second)",
            ));
        }
        if d.max_staleness_ms < 2 * d.sync_interval_ms {
            return Err(invalid(
                "denylist.max_staleness_ms must be at least twice denylist.sync_interval_ms",
            ));
        }
        if crate::domain::Scope::parse(&self.tokens.introspection_scope)
            .map(|s| s.iter().count() != 1)
            .unwrap_or(true)
        {
            return Err(invalid(
                "tokens.introspection_scope must be a single scope token",
            ));
        }
        self.validate_key_lifecycle()?;
        for p in &self.server.trusted_proxies {
            p.parse::<std::net::IpAddr>().map_err(|_| {
                invalid(format!(
                    "server.trusted_proxies: {p:?} is not an IP address"
                ))
            })?;
        }
        self.validate_accounts()?;
        self.validate_mail()?;
        self.validate_throttle()?;
        let a = &self.passwords.argon2;
        if a.memory_kib < 8 * a.parallelism || a.iterations == 0 || a.parallelism == 0 {
            return Err(invalid("passwords.argon2 parameters are out of range"));
        }
        if self.passwords.max_length < 8 {
            return Err(invalid("passwords.max_length must be at least 8"));
        }
        if self.passwords.min_length == 0 || self.passwords.min_length > self.passwords.max_length {
            return Err(invalid(
                "passwords.min_length must be between 1 and passwords.max_length",
            ));
        }
        Ok(self)
    }

    /// Scheduled rotation and the admin credential.
    fn validate_key_lifecycle(&self) -> Result<(), ConfigError> {
        let k = &self.keys;
        let reload = i64::try_from(k.reload_interval_secs).unwrap_or(i64::MAX / 4);
        if k.publish_ahead_secs < k.jwks_max_age_secs().saturating_add(reload) {
            return Err(invalid(format!(
                "keys.publish_ahead_secs must cover one JWKS cache lifetime plus one reload interval \
                 (at least {} s with these settings), so that every instance publishes a new key \
                 before any cached JWKS could lack it",
                k.jwks_max_age_secs().saturating_add(reload)
            )));
        }
        if k.rotation_interval_secs != 0
            && (k.rotation_interval_secs < 3600 || k.rotation_interval_secs <= k.publish_ahead_secs)
        {
            return Err(invalid(
                "keys.rotation_interval_secs must be 0 (disabled), or at least 3600 and longer than keys.publish_ahead_secs",
            ));
        }
        if let Some(token) = &self.admin.token {
            use secrecy::ExposeSecret;
            if token.expose_secret().chars().count() < 32 {
                return Err(invalid(
                    "admin.token (LATCHKEY_ADMIN_TOKEN) must be at least 32 characters; generate one with `openssl rand -base64 32`",
                ));
            }
        }
        if let Some(bind) = &self.admin.bind {
            let Ok(addr) = bind.parse::<SocketAddr>() else {
                return Err(invalid(format!(
                    "admin.bind (LATCHKEY_ADMIN_BIND) must be host:port (an IP address and a \
                     port), got {bind:?}"
                )));
            };
            if self.admin.token.is_none() {
                return Err(invalid(
                    "admin.bind (LATCHKEY_ADMIN_BIND) needs admin.token (LATCHKEY_ADMIN_TOKEN): \
                     without a token the admin API is off",
                ));
            }
            if addr.port() != 0 && self.server.bind.parse::<SocketAddr>().ok() == Some(addr) {
                return Err(invalid(
                    "admin.bind must differ from server.bind: the admin API gets a listener of \
                     its own",
                ));
            }
        }
        Ok(())
    }

    /// Self-service account settings.
    fn validate_accounts(&self) -> Result<(), ConfigError> {
        let a = &self.accounts;
        for (name, v) in [
            ("accounts.verification_ttl_secs", a.verification_ttl_secs),
            ("accounts.reset_ttl_secs", a.reset_ttl_secs),
            ("accounts.magic_link_ttl_secs", a.magic_link_ttl_secs),
            ("accounts.invite_ttl_secs", a.invite_ttl_secs),
        ] {
            if !(60..=30 * 86_400).contains(&v) {
                return Err(invalid(format!(
                    "{name} must be between 60 and 2592000 seconds"
                )));
            }
        }
        for (name, url) in [
            ("accounts.verify_url", &a.verify_url),
            ("accounts.reset_url", &a.reset_url),
            ("accounts.magic_link_url", &a.magic_link_url),
            ("accounts.invite_url", &a.invite_url),
        ] {
            if let Some(u) = url {
                let scheme_ok = u.starts_with("https://") || u.starts_with("http://");
                if !scheme_ok || !u.contains("{token}") {
                    return Err(invalid(format!(
                        "{name} must be an http(s) URL containing {{token}}, got {u:?}"
                    )));
                }
            }
        }
        for attr in &a.profile_attributes {
            if attr.is_empty()
                || attr.len() > 64
                || !attr
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(invalid(format!(
                    "accounts.profile_attributes: {attr:?} is not a valid attribute name"
                )));
            }
        }
        Ok(())
    }

    /// Outgoing mail settings.
    fn validate_mail(&self) -> Result<(), ConfigError> {
        let m = &self.mail;
        if m.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(format!(
                "mail.from (LATCHKEY_MAIL_FROM) must be a mailbox such as \"Example <no-reply@example.com>\", got {:?}",
                m.from
            )));
        }
        let name = m.product_name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid(
                "mail.product_name must be 1 to 100 characters without control characters",
            ));
        }
        if !(1..=1_000_000).contains(&m.queue_capacity) {
            return Err(invalid("mail.queue_capacity must be between 1 and 1000000"));
        }
        if !(100..=300_000).contains(&m.smtp_timeout_ms) {
            return Err(invalid(
                "mail.smtp_timeout_ms must be between 100 and 300000",
            ));
        }
        if m.smtp_port == Some(0) {
            return Err(invalid("mail.smtp_port must be between 1 and 65535"));
        }
        if m.smtp_username.is_some() != m.smtp_password.is_some() {
            return Err(invalid(
                "mail.smtp_username and mail.smtp_password must be set together",
            ));
        }
        if m.transport == MailTransportKind::Smtp {
            let Some(host) = m
                .smtp_host
                .as_deref()
                .map(str::trim)
                .filter(|h| !h.is_empty())
            else {
                return Err(invalid(
                    "mail.transport = \"smtp\" needs mail.smtp_host (LATCHKEY_SMTP_HOST)",
                ));
            };
            if m.smtp_security == SmtpSecurity::None
                && self.server.profile == Profile::Production
                && !is_loopback_host(host)
            {
                return Err(invalid(format!(
                    "mail.smtp_security = \"none\" sends credentials and sign-in links in clear text; \
                     in the production profile it is allowed only for a relay on the loopback \
                     interface, not {host:?} (use starttls or tls)"
                )));
            }
        }
        Ok(())
    }

    /// Throttle settings: every limit at least 1, every window and delay in a sane range.
    fn validate_throttle(&self) -> Result<(), ConfigError> {
        const DAY: u64 = 86_400;
        let t = &self.throttle;
        for (name, v, range) in [
            (
                "throttle.login_free_failures",
                t.login_free_failures,
                1..=1000,
            ),
            ("throttle.login_window_secs", t.login_window_secs, 60..=DAY),
            ("throttle.login_lockout_secs", t.login_lockout_secs, 1..=DAY),
            (
                "throttle.account_max_failures",
                t.account_max_failures,
                1..=1_000_000,
            ),
            (
                "throttle.account_window_secs",
                t.account_window_secs,
                60..=7 * DAY,
            ),
            (
                "throttle.trusted_ip_ttl_secs",
                t.trusted_ip_ttl_secs,
                0..=365 * DAY,
            ),
            ("throttle.ip_max_failures", t.ip_max_failures, 1..=1_000_000),
            ("throttle.ip_window_secs", t.ip_window_secs, 60..=DAY),
            (
                "throttle.email_cooldown_secs",
                t.email_cooldown_secs,
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
        if !(1..=t.login_lockout_secs).contains(&t.login_backoff_base_secs) {
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

    /// The trusted reverse proxies, parsed (validated at load).
    pub fn trusted_proxies(&self) -> Vec<std::net::IpAddr> {
        self.server
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// The validated issuer URL, without a trailing slash.
    pub fn issuer(&self) -> &str {
        self.server.issuer.as_deref().unwrap_or_default()
    }

    /// With a derived issuer and port 0, the issuer names the port actually bound.
    pub fn with_bound_port(&self, port: u16) -> Settings {
        let mut s = self.clone();
        if s.server.issuer_derived {
            if let Ok(mut addr) = s.server.bind.parse::<SocketAddr>() {
                addr.set_port(port);
                s.server.issuer = Some(format!("http://{addr}"));
            }
        }
        s
    }

    pub fn default_audience(&self) -> &str {
        self.tokens
            .default_audience
            .as_deref()
            .unwrap_or_else(|| self.issuer())
    }

    /// The longest an access token can live: the per-client cap, which the global lifetime
    /// (validated to at most a day) never exceeds.
    pub fn access_token_horizon(&self) -> i64 {
        crate::domain::MAX_ACCESS_TOKEN_TTL
    }

    /// The policy new passwords must meet.
    pub fn password_policy(&self) -> crate::domain::PasswordPolicy {
        let p = &self.passwords;
        crate::domain::PasswordPolicy {
            min_length: p.min_length,
            max_length: p.max_length,
            reject_similar: p.reject_similar,
            reject_numeric: p.reject_numeric,
            reject_common: p.reject_common,
        }
    }

    pub fn hashing_threads(&self) -> usize {
        match self.passwords.hashing_threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_env_overrides_them() {
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_BIND", "127.0.0.1:0"),
                ("LATCHKEY_ACCESS_TOKEN_TTL_SECS", "300"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.server.bind, "127.0.0.1:0");
        assert_eq!(s.tokens.access_token_ttl_secs, 300);
        assert_eq!(s.issuer(), "http://127.0.0.1:0");
        assert_eq!(s.default_audience(), "http://127.0.0.1:0");
    }

    #[test]
    fn invalid_values_and_unknown_keys_stop_start_up_with_a_message() {
        let e = Settings::load(None, env(&[("LATCHKEY_BIND", "nowhere")]))
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("server.bind"));
        let e = Settings::load(None, env(&[("LATCHKEY_DATABSE_URL", "x")]))
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("LATCHKEY_DATABSE_URL"));
        let e = Settings::load(
            None,
            env(&[
                ("LATCHKEY_PROFILE", "production"),
                ("LATCHKEY_ISSUER", "https://id.example.com"),
            ]),
        )
        .err()
        .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("LATCHKEY_MASTER_KEY"));
        let e = Settings::load(None, env(&[("LATCHKEY_SIGNING_ALG", "HS256")]))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some());
    }

    #[test]
    fn boolean_variables_and_the_password_policy_are_validated() {
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_PASSWORD_REJECT_COMMON", "false"),
                ("LATCHKEY_PASSWORD_MIN_LENGTH", "12"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let policy = s.password_policy();
        assert!(!policy.reject_common && policy.reject_similar);
        assert_eq!(policy.min_length, 12);
        for bad in [
            ("LATCHKEY_PASSWORD_REJECT_COMMON", "maybe"),
            ("LATCHKEY_PASSWORD_MIN_LENGTH", "0"),
            ("LATCHKEY_PASSWORD_MIN_LENGTH", "5000"),
        ] {
            assert!(Settings::load(None, env(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = Settings::load(
            None,
            env(&[
                (
                    "LATCHKEY_DATABASE_URL",
                    "postgres://latchkey:hunter2@db/latchkey",
                ),
                (
                    "LATCHKEY_MASTER_KEY",
                    "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
                ),
            ]),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        assert!(shown.contains("postgres://latchkey:[redacted]@db/latchkey"));
    }

    #[test]
    fn key_rotation_and_admin_token_settings_are_validated() {
        let s = Settings::load(None, env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.keys.rotation_interval_secs, 2_592_000);
        assert!(s.admin.token.is_none());
        assert_eq!(s.keys.retired_grace_secs(), 86_400 + 10 + 3600);
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_KEY_ROTATION_INTERVAL_SECS", "0"),
                ("LATCHKEY_ADMIN_TOKEN", "0123456789abcdef0123456789abcdef"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.keys.rotation_interval_secs, 0);
        assert!(s.admin.token.is_some());
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
        let err = |pairs: &[(&str, &str)]| {
            Settings::load(None, env(pairs))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(&[("LATCHKEY_ADMIN_TOKEN", "short")]).contains("at least 32"));
        assert!(err(&[("LATCHKEY_KEY_ROTATION_INTERVAL_SECS", "600")])
            .contains("keys.rotation_interval_secs"));
        assert!(err(&[
            ("LATCHKEY_KEY_ROTATION_INTERVAL_SECS", "7200"),
            ("LATCHKEY_KEY_PUBLISH_AHEAD_SECS", "7200"),
        ])
        .contains("keys.rotation_interval_secs"));
        assert!(err(&[("LATCHKEY_KEY_ROTATION_INTERVAL_SECS", "soon")]).contains("integer"));
        assert!(
            err(&[("LATCHKEY_KEY_PUBLISH_AHEAD_SECS", "30")]).contains("keys.publish_ahead_secs")
        );
        assert!(err(&[
            ("LATCHKEY_KEY_PUBLISH_AHEAD_SECS", "600"),
            ("LATCHKEY_KEY_RELOAD_INTERVAL_SECS", "400"),
        ])
        .contains("keys.publish_ahead_secs"));
    }

    #[test]
    fn a_config_file_is_read_and_unknown_keys_in_it_are_rejected() {
        let dir = std::env::temp_dir().join(format!("latchkey-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[tokens]\naccess_token_ttl_secs = 120\n[keys]\nsigning_alg = \"EdDSA\"\n",
        )
        .unwrap_or_default();
        let s = Settings::load(Some(&good), env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.tokens.access_token_ttl_secs, 120);
        assert_eq!(s.keys.signing_alg, SigningAlg::EdDSA);
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[tokens]\naccess_token_ttl = 120\n").unwrap_or_default();
        assert!(Settings::load(Some(&bad), env(&[])).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn mail_settings_have_development_defaults_and_env_overrides() {
        let s = Settings::load(None, env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.mail.transport, MailTransportKind::Outbox);
        assert_eq!(s.mail.from, "Latchkey <no-reply@localhost>");
        assert_eq!(s.mail.product_name, "Latchkey");
        assert_eq!(s.mail.queue_capacity, 1000);
        assert_eq!(s.mail.smtp_security, SmtpSecurity::Starttls);
        assert_eq!(s.mail.smtp_port(), 587);
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_MAIL_TRANSPORT", "smtp"),
                ("LATCHKEY_MAIL_FROM", "Example ID <id@example.com>"),
                ("LATCHKEY_MAIL_PRODUCT_NAME", "Example"),
                ("LATCHKEY_MAIL_QUEUE_CAPACITY", "5"),
                ("LATCHKEY_MAIL_TEMPLATES_DIR", "/etc/latchkey/mail"),
                ("LATCHKEY_SMTP_HOST", "smtp.example.com"),
                ("LATCHKEY_SMTP_SECURITY", "tls"),
                ("LATCHKEY_SMTP_USERNAME", "relay"),
                ("LATCHKEY_SMTP_PASSWORD", "sw0rdfish-relay"),
                ("LATCHKEY_SMTP_TIMEOUT_MS", "2500"),
                ("LATCHKEY_SMTP_CA_FILE", "/etc/latchkey/ca.pem"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let m = &s.mail;
        assert_eq!(m.transport, MailTransportKind::Smtp);
        assert_eq!(m.smtp_port(), 465);
        assert_eq!(m.queue_capacity, 5);
        assert_eq!(m.smtp_timeout_ms, 2500);
        assert_eq!(m.smtp_username.as_deref(), Some("relay"));
        assert_eq!(
            m.templates_dir.as_deref(),
            Some(Path::new("/etc/latchkey/mail"))
        );
        assert!(!format!("{s:?}").contains("sw0rdfish"));
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_SMTP_SECURITY", "none"),
                ("LATCHKEY_SMTP_PORT", "2525"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.mail.smtp_port(), 2525);
    }

    #[test]
    fn mail_settings_are_validated() {
        let err = |pairs: &[(&str, &str)]| {
            Settings::load(None, env(pairs))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(&[("LATCHKEY_MAIL_TRANSPORT", "smtp")]).contains("mail.smtp_host"));
        assert!(err(&[("LATCHKEY_MAIL_TRANSPORT", "pigeon")]).contains("pigeon"));
        assert!(err(&[("LATCHKEY_MAIL_FROM", "not a mailbox")]).contains("mail.from"));
        assert!(err(&[("LATCHKEY_MAIL_QUEUE_CAPACITY", "0")]).contains("mail.queue_capacity"));
        assert!(err(&[("LATCHKEY_MAIL_PRODUCT_NAME", " ")]).contains("mail.product_name"));
        assert!(err(&[("LATCHKEY_SMTP_PORT", "0")]).contains("mail.smtp_port"));
        assert!(err(&[("LATCHKEY_SMTP_TIMEOUT_MS", "5")]).contains("mail.smtp_timeout_ms"));
        assert!(err(&[("LATCHKEY_SMTP_SECURITY", "ssl")]).contains("ssl"));
        assert!(err(&[("LATCHKEY_SMTP_USERNAME", "relay")]).contains("mail.smtp_password"));
        let production = [
            ("LATCHKEY_PROFILE", "production"),
            ("LATCHKEY_ISSUER", "https://id.example.com"),
            (
                "LATCHKEY_MASTER_KEY",
                "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
            ),
            ("LATCHKEY_MAIL_TRANSPORT", "smtp"),
            ("LATCHKEY_SMTP_SECURITY", "none"),
        ];
        let with_host = |host: &'static str| {
            let mut pairs = production.to_vec();
            pairs.push(("LATCHKEY_SMTP_HOST", host));
            pairs
        };
        assert!(err(&with_host("smtp.example.com")).contains("clear text"));
        for loopback in ["localhost", "127.0.0.1", "::1"] {
            assert_eq!(err(&with_host(loopback)), "", "{loopback}");
        }
        // In development a plain relay anywhere is accepted (a container on a local network).
        assert_eq!(
            err(&[
                ("LATCHKEY_MAIL_TRANSPORT", "smtp"),
                ("LATCHKEY_SMTP_SECURITY", "none"),
                ("LATCHKEY_SMTP_HOST", "mailpit"),
            ]),
            ""
        );
    }
}
