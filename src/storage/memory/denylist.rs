//! The embedded denylist: an in-process index of the revocation log (which lives in the SQL
//! database, so it survives restarts). Entries added through this process count at once;
//! entries written by other processes arrive with the next `sync` (a background task runs it
//! every `denylist.sync_interval_ms`). If the log could not be read for longer than
//! `max_staleness`, the index refuses to answer (fail closed).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::domain::{Revocation, TokenIdentity};
use crate::storage::{DenylistError, RevocationStore, TokenDenylist};

const BATCH: u32 = 5000;

#[derive(Default)]
struct Index {
    /// Highest log seq applied.
    cursor: i64,
    /// When the log was last read completely.
    synced: Option<Instant>,
    /// jti -> expiry.
    access_tokens: HashMap<String, UnixTime>,
    /// family id -> expiry.
    families: HashMap<String, UnixTime>,
    /// user id -> (watermark, expiry).
    users: HashMap<String, (UnixTime, UnixTime)>,
    /// client id -> (watermark, expiry).
    clients: HashMap<String, (UnixTime, UnixTime)>,
}

/// Raises a watermark (never lowers it) and keeps it at least until `expires_at`.
fn raise(
    marks: &mut HashMap<String, (UnixTime, UnixTime)>,
    id: &str,
    not_after: UnixTime,
    expires_at: UnixTime,
) {
    let e = marks
        .entry(id.to_owned())
        .or_insert((not_after, expires_at));
    *e = (e.0.max(not_after), e.1.max(expires_at));
}

/// Whether a live watermark for `id` covers a token issued at `iat`.
fn under_watermark(
    marks: &HashMap<String, (UnixTime, UnixTime)>,
    id: &str,
    iat: UnixTime,
    now: UnixTime,
) -> bool {
    marks
        .get(id)
        .is_some_and(|(not_after, exp)| *exp > now && iat <= *not_after)
}

impl Index {
    fn apply(&mut self, r: &Revocation) {
        match r {
            Revocation::AccessToken { jti, expires_at } => {
                let e = self.access_tokens.entry(jti.clone()).or_insert(*expires_at);
                *e = (*e).max(*expires_at);
            }
            Revocation::Family {
                family_id,
                expires_at,
            } => {
                let e = self
                    .families
                    .entry(family_id.clone())
                    .or_insert(*expires_at);
                *e = (*e).max(*expires_at);
            }
            Revocation::User {
                user_id,
                not_after,
                expires_at,
            } => raise(&mut self.users, user_id, *not_after, *expires_at),
            Revocation::Client {
                client_id,
                not_after,
                expires_at,
            } => raise(&mut self.clients, client_id, *not_after, *expires_at),
        }
    }

    fn prune(&mut self, now: UnixTime) {
        self.access_tokens.retain(|_, exp| *exp > now);
        self.families.retain(|_, exp| *exp > now);
        self.users.retain(|_, (_, exp)| *exp > now);
        self.clients.retain(|_, (_, exp)| *exp > now);
    }
}

pub struct EmbeddedDenylist {
    log: Arc<dyn RevocationStore>,
    index: RwLock<Index>,
    max_staleness: Duration,
    /// Serialises syncs so two never apply the same batch twice over.
    syncing: tokio::sync::Mutex<()>,
}

impl EmbeddedDenylist {
    pub fn new(log: Arc<dyn RevocationStore>, max_staleness: Duration) -> Self {
        Self {
            log,
            index: RwLock::new(Index::default()),
            max_staleness,
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self, index: &Index) -> Result<(), DenylistError> {
        match index.synced {
            Some(at) if at.elapsed() <= self.max_staleness => Ok(()),
            Some(at) => Err(DenylistError::Unavailable(format!(
                "the revocation log has not been read for {} ms",
                at.elapsed().as_millis()
            ))),
            None => Err(DenylistError::Unavailable(
                "the revocation log has not been read yet".into(),
            )),
        }
    }

    fn poisoned() -> DenylistError {
        DenylistError::Unavailable("denylist index lock poisoned".into())
    }
}

#[async_trait]
impl TokenDenylist for EmbeddedDenylist {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn add(&self, entries: &[Revocation]) -> Result<(), DenylistError> {
        let mut index = self.index.write().map_err(|_| Self::poisoned())?;
        for e in entries {
            index.apply(e);
        }
        Ok(())
    }

    async fn is_denied(
        &self,
        token: &TokenIdentity<'_>,
        now: UnixTime,
    ) -> Result<bool, DenylistError> {
        let index = self.index.read().map_err(|_| Self::poisoned())?;
        self.fresh(&index)?;
        let live = |exp: Option<&UnixTime>| exp.is_some_and(|e| *e > now);
        Ok(live(index.access_tokens.get(token.jti))
            || token.sid.is_some_and(|sid| live(index.families.get(sid)))
            || under_watermark(&index.users, token.sub, token.iat, now)
            || under_watermark(&index.clients, token.client_id, token.iat, now))
    }

    async fn sync(&self, now: UnixTime) -> Result<(), DenylistError> {
        let _one_at_a_time = self.syncing.lock().await;
        let mut cursor = self.index.read().map_err(|_| Self::poisoned())?.cursor;
        let last =
            self.log.last_seq().await.map_err(|e| {
                DenylistError::Unavailable(format!("reading the revocation log: {e}"))
            })?;
        if cursor > last {
            // The log is behind what this index has read (a restored database): rebuild it.
            let mut index = self.index.write().map_err(|_| Self::poisoned())?;
            *index = Index::default();
            cursor = 0;
        }
        loop {
            let batch = self.log.since(cursor, now, BATCH).await.map_err(|e| {
                DenylistError::Unavailable(format!("reading the revocation log: {e}"))
            })?;
            let mut index = self.index.write().map_err(|_| Self::poisoned())?;
            for entry in &batch {
                index.apply(&entry.revocation);
                cursor = cursor.max(entry.seq);
            }
            index.cursor = cursor;
            if batch.len() < BATCH as usize {
                index.prune(now);
                index.synced = Some(Instant::now());
                return Ok(());
            }
        }
    }

    async fn ping(&self) -> Result<(), DenylistError> {
        let index = self.index.read().map_err(|_| Self::poisoned())?;
        self.fresh(&index)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::domain::LoggedRevocation;
    use crate::storage::{StorageError, StorageResult};

    /// A log that can be made to fail, like a database that went away.
    #[derive(Default)]
    struct FlakyLog {
        down: AtomicBool,
    }

    #[async_trait]
    impl RevocationStore for FlakyLog {
        async fn append(&self, _: &[Revocation], _: UnixTime) -> StorageResult<()> {
            Ok(())
        }
        async fn since(&self, _: i64, _: UnixTime, _: u32) -> StorageResult<Vec<LoggedRevocation>> {
            if self.down.load(Ordering::SeqCst) {
                Err(StorageError::Corrupt("down".into()))
            } else {
                Ok(vec![])
            }
        }
        async fn last_seq(&self) -> StorageResult<i64> {
            Ok(0)
        }
        async fn purge_expired(&self, _: UnixTime) -> StorageResult<u64> {
            Ok(0)
        }
    }

    fn id() -> TokenIdentity<'static> {
        TokenIdentity {
            jti: "j",
            sid: None,
            sub: "u",
            client_id: "c",
            iat: 0,
        }
    }

    #[tokio::test]
    async fn it_fails_closed_before_the_first_sync_and_when_the_log_is_stale() {
        let log = Arc::new(FlakyLog::default());
        let d = EmbeddedDenylist::new(log.clone(), Duration::from_millis(50));
        assert!(d.is_denied(&id(), 1).await.is_err(), "never synced");
        assert!(d.ping().await.is_err());
        d.sync(1).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(!d.is_denied(&id(), 1).await.unwrap_or(true));
        log.down.store(true, Ordering::SeqCst);
        assert!(d.sync(1).await.is_err());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(d.is_denied(&id(), 1).await.is_err(), "stale");
        assert!(d.ping().await.is_err());
        log.down.store(false, Ordering::SeqCst);
        d.sync(1).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(d.ping().await.is_ok(), "recovers by itself");
    }
}
