//! The revocation log. Appends are serialised (SQLite: the write lock; PostgreSQL: a
//! transaction-scoped advisory lock taken before the sequence is drawn), so entries commit in
//! `seq` order and a reader's cursor never skips an entry that commits late.

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite, Transaction};

use super::{corrupt, in_batches, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{LoggedRevocation, Revocation, RevocationKind};
use crate::storage::{RevocationStore, StorageResult};

/// Arbitrary, fixed key of the advisory lock that orders appends on PostgreSQL.
const APPEND_LOCK: i64 = 0x4c4b_5245_564f_4b45; // "LKREVOKE"

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    kind: String,
    subject: String,
    not_after: Option<i64>,
    revoked_at: i64,
    expires_at: i64,
}

impl TryFrom<Row> for LoggedRevocation {
    type Error = crate::storage::StorageError;

    fn try_from(r: Row) -> Result<Self, Self::Error> {
        let kind = RevocationKind::parse(&r.kind)
            .ok_or_else(|| corrupt(format!("unknown revocation kind {:?}", r.kind)))?;
        Ok(LoggedRevocation {
            seq: r.seq,
            revoked_at: r.revoked_at,
            revocation: Revocation::from_parts(kind, r.subject, r.not_after, r.expires_at),
        })
    }
}

impl SqlStore<Postgres> {
    /// The identity sequence's last value (purged rows do not lower it).
    async fn last_seq_value(&self) -> StorageResult<i64> {
        let (last, called): (i64, bool) =
            sqlx::query_as("SELECT last_value, is_called FROM revocations_seq_seq")
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(if called { last } else { 0 })
    }

    async fn lock_log(tx: &mut Transaction<'static, Postgres>) -> StorageResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

impl SqlStore<Sqlite> {
    /// AUTOINCREMENT keeps the highest seq ever used in `sqlite_sequence`.
    async fn last_seq_value(&self) -> StorageResult<i64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM sqlite_sequence WHERE name = 'revocations'")
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// `BEGIN IMMEDIATE` already holds SQLite's single write lock.
    async fn lock_log(_tx: &mut Transaction<'static, Sqlite>) -> StorageResult<()> {
        Ok(())
    }
}

macro_rules! impl_revocation_store {
    ($db:ty) => {
        #[async_trait]
        impl RevocationStore for SqlStore<$db> {
            async fn append(&self, entries: &[Revocation], now: UnixTime) -> StorageResult<()> {
                if entries.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                Self::lock_log(&mut tx).await?;
                // One multi-row INSERT per chunk (a group commit can carry hundreds).
                for chunk in entries.chunks(500) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO revocations (kind, subject, not_after, revoked_at, expires_at) ",
                    );
                    insert.push_values(chunk, |mut row, e| {
                        row.push_bind(e.kind().as_str())
                            .push_bind(e.subject().to_owned())
                            .push_bind(e.not_after())
                            .push_bind(now)
                            .push_bind(e.expires_at());
                    });
                    insert.build().execute(&mut *tx).await.map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn since(
                &self,
                after: i64,
                now: UnixTime,
                limit: u32,
            ) -> StorageResult<Vec<LoggedRevocation>> {
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT seq, kind, subject, not_after, revoked_at, expires_at FROM revocations \
                     WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3",
                )
                .bind(after)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.into_iter().map(LoggedRevocation::try_from).collect()
            }

            async fn last_seq(&self) -> StorageResult<i64> {
                self.last_seq_value().await
            }

            async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64> {
                in_batches(|limit| async move {
                    sqlx::query(
                        "DELETE FROM revocations WHERE seq IN \
                         (SELECT seq FROM revocations WHERE expires_at <= $1 LIMIT $2)",
                    )
                    .bind(now)
                    .bind(i64::from(limit))
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(map_err)
                })
                .await
            }
        }
    };
}

impl_revocation_store!(Sqlite);
impl_revocation_store!(Postgres);
