//! The embedded denylist: an in-process index of the revocation log (which lives in the SQL
//! database, so it survives restarts). Entries added through this process count at once;
//! entries written by other processes arrive with the next `sync` (a background task runs it
//! every `denylist.sync_interval_ms`). If the log could not be read for longer than
//! `max_staleness`, the index refuses to answer (fail closed).
//!
//! Each entry is what a check needs and no more: a fixed-size digest of the id and its
//! expiry (and a watermark for users and clients), in a hash table with a queue by expiry
//! (`expiring.rs`); entries leave in time order, so an idle index costs nothing. The log is
//! read in the background at start: the server answers at once, and a check that comes
//! before the first read is complete waits for it (at most `FIRST_SYNC_WAIT`, then it fails
//! closed).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;

use super::expiring::{Digester, Expiring, Expiry, Watermark};
use crate::clock::UnixTime;
use crate::domain::{Revocation, TokenIdentity};
use crate::storage::{DenylistError, RevocationStore, TokenDenylist};

/// Log entries read at a time. Small, so that reading the whole log at start leaves little
/// memory behind in the allocator (the rows of one batch, in each thread that decodes them).
const BATCH: u32 = 2_000;

/// How long a check made before the first complete read of the log waits for it.
const FIRST_SYNC_WAIT: Duration = Duration::from_secs(5);

/// The digests' kinds: ids of different kinds never share a digest.
const ACCESS_TOKEN: u8 = 0;
const FAMILY: u8 = 1;
const USER: u8 = 2;
const CLIENT: u8 = 3;

#[derive(Default)]
struct Index {
    /// Highest log seq applied.
    cursor: i64,
    /// When the log was last read completely.
    synced: Option<Instant>,
    /// Revoked access tokens (by jti) and refresh-token families (by id): their expiry.
    ids: Expiring<Expiry>,
    /// User and client watermarks.
    marks: Expiring<Watermark>,
}

impl Index {
    fn apply(&mut self, digester: &Digester, r: &Revocation) {
        match r {
            Revocation::AccessToken { jti, expires_at } => self
                .ids
                .put(digester.digest(ACCESS_TOKEN, jti), Expiry::at(*expires_at)),
            Revocation::Family {
                family_id,
                expires_at,
            } => self
                .ids
                .put(digester.digest(FAMILY, family_id), Expiry::at(*expires_at)),
            Revocation::User {
                user_id,
                not_after,
                expires_at,
            } => self.marks.put(
                digester.digest(USER, user_id),
                Watermark::new(*not_after, *expires_at),
            ),
            Revocation::Client {
                client_id,
                not_after,
                expires_at,
            } => self.marks.put(
                digester.digest(CLIENT, client_id),
                Watermark::new(*not_after, *expires_at),
            ),
        }
    }

    /// Drops what has expired, in time order (only what expired is visited).
    fn expire(&mut self, now: UnixTime) {
        self.ids.expire(now);
        self.marks.expire(now);
    }

    fn denies(&self, digester: &Digester, token: &TokenIdentity<'_>, now: UnixTime) -> bool {
        let under_watermark = |kind: u8, id: &str| {
            self.marks
                .get(&digester.digest(kind, id), now)
                .is_some_and(|w| token.iat <= w.not_after())
        };
        self.ids
            .get(&digester.digest(ACCESS_TOKEN, token.jti), now)
            .is_some()
            || token
                .sid
                .is_some_and(|sid| self.ids.get(&digester.digest(FAMILY, sid), now).is_some())
            || under_watermark(USER, token.sub)
            || under_watermark(CLIENT, token.client_id)
    }
}

pub struct EmbeddedDenylist {
    log: Arc<dyn RevocationStore>,
    index: RwLock<Index>,
    digester: Digester,
    max_staleness: Duration,
    /// How long a check made before the first complete read of the log waits for it.
    first_sync_wait: Duration,
    /// Serialises syncs so two never apply the same batch twice over.
    syncing: tokio::sync::Mutex<()>,
    /// Becomes true when the log has been read completely once.
    loaded: watch::Sender<bool>,
}

impl EmbeddedDenylist {
    pub fn new(log: Arc<dyn RevocationStore>, max_staleness: Duration) -> Self {
        Self {
            log,
            index: RwLock::new(Index::default()),
            digester: Digester::new(),
            max_staleness,
            first_sync_wait: FIRST_SYNC_WAIT,
            syncing: tokio::sync::Mutex::new(()),
            loaded: watch::Sender::new(false),
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

    /// Waits (a bounded time) for the first complete read of the log; a check after it fails
    /// closed by itself if the log was not read.
    async fn first_load(&self) {
        let mut loaded = self.loaded.subscribe();
        let _ = tokio::time::timeout(self.first_sync_wait, loaded.wait_for(|done| *done)).await;
    }

    /// How many entries the index holds (ids, watermarks).
    pub fn len(&self) -> (usize, usize) {
        self.index
            .read()
            .map(|i| (i.ids.len(), i.marks.len()))
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
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
            index.apply(&self.digester, e);
        }
        Ok(())
    }

    async fn is_denied(
        &self,
        token: &TokenIdentity<'_>,
        now: UnixTime,
    ) -> Result<bool, DenylistError> {
        if !*self.loaded.borrow() {
            self.first_load().await;
        }
        let index = self.index.read().map_err(|_| Self::poisoned())?;
        self.fresh(&index)?;
        Ok(index.denies(&self.digester, token, now))
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
                index.apply(&self.digester, &entry.revocation);
                cursor = cursor.max(entry.seq);
            }
            index.cursor = cursor;
            if batch.len() < BATCH as usize {
                index.expire(now);
                index.synced = Some(Instant::now());
                drop(index);
                self.loaded.send_replace(true);
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
    async fn a_check_before_the_first_sync_waits_for_it() {
        let log = Arc::new(FlakyLog::default());
        let d = Arc::new(EmbeddedDenylist::new(log, Duration::from_secs(5)));
        let check = tokio::spawn({
            let d = d.clone();
            async move { d.is_denied(&id(), 1).await.ok() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!check.is_finished(), "waits for the log");
        d.sync(1).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(check.await.ok().flatten(), Some(false));
    }

    #[tokio::test]
    async fn entries_are_checked_by_kind_and_expire() {
        let d = EmbeddedDenylist::new(Arc::new(FlakyLog::default()), Duration::from_secs(5));
        d.sync(1).await.unwrap_or_else(|e| panic!("{e}"));
        d.add(&[
            Revocation::AccessToken {
                jti: "j".into(),
                expires_at: 100,
            },
            Revocation::User {
                user_id: "other".into(),
                not_after: 10,
                expires_at: 200,
            },
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.is_denied(&id(), 50).await.ok(), Some(true), "by jti");
        let other = TokenIdentity {
            jti: "k",
            sid: None,
            sub: "other",
            client_id: "c",
            iat: 10,
        };
        assert_eq!(d.is_denied(&other, 50).await.ok(), Some(true), "watermark");
        let later = TokenIdentity { iat: 11, ..other };
        assert_eq!(
            d.is_denied(&later, 50).await.ok(),
            Some(false),
            "issued after"
        );
        // A jti that is a user id elsewhere is not denied by it (kinds are apart).
        let same_id = TokenIdentity {
            jti: "other",
            sub: "u",
            ..id()
        };
        assert_eq!(d.is_denied(&same_id, 50).await.ok(), Some(false));
        assert_eq!(d.is_denied(&id(), 100).await.ok(), Some(false), "expired");
        d.sync(1_000).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(d.is_empty(), "expired entries leave");
    }

    #[tokio::test]
    async fn it_fails_closed_before_the_first_sync_and_when_the_log_is_stale() {
        let log = Arc::new(FlakyLog::default());
        let mut d = EmbeddedDenylist::new(log.clone(), Duration::from_millis(50));
        d.first_sync_wait = Duration::from_millis(20);
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
