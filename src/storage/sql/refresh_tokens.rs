use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{corrupt, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{
    ClientId, FamilyInfo, NewFamily, NewRefreshToken, RefreshRejection, RotateOutcome, Scope,
    UserId,
};
use crate::storage::{RefreshTokenStore, StorageResult};

/// What a failed rotation finds about the presented token, to say why it failed.
#[derive(sqlx::FromRow)]
struct Diagnosis {
    family_id: String,
    used_at: Option<i64>,
    expires_at: i64,
    client_id: String,
    revoked_at: Option<i64>,
    absolute_expires_at: i64,
    is_active: bool,
}

#[derive(sqlx::FromRow)]
struct FamilyRow {
    user_id: String,
    scope: String,
    audience: String,
    absolute_expires_at: i64,
}

macro_rules! impl_refresh_store {
    ($db:ty) => {
        #[async_trait]
        impl RefreshTokenStore for SqlStore<$db> {
            async fn start_family(&self, f: &NewFamily, first: &NewRefreshToken) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO refresh_token_families (id, client_id, user_id, scope, audience, created_at, \
                     absolute_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&f.id)
                .bind(f.client_id.as_str())
                .bind(f.user_id.as_str())
                .bind(f.scope.to_wire())
                .bind(&f.audience)
                .bind(f.created_at)
                .bind(f.absolute_expires_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (id, family_id, token_hash, generation, parent_id, created_at, \
                     expires_at) VALUES ($1, $2, $3, 0, NULL, $4, $5)",
                )
                .bind(&first.id)
                .bind(&f.id)
                .bind(&first.token_hash)
                .bind(first.created_at)
                .bind(first.expires_at.min(f.absolute_expires_at))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn rotate(
                &self,
                presented_hash: &str,
                client_id: &ClientId,
                requested_scope: Option<&Scope>,
                next: &NewRefreshToken,
                now: UnixTime,
            ) -> StorageResult<RotateOutcome> {
                let mut tx = self.begin_write().await?;
                // The conditional UPDATE is the linearisation point: of two concurrent rotations of
                // one token, exactly one matches `used_at IS NULL`.
                let used: Option<(String, String, i64)> = sqlx::query_as(
                    "UPDATE refresh_tokens SET used_at = $3, replaced_by = $4 \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $3 \
                       AND family_id IN (SELECT f.id FROM refresh_token_families f JOIN users u ON u.id = f.user_id \
                                         WHERE f.client_id = $2 AND f.revoked_at IS NULL \
                                           AND f.absolute_expires_at > $3 AND u.is_active) \
                     RETURNING id, family_id, generation",
                )
                .bind(presented_hash)
                .bind(client_id.as_str())
                .bind(now)
                .bind(&next.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;

                let Some((parent_id, family_id, generation)) = used else {
                    let d: Option<Diagnosis> = sqlx::query_as(
                        "SELECT t.family_id, t.used_at, t.expires_at, f.client_id, f.revoked_at, \
                         f.absolute_expires_at, u.is_active FROM refresh_tokens t \
                         JOIN refresh_token_families f ON f.id = t.family_id \
                         JOIN users u ON u.id = f.user_id WHERE t.token_hash = $1",
                    )
                    .bind(presented_hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    let outcome = match d {
                        None => RotateOutcome::Rejected(RefreshRejection::Unknown),
                        Some(d) if d.client_id != client_id.as_str() => {
                            RotateOutcome::Rejected(RefreshRejection::WrongClient)
                        }
                        Some(d) if d.revoked_at.is_some() => RotateOutcome::Rejected(RefreshRejection::Revoked),
                        Some(d) if d.used_at.is_some() => {
                            sqlx::query(
                                "UPDATE refresh_token_families SET revoked_at = $2, revoked_reason = 'reuse' \
                                 WHERE id = $1 AND revoked_at IS NULL",
                            )
                            .bind(&d.family_id)
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                            RotateOutcome::Reused { family_id: d.family_id }
                        }
                        Some(d) if d.expires_at <= now || d.absolute_expires_at <= now => {
                            RotateOutcome::Rejected(RefreshRejection::Expired)
                        }
                        Some(d) if !d.is_active => RotateOutcome::Rejected(RefreshRejection::UserInactive),
                        Some(_) => RotateOutcome::Rejected(RefreshRejection::Unknown),
                    };
                    tx.commit().await.map_err(map_err)?;
                    return Ok(outcome);
                };

                let family: FamilyRow = sqlx::query_as(
                    "SELECT user_id, scope, audience, absolute_expires_at FROM refresh_token_families WHERE id = $1",
                )
                .bind(&family_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                let family_scope = Scope::parse(&family.scope).map_err(corrupt)?;
                if requested_scope.is_some_and(|s| !s.is_subset_of(&family_scope)) {
                    tx.rollback().await.map_err(map_err)?;
                    return Ok(RotateOutcome::Rejected(RefreshRejection::ScopeExceeded));
                }
                let expires_at = next.expires_at.min(family.absolute_expires_at);
                let generation = generation + 1;
                sqlx::query(
                    "INSERT INTO refresh_tokens (id, family_id, token_hash, generation, parent_id, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&next.id)
                .bind(&family_id)
                .bind(&next.token_hash)
                .bind(generation)
                .bind(&parent_id)
                .bind(next.created_at)
                .bind(expires_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(RotateOutcome::Rotated(FamilyInfo {
                    family_id,
                    user_id: UserId::from_trusted(family.user_id),
                    scope: family_scope,
                    audience: family.audience,
                    generation,
                    expires_at,
                }))
            }

            async fn revoke_family(&self, family_id: &str, reason: &str, now: UnixTime) -> StorageResult<bool> {
                let r = sqlx::query(
                    "UPDATE refresh_token_families SET revoked_at = $2, revoked_reason = $3 \
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(family_id)
                .bind(now)
                .bind(reason)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64> {
                let r = sqlx::query("DELETE FROM refresh_token_families WHERE absolute_expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected())
            }
        }
    };
}

impl_refresh_store!(Sqlite);
impl_refresh_store!(Postgres);
