//! Configuration: defaults, then an optional TOML file, then `LATCHKEY_*` environment
//! variables. Unknown keys and unknown `LATCHKEY_*` variables are rejected; the result is
//! validated once, at start-up, into typed settings.

mod accounts;
mod admin;
mod database;
mod env;
mod keys;
mod log;
mod mail;
mod passwords;
mod redis;
mod server;
mod throttle;
mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::Audience;
use env::{set_path, Kind, ENV_KEYS, META_ENV};

pub use crate::domain::{SignupMode, VerificationPolicy};
pub use accounts::AccountSettings;
pub use admin::AdminSettings;
pub use database::{redact_url_password, DatabaseSettings};
pub use keys::KeySettings;
pub use log::{LogFormat, LogSettings};
pub use mail::{MailSettings, MailTransportKind, SmtpSecurity};
pub use passwords::PasswordSettings;
pub use redis::{DenylistSettings, RedisSettings};
pub use server::ServerSettings;
pub use throttle::ThrottleSettings;
pub use tokens::TokenSettings;

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
    use crate::domain::SigningAlg;

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
