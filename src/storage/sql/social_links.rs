//! Federated sign-in in SQL: the links between local users and upstream identities
//! (`social_links`), and single-use values (`federation_one_time`).

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{corrupt, in_batches, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{LinkId, ProviderId, SocialLink, UserId};
use crate::storage::{
    NewUserRecord, OneTimeStore, SocialLinkStore, StorageError, StorageResult, Unlink,
};

macro_rules! link_columns {
    () => {
        "id, provider, subject, user_id, email, email_verified, display_name, avatar_url, \
         profile, created_at, last_used_at"
    };
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: String,
    provider: String,
    subject: String,
    user_id: String,
    email: Option<String>,
    email_verified: bool,
    display_name: Option<String>,
    avatar_url: Option<String>,
    profile: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<LinkRow> for SocialLink {
    type Error = StorageError;

    fn try_from(r: LinkRow) -> Result<Self, Self::Error> {
        Ok(SocialLink {
            profile: serde_json::from_str(&r.profile)
                .map_err(|_| corrupt(format!("profile of link {}", r.id)))?,
            id: LinkId::from_trusted(r.id),
            provider: ProviderId::from_trusted(r.provider),
            subject: r.subject,
            user_id: UserId::from_trusted(r.user_id),
            email: r.email,
            email_verified: r.email_verified,
            display_name: r.display_name,
            avatar_url: r.avatar_url,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        })
    }
}

/// Inserts a link in the open transaction `$tx`.
macro_rules! insert_link {
    ($tx:ident, $link:expr, $tokens:expr) => {
        let l: &SocialLink = $link;
        sqlx::query(concat!(
            "INSERT INTO social_links (",
            link_columns!(),
            ", tokens_enc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(l.id.as_str())
        .bind(l.provider.as_str())
        .bind(l.subject.as_str())
        .bind(l.user_id.as_str())
        .bind(l.email.as_deref())
        .bind(l.email_verified)
        .bind(l.display_name.as_deref())
        .bind(l.avatar_url.as_deref())
        .bind(l.profile.to_string())
        .bind(l.created_at)
        .bind(l.last_used_at)
        .bind($tokens)
        .execute(&mut *$tx)
        .await
        .map_err(map_err)?;
    };
}

macro_rules! impl_social_link_store {
    ($db:ty) => {
        #[async_trait]
        impl SocialLinkStore for SqlStore<$db> {
            async fn find(
                &self,
                provider: &ProviderId,
                subject: &str,
            ) -> StorageResult<Option<SocialLink>> {
                let row: Option<LinkRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    link_columns!(),
                    " FROM social_links WHERE provider = $1 AND subject = $2"
                ))
                .bind(provider.as_str())
                .bind(subject)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(SocialLink::try_from).transpose()
            }

            async fn list_for_user(&self, user_id: &UserId) -> StorageResult<Vec<SocialLink>> {
                let rows: Vec<LinkRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    link_columns!(),
                    " FROM social_links WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .bind(user_id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.into_iter().map(SocialLink::try_from).collect()
            }

            async fn create_user_with_link(
                &self,
                new: &NewUserRecord,
                link: &SocialLink,
                tokens_enc: Option<&[u8]>,
            ) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                super::users::insert_user!(tx, new);
                insert_link!(tx, link, tokens_enc);
                tx.commit().await.map_err(map_err)
            }

            async fn link(&self, link: &SocialLink, tokens_enc: Option<&[u8]>) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                insert_link!(tx, link, tokens_enc);
                tx.commit().await.map_err(map_err)
            }

            async fn record_use(
                &self,
                link: &SocialLink,
                tokens_enc: Option<&[u8]>,
                now: UnixTime,
            ) -> StorageResult<()> {
                sqlx::query(
                    "UPDATE social_links SET email = $2, email_verified = $3, display_name = $4, \
                     avatar_url = $5, profile = $6, tokens_enc = $7, last_used_at = $8 \
                     WHERE id = $1",
                )
                .bind(link.id.as_str())
                .bind(link.email.as_deref())
                .bind(link.email_verified)
                .bind(link.display_name.as_deref())
                .bind(link.avatar_url.as_deref())
                .bind(link.profile.to_string())
                .bind(tokens_enc)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn unlink(&self, user_id: &UserId, link_id: &LinkId) -> StorageResult<Unlink> {
                let mut tx = self.begin_write().await?;
                let deleted = sqlx::query(
                    "DELETE FROM social_links WHERE id = $1 AND user_id = $2 AND ( \
                     EXISTS (SELECT 1 FROM users WHERE id = $2 AND password_hash IS NOT NULL) \
                     OR (SELECT COUNT(*) FROM social_links WHERE user_id = $2) > 1)",
                )
                .bind(link_id.as_str())
                .bind(user_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                let outcome = if deleted.rows_affected() == 1 {
                    Unlink::Removed
                } else {
                    let exists: Option<(String,)> = sqlx::query_as(
                        "SELECT id FROM social_links WHERE id = $1 AND user_id = $2",
                    )
                    .bind(link_id.as_str())
                    .bind(user_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    if exists.is_some() {
                        Unlink::LastWayToSignIn
                    } else {
                        Unlink::NotFound
                    }
                };
                tx.commit().await.map_err(map_err)?;
                Ok(outcome)
            }
        }

        #[async_trait]
        impl OneTimeStore for SqlStore<$db> {
            async fn put(
                &self,
                purpose: &str,
                key_hash: &str,
                expires_at: UnixTime,
            ) -> StorageResult<()> {
                sqlx::query(
                    "INSERT INTO federation_one_time (key_hash, purpose, expires_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(key_hash)
                .bind(purpose)
                .bind(expires_at)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn take(&self, purpose: &str, key_hash: &str, now: UnixTime) -> StorageResult<bool> {
                let done = sqlx::query(
                    "DELETE FROM federation_one_time \
                     WHERE key_hash = $1 AND purpose = $2 AND expires_at > $3",
                )
                .bind(key_hash)
                .bind(purpose)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn first_use(
                &self,
                purpose: &str,
                key_hash: &str,
                expires_at: UnixTime,
                now: UnixTime,
            ) -> StorageResult<bool> {
                // A row left by an expired earlier use is taken over.
                let done = sqlx::query(
                    "INSERT INTO federation_one_time (key_hash, purpose, expires_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (key_hash) DO UPDATE \
                     SET purpose = excluded.purpose, expires_at = excluded.expires_at \
                     WHERE federation_one_time.expires_at <= $4",
                )
                .bind(key_hash)
                .bind(purpose)
                .bind(expires_at)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64> {
                in_batches(|limit| async move {
                    sqlx::query(
                        "DELETE FROM federation_one_time WHERE key_hash IN \
                         (SELECT key_hash FROM federation_one_time WHERE expires_at <= $1 LIMIT $2)",
                    )
                    .bind(now)
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

impl_social_link_store!(Sqlite);
impl_social_link_store!(Postgres);
