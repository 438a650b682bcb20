//! Outgoing mail, as the account flows see it: a kind of message, a recipient and the
//! values its template needs. Rendering (text and HTML templates an operator can override)
//! and delivery (SMTP, or the development outbox) happen behind `Mailer`, off the request
//! path, so that a request that sends a mail takes as long as one that does not.
//!
//! `enqueue` renders the message and puts it on a bounded in-memory queue; a background
//! task delivers it through a `MailTransport` with bounded concurrency, retrying transient
//! failures with exponential back-off. A permanent failure is logged at error level with
//! the kind and recipient only: bodies carry single-use links and are never logged here.
//!
//! This file holds the queue; `kind.rs` the kinds of mail, `templates.rs` the template
//! language, `transport.rs` the interface of the delivery adapters.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{error, info, warn};

use crate::domain::Email;

mod kind;
mod templates;
mod transport;

pub use kind::MailKind;
pub use templates::{
    Escape, KindTemplates, MailTemplates, Template, TemplateError, TemplateSources, COMMON_VARS,
};
pub use transport::{MailBody, MailTransport, RenderedMail, TransportError};

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
    /// The send queue is full (or its worker has stopped): the caller answers 503.
    #[error("the mail queue is full")]
    QueueFull,
}

/// How the queue behaves.
#[derive(Debug, Clone)]
pub struct MailerOptions {
    /// The sender mailbox for every message.
    pub from: String,
    /// `{{ product_name }}` in every template.
    pub product_name: String,
    /// Messages waiting for delivery; past this `enqueue` answers `QueueFull`.
    pub queue_capacity: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Attempts per message, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles after each further failure.
    pub retry_delay: Duration,
}

impl Default for MailerOptions {
    fn default() -> Self {
        Self {
            from: "Latchkey <no-reply@localhost>".into(),
            product_name: "Latchkey".into(),
            queue_capacity: 1000,
            concurrency: 4,
            max_attempts: 3,
            retry_delay: Duration::from_secs(2),
        }
    }
}

/// Delivery counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailStats {
    pub delivered: u64,
    /// Given up: a permanent failure, or transient failures on every attempt.
    pub failed: u64,
    /// Attempts that failed transiently and were retried.
    pub retried: u64,
}

struct Job {
    seq: u64,
    mail: RenderedMail,
}

/// Messages queued or in flight, by sequence number, so `drain` can wait for those queued
/// before it was called and not for later ones.
struct Pending {
    next: u64,
    open: BTreeSet<u64>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// The lowest sequence number not yet finished (or `next` when none is open).
    low_water: watch::Sender<u64>,
    delivered: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> u64 {
        let mut p = self.lock();
        let seq = p.next;
        p.next += 1;
        p.open.insert(seq);
        seq
    }

    fn finish(&self, seq: u64) {
        let mut p = self.lock();
        p.open.remove(&seq);
        let low = p.open.first().copied().unwrap_or(p.next);
        self.low_water.send_replace(low);
    }
}

/// Queues mail for delivery.
pub struct Mailer {
    templates: MailTemplates,
    transport_name: &'static str,
    from: String,
    product_name: String,
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.transport_name)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Starts the delivery worker (needs a tokio runtime). It stops once the `Mailer` is
    /// dropped and the queue is empty.
    pub fn start(
        templates: MailTemplates,
        transport: Arc<dyn MailTransport>,
        options: MailerOptions,
    ) -> Self {
        let (queue, rx) = mpsc::channel(options.queue_capacity.max(1));
        let (low_water, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                next: 0,
                open: BTreeSet::new(),
            }),
            low_water,
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
        });
        info!(
            transport = transport.name(),
            capacity = options.queue_capacity,
            "mail queue started"
        );
        let transport_name = transport.name();
        tokio::spawn(run_worker(rx, transport, shared.clone(), options.clone()));
        Self {
            templates,
            transport_name,
            from: options.from,
            product_name: options.product_name,
            queue,
            shared,
        }
    }

    /// The name of the transport in use (`smtp`, `outbox`, ...).
    pub fn transport_name(&self) -> &'static str {
        self.transport_name
    }

    /// Renders `mail` and queues it without waiting for delivery.
    pub fn enqueue(&self, mail: Mail) -> Result<(), MailError> {
        let rendered = self.render(&mail);
        let seq = self.shared.open();
        match self.queue.try_send(Job {
            seq,
            mail: rendered,
        }) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.shared.finish(seq);
                warn!(kind = ?mail.kind, "mail queue full; message refused");
                Err(MailError::QueueFull)
            }
        }
    }

    /// The message `mail` becomes: subject, text and HTML from its kind's templates.
    pub fn render(&self, mail: &Mail) -> RenderedMail {
        let display_name = mail.display_name.as_deref().unwrap_or_default();
        let value = |name: &str| -> Option<&str> {
            match name {
                "email" => Some(mail.to.as_str()),
                "display_name" => Some(display_name),
                "product_name" => Some(self.product_name.as_str()),
                other => mail
                    .vars
                    .iter()
                    .find(|(k, _)| *k == other)
                    .map(|(_, v)| v.as_str()),
            }
        };
        let (subject, text, html) = match self.templates.get(mail.kind) {
            Some(t) => (
                t.subject.render(&value, Escape::None),
                t.text.render(&value, Escape::None),
                t.html.render(&value, Escape::Html),
            ),
            None => Default::default(),
        };
        RenderedMail {
            kind: mail.kind,
            from: self.from.clone(),
            to: mail.to.clone(),
            to_name: mail.display_name.clone().filter(|n| !n.trim().is_empty()),
            subject: one_line(&subject),
            text: MailBody::new(text),
            html: MailBody::new(html),
        }
    }

    /// Waits until every message queued before this call was delivered or given up, for at
    /// most `timeout`; `false` when some were still pending then.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let target = self.shared.lock().next;
        let mut rx = self.shared.low_water.subscribe();
        let done = tokio::time::timeout(timeout, rx.wait_for(|low| *low >= target)).await;
        matches!(done, Ok(Ok(_)))
    }

    pub fn stats(&self) -> MailStats {
        MailStats {
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            retried: self.shared.retried.load(Ordering::Relaxed),
        }
    }
}

/// A subject is one header line: line breaks become spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn run_worker(
    mut rx: mpsc::Receiver<Job>,
    transport: Arc<dyn MailTransport>,
    shared: Arc<Shared>,
    options: MailerOptions,
) {
    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    while let Some(job) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let transport = transport.clone();
        let shared = shared.clone();
        let options = options.clone();
        tokio::spawn(async move {
            deliver(&*transport, &job.mail, &shared, &options).await;
            shared.finish(job.seq);
            drop(permit);
        });
    }
}

async fn deliver(
    transport: &dyn MailTransport,
    mail: &RenderedMail,
    shared: &Shared,
    options: &MailerOptions,
) {
    let attempts = options.max_attempts.max(1);
    let mut delay = options.retry_delay;
    for attempt in 1..=attempts {
        match transport.send(mail).await {
            Ok(()) => {
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                info!(kind = ?mail.kind, to = %mail.to, transport = transport.name(), attempt, "mail delivered");
                return;
            }
            Err(e) if e.is_transient() && attempt < attempts => {
                shared.retried.fetch_add(1, Ordering::Relaxed);
                warn!(kind = ?mail.kind, to = %mail.to, transport = transport.name(), attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "mail delivery failed; retrying");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
            Err(e) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                error!(kind = ?mail.kind, to = %mail.to, transport = transport.name(), attempt, error = %e, "mail delivery failed; giving up");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder {
        sent: Mutex<Vec<RenderedMail>>,
        fail_first: AtomicU64,
        gate: tokio::sync::Semaphore,
    }

    #[async_trait::async_trait]
    impl MailTransport for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        async fn send(&self, msg: &RenderedMail) -> Result<(), TransportError> {
            let _pass = self.gate.acquire().await;
            if self
                .fail_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(TransportError::Transient("try later".into()));
            }
            self.sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(msg.clone());
            Ok(())
        }
    }

    fn templates() -> MailTemplates {
        MailTemplates::parse(&|kind| TemplateSources {
            subject: format!("{} for {{{{ email }}}}\n", kind.template_name()),
            text: match kind {
                MailKind::SignupExisting | MailKind::PasswordChanged => "{{ email }}".into(),
                MailKind::MfaChanged => "{{ change }}".into(),
                MailKind::RecoveryCodeUsed => "{{ codes_left }}".into(),
                _ => "Go to {{ link }} {{ display_name }}".into(),
            },
            html: "<p>{{ display_name }}</p>".into(),
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn mail(kind: MailKind) -> Mail {
        Mail {
            kind,
            to: Email::parse("ann@example.com").unwrap_or_else(|e| panic!("{e}")),
            display_name: Some("<Ann>".into()),
            vars: vec![("link", "https://x/t/secret".into())],
        }
    }

    fn recorder(fail_first: u64, open: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            sent: Mutex::new(Vec::new()),
            fail_first: AtomicU64::new(fail_first),
            gate: tokio::sync::Semaphore::new(open),
        })
    }

    fn options(capacity: usize) -> MailerOptions {
        MailerOptions {
            queue_capacity: capacity,
            concurrency: 1,
            retry_delay: Duration::from_millis(10),
            ..MailerOptions::default()
        }
    }

    #[tokio::test]
    async fn mail_is_rendered_retried_and_drained() {
        let t = recorder(2, 100);
        let mailer = Mailer::start(templates(), t.clone(), options(10));
        mailer
            .enqueue(mail(MailKind::Invite))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(mailer.drain(Duration::from_secs(5)).await);
        let sent = t.sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].subject, "invite for ann@example.com");
        assert_eq!(
            sent[0].text.expose_secret(),
            "Go to https://x/t/secret <Ann>"
        );
        assert_eq!(sent[0].html.expose_secret(), "<p>&lt;Ann&gt;</p>");
        assert_eq!(
            mailer.stats(),
            MailStats {
                delivered: 1,
                failed: 0,
                retried: 2
            }
        );
        let shown = format!("{:?} {:?}", sent[0], mail(MailKind::Invite));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[tokio::test]
    async fn mail_queue_full_is_refused_and_drain_times_out_while_blocked() {
        let t = recorder(0, 0);
        let mailer = Mailer::start(templates(), t.clone(), options(2));
        let mut refused = 0;
        for _ in 0..10 {
            if matches!(
                mailer.enqueue(mail(MailKind::VerifyEmail)),
                Err(MailError::QueueFull)
            ) {
                refused += 1;
            }
        }
        // One in flight (blocked in the transport), two queued, the rest refused.
        assert!(refused >= 6, "{refused}");
        assert!(!mailer.drain(Duration::from_millis(100)).await);
        t.gate.add_permits(100);
        assert!(mailer.drain(Duration::from_secs(5)).await);
        let sent = t.sent.lock().unwrap_or_else(|e| e.into_inner()).len();
        assert_eq!(sent as u64, 10 - refused);
    }
}
