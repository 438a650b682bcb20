//! Refresh-token families. Rotation is one atomic step per backend: on PostgreSQL a single
//! statement (conditional UPDATE + INSERT in one CTE, one round trip); on SQLite a
//! `BEGIN IMMEDIATE` transaction (in-process, where round trips are cheap). When the atomic
//! step does not match, a second step diagnoses why, and revokes the family on reuse.

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
    scope: String,
}

/// The rotated token's family, as the atomic step returns it.
#[derive(sqlx::FromRow)]
struct RotatedRow {
    family_id: String,
    generation: i64,
    user_id: String,
    scope: String,
    audience: String,
    expires_at: i64,
    roles: Option<String>,
    permissions: Option<String>,
}

fn split_sorted(joined: Option<String>) -> Vec<String> {
    let mut v: Vec<String> = joined
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Role names and permissions of the family's user, space-joined (neither contains spaces).
macro_rules! claims_columns {
    ($user:literal) => {
        concat!(
            "(SELECT string_agg(r.name, ' ') FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
              WHERE ur.user_id = ",
            $user,
            ") AS roles, \
             (SELECT string_agg(rp.permission, ' ') FROM user_roles ur \
              JOIN role_permissions rp ON rp.role_id = ur.role_id WHERE ur.user_id = ",
            $user,
            ") AS permissions"
        )
    };
}

impl RotatedRow {
    fn into_info(self) -> StorageResult<FamilyInfo> {
        Ok(FamilyInfo {
            scope: Scope::parse(&self.scope).map_err(corrupt)?,
            family_id: self.family_id,
            user_id: UserId::from_trusted(self.user_id),
            audience: self.audience,
            generation: self.generation,
            expires_at: self.expires_at,
            roles: split_sorted(self.roles),
            permissions: split_sorted(self.permissions),
        })
    }
}

/// Why did the atomic step not match? Reuse revokes the family.
/// `None` means reuse.
fn classify(
    d: &Diagnosis,
    client_id: &ClientId,
    requested: Option<&Scope>,
    now: UnixTime,
) -> Option<RefreshRejection> {
    Some(if d.client_id != client_id.as_str() {
        RefreshRejection::WrongClient
    } else if d.revoked_at.is_some() {
        RefreshRejection::Revoked
    } else if d.used_at.is_some() {
        return None; // reuse
    } else if d.expires_at <= now || d.absolute_expires_at <= now {
        RefreshRejection::Expired
    } else if !d.is_active {
        RefreshRejection::UserInactive
    } else if requested.is_some_and(|r| !Scope::parse(&d.scope).is_ok_and(|s| r.is_subset_of(&s))) {
        RefreshRejection::ScopeExceeded
    } else {
        // Nothing is wrong now: a concurrent step changed it in between. Refuse, but do not
        // treat it as reuse.
        RefreshRejection::Unknown
    })
}

impl SqlStore<Postgres> {
    async fn rotate_atomic(
        &self,
        presented_hash: &str,
        client_id: &ClientId,
        requested_scope: Option<&Scope>,
        next: &NewRefreshToken,
        now: UnixTime,
    ) -> StorageResult<Option<FamilyInfo>> {
        // The conditional UPDATE is the linearisation point: of two concurrent rotations of one
        // token, exactly one matches `used_at IS NULL` (the other re-checks after the winner
        // commits, and matches nothing).
        let row: Option<RotatedRow> = sqlx::query_as(concat!(
            "WITH used AS ( \
               UPDATE refresh_tokens t SET used_at = $3, replaced_by = $4 \
               FROM refresh_token_families f JOIN users u ON u.id = f.user_id \
               WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > $3 \
                 AND f.id = t.family_id AND f.client_id = $2 AND f.revoked_at IS NULL \
                 AND f.absolute_expires_at > $3 AND u.is_active \
                 AND ($7::text IS NULL OR string_to_array($7::text, ' ') <@ string_to_array(f.scope, ' ')) \
               RETURNING t.id, t.family_id, t.generation, f.user_id, f.scope, f.audience, f.absolute_expires_at \
             ), ins AS ( \
               INSERT INTO refresh_tokens (id, family_id, token_hash, generation, parent_id, created_at, expires_at) \
               SELECT $4, family_id, $5, generation + 1, id, $3, LEAST($6, absolute_expires_at) FROM used \
               RETURNING expires_at \
             ) \
             SELECT used.family_id, used.generation + 1 AS generation, used.user_id, used.scope, \
                    used.audience, ins.expires_at, ",
            claims_columns!("used.user_id"),
            " FROM used, ins"
        ))
        .bind(presented_hash)
        .bind(client_id.as_str())
        .bind(now)
        .bind(&next.id)
        .bind(&next.token_hash)
        .bind(next.expires_at)
        .bind(requested_scope.map(Scope::to_wire))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(RotatedRow::into_info).transpose()
    }
}

impl SqlStore<Sqlite> {
    async fn rotate_atomic(
        &self,
        presented_hash: &str,
        client_id: &ClientId,
        requested_scope: Option<&Scope>,
        next: &NewRefreshToken,
        now: UnixTime,
    ) -> StorageResult<Option<FamilyInfo>> {
        // BEGIN IMMEDIATE holds the single write lock for the whole step.
        let mut tx = self.begin_write().await?;
        let used: Option<(String, String, i64)> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = $3, replaced_by = $4 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $3 \
               AND EXISTS (SELECT 1 FROM refresh_token_families f JOIN users u ON u.id = f.user_id \
                           WHERE f.id = refresh_tokens.family_id AND f.client_id = $2 AND f.revoked_at IS NULL \
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
            return Ok(None);
        };
        let (user_id, scope, audience, absolute_expires_at, roles, permissions): (
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
        ) = sqlx::query_as(concat!(
            "SELECT f.user_id, f.scope, f.audience, f.absolute_expires_at, ",
            claims_columns!("f.user_id"),
            " FROM refresh_token_families f WHERE f.id = $1"
        ))
        .bind(&family_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let family_scope = Scope::parse(&scope).map_err(corrupt)?;
        if requested_scope.is_some_and(|s| !s.is_subset_of(&family_scope)) {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        let expires_at = next.expires_at.min(absolute_expires_at);
        sqlx::query(
            "INSERT INTO refresh_tokens (id, family_id, token_hash, generation, parent_id, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&next.id)
        .bind(&family_id)
        .bind(&next.token_hash)
        .bind(generation + 1)
        .bind(&parent_id)
        .bind(next.created_at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(FamilyInfo {
            family_id,
            user_id: UserId::from_trusted(user_id),
            scope: family_scope,
            audience,
            generation: generation + 1,
            expires_at,
            roles: split_sorted(roles),
            permissions: split_sorted(permissions),
        }))
    }
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
                if let Some(info) = self
                    .rotate_atomic(presented_hash, client_id, requested_scope, next, now)
                    .await?
                {
                    return Ok(RotateOutcome::Rotated(info));
                }
                let d: Option<Diagnosis> = sqlx::query_as(
                    "SELECT t.family_id, t.used_at, t.expires_at, f.client_id, f.revoked_at, \
                     f.absolute_expires_at, u.is_active, f.scope FROM refresh_tokens t \
                     JOIN refresh_token_families f ON f.id = t.family_id \
                     JOIN users u ON u.id = f.user_id WHERE t.token_hash = $1",
                )
                .bind(presented_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                let Some(d) = d else {
                    return Ok(RotateOutcome::Rejected(RefreshRejection::Unknown));
                };
                if let Some(rejection) = classify(&d, client_id, requested_scope, now) {
                    return Ok(RotateOutcome::Rejected(rejection));
                }
                self.revoke_family(&d.family_id, "reuse", now).await?;
                Ok(RotateOutcome::Reused { family_id: d.family_id })
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
