use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{corrupt, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{KeyId, KeyState, SigningAlg, StoredKey};
use crate::storage::{PendingInsert, SigningKeyStore, StorageError, StorageResult};

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    state: String,
    public_jwk: String,
    private_key_enc: Vec<u8>,
    enc_key_id: String,
    created_at: i64,
    activate_at: Option<i64>,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
    removed_at: Option<i64>,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = crate::storage::StorageError;

    fn try_from(r: KeyRow) -> Result<Self, Self::Error> {
        Ok(StoredKey {
            alg: SigningAlg::parse(&r.alg).map_err(corrupt)?,
            state: KeyState::parse(&r.state).map_err(corrupt)?,
            kid: KeyId::from_trusted(r.kid),
            public_jwk: r.public_jwk,
            private_key_enc: r.private_key_enc,
            enc_key_id: r.enc_key_id,
            created_at: r.created_at,
            activate_at: r.activate_at,
            activated_at: r.activated_at,
            retired_at: r.retired_at,
            removed_at: r.removed_at,
        })
    }
}

/// The partial unique indexes on `alg` (one active and one pending key per algorithm).
/// PostgreSQL names the index; SQLite reports the column, which `map_err` renders as
/// `signing_keys_alg_key`.
fn is_state_conflict(e: &StorageError) -> bool {
    matches!(e, StorageError::Conflict(c) if c == "signing_keys_alg_key"
        || c == "signing_keys_one_active_idx"
        || c == "signing_keys_one_pending_idx")
}

/// Names conflicts alike on both backends: SQLite reports the `kid` column, PostgreSQL the
/// primary key; a state conflict gets the name of the index the operation could violate.
fn key_conflict(e: StorageError, state_index: &str) -> StorageError {
    match e {
        StorageError::Conflict(c) if c == "signing_keys_kid_key" => {
            StorageError::Conflict("signing_keys_pkey".into())
        }
        e if is_state_conflict(&e) => StorageError::Conflict(state_index.into()),
        other => other,
    }
}

macro_rules! impl_key_store {
    ($db:ty) => {
        #[async_trait]
        impl SigningKeyStore for SqlStore<$db> {
            async fn list(&self) -> StorageResult<Vec<StoredKey>> {
                let rows: Vec<KeyRow> = sqlx::query_as(
                    "SELECT kid, alg, state, public_jwk, private_key_enc, enc_key_id, created_at, \
                     activate_at, activated_at, retired_at, removed_at FROM signing_keys ORDER BY created_at DESC, \
                     CASE state WHEN 'pending' THEN 0 WHEN 'active' THEN 1 WHEN 'retired' THEN 2 ELSE 3 END, kid",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.into_iter().map(StoredKey::try_from).collect()
            }

            async fn insert_active(&self, key: &StoredKey, now: UnixTime) -> StorageResult<()> {
                let conflict = |e| key_conflict(map_err(e), "signing_keys_one_active_idx");
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE signing_keys SET state = 'retired', retired_at = $1 \
                     WHERE state IN ('active', 'pending') AND alg = $2",
                )
                .bind(now)
                .bind(key.alg.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_enc, enc_key_id, \
                     created_at, activate_at, activated_at) VALUES ($1, $2, 'active', $3, $4, $5, $6, $6, $6)",
                )
                .bind(key.kid.as_str())
                .bind(key.alg.as_str())
                .bind(&key.public_jwk)
                .bind(&key.private_key_enc)
                .bind(&key.enc_key_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
                tx.commit().await.map_err(map_err)
            }

            async fn insert_active_if_none(
                &self,
                key: &StoredKey,
                now: UnixTime,
            ) -> StorageResult<bool> {
                let r = sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_enc, enc_key_id, \
                     created_at, activate_at, activated_at) \
                     SELECT $1, $2, 'active', $3, $4, $5, $6, $6, $6 \
                     WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2 AND state = 'active')",
                )
                .bind(key.kid.as_str())
                .bind(key.alg.as_str())
                .bind(&key.public_jwk)
                .bind(&key.private_key_enc)
                .bind(&key.enc_key_id)
                .bind(now)
                .execute(&self.pool)
                .await;
                match r {
                    Ok(r) => Ok(r.rows_affected() == 1),
                    // (PostgreSQL) a concurrent insert of the algorithm committed first.
                    Err(e) => match key_conflict(map_err(e), "signing_keys_one_active_idx") {
                        StorageError::Conflict(c) if c == "signing_keys_one_active_idx" => Ok(false),
                        other => Err(other),
                    },
                }
            }

            async fn insert_pending(
                &self,
                key: &StoredKey,
                replaces: &KeyId,
            ) -> StorageResult<PendingInsert> {
                let r = sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_enc, enc_key_id, \
                     created_at, activate_at) \
                     SELECT $1, $2, 'pending', $3, $4, $5, $6, $7 \
                     WHERE EXISTS (SELECT 1 FROM signing_keys \
                     WHERE kid = $8 AND state = 'active' AND alg = $2)",
                )
                .bind(key.kid.as_str())
                .bind(key.alg.as_str())
                .bind(&key.public_jwk)
                .bind(&key.private_key_enc)
                .bind(&key.enc_key_id)
                .bind(key.created_at)
                .bind(key.activate_at)
                .bind(replaces.as_str())
                .execute(&self.pool)
                .await;
                match r {
                    Ok(r) if r.rows_affected() == 1 => Ok(PendingInsert::Inserted),
                    Ok(_) => Ok(PendingInsert::ActiveChanged),
                    Err(e) => match key_conflict(map_err(e), "signing_keys_one_pending_idx") {
                        StorageError::Conflict(c) if c == "signing_keys_one_pending_idx" => {
                            Ok(PendingInsert::AnotherPending)
                        }
                        other => Err(other),
                    },
                }
            }

            async fn promote(&self, kid: &KeyId, now: UnixTime) -> StorageResult<bool> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE signing_keys SET state = 'retired', retired_at = $1 \
                     WHERE state = 'active' AND alg = \
                     (SELECT alg FROM signing_keys WHERE kid = $2 AND state = 'pending')",
                )
                .bind(now)
                .bind(kid.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                let promoted = sqlx::query(
                    "UPDATE signing_keys SET state = 'active', activated_at = $2 \
                     WHERE kid = $1 AND state = 'pending'",
                )
                .bind(kid.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err);
                match promoted {
                    Ok(r) if r.rows_affected() == 1 => {
                        tx.commit().await.map_err(map_err)?;
                        Ok(true)
                    }
                    // Not pending any more, or (PostgreSQL, read committed) another key of
                    // its algorithm became active meanwhile: another caller won; undo the retirement.
                    Ok(_) => {
                        tx.rollback().await.map_err(map_err)?;
                        Ok(false)
                    }
                    Err(e) if is_state_conflict(&e) => {
                        tx.rollback().await.map_err(map_err)?;
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            }

            async fn retire_pending(&self, kid: &KeyId, now: UnixTime) -> StorageResult<bool> {
                let r = sqlx::query(
                    "UPDATE signing_keys SET state = 'retired', retired_at = $2 \
                     WHERE kid = $1 AND state = 'pending'",
                )
                .bind(kid.as_str())
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn remove_retired(
                &self,
                retired_before: UnixTime,
                now: UnixTime,
            ) -> StorageResult<u64> {
                let r = sqlx::query(
                    "UPDATE signing_keys SET state = 'removed', removed_at = $2 \
                     WHERE state = 'retired' \
                     AND (activated_at IS NULL OR COALESCE(retired_at, 0) <= $1)",
                )
                .bind(retired_before)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected())
            }

            async fn mark_removed(&self, kid: &KeyId, now: UnixTime) -> StorageResult<bool> {
                let r = sqlx::query(
                    "UPDATE signing_keys SET state = 'removed', removed_at = $2 WHERE kid = $1 AND state <> 'removed'",
                )
                .bind(kid.as_str())
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }
        }
    };
}

impl_key_store!(Sqlite);
impl_key_store!(Postgres);
