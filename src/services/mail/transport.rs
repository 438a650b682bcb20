//! What the queue hands to a transport: a rendered message, delivered by a `MailTransport`
//! (the SMTP and outbox adapters live outside services) that tells a transient failure
//! from a permanent one.

use super::kind::MailKind;
use crate::domain::Email;

crate::secret_newtype! {
    /// A rendered body (text or HTML): it carries single-use links, so it is never printed.
    pub struct MailBody;
}

/// A message ready for a transport. `Debug` shows the envelope and subject, never the bodies.
#[derive(Debug, Clone)]
pub struct RenderedMail {
    pub kind: MailKind,
    /// The sender mailbox, such as `Latchkey <no-reply@example.com>` (validated at start-up).
    pub from: String,
    pub to: Email,
    /// The recipient's display name for the `To` header.
    pub to_name: Option<String>,
    pub subject: String,
    pub text: MailBody,
    pub html: MailBody,
}

/// Why a transport could not deliver. The message must not contain the mail's body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Worth retrying: a 4xx reply, a timeout, a refused or dropped connection.
    #[error("transient delivery failure: {0}")]
    Transient(String),
    /// Retrying cannot help: a 5xx reply, bad credentials, a TLS or message error.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

impl TransportError {
    pub fn is_transient(&self) -> bool {
        matches!(self, TransportError::Transient(_))
    }
}

/// Delivers one rendered message (SMTP, the development outbox, ...).
#[async_trait::async_trait]
pub trait MailTransport: Send + Sync {
    fn name(&self) -> &'static str;
    async fn send(&self, msg: &RenderedMail) -> Result<(), TransportError>;
}
