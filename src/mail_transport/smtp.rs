//! Delivery over SMTP with lettre: implicit TLS, required STARTTLS or (loopback relays
//! only, enforced by the configuration) plain SMTP; optional AUTH; pooled connections.

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::message::build_message;
use crate::config::{MailSettings, SmtpSecurity};
use crate::services::{MailTransport, RenderedMail, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("mail.smtp_host is not set")]
    NoHost,
    #[error("cannot read mail.smtp_ca_file {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mail.smtp_ca_file {0} holds no PEM certificate")]
    NoCertificate(std::path::PathBuf),
    #[error("TLS set-up for the SMTP relay failed: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
}

/// The SMTP relay. `Debug` names the relay, never the credentials.
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    relay: String,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// A transport for the relay in `settings`; `connections` caps the pooled connections.
    pub fn new(settings: &MailSettings, connections: u32) -> Result<Self, SmtpSetupError> {
        let host = settings
            .smtp_host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(SmtpSetupError::NoHost)?
            .to_owned();
        let port = settings.smtp_port();
        let tls = match settings.smtp_security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(&host, settings)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(&host, settings)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(settings.smtp_timeout))
            .pool_config(PoolConfig::new().max_size(connections.max(1)));
        if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            inner: builder.build(),
            relay: format!("{host}:{port}"),
        })
    }
}

fn tls_parameters(host: &str, settings: &MailSettings) -> Result<TlsParameters, SmtpSetupError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = &settings.smtp_ca_file {
        let pem = std::fs::read(path).map_err(|source| SmtpSetupError::CaFile {
            path: path.clone(),
            source,
        })?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(SmtpSetupError::NoCertificate(path.clone()));
        }
        let cert = Certificate::from_pem(&pem).map_err(SmtpSetupError::Tls)?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(SmtpSetupError::Tls)
}

/// 4xx replies, timeouts and connection trouble are worth a retry; 5xx replies, client
/// errors (no usable AUTH mechanism, ...) and TLS failures (an untrusted certificate, a
/// peer that does not speak TLS: reported as invalid data on the connection) are not.
fn classify(e: &lettre::transport::smtp::Error) -> TransportError {
    if e.is_permanent() || e.is_client() || e.is_tls() || is_invalid_data(e) {
        TransportError::Permanent(e.to_string())
    } else {
        TransportError::Transient(e.to_string())
    }
}

fn is_invalid_data(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = e.source();
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

#[async_trait::async_trait]
impl MailTransport for SmtpTransport {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, msg: &RenderedMail) -> Result<(), TransportError> {
        let message = build_message(msg)?;
        self.inner
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }
}
