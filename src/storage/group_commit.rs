//! Group commit for the revocation log and the audit trail: concurrent appends are written
//! together, in one transaction (one lock, one commit, one WAL flush) instead of one each.
//! Appends to the revocation log are serialised so that entries commit in `seq` order;
//! without grouping that serial section caps revocations at one commit latency each. Audit
//! events are written in the order they were recorded; each caller still waits for its own
//! event's commit.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::clock::UnixTime;
use crate::domain::{
    AuditEvent, AuditFilter, LoggedAuditEvent, LoggedRevocation, Revocation, UserId,
};
use crate::storage::{AuditStore, RevocationStore, StorageError, StorageResult};

struct Job {
    entries: Vec<Revocation>,
    now: UnixTime,
    done: oneshot::Sender<Result<(), Failed>>,
}

/// A batch's failure, told to every job in it: the message, and whether the database was
/// unavailable (so that each caller still answers 503 rather than 500).
#[derive(Clone)]
struct Failed {
    unavailable: bool,
    message: String,
}

/// A `RevocationStore` whose `append` joins a batch; reads go straight to the inner store.
pub struct GroupCommitLog {
    inner: Arc<dyn RevocationStore>,
    jobs: mpsc::Sender<Job>,
}

fn failed(msg: impl Into<String>) -> StorageError {
    StorageError::Backend(Box::new(std::io::Error::other(msg.into())))
}

impl From<Failed> for StorageError {
    fn from(f: Failed) -> Self {
        let cause = Box::new(std::io::Error::other(f.message));
        if f.unavailable {
            StorageError::Unavailable(cause)
        } else {
            StorageError::Backend(cause)
        }
    }
}

impl GroupCommitLog {
    /// Starts the writer task on the current tokio runtime. A batch holds at most
    /// `max_entries` entries (plus the last job's).
    pub fn new(inner: Arc<dyn RevocationStore>, max_entries: usize) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(4096);
        let writer = inner.clone();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                let mut count = batch[0].entries.len();
                while count < max_entries {
                    match queue.try_recv() {
                        Ok(job) => {
                            count += job.entries.len();
                            batch.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let now = batch.iter().map(|j| j.now).max().unwrap_or_default();
                let entries: Vec<Revocation> = batch
                    .iter()
                    .flat_map(|j| j.entries.iter().cloned())
                    .collect();
                let result = writer.append(&entries, now).await.map_err(|e| Failed {
                    unavailable: matches!(e, StorageError::Unavailable(_)),
                    message: format!("appending to the revocation log: {e}"),
                });
                for job in batch {
                    let _ = job.done.send(result.clone());
                }
            }
        });
        Self { inner, jobs }
    }
}

#[async_trait]
impl RevocationStore for GroupCommitLog {
    async fn append(&self, entries: &[Revocation], now: UnixTime) -> StorageResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job {
                entries: entries.to_vec(),
                now,
                done,
            })
            .await
            .map_err(|_| failed("the revocation log writer has stopped"))?;
        result
            .await
            .map_err(|_| failed("the revocation log writer has stopped"))?
            .map_err(StorageError::from)
    }

    async fn since(
        &self,
        after: i64,
        now: UnixTime,
        limit: u32,
    ) -> StorageResult<Vec<LoggedRevocation>> {
        self.inner.since(after, now, limit).await
    }

    async fn last_seq(&self) -> StorageResult<i64> {
        self.inner.last_seq().await
    }

    async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64> {
        self.inner.purge_expired(now).await
    }
}

struct AuditJob {
    event: AuditEvent,
    done: oneshot::Sender<Result<(), Failed>>,
}

/// An `AuditStore` whose `append` joins a batch; reads go straight to the inner store.
pub struct GroupCommitAudit {
    inner: Arc<dyn AuditStore>,
    jobs: mpsc::Sender<AuditJob>,
}

impl GroupCommitAudit {
    /// Starts the writer task on the current tokio runtime; a batch holds at most
    /// `max_events` events.
    pub fn new(inner: Arc<dyn AuditStore>, max_events: usize) -> Self {
        let (jobs, mut queue) = mpsc::channel::<AuditJob>(4096);
        let writer = inner.clone();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < max_events {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let events: Vec<AuditEvent> = batch.iter().map(|j| j.event.clone()).collect();
                let result = writer.append_all(&events).await.map_err(|e| Failed {
                    unavailable: matches!(e, StorageError::Unavailable(_)),
                    message: format!("appending to the audit trail: {e}"),
                });
                for job in batch {
                    let _ = job.done.send(result.clone());
                }
            }
        });
        Self { inner, jobs }
    }
}

#[async_trait]
impl AuditStore for GroupCommitAudit {
    async fn append(&self, event: &AuditEvent) -> StorageResult<()> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(AuditJob {
                event: event.clone(),
                done,
            })
            .await
            .map_err(|_| failed("the audit writer has stopped"))?;
        result
            .await
            .map_err(|_| failed("the audit writer has stopped"))?
            .map_err(StorageError::from)
    }

    async fn append_all(&self, events: &[AuditEvent]) -> StorageResult<()> {
        self.inner.append_all(events).await
    }

    async fn list(&self, filter: &AuditFilter) -> StorageResult<Vec<LoggedAuditEvent>> {
        self.inner.list(filter).await
    }

    async fn scrub_user(&self, user_id: &UserId) -> StorageResult<u64> {
        self.inner.scrub_user(user_id).await
    }
}
