//! Authorization codes in SQL, stored hashed. Redemption is one conditional UPDATE (the
//! linearisation point: of concurrent redemptions of one code exactly one matches
//! `used_at IS NULL`), which records what the first use issued; when it matches nothing, a
//! read of the row tells a replay (answered with that record) from an unknown or expired code.

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{amr_from_column, amr_to_column, corrupt, in_batches, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{
    AuthorizationCode, ClientId, CodeRedemption, CodeUse, FamilyId, Scope, SessionId, UserId,
};
use crate::storage::{AuthorizationCodeStore, StorageError, StorageResult};

macro_rules! code_columns {
    () => {
        "code_hash, client_id, user_id, redirect_uri, code_challenge, nonce, scope, resource, \
         auth_time, session_id, amr, created_at, expires_at"
    };
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    code_hash: String,
    client_id: String,
    user_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    nonce: Option<String>,
    scope: String,
    resource: Option<String>,
    auth_time: i64,
    session_id: String,
    amr: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<CodeRow> for AuthorizationCode {
    type Error = StorageError;

    fn try_from(r: CodeRow) -> Result<Self, Self::Error> {
        Ok(AuthorizationCode {
            client_id: ClientId::parse(&r.client_id).map_err(corrupt)?,
            scope: Scope::parse(&r.scope).map_err(corrupt)?,
            amr: amr_from_column(&r.amr)?,
            code_hash: r.code_hash,
            user_id: UserId::from_trusted(r.user_id),
            redirect_uri: r.redirect_uri,
            code_challenge: r.code_challenge,
            nonce: r.nonce,
            resource: r.resource,
            auth_time: r.auth_time,
            session_id: SessionId::from_trusted(r.session_id),
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

/// A code's use, read when the redeeming UPDATE matched nothing.
#[derive(sqlx::FromRow)]
struct UseRow {
    client_id: String,
    used_at: Option<i64>,
    family_id: Option<String>,
    access_jti: Option<String>,
    access_expires_at: Option<i64>,
}

impl UseRow {
    fn into_use(self) -> StorageResult<CodeUse> {
        if self.used_at.is_none() {
            // Unused, yet the UPDATE did not match: expired.
            return Ok(CodeUse::Unknown);
        }
        let (Some(access_jti), Some(access_expires_at)) = (self.access_jti, self.access_expires_at)
        else {
            return Err(corrupt("a used authorization code without its redemption"));
        };
        Ok(CodeUse::Replayed {
            client_id: ClientId::parse(&self.client_id).map_err(corrupt)?,
            first: CodeRedemption {
                family_id: self.family_id.map(FamilyId::from_trusted),
                access_jti,
                access_expires_at,
            },
        })
    }
}

macro_rules! impl_authorization_code_store {
    ($db:ty) => {
        #[async_trait]
        impl AuthorizationCodeStore for SqlStore<$db> {
            async fn issue(&self, c: &AuthorizationCode) -> StorageResult<()> {
                sqlx::query(concat!(
                    "INSERT INTO authorization_codes (",
                    code_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                ))
                .bind(&c.code_hash)
                .bind(c.client_id.as_str())
                .bind(c.user_id.as_str())
                .bind(&c.redirect_uri)
                .bind(c.code_challenge.as_deref())
                .bind(c.nonce.as_deref())
                .bind(c.scope.to_wire())
                .bind(c.resource.as_deref())
                .bind(c.auth_time)
                .bind(c.session_id.as_str())
                .bind(amr_to_column(&c.amr))
                .bind(c.created_at)
                .bind(c.expires_at)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn redeem(
                &self,
                code_hash: &str,
                redemption: &CodeRedemption,
                now: UnixTime,
            ) -> StorageResult<CodeUse> {
                let row: Option<CodeRow> = sqlx::query_as(concat!(
                    "UPDATE authorization_codes SET used_at = $2, family_id = $3, \
                       access_jti = $4, access_expires_at = $5 \
                     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING ",
                    code_columns!()
                ))
                .bind(code_hash)
                .bind(now)
                .bind(redemption.family_id.as_ref().map(FamilyId::as_str))
                .bind(&redemption.access_jti)
                .bind(redemption.access_expires_at)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                if let Some(row) = row {
                    return Ok(CodeUse::Redeemed(AuthorizationCode::try_from(row)?));
                }
                let used: Option<UseRow> = sqlx::query_as(
                    "SELECT client_id, used_at, family_id, access_jti, access_expires_at \
                     FROM authorization_codes WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                match used {
                    Some(u) => u.into_use(),
                    None => Ok(CodeUse::Unknown),
                }
            }

            async fn purge_expired(&self, before: UnixTime) -> StorageResult<u64> {
                in_batches(|limit| async move {
                    sqlx::query(
                        "DELETE FROM authorization_codes WHERE code_hash IN \
                         (SELECT code_hash FROM authorization_codes WHERE expires_at < $1 LIMIT $2)",
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

impl_authorization_code_store!(Sqlite);
impl_authorization_code_store!(Postgres);
