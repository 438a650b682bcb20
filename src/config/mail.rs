//! `[mail]`: outgoing mail.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

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
