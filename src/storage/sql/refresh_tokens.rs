//! Refresh-token families, one row per family. Rotation is one atomic step per backend: on
//! PostgreSQL a single conditional UPDATE of the family row by primary key (which also reads
//! the user's roles, one round trip); on SQLite the same UPDATE inside a `BEGIN IMMEDIATE`
//! transaction, with the scope check in Rust. The same statement admits a retry inside a
//! refresh grace window (the previous generation, presented again): it then only counts the
//! retry and answers the sealed successor. When the step does not match, a second read
//! diagnoses why, and revokes the family when an older generation was presented (reuse).

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{
    amr_from_column, amr_to_column, corrupt, in_batches, map_err, pause_after, SqlStore,
    PURGE_BATCH,
};
use crate::clock::UnixTime;
use crate::crypto::constant_time_eq;
use crate::domain::{
    ClientId, FamilyId, FamilyInfo, FamilyRecord, FamilySignIn, NewFamily, NextGeneration,
    PresentedToken, RefreshRejection, RetriedFamily, RetryGrace, RotateOutcome, Scope, SessionId,
    UserId,
};
use crate::storage::{RefreshTokenStore, StorageResult};

#[derive(sqlx::FromRow)]
struct FamilyRow {
    id: String,
    client_id: String,
    user_id: String,
    scope: String,
    audience: String,
    generation: i64,
    token_hash: String,
    expires_at: i64,
    issued_at: i64,
    created_at: i64,
    absolute_expires_at: i64,
    revoked_at: Option<i64>,
    is_active: bool,
    prev_token_hash: Option<String>,
    grace_until: Option<i64>,
    grace_retries: i64,
    auth_time: Option<i64>,
}

impl From<FamilyRow> for FamilyRecord {
    fn from(r: FamilyRow) -> Self {
        FamilyRecord {
            id: FamilyId::from_trusted(r.id),
            client_id: r.client_id,
            user_id: UserId::from_trusted(r.user_id),
            scope: r.scope,
            audience: r.audience,
            generation: r.generation,
            token_hash: r.token_hash,
            expires_at: r.expires_at,
            issued_at: r.issued_at,
            created_at: r.created_at,
            absolute_expires_at: r.absolute_expires_at,
            revoked_at: r.revoked_at,
            user_active: r.is_active,
            previous_token_hash: r.prev_token_hash,
            grace_until: r.grace_until,
            grace_retries: r.grace_retries,
            signed_in_at: r.auth_time.unwrap_or(r.created_at),
        }
    }
}

const SELECT_FAMILY: &str = "SELECT f.id, f.client_id, f.user_id, f.scope, f.audience, \
     f.generation, f.token_hash, f.expires_at, f.issued_at, f.created_at, \
     f.absolute_expires_at, f.revoked_at, u.is_active, f.prev_token_hash, f.grace_until, \
     f.grace_retries, f.auth_time \
     FROM refresh_token_families f JOIN users u ON u.id = f.user_id WHERE f.id = $1";

/// The rotated family, as the atomic step returns it.
#[derive(sqlx::FromRow)]
struct RotatedRow {
    user_id: String,
    scope: String,
    audience: String,
    generation: i64,
    expires_at: i64,
    roles: Option<String>,
    permissions: Option<String>,
    sso_session_id: Option<String>,
    auth_time: Option<i64>,
    amr: Option<String>,
    offline_access: bool,
    /// 0 after a rotation; after a retry, the retries admitted in the window so far.
    grace_retries: i64,
    /// After a retry: the sealed successor (NULL after a rotation).
    retried_successor: Option<String>,
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

/// The conditional UPDATE both backends run. It is the linearisation point: of two concurrent
/// rotations of one token, exactly one matches `generation = $2` (the other re-checks after
/// the winner commits, and matches nothing, or, inside a grace window, the retry branch). `$8`
/// is PostgreSQL's scope check (SQLite checks in Rust and binds NULL); `$9` is the requested
/// audience, which must be the family's.
///
/// Two branches, told apart by the old row's generation (every `CASE` reads the old row):
/// - rotation, `generation = $2` and the current hash: the next generation (`$5`, `$6`) is
///   stored, and the grace columns are set to what this rotation keeps of the presented token
///   (`$10` its hash, `$11` the end of its window, `$12` the sealed successor), or to NULL for
///   a client without a grace window: the previous generation's window ends here.
/// - retry, `generation = $2 + 1` and the previous hash, window open, fewer than `$13`
///   retries: only `grace_retries` moves; the sealed successor is returned.
///
/// Without a grace window it is the same single statement as a plain rotation, with a few more
/// column assignments.
macro_rules! rotate_sql {
    ($scope_check:literal) => {
        concat!(
            "UPDATE refresh_token_families SET \
               generation = CASE WHEN generation = $2 THEN generation + 1 ELSE generation END, \
               token_hash = CASE WHEN generation = $2 THEN $5 ELSE token_hash END, \
               expires_at = CASE WHEN generation <> $2 THEN expires_at \
                 WHEN $6 < absolute_expires_at THEN $6 ELSE absolute_expires_at END, \
               issued_at = CASE WHEN generation = $2 THEN $4 ELSE issued_at END, \
               prev_token_hash = CASE WHEN generation = $2 THEN $10 ELSE prev_token_hash END, \
               grace_until = CASE WHEN generation = $2 THEN $11 ELSE grace_until END, \
               grace_successor = CASE WHEN generation = $2 THEN $12 ELSE grace_successor END, \
               grace_retries = CASE WHEN generation = $2 THEN 0 ELSE grace_retries + 1 END \
             WHERE id = $1 AND client_id = $7 \
               AND ((generation = $2 AND token_hash = $3) \
                    OR (generation - 1 = $2 AND prev_token_hash = $3 AND grace_until > $4 \
                        AND grace_retries < $13)) \
               AND revoked_at IS NULL AND expires_at > $4 AND absolute_expires_at > $4 \
               AND EXISTS (SELECT 1 FROM users u WHERE u.id = refresh_token_families.user_id AND u.is_active) \
               AND ($9 IS NULL OR audience = $9) ",
            $scope_check,
            " RETURNING user_id, scope, audience, generation, expires_at, sso_session_id, auth_time, amr, \
               offline_access, grace_retries, \
               CASE WHEN grace_retries > 0 THEN grace_successor END AS retried_successor, ",
            claims_columns!("refresh_token_families.user_id")
        )
    };
}

impl RotatedRow {
    /// A rotation, or a retry inside a grace window.
    fn into_outcome(self, family_id: &FamilyId) -> StorageResult<RotateOutcome> {
        let retries = self.grace_retries;
        let successor = self.retried_successor.clone();
        let info = self.into_info(family_id)?;
        if retries == 0 {
            return Ok(RotateOutcome::Rotated(info));
        }
        // The retry branch matched the kept hash, which is only ever kept with its successor.
        let sealed_successor =
            successor.ok_or_else(|| corrupt("a refresh grace window without its successor"))?;
        Ok(RotateOutcome::Retried(RetriedFamily {
            info,
            sealed_successor,
            retries,
        }))
    }

    fn into_info(self, family_id: &FamilyId) -> StorageResult<FamilyInfo> {
        Ok(FamilyInfo {
            scope: Scope::parse(&self.scope).map_err(corrupt)?,
            family_id: family_id.clone(),
            user_id: UserId::from_trusted(self.user_id),
            audience: self.audience,
            generation: self.generation,
            expires_at: self.expires_at,
            roles: split_sorted(self.roles),
            permissions: split_sorted(self.permissions),
            sign_in: match (self.sso_session_id, self.auth_time) {
                (Some(id), Some(auth_time)) => Some(FamilySignIn {
                    session_id: SessionId::from_trusted(id),
                    auth_time,
                    amr: amr_from_column(self.amr.as_deref().unwrap_or(""))?,
                    offline_access: self.offline_access,
                }),
                _ => None,
            },
        })
    }
}

/// Why did the atomic step not match? `None` means reuse (an older generation, or, inside a
/// grace window, the previous one with its retries used up or from another client).
fn classify(
    f: &FamilyRecord,
    presented: &PresentedToken,
    client_id: &ClientId,
    requested: Option<&Scope>,
    requested_audience: Option<&str>,
    now: UnixTime,
) -> Option<RefreshRejection> {
    // What refuses the current token (or a retry) whatever its generation.
    let refusal = || {
        if f.expires_at <= now || f.absolute_expires_at <= now {
            Some(RefreshRejection::Expired)
        } else if !f.user_active {
            Some(RefreshRejection::UserInactive)
        } else if requested
            .is_some_and(|r| !Scope::parse(&f.scope).is_ok_and(|s| r.is_subset_of(&s)))
        {
            Some(RefreshRejection::ScopeExceeded)
        } else if requested_audience.is_some_and(|a| a != f.audience) {
            Some(RefreshRejection::AudienceMismatch)
        } else {
            None
        }
    };
    let in_grace_window = f.revoked_at.is_none() && f.in_grace_window(presented, now);
    Some(if f.client_id != client_id.as_str() {
        if in_grace_window {
            // A retry of a token that was just rotated, by another client: it has leaked.
            return None; // reuse
        }
        RefreshRejection::WrongClient
    } else if f.revoked_at.is_some() {
        RefreshRejection::Revoked
    } else if presented.generation < f.generation {
        // A retry refused for what would refuse the current token leaves the family alone;
        // otherwise its retries are used up (or the client has no grace window now): reuse.
        return if in_grace_window { refusal() } else { None };
    } else if presented.generation > f.generation
        || !constant_time_eq(presented.token_hash.as_bytes(), f.token_hash.as_bytes())
    {
        // Only reachable with a valid tag over a secret we never stored: refuse, do nothing.
        RefreshRejection::Unknown
    } else if let Some(why) = refusal() {
        why
    } else {
        // Nothing is wrong now: a concurrent step changed it in between. Refuse, but do not
        // treat it as reuse.
        RefreshRejection::Unknown
    })
}

impl SqlStore<Postgres> {
    #[allow(clippy::too_many_arguments)]
    async fn rotate_atomic(
        &self,
        presented: &PresentedToken,
        client_id: &ClientId,
        requested_scope: Option<&Scope>,
        requested_audience: Option<&str>,
        next: &NextGeneration,
        grace: Option<&RetryGrace>,
        now: UnixTime,
    ) -> StorageResult<Option<RotateOutcome>> {
        let row: Option<RotatedRow> = sqlx::query_as(rotate_sql!(
            "AND ($8::text IS NULL OR string_to_array($8::text, ' ') <@ string_to_array(scope, ' '))"
        ))
        .bind(presented.family_id.as_str())
        .bind(presented.generation)
        .bind(&presented.token_hash)
        .bind(now)
        .bind(&next.token_hash)
        .bind(next.expires_at)
        .bind(client_id.as_str())
        .bind(requested_scope.map(Scope::to_wire))
        .bind(requested_audience)
        .bind(grace.map(|_| presented.token_hash.as_str()))
        .bind(grace.map(|g| g.until))
        .bind(grace.map(|g| g.sealed_successor.as_str()))
        .bind(grace.map_or(0, |g| g.uses))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|r| r.into_outcome(&presented.family_id))
            .transpose()
    }
}

impl SqlStore<Sqlite> {
    #[allow(clippy::too_many_arguments)]
    async fn rotate_atomic(
        &self,
        presented: &PresentedToken,
        client_id: &ClientId,
        requested_scope: Option<&Scope>,
        requested_audience: Option<&str>,
        next: &NextGeneration,
        grace: Option<&RetryGrace>,
        now: UnixTime,
    ) -> StorageResult<Option<RotateOutcome>> {
        // BEGIN IMMEDIATE holds the single write lock for the whole step, so the scope check
        // in Rust can still undo the update.
        let mut tx = self.begin_write().await?;
        let row: Option<RotatedRow> = sqlx::query_as(rotate_sql!("AND $8 IS NULL"))
            .bind(presented.family_id.as_str())
            .bind(presented.generation)
            .bind(&presented.token_hash)
            .bind(now)
            .bind(&next.token_hash)
            .bind(next.expires_at)
            .bind(client_id.as_str())
            .bind(Option::<String>::None)
            .bind(requested_audience)
            .bind(grace.map(|_| presented.token_hash.as_str()))
            .bind(grace.map(|g| g.until))
            .bind(grace.map(|g| g.sealed_successor.as_str()))
            .bind(grace.map_or(0, |g| g.uses))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let outcome = row.into_outcome(&presented.family_id)?;
        let scope = match &outcome {
            RotateOutcome::Rotated(info) => &info.scope,
            RotateOutcome::Retried(retried) => &retried.info.scope,
            RotateOutcome::Reused { .. } | RotateOutcome::Rejected(_) => return Ok(None),
        };
        if requested_scope.is_some_and(|s| !s.is_subset_of(scope)) {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(Some(outcome))
    }
}

macro_rules! impl_refresh_store {
    ($db:ty) => {
        #[async_trait]
        impl RefreshTokenStore for SqlStore<$db> {
            async fn start_family(&self, f: &NewFamily) -> StorageResult<bool> {
                let r = sqlx::query(
                    "INSERT INTO refresh_token_families (id, client_id, user_id, scope, audience, \
                     generation, token_hash, expires_at, issued_at, created_at, absolute_expires_at, \
                     sso_session_id, auth_time, amr, offline_access) \
                     SELECT $1, $2, $3, $4, $5, 0, $6, $7, $8, $8, $9, $10, $11, $12, $13 \
                     WHERE NOT EXISTS (SELECT 1 FROM revocations r WHERE r.kind = 'user' \
                                       AND r.subject = $3 AND r.not_after >= $8) \
                       AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.kind = 'client' \
                                       AND r.subject = $2 AND r.not_after >= $8)",
                )
                .bind(f.id.as_str())
                .bind(f.client_id.as_str())
                .bind(f.user_id.as_str())
                .bind(f.scope.to_wire())
                .bind(&f.audience)
                .bind(&f.first.token_hash)
                .bind(f.first.expires_at.min(f.absolute_expires_at))
                .bind(f.created_at)
                .bind(f.absolute_expires_at)
                .bind(f.sign_in.as_ref().map(|s| s.session_id.as_str()))
                .bind(f.sign_in.as_ref().map(|s| s.auth_time))
                .bind(f.sign_in.as_ref().map(|s| amr_to_column(&s.amr)))
                .bind(f.sign_in.as_ref().is_some_and(|s| s.offline_access))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn rotate(
                &self,
                presented: &PresentedToken,
                client_id: &ClientId,
                requested_scope: Option<&Scope>,
                requested_audience: Option<&str>,
                next: &NextGeneration,
                grace: Option<&RetryGrace>,
                now: UnixTime,
            ) -> StorageResult<RotateOutcome> {
                if let Some(outcome) = self
                    .rotate_atomic(presented, client_id, requested_scope, requested_audience, next, grace, now)
                    .await?
                {
                    return Ok(outcome);
                }
                let Some(f) = self.find_family(&presented.family_id).await? else {
                    return Ok(RotateOutcome::Rejected(RefreshRejection::Unknown));
                };
                if let Some(rejection) = classify(&f, presented, client_id, requested_scope, requested_audience, now) {
                    return Ok(RotateOutcome::Rejected(rejection));
                }
                self.revoke_family(&f.id, "reuse", now).await?;
                Ok(RotateOutcome::Reused {
                    family_id: f.id,
                    absolute_expires_at: f.absolute_expires_at,
                })
            }

            async fn find_family(&self, family_id: &FamilyId) -> StorageResult<Option<FamilyRecord>> {
                let row: Option<FamilyRow> = sqlx::query_as(SELECT_FAMILY)
                    .bind(family_id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.map(FamilyRecord::from))
            }

            async fn revoke_family(&self, family_id: &FamilyId, reason: &str, now: UnixTime) -> StorageResult<bool> {
                let r = sqlx::query(
                    "UPDATE refresh_token_families SET revoked_at = $2, revoked_reason = $3, \
                     prev_token_hash = NULL, grace_until = NULL, grace_successor = NULL \
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(family_id.as_str())
                .bind(now)
                .bind(reason)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn revoke_user_families(
                &self,
                user_id: &UserId,
                except: Option<&FamilyId>,
                reason: &str,
                now: UnixTime,
            ) -> StorageResult<Vec<(FamilyId, UnixTime)>> {
                let revoked: Vec<(String, UnixTime)> = sqlx::query_as(
                    "UPDATE refresh_token_families SET revoked_at = $2, revoked_reason = $3, \
                     prev_token_hash = NULL, grace_until = NULL, grace_successor = NULL \
                     WHERE user_id = $1 AND revoked_at IS NULL AND absolute_expires_at > $2 \
                     AND ($4 IS NULL OR id <> $4) \
                     RETURNING id, absolute_expires_at",
                )
                .bind(user_id.as_str())
                .bind(now)
                .bind(reason)
                .bind(except.map(FamilyId::as_str))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(revoked
                    .into_iter()
                    .map(|(id, until)| (FamilyId::from_trusted(id), until))
                    .collect())
            }

            async fn revoke_client_families(
                &self,
                client_id: &ClientId,
                reason: &str,
                now: UnixTime,
            ) -> StorageResult<u64> {
                let r = sqlx::query(
                    "UPDATE refresh_token_families SET revoked_at = $2, revoked_reason = $3, \
                     prev_token_hash = NULL, grace_until = NULL, grace_successor = NULL \
                     WHERE client_id = $1 AND revoked_at IS NULL AND absolute_expires_at > $2",
                )
                .bind(client_id.as_str())
                .bind(now)
                .bind(reason)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected())
            }

            async fn revoke_session_families(
                &self,
                session_id: &SessionId,
                include_offline: bool,
                reason: &str,
                now: UnixTime,
            ) -> StorageResult<Vec<(FamilyId, UnixTime)>> {
                let revoked: Vec<(String, UnixTime)> = sqlx::query_as(
                    "UPDATE refresh_token_families SET revoked_at = $2, revoked_reason = $3, \
                     prev_token_hash = NULL, grace_until = NULL, grace_successor = NULL \
                     WHERE sso_session_id = $1 AND revoked_at IS NULL AND absolute_expires_at > $2 \
                     AND ($4 OR NOT offline_access) \
                     RETURNING id, absolute_expires_at",
                )
                .bind(session_id.as_str())
                .bind(now)
                .bind(reason)
                .bind(include_offline)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(revoked
                    .into_iter()
                    .map(|(id, until)| (FamilyId::from_trusted(id), until))
                    .collect())
            }

            async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64> {
                let purged = in_batches(|limit| async move {
                    sqlx::query(
                        "DELETE FROM refresh_token_families WHERE id IN \
                         (SELECT id FROM refresh_token_families \
                          WHERE absolute_expires_at <= $1 LIMIT $2)",
                    )
                    .bind(now)
                    .bind(i64::from(limit))
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(map_err)
                })
                .await?;
                // A sealed successor does not outlive its grace window (the next rotation or
                // revocation of a family clears it sooner). `grace_until` is not indexed (a
                // rotation stays a HOT update on PostgreSQL), so the families to clear are
                // found by a read, in key order (a read holds no write lock), and cleared by
                // key, a batch at a time.
                let mut after = String::new();
                loop {
                    let started = std::time::Instant::now();
                    let ids: Vec<String> = sqlx::query_scalar(
                        "SELECT id FROM refresh_token_families \
                         WHERE id > $1 AND grace_until <= $2 ORDER BY id LIMIT $3",
                    )
                    .bind(&after)
                    .bind(now)
                    .bind(i64::from(PURGE_BATCH))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                    let Some(last) = ids.last() else {
                        break;
                    };
                    after = last.clone();
                    let mut clear = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE refresh_token_families \
                         SET prev_token_hash = NULL, grace_until = NULL, grace_successor = NULL \
                         WHERE grace_until <= ",
                    );
                    clear.push_bind(now).push(" AND id IN (");
                    let mut list = clear.separated(", ");
                    for id in &ids {
                        list.push_bind(id.clone());
                    }
                    clear.push(")");
                    clear.build().execute(&self.pool).await.map_err(map_err)?;
                    if ids.len() < PURGE_BATCH as usize {
                        break;
                    }
                    pause_after(started).await;
                }
                Ok(purged)
            }
        }
    };
}

impl_refresh_store!(Sqlite);
impl_refresh_store!(Postgres);
