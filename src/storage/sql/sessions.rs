//! Latchkey's SSO sessions in SQL, one row each (`sso_sessions`). A session is live while both
//! its idle and absolute expiry lie after the caller's `now`; ending one deletes its row
//! (`DELETE ... RETURNING`, so of two concurrent ends exactly one gets the row). `clients` is a
//! JSON array of client ids, `amr` the space-joined methods.

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{amr_from_column, amr_to_column, corrupt, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{Amr, ClientId, SessionId, SsoSession, UserId};
use crate::storage::{FoundSession, SessionStore, StorageError, StorageResult};

macro_rules! session_columns {
    () => {
        "id, secret_hash, user_id, auth_time, amr, remember, created_at, last_seen_at, \
         idle_expires_at, absolute_expires_at, user_agent, ip, clients"
    };
}

/// The condition of a live session at `now`, bound as `$n`.
macro_rules! live {
    ($now:literal) => {
        concat!(
            "idle_expires_at > ",
            $now,
            " AND absolute_expires_at > ",
            $now
        )
    };
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: String,
    secret_hash: String,
    user_id: String,
    auth_time: i64,
    amr: String,
    remember: bool,
    created_at: i64,
    last_seen_at: i64,
    idle_expires_at: i64,
    absolute_expires_at: i64,
    user_agent: Option<String>,
    ip: Option<String>,
    clients: String,
}

/// A session with its user's active flag (`NULL` when the user is gone).
#[derive(sqlx::FromRow)]
struct FoundRow {
    #[sqlx(flatten)]
    session: SessionRow,
    user_active: Option<bool>,
}

fn clients_to_column(clients: &[ClientId]) -> String {
    serde_json::Value::Array(
        clients
            .iter()
            .map(|c| serde_json::Value::String(c.as_str().to_owned()))
            .collect(),
    )
    .to_string()
}

fn clients_from_column(raw: &str) -> StorageResult<Vec<ClientId>> {
    let ids: Vec<String> =
        serde_json::from_str(raw).map_err(|_| corrupt("clients of an SSO session"))?;
    ids.iter()
        .map(|c| ClientId::parse(c).map_err(corrupt))
        .collect()
}

impl TryFrom<SessionRow> for SsoSession {
    type Error = StorageError;

    fn try_from(r: SessionRow) -> Result<Self, Self::Error> {
        Ok(SsoSession {
            amr: amr_from_column(&r.amr)?,
            clients: clients_from_column(&r.clients)?,
            id: SessionId::from_trusted(r.id),
            secret_hash: r.secret_hash,
            user_id: UserId::from_trusted(r.user_id),
            auth_time: r.auth_time,
            remember: r.remember,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            idle_expires_at: r.idle_expires_at,
            absolute_expires_at: r.absolute_expires_at,
            user_agent: r.user_agent,
            ip: r.ip,
        })
    }
}

fn sessions(rows: Vec<SessionRow>) -> StorageResult<Vec<SsoSession>> {
    rows.into_iter().map(SsoSession::try_from).collect()
}

macro_rules! impl_session_store {
    // `$lock`: how the backend locks a row read before it is updated (SQLite's write
    // transaction already holds the database's one write lock); `$skip`: how `take_expired`
    // leaves rows another instance is taking to that instance.
    ($db:ty, $lock:literal, $skip:literal) => {
        #[async_trait]
        impl SessionStore for SqlStore<$db> {
            fn name(&self) -> &'static str {
                "sql"
            }

            async fn create(&self, s: &SsoSession) -> StorageResult<()> {
                sqlx::query(concat!(
                    "INSERT INTO sso_sessions (",
                    session_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                ))
                .bind(s.id.as_str())
                .bind(&s.secret_hash)
                .bind(s.user_id.as_str())
                .bind(s.auth_time)
                .bind(amr_to_column(&s.amr))
                .bind(s.remember)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.idle_expires_at.min(s.absolute_expires_at))
                .bind(s.absolute_expires_at)
                .bind(s.user_agent.as_deref())
                .bind(s.ip.as_deref())
                .bind(clients_to_column(&s.clients))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn find_live(
                &self,
                secret_hash: &str,
                now: UnixTime,
            ) -> StorageResult<Option<SsoSession>> {
                // One lookup statement for both: the user's flag costs a key lookup.
                Ok(self
                    .find_live_with_user(secret_hash, now)
                    .await?
                    .map(|found| found.session))
            }

            async fn find_live_with_user(
                &self,
                secret_hash: &str,
                now: UnixTime,
            ) -> StorageResult<Option<FoundSession>> {
                let row: Option<FoundRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    session_columns!(),
                    ", (SELECT users.is_active FROM users WHERE users.id = sso_sessions.user_id) \
                       AS user_active \
                     FROM sso_sessions WHERE secret_hash = $1 AND ",
                    live!("$2")
                ))
                .bind(secret_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(|r| {
                    Ok(FoundSession {
                        session: SsoSession::try_from(r.session)?,
                        user_active: Some(r.user_active.unwrap_or(false)),
                    })
                })
                .transpose()
            }

            async fn get_live(
                &self,
                id: &SessionId,
                now: UnixTime,
            ) -> StorageResult<Option<SsoSession>> {
                let row: Option<SessionRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sso_sessions WHERE id = $1 AND ",
                    live!("$2")
                ))
                .bind(id.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(SsoSession::try_from).transpose()
            }

            async fn touch(
                &self,
                id: &SessionId,
                idle_expires_at: UnixTime,
                now: UnixTime,
            ) -> StorageResult<bool> {
                let r = sqlx::query(concat!(
                    "UPDATE sso_sessions SET last_seen_at = $3, idle_expires_at = \
                       CASE WHEN $2 < absolute_expires_at THEN $2 ELSE absolute_expires_at END \
                     WHERE id = $1 AND ",
                    live!("$3")
                ))
                .bind(id.as_str())
                .bind(idle_expires_at)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn step_up(
                &self,
                id: &SessionId,
                amr: &[Amr],
                auth_time: UnixTime,
                now: UnixTime,
            ) -> StorageResult<bool> {
                let r = sqlx::query(concat!(
                    "UPDATE sso_sessions SET amr = $2, auth_time = $3 WHERE id = $1 AND ",
                    live!("$4")
                ))
                .bind(id.as_str())
                .bind(amr_to_column(amr))
                .bind(auth_time)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn add_client(
                &self,
                id: &SessionId,
                client_id: &ClientId,
                now: UnixTime,
            ) -> StorageResult<bool> {
                let mut tx = self.begin_write().await?;
                let clients: Option<(String,)> = sqlx::query_as(concat!(
                    "SELECT clients FROM sso_sessions WHERE id = $1 AND ",
                    live!("$2"),
                    $lock
                ))
                .bind(id.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                let Some((raw,)) = clients else {
                    return Ok(false);
                };
                let mut clients = clients_from_column(&raw)?;
                if !clients.contains(client_id) {
                    clients.push(client_id.clone());
                    sqlx::query("UPDATE sso_sessions SET clients = $2 WHERE id = $1")
                        .bind(id.as_str())
                        .bind(clients_to_column(&clients))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn list_for_user(
                &self,
                user_id: &UserId,
                now: UnixTime,
            ) -> StorageResult<Vec<SsoSession>> {
                let rows: Vec<SessionRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sso_sessions WHERE user_id = $1 AND ",
                    live!("$2"),
                    " ORDER BY created_at DESC, id DESC"
                ))
                .bind(user_id.as_str())
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                sessions(rows)
            }

            async fn end(
                &self,
                id: &SessionId,
                now: UnixTime,
            ) -> StorageResult<Option<SsoSession>> {
                let row: Option<SessionRow> = sqlx::query_as(concat!(
                    "DELETE FROM sso_sessions WHERE id = $1 AND ",
                    live!("$2"),
                    " RETURNING ",
                    session_columns!()
                ))
                .bind(id.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(SsoSession::try_from).transpose()
            }

            async fn end_for_user(
                &self,
                user_id: &UserId,
                except: Option<&SessionId>,
                now: UnixTime,
            ) -> StorageResult<Vec<SsoSession>> {
                let rows: Vec<SessionRow> = sqlx::query_as(concat!(
                    "DELETE FROM sso_sessions WHERE user_id = $1 AND ",
                    live!("$2"),
                    " AND ($3 IS NULL OR id <> $3) RETURNING ",
                    session_columns!()
                ))
                .bind(user_id.as_str())
                .bind(now)
                .bind(except.map(SessionId::as_str))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                sessions(rows)
            }

            async fn take_expired(
                &self,
                now: UnixTime,
                limit: u32,
            ) -> StorageResult<Vec<SsoSession>> {
                let rows: Vec<SessionRow> = sqlx::query_as(concat!(
                    "DELETE FROM sso_sessions WHERE id IN (\
                       SELECT id FROM sso_sessions \
                       WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1 \
                       ORDER BY idle_expires_at, id LIMIT $2",
                    $skip,
                    ") RETURNING ",
                    session_columns!()
                ))
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                sessions(rows)
            }
        }
    };
}

impl_session_store!(Sqlite, "", "");
impl_session_store!(Postgres, " FOR UPDATE", " FOR UPDATE SKIP LOCKED");
