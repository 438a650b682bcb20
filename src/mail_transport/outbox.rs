//! The development transport: every message is written as an `.eml` file (the bytes SMTP
//! would carry) into `mail.outbox_dir`, and logged at info level with its text body, so
//! that `cargo run` works without a mail server. Links (single-use secrets) therefore
//! appear in the log: this transport is for development only.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing::info;

use super::message::build_message;
use crate::clock::Clock;
use crate::services::{MailTransport, RenderedMail, TransportError};

pub struct OutboxTransport {
    dir: PathBuf,
    counter: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OutboxTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxTransport")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl OutboxTransport {
    /// Creates `dir` (mode 0700) if needed; file names start with the `clock`'s time.
    pub fn new(dir: &Path, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            counter: AtomicU64::new(0),
            clock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[async_trait::async_trait]
impl MailTransport for OutboxTransport {
    fn name(&self) -> &'static str {
        "outbox"
    }

    async fn send(&self, msg: &RenderedMail) -> Result<(), TransportError> {
        let bytes = build_message(msg)?.formatted();
        // Names sort in the order the messages were written.
        let stamp = chrono::DateTime::from_timestamp(self.clock.now(), 0)
            .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default();
        let name = format!(
            "{stamp}-{:06}-{}-{}.eml",
            self.counter.fetch_add(1, Ordering::Relaxed),
            msg.kind.template_name(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let path = self.dir.join(name);
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_private(&target, &bytes))
            .await
            .map_err(|e| TransportError::Transient(format!("outbox writer stopped: {e}")))?
            .map_err(|e| {
                TransportError::Transient(format!("cannot write {}: {e}", path.display()))
            })?;
        info!(
            to = %msg.to,
            subject = %msg.subject,
            path = %path.display(),
            text = %msg.text.expose_secret(),
            "mail written to the development outbox (links in this log line are live)"
        );
        Ok(())
    }
}
