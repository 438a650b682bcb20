use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{corrupt, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{KeyState, SigningAlg, StoredKey};
use crate::storage::{SigningKeyStore, StorageResult};

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    state: String,
    public_jwk: String,
    private_key_enc: Vec<u8>,
    enc_key_id: String,
    created_at: i64,
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
            kid: r.kid,
            public_jwk: r.public_jwk,
            private_key_enc: r.private_key_enc,
            enc_key_id: r.enc_key_id,
            created_at: r.created_at,
            activated_at: r.activated_at,
            retired_at: r.retired_at,
            removed_at: r.removed_at,
        })
    }
}

macro_rules! impl_key_store {
    ($db:ty) => {
        #[async_trait]
        impl SigningKeyStore for SqlStore<$db> {
            async fn list(&self) -> StorageResult<Vec<StoredKey>> {
                let rows: Vec<KeyRow> = sqlx::query_as(
                    "SELECT kid, alg, state, public_jwk, private_key_enc, enc_key_id, created_at, \
                     activated_at, retired_at, removed_at FROM signing_keys ORDER BY created_at DESC, \
                     CASE state WHEN 'pending' THEN 0 WHEN 'active' THEN 1 WHEN 'retired' THEN 2 ELSE 3 END, kid",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.into_iter().map(StoredKey::try_from).collect()
            }

            async fn insert_active(&self, key: &StoredKey, now: UnixTime) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE state = 'active'")
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_enc, enc_key_id, \
                     created_at, activated_at) VALUES ($1, $2, 'active', $3, $4, $5, $6, $6)",
                )
                .bind(&key.kid)
                .bind(key.alg.as_str())
                .bind(&key.public_jwk)
                .bind(&key.private_key_enc)
                .bind(&key.enc_key_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn mark_removed(&self, kid: &str, now: UnixTime) -> StorageResult<bool> {
                let r = sqlx::query(
                    "UPDATE signing_keys SET state = 'removed', removed_at = $2 WHERE kid = $1 AND state <> 'removed'",
                )
                .bind(kid)
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
