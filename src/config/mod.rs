//! Configuration: defaults, then an optional TOML file, then `LATCHKEY_*` environment
//! variables. Unknown keys and unknown `LATCHKEY_*` variables are rejected; the result is
//! validated once, at start-up, into typed settings.

mod accounts;
mod admin;
mod branding;
mod database;
mod duration;
mod env;
mod federation;
mod keys;
mod log;
mod mail;
mod mfa;
mod passwords;
mod redis;
mod server;
mod sessions;
mod throttle;
mod tokens;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::redis::{DenylistSettings, RedisSettings};
pub use crate::domain::{SignupMode, VerificationPolicy};
pub use accounts::AccountSettings;
use accounts::AccountsToml;
pub use admin::AdminSettings;
use admin::AdminToml;
pub use branding::{asset_origin, is_hex_color, BrandingSettings};
pub use database::{redact_url_password, DatabaseSettings};
pub use federation::FederationSettings;
use federation::FederationToml;
pub use keys::KeySettings;
use keys::KeysToml;
pub use log::{LogFormat, LogSettings};
pub use mail::{MailSettings, MailTransportKind, SmtpSecurity};
pub use mfa::MfaSettings;
use mfa::MfaToml;
pub use passwords::PasswordSettings;
use server::ServerToml;
pub use server::{Issuer, ServerSettings};
pub use sessions::SessionSettings;
use sessions::SessionsToml;
pub use throttle::ThrottleSettings;
pub use tokens::TokenSettings;
use tokens::TokensToml;

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
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The validated settings, each section typed.
#[derive(Debug, Clone)]
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
    pub sessions: SessionSettings,
    pub branding: BrandingSettings,
    pub federation: FederationSettings,
    pub mfa: MfaSettings,
}

/// The settings as written (file, then environment); `validate()` makes them `Settings`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SettingsToml {
    server: ServerToml,
    database: DatabaseSettings,
    redis: RedisSettings,
    denylist: DenylistSettings,
    keys: KeysToml,
    admin: AdminToml,
    tokens: TokensToml,
    passwords: PasswordSettings,
    log: LogSettings,
    accounts: AccountsToml,
    mail: MailSettings,
    throttle: ThrottleSettings,
    sessions: SessionsToml,
    branding: BrandingSettings,
    federation: FederationToml,
    mfa: MfaToml,
}

impl SettingsToml {
    /// Each section's rules, those that involve another section given what they need.
    fn validate(self) -> Result<Settings, ConfigError> {
        let server = self.server.validate()?;
        self.database.validate()?;
        let tokens = self.tokens.validate()?;
        let keys = self.keys.validate(server.profile)?;
        self.redis.validate()?;
        self.denylist.validate()?;
        let admin = self.admin.validate(server.bind)?;
        let accounts = self.accounts.validate()?;
        self.mail.validate(server.profile)?;
        self.throttle.validate()?;
        self.passwords.validate()?;
        let sessions = self.sessions.validate()?;
        self.branding.validate()?;
        let federation = self.federation.validate()?;
        let mfa = self.mfa.validate()?;
        Ok(Settings {
            server,
            database: self.database,
            redis: self.redis,
            denylist: self.denylist,
            keys,
            admin,
            tokens,
            passwords: self.passwords,
            log: self.log,
            accounts,
            mail: self.mail,
            throttle: self.throttle,
            sessions,
            branding: self.branding,
            federation,
            mfa,
        })
    }
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
        env::apply(&mut root, env)?;
        let settings: SettingsToml = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.message().to_owned()))?;
        settings.validate()
    }

    /// The trusted reverse proxies.
    pub fn trusted_proxies(&self) -> Vec<std::net::IpAddr> {
        self.server.trusted_proxies.clone()
    }

    /// The validated issuer URL, without a trailing slash.
    pub fn issuer(&self) -> &str {
        self.server.issuer.as_str()
    }

    /// With a derived issuer and port 0, the issuer names the port actually bound.
    pub fn with_bound_port(&self, port: u16) -> Settings {
        let mut s = self.clone();
        if s.server.issuer_derived {
            let mut addr = s.server.bind;
            addr.set_port(port);
            if let Some(issuer) = Issuer::parse(&format!("http://{addr}")) {
                s.server.issuer = issuer;
            }
        }
        s
    }

    pub fn default_audience(&self) -> &str {
        self.tokens
            .default_audience
            .as_ref()
            .map_or_else(|| self.issuer(), |a| a.as_str())
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
    use std::time::Duration;

    /// `LATCHKEY_*` variables for `Settings::load`.
    pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
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
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:0");
        assert_eq!(s.tokens.access_token_ttl, Duration::from_secs(300));
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
    fn the_refresh_grace_window_is_off_by_default_and_bounded() {
        let s = Settings::load(None, env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.tokens.refresh_grace, s.tokens.refresh_grace_uses),
            (Duration::ZERO, 1)
        );
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_TOKENS_REFRESH_GRACE_SECS", "30"),
                ("LATCHKEY_TOKENS_REFRESH_GRACE_USES", "3"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.tokens.refresh_grace, s.tokens.refresh_grace_uses),
            (Duration::from_secs(30), 3)
        );
        for (var, value, key) in [
            (
                "LATCHKEY_TOKENS_REFRESH_GRACE_SECS",
                "301",
                "tokens.refresh_grace_secs",
            ),
            (
                "LATCHKEY_TOKENS_REFRESH_GRACE_SECS",
                "-1",
                "tokens.refresh_grace_secs",
            ),
            (
                "LATCHKEY_TOKENS_REFRESH_GRACE_USES",
                "0",
                "tokens.refresh_grace_uses",
            ),
            (
                "LATCHKEY_TOKENS_REFRESH_GRACE_USES",
                "101",
                "tokens.refresh_grace_uses",
            ),
        ] {
            let e = Settings::load(None, env(&[(var, value)]))
                .err()
                .map(|e| e.to_string());
            assert!(e.unwrap_or_default().contains(key), "{var}={value}");
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
    fn a_config_file_is_read_and_unknown_keys_in_it_are_rejected() {
        let dir = std::env::temp_dir().join(format!("latchkey-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[tokens]\naccess_token_ttl_secs = 120\nrefresh_grace_secs = 20\n\
             refresh_grace_uses = 2\n[keys]\nsigning_alg = \"EdDSA\"\n",
        )
        .unwrap_or_default();
        let s = Settings::load(Some(&good), env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.tokens.access_token_ttl, Duration::from_secs(120));
        assert_eq!(
            (s.tokens.refresh_grace, s.tokens.refresh_grace_uses),
            (Duration::from_secs(20), 2)
        );
        assert_eq!(s.keys.signing_alg, SigningAlg::EdDSA);
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[tokens]\naccess_token_ttl = 120\n").unwrap_or_default();
        assert!(Settings::load(Some(&bad), env(&[])).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
