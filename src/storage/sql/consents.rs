//! Consents in SQL, one row per (user, client) with the space-joined scopes approved so far.
//! A grant is one transaction: the row is inserted if there is none, else locked and its scope
//! replaced by the union (space-joined sets cannot be merged by an `ON CONFLICT DO UPDATE`).

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{corrupt, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{ClientId, Consent, Scope, UserId};
use crate::storage::{ConsentStore, StorageError, StorageResult};

#[derive(sqlx::FromRow)]
struct ConsentRow {
    user_id: String,
    client_id: String,
    scope: String,
    granted_at: i64,
}

impl TryFrom<ConsentRow> for Consent {
    type Error = StorageError;

    fn try_from(r: ConsentRow) -> Result<Self, Self::Error> {
        Ok(Consent {
            user_id: UserId::from_trusted(r.user_id),
            client_id: ClientId::parse(&r.client_id).map_err(corrupt)?,
            scope: Scope::parse(&r.scope).map_err(corrupt)?,
            granted_at: r.granted_at,
        })
    }
}

macro_rules! impl_consent_store {
    // `$lock`: how the backend locks the row read before it is updated (SQLite's write
    // transaction already holds the database's one write lock).
    ($db:ty, $lock:literal) => {
        #[async_trait]
        impl ConsentStore for SqlStore<$db> {
            async fn grant(
                &self,
                user_id: &UserId,
                client_id: &ClientId,
                scope: &Scope,
                now: UnixTime,
            ) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                // A concurrent first grant: this waits for it, then finds its row below.
                let inserted = sqlx::query(
                    "INSERT INTO consents (user_id, client_id, scope, granted_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_id) DO NOTHING",
                )
                .bind(user_id.as_str())
                .bind(client_id.as_str())
                .bind(scope.to_wire())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                if inserted.rows_affected() == 0 {
                    let stored: Option<(String,)> = sqlx::query_as(concat!(
                        "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2",
                        $lock
                    ))
                    .bind(user_id.as_str())
                    .bind(client_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    // None: revoked in between; the grant then starts afresh.
                    let merged = match stored {
                        Some((raw,)) => Scope::parse(&raw).map_err(corrupt)?.union(scope),
                        None => scope.clone(),
                    };
                    sqlx::query(
                        "INSERT INTO consents (user_id, client_id, scope, granted_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (user_id, client_id) \
                         DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                    )
                    .bind(user_id.as_str())
                    .bind(client_id.as_str())
                    .bind(merged.to_wire())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn find(
                &self,
                user_id: &UserId,
                client_id: &ClientId,
            ) -> StorageResult<Option<Consent>> {
                let row: Option<ConsentRow> = sqlx::query_as(
                    "SELECT user_id, client_id, scope, granted_at FROM consents \
                     WHERE user_id = $1 AND client_id = $2",
                )
                .bind(user_id.as_str())
                .bind(client_id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(Consent::try_from).transpose()
            }

            async fn list_for_user(&self, user_id: &UserId) -> StorageResult<Vec<Consent>> {
                let rows: Vec<ConsentRow> = sqlx::query_as(
                    "SELECT user_id, client_id, scope, granted_at FROM consents \
                     WHERE user_id = $1 ORDER BY granted_at, client_id",
                )
                .bind(user_id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.into_iter().map(Consent::try_from).collect()
            }

            async fn revoke(&self, user_id: &UserId, client_id: &ClientId) -> StorageResult<bool> {
                let r = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
                    .bind(user_id.as_str())
                    .bind(client_id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }
        }
    };
}

impl_consent_store!(Sqlite, "");
impl_consent_store!(Postgres, " FOR UPDATE");
