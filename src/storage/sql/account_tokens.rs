use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{corrupt, in_batches, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{AccountToken, AccountTokenPurpose, ClientId, CodeOutcome, Email, UserId};
use crate::storage::{AccountTokenStore, StorageError, StorageResult};

/// Used tokens are kept this long (so that a second click says "already used" in logs and
/// the audit trail can be correlated), then purged.
const KEEP_USED_SECS: i64 = 86_400;

macro_rules! token_columns {
    () => {
        "id, purpose, token_hash, code_hash, user_id, email, client_id, data, attempts, \
         created_at, expires_at, used_at"
    };
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    purpose: String,
    token_hash: String,
    code_hash: Option<String>,
    user_id: Option<String>,
    email: String,
    client_id: Option<String>,
    data: String,
    attempts: i64,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl TryFrom<TokenRow> for AccountToken {
    type Error = StorageError;

    fn try_from(r: TokenRow) -> Result<Self, Self::Error> {
        let data = match serde_json::from_str(&r.data) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err(corrupt(format!("data of account token {}", r.id))),
        };
        Ok(AccountToken {
            purpose: AccountTokenPurpose::parse(&r.purpose).map_err(corrupt)?,
            email: Email::parse(&r.email).map_err(corrupt)?,
            client_id: r
                .client_id
                .map(|c| ClientId::parse(&c).map_err(corrupt))
                .transpose()?,
            user_id: r.user_id.map(UserId::from_trusted),
            id: r.id,
            token_hash: r.token_hash,
            code_hash: r.code_hash,
            data,
            attempts: r.attempts,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
        })
    }
}

macro_rules! impl_account_token_store {
    // `$lock`: how the backend locks the row read before it is updated (SQLite's write
    // transaction already holds the database's one write lock).
    ($db:ty, $lock:literal) => {
        #[async_trait]
        impl AccountTokenStore for SqlStore<$db> {
            async fn issue(&self, t: &AccountToken) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                // Concurrent issues for one user take turns, so exactly one token survives.
                if let Some(user) = &t.user_id {
                    sqlx::query(concat!("SELECT id FROM users WHERE id = $1", $lock))
                        .bind(user.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                match &t.user_id {
                    Some(user) => sqlx::query(
                        "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2 \
                         AND used_at IS NULL",
                    )
                    .bind(user.as_str()),
                    None => sqlx::query(
                        "DELETE FROM account_tokens WHERE user_id IS NULL AND email = $1 \
                         AND purpose = $2 AND used_at IS NULL",
                    )
                    .bind(t.email.as_str()),
                }
                .bind(t.purpose.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                sqlx::query(concat!(
                    "INSERT INTO account_tokens (",
                    token_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(&t.id)
                .bind(t.purpose.as_str())
                .bind(&t.token_hash)
                .bind(t.code_hash.as_deref())
                .bind(t.user_id.as_ref().map(UserId::as_str))
                .bind(t.email.as_str())
                .bind(t.client_id.as_ref().map(ClientId::as_str))
                .bind(serde_json::Value::Object(t.data.clone()).to_string())
                .bind(t.attempts)
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.used_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn consume(
                &self,
                purpose: AccountTokenPurpose,
                token_hash: &str,
                now: UnixTime,
            ) -> StorageResult<Option<AccountToken>> {
                let row: Option<TokenRow> = sqlx::query_as(concat!(
                    "UPDATE account_tokens SET used_at = $3 \
                     WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
                     RETURNING ",
                    token_columns!()
                ))
                .bind(token_hash)
                .bind(purpose.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(AccountToken::try_from).transpose()
            }

            async fn find_live(
                &self,
                purpose: AccountTokenPurpose,
                token_hash: &str,
                now: UnixTime,
            ) -> StorageResult<Option<AccountToken>> {
                let row: Option<TokenRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM account_tokens WHERE token_hash = $1 AND purpose = $2 \
                     AND used_at IS NULL AND expires_at > $3"
                ))
                .bind(token_hash)
                .bind(purpose.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(AccountToken::try_from).transpose()
            }

            async fn consume_code(
                &self,
                email: &Email,
                matches: &(dyn for<'a> Fn(&'a str) -> bool + Send + Sync),
                max_attempts: i64,
                now: UnixTime,
            ) -> StorageResult<CodeOutcome> {
                let mut tx = self.begin_write().await?;
                let row: Option<TokenRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM account_tokens WHERE email = $1 AND purpose = 'magic_link' \
                     AND used_at IS NULL AND expires_at > $2 AND code_hash IS NOT NULL \
                     ORDER BY created_at DESC, id LIMIT 1",
                    $lock
                ))
                .bind(email.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                let Some(row) = row else {
                    return Ok(CodeOutcome::NoToken);
                };
                let token = AccountToken::try_from(row)?;
                let outcome = if token.code_hash.as_deref().is_some_and(matches) {
                    sqlx::query("UPDATE account_tokens SET used_at = $2 WHERE id = $1")
                        .bind(&token.id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    CodeOutcome::Consumed(Box::new(AccountToken {
                        used_at: Some(now),
                        ..token
                    }))
                } else {
                    sqlx::query(
                        "UPDATE account_tokens SET attempts = attempts + 1, \
                         used_at = CASE WHEN attempts + 1 >= $2 THEN $3 ELSE used_at END \
                         WHERE id = $1",
                    )
                    .bind(&token.id)
                    .bind(max_attempts)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    CodeOutcome::Wrong
                };
                tx.commit().await.map_err(map_err)?;
                Ok(outcome)
            }

            async fn invalidate(
                &self,
                user_id: &UserId,
                purpose: AccountTokenPurpose,
            ) -> StorageResult<u64> {
                let r = sqlx::query(
                    "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2 \
                     AND used_at IS NULL",
                )
                .bind(user_id.as_str())
                .bind(purpose.as_str())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected())
            }

            async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64> {
                in_batches(|limit| async move {
                    sqlx::query(
                        "DELETE FROM account_tokens WHERE id IN \
                         (SELECT id FROM account_tokens \
                          WHERE expires_at <= $1 OR used_at <= $2 LIMIT $3)",
                    )
                    .bind(now)
                    .bind(now - KEEP_USED_SECS)
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

impl_account_token_store!(Sqlite, "");
impl_account_token_store!(Postgres, " FOR UPDATE");
