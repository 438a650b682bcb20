//! Second factors in SQL: users' TOTP authenticators and passkeys (`mfa_factors`) and their
//! recovery codes (`mfa_recovery_codes`, hashes only).

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{corrupt, in_batches, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{FactorId, FactorKind, MfaFactor, UserId};
use crate::storage::{MfaStore, StorageError, StorageResult};

macro_rules! factor_columns {
    () => {
        "id, user_id, kind, name, secret_enc, enc_key_id, credential, credential_id, \
         confirmed_at, last_step, created_at, last_used_at"
    };
}

#[derive(sqlx::FromRow)]
struct FactorRow {
    id: String,
    user_id: String,
    kind: String,
    name: String,
    secret_enc: Option<Vec<u8>>,
    enc_key_id: Option<String>,
    credential: Option<String>,
    credential_id: Option<String>,
    confirmed_at: Option<i64>,
    last_step: i64,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<FactorRow> for MfaFactor {
    type Error = StorageError;

    fn try_from(r: FactorRow) -> Result<Self, Self::Error> {
        Ok(MfaFactor {
            kind: FactorKind::parse(&r.kind)
                .ok_or_else(|| corrupt(format!("kind of factor {}", r.id)))?,
            id: FactorId::from_trusted(r.id),
            user_id: UserId::from_trusted(r.user_id),
            name: r.name,
            secret_enc: r.secret_enc,
            enc_key_id: r.enc_key_id,
            credential: r.credential,
            credential_id: r.credential_id,
            confirmed_at: r.confirmed_at,
            last_step: r.last_step,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        })
    }
}

/// Replaces the user's recovery codes by `$hashes` in the open transaction `$tx`.
macro_rules! replace_codes {
    ($tx:ident, $user:expr, $hashes:expr, $now:expr) => {
        let user: &UserId = $user;
        let hashes: &[String] = $hashes;
        let now: UnixTime = $now;
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&mut *$tx)
            .await
            .map_err(map_err)?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (user_id, code_hash) DO NOTHING",
            )
            .bind(user.as_str())
            .bind(hash.as_str())
            .bind(now)
            .execute(&mut *$tx)
            .await
            .map_err(map_err)?;
        }
    };
}

macro_rules! impl_mfa_store {
    ($db:ty) => {
        #[async_trait]
        impl MfaStore for SqlStore<$db> {
            async fn create(&self, f: &MfaFactor) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                if f.kind == FactorKind::Totp && f.confirmed_at.is_none() {
                    // An enrolment started again: the earlier, unfinished one is abandoned.
                    sqlx::query(
                        "DELETE FROM mfa_factors \
                         WHERE user_id = $1 AND kind = 'totp' AND confirmed_at IS NULL",
                    )
                    .bind(f.user_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                sqlx::query(concat!(
                    "INSERT INTO mfa_factors (",
                    factor_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(f.id.as_str())
                .bind(f.user_id.as_str())
                .bind(f.kind.as_str())
                .bind(f.name.as_str())
                .bind(f.secret_enc.as_deref())
                .bind(f.enc_key_id.as_deref())
                .bind(f.credential.as_deref())
                .bind(f.credential_id.as_deref())
                .bind(f.confirmed_at)
                .bind(f.last_step)
                .bind(f.created_at)
                .bind(f.last_used_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn find(&self, user: &UserId, id: &FactorId) -> StorageResult<Option<MfaFactor>> {
                let row: Option<FactorRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    factor_columns!(),
                    " FROM mfa_factors WHERE id = $1 AND user_id = $2"
                ))
                .bind(id.as_str())
                .bind(user.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(MfaFactor::try_from).transpose()
            }

            async fn list(&self, user: &UserId) -> StorageResult<Vec<MfaFactor>> {
                let rows: Vec<FactorRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    factor_columns!(),
                    " FROM mfa_factors WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .bind(user.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.into_iter().map(MfaFactor::try_from).collect()
            }

            async fn confirm(
                &self,
                user: &UserId,
                id: &FactorId,
                step: i64,
                recovery_hashes: Option<&[String]>,
                now: UnixTime,
            ) -> StorageResult<bool> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE mfa_factors SET confirmed_at = $3, last_step = $4, last_used_at = $3 \
                     WHERE id = $1 AND user_id = $2 AND confirmed_at IS NULL",
                )
                .bind(id.as_str())
                .bind(user.as_str())
                .bind(now)
                .bind(step)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                if done.rows_affected() != 1 {
                    // Dropping the transaction rolls it back; nothing was changed anyway.
                    return Ok(false);
                }
                if let Some(hashes) = recovery_hashes {
                    replace_codes!(tx, user, hashes, now);
                }
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn use_totp_step(
                &self,
                user: &UserId,
                id: &FactorId,
                step: i64,
                now: UnixTime,
            ) -> StorageResult<bool> {
                // One conditional UPDATE: PostgreSQL re-checks `last_step < $3` on the row
                // a concurrent winner changed, and SQLite runs one writer at a time.
                let done = sqlx::query(
                    "UPDATE mfa_factors SET last_step = $3, last_used_at = $4 \
                     WHERE id = $1 AND user_id = $2 AND kind = 'totp' \
                     AND confirmed_at IS NOT NULL AND last_step < $3",
                )
                .bind(id.as_str())
                .bind(user.as_str())
                .bind(step)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn use_passkey(
                &self,
                user: &UserId,
                id: &FactorId,
                seen: &str,
                updated: &str,
                now: UnixTime,
            ) -> StorageResult<bool> {
                // Compare-and-set on the credential as it was read: of two uses that read
                // the same counter, one stores its own.
                let done = sqlx::query(
                    "UPDATE mfa_factors SET credential = $4, last_used_at = $5 \
                     WHERE id = $1 AND user_id = $2 AND kind = 'passkey' \
                     AND confirmed_at IS NOT NULL AND credential = $3",
                )
                .bind(id.as_str())
                .bind(user.as_str())
                .bind(seen)
                .bind(updated)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete(&self, user: &UserId, id: &FactorId) -> StorageResult<bool> {
                let done = sqlx::query("DELETE FROM mfa_factors WHERE id = $1 AND user_id = $2")
                    .bind(id.as_str())
                    .bind(user.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_all(&self, user: &UserId) -> StorageResult<u64> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let done = sqlx::query("DELETE FROM mfa_factors WHERE user_id = $1")
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(done.rows_affected())
            }

            async fn replace_recovery_codes(
                &self,
                user: &UserId,
                hashes: &[String],
                now: UnixTime,
            ) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                replace_codes!(tx, user, hashes, now);
                tx.commit().await.map_err(map_err)
            }

            async fn use_recovery_code(
                &self,
                user: &UserId,
                hash: &str,
                now: UnixTime,
            ) -> StorageResult<bool> {
                let done = sqlx::query(
                    "UPDATE mfa_recovery_codes SET used_at = $3 \
                     WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user.as_str())
                .bind(hash)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn recovery_codes_left(&self, user: &UserId) -> StorageResult<i64> {
                let (left,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM mfa_recovery_codes \
                     WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(left)
            }

            async fn required_by_role(&self, user: &UserId) -> StorageResult<bool> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                     WHERE ur.user_id = $1 AND r.require_mfa",
                )
                .bind(user.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(n > 0)
            }

            async fn enrolment_first_asked(
                &self,
                user: &UserId,
                now: UnixTime,
            ) -> StorageResult<UnixTime> {
                sqlx::query(
                    "INSERT INTO mfa_enrolment_asked (user_id, first_asked_at) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user.as_str())
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                let (at,): (i64,) = sqlx::query_as(
                    "SELECT first_asked_at FROM mfa_enrolment_asked WHERE user_id = $1",
                )
                .bind(user.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(at)
            }

            async fn purge_pending(&self, before: UnixTime) -> StorageResult<u64> {
                in_batches(|limit| async move {
                    sqlx::query(
                        "DELETE FROM mfa_factors WHERE id IN (SELECT id FROM mfa_factors \
                         WHERE confirmed_at IS NULL AND created_at < $1 LIMIT $2)",
                    )
                    .bind(before)
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

impl_mfa_store!(Sqlite);
impl_mfa_store!(Postgres);
