//! `[mail]`: outgoing mail.

use std::path::PathBuf;

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::duration::millis;
use super::{invalid, is_loopback_host, ConfigError, Profile};

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
    #[serde(rename = "smtp_timeout_ms", deserialize_with = "millis")]
    pub smtp_timeout: Duration,
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
            smtp_timeout: Duration::from_millis(10_000),
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

impl MailSettings {
    /// Outgoing mail settings.
    pub(super) fn validate(&self, profile: Profile) -> Result<(), ConfigError> {
        let m = self;
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
        if !(100..=300_000).contains(&m.smtp_timeout.as_millis()) {
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
                && profile == Profile::Production
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
}

#[cfg(test)]
mod tests {
    use super::{MailTransportKind, SmtpSecurity};
    use crate::config::tests::env;
    use crate::config::Settings;
    use std::path::Path;
    use std::time::Duration;

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
        assert_eq!(m.smtp_timeout, Duration::from_millis(2500));
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
