//! Outgoing mail, as the account flows see it: a kind of message, a recipient and the
//! values its template needs. Rendering (text and HTML templates an operator can override)
//! and delivery (SMTP, or the development outbox) happen behind `Mailer`, off the request
//! path, so that a request that sends a mail takes as long as one that does not.
//!
//! (Skeleton: the mail work replaces the bodies; the signatures are the contract.)

use crate::domain::Email;

/// Which message; each has a template (subject, text, HTML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// Vars: `link`, `expires_in_minutes`.
    VerifyEmail,
    /// Someone tried to sign up with an address that has an account. Vars: `reset_link`
    /// (may be empty).
    SignupExisting,
    /// Vars: `link`, `expires_in_minutes`.
    PasswordReset,
    /// Vars: `link`, `code`, `expires_in_minutes`.
    MagicLink,
    /// Vars: `link`, `expires_in_minutes`.
    Invite,
    /// The password was changed or reset. No vars.
    PasswordChanged,
}

/// One message to send. Every template also gets `email` and `display_name` (may be empty).
#[derive(Clone)]
pub struct Mail {
    pub kind: MailKind,
    pub to: Email,
    pub display_name: Option<String>,
    /// Template values (links carry single-use secrets: never logged).
    pub vars: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("kind", &self.kind)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The send queue is full: the caller answers 503.
    #[error("the mail queue is full")]
    QueueFull,
}

/// Queues mail for delivery.
pub struct Mailer {}

impl Mailer {
    /// Queues `mail` without waiting for delivery.
    pub fn enqueue(&self, mail: Mail) -> Result<(), MailError> {
        let _ = mail;
        Ok(())
    }

    /// Waits until everything queued so far was delivered or given up.
    pub async fn drain(&self, timeout: std::time::Duration) -> bool {
        let _ = timeout;
        true
    }
}
