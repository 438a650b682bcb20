use std::collections::BTreeSet;

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::user_listing::{self, Bind};
use super::{corrupt, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{Email, RoleId, User, UserClaims, UserFilter, UserId};
use crate::storage::{NewUserRecord, StorageError, StorageResult, UserPatch, UserStore};

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: Option<String>,
    username: Option<String>,
    display_name: Option<String>,
    is_active: bool,
    email_verified: bool,
    password_hash: Option<String>,
    attributes: String,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
    must_change_password: bool,
    password_changed_at: Option<i64>,
}

impl TryFrom<UserRow> for User {
    type Error = StorageError;

    fn try_from(r: UserRow) -> Result<Self, Self::Error> {
        let attributes = match serde_json::from_str(&r.attributes) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err(corrupt(format!("attributes of user {}", r.id))),
        };
        Ok(User {
            email: r
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(corrupt)?,
            id: UserId::from_trusted(r.id),
            username: r.username,
            display_name: r.display_name,
            is_active: r.is_active,
            email_verified: r.email_verified,
            password_hash: r.password_hash,
            attributes,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_login_at: r.last_login_at,
            must_change_password: r.must_change_password,
            password_changed_at: r.password_changed_at,
        })
    }
}

/// A user with one of its (role, permission) pairs; a user without roles has one row.
#[derive(sqlx::FromRow)]
struct UserClaimsRow {
    #[sqlx(flatten)]
    user: UserRow,
    role_name: Option<String>,
    permission: Option<String>,
}

pub(super) fn attributes_json(map: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::Value::Object(map.clone()).to_string()
}

/// Inserts a new user and its roles in the open transaction `$tx` (an expression statement
/// with `?`). Also used where a user is created together with other rows (a federated
/// sign-up creates the user and its link in one transaction).
macro_rules! insert_user {
    ($tx:ident, $new:expr) => {
        let new: &$crate::storage::NewUserRecord = $new;
        let u = &new.user;
        sqlx::query(concat!(
            "INSERT INTO users (",
            $crate::storage::sql::users::user_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(u.id.as_str())
        .bind(u.email.as_ref().map($crate::domain::Email::as_str))
        .bind(u.username.as_deref())
        .bind(u.display_name.as_deref())
        .bind(u.is_active)
        .bind(u.email_verified)
        .bind(u.password_hash.as_deref())
        .bind($crate::storage::sql::users::attributes_json(&u.attributes))
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(u.last_login_at)
        .bind(u.must_change_password)
        .bind(u.password_changed_at)
        .execute(&mut *$tx)
        .await
        .map_err($crate::storage::sql::map_err)?;
        for role_id in &new.role_ids {
            sqlx::query(
                "INSERT INTO user_roles (user_id, role_id, user_created_at) VALUES ($1, $2, $3)",
            )
            .bind(u.id.as_str())
            .bind(role_id.as_str())
            .bind(u.created_at)
            .execute(&mut *$tx)
            .await
            .map_err($crate::storage::sql::map_err)?;
        }
    };
}
pub(super) use super::user_listing::user_columns;
pub(super) use insert_user;

macro_rules! impl_user_store {
    ($db:ty) => {
        #[async_trait]
        impl UserStore for SqlStore<$db> {
            async fn create(&self, new: &NewUserRecord) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                insert_user!(tx, new);
                tx.commit().await.map_err(map_err)
            }

            async fn find_by_id(&self, id: &UserId) -> StorageResult<Option<User>> {
                let row: Option<UserRow> =
                    sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_err)?;
                row.map(User::try_from).transpose()
            }

            async fn find_by_email(&self, email: &Email) -> StorageResult<Option<User>> {
                let row: Option<UserRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE email = $1"
                ))
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(User::try_from).transpose()
            }

            async fn list(&self, f: &UserFilter) -> StorageResult<Vec<User>> {
                let q = user_listing::users_page(f);
                let mut query = sqlx::query_as::<_, UserRow>(&q.sql);
                for b in q.binds {
                    query = match b {
                        Bind::Bool(v) => query.bind(v),
                        Bind::Int(v) => query.bind(v),
                        Bind::Text(v) => query.bind(v),
                    };
                }
                let rows = query.fetch_all(&self.pool).await.map_err(map_err)?;
                rows.into_iter().map(User::try_from).collect()
            }

            async fn role_names_of(&self, ids: &[UserId]) -> StorageResult<Vec<(UserId, String)>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let params: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT ur.user_id, r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                     WHERE ur.user_id IN ({}) ORDER BY ur.user_id, r.name",
                    params.join(", ")
                );
                let mut query = sqlx::query_as::<_, (String, String)>(&sql);
                for id in ids {
                    query = query.bind(id.as_str());
                }
                let rows = query.fetch_all(&self.pool).await.map_err(map_err)?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name)| (UserId::from_trusted(id), name))
                    .collect())
            }

            async fn update(&self, id: &UserId, p: &UserPatch, now: UnixTime) -> StorageResult<bool> {
                let r = sqlx::query(
                    "UPDATE users SET \
                       is_active = COALESCE($2, is_active), \
                       email_verified = COALESCE($3, email_verified), \
                       display_name = CASE WHEN $4 THEN $5 ELSE display_name END, \
                       username = CASE WHEN $6 THEN $7 ELSE username END, \
                       attributes = COALESCE($8, attributes), \
                       updated_at = $9, \
                       must_change_password = COALESCE($10, must_change_password), \
                       email = CASE WHEN $11 THEN $12 ELSE email END \
                     WHERE id = $1",
                )
                .bind(id.as_str())
                .bind(p.is_active)
                .bind(p.email_verified)
                .bind(p.display_name.is_some())
                .bind(p.display_name.clone().flatten())
                .bind(p.username.is_some())
                .bind(p.username.clone().flatten())
                .bind(p.attributes.as_ref().map(attributes_json))
                .bind(now)
                .bind(p.must_change_password)
                .bind(p.email.is_some())
                .bind(p.email.clone().flatten().map(Email::into_string))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn set_password_hash(
                &self,
                id: &UserId,
                hash: Option<&str>,
                now: UnixTime,
            ) -> StorageResult<bool> {
                // Pending password resets die with the password they were meant to replace.
                let mut tx = self.begin_write().await?;
                let r = sqlx::query(
                    "UPDATE users SET password_hash = $2, updated_at = $3, password_changed_at = $3 \
                     WHERE id = $1",
                )
                .bind(id.as_str())
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                sqlx::query(
                    "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'password_reset' \
                     AND used_at IS NULL",
                )
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn record_login(
                &self,
                id: &UserId,
                verified: Option<&str>,
                rehashed: Option<&str>,
                now: UnixTime,
            ) -> StorageResult<bool> {
                let r = sqlx::query(
                    "UPDATE users SET last_login_at = $2, password_hash = COALESCE($3, password_hash) \
                     WHERE id = $1 AND ($4 IS NULL OR password_hash = $4)",
                )
                .bind(id.as_str())
                .bind(now)
                .bind(rehashed)
                .bind(verified)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete(&self, id: &UserId) -> StorageResult<bool> {
                let r = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn grant_role(&self, id: &UserId, role_id: &RoleId) -> StorageResult<bool> {
                let r = sqlx::query(
                    "INSERT INTO user_roles (user_id, role_id, user_created_at) \
                     SELECT id, $2, created_at FROM users WHERE id = $1 \
                     ON CONFLICT (user_id, role_id) DO NOTHING",
                )
                .bind(id.as_str())
                .bind(role_id.as_str())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn revoke_role(&self, id: &UserId, role_id: &RoleId) -> StorageResult<bool> {
                let r = sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND role_id = $2")
                    .bind(id.as_str())
                    .bind(role_id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn role_names(&self, id: &UserId) -> StorageResult<Vec<String>> {
                sqlx::query_scalar(
                    "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                     WHERE ur.user_id = $1 ORDER BY r.name",
                )
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)
            }

            async fn claims(&self, id: &UserId) -> StorageResult<Option<UserClaims>> {
                // The same read as `find_with_claims` (the user's row costs nothing more).
                Ok(self.find_with_claims(id).await?.map(|(_, claims)| claims))
            }

            async fn find_with_claims(
                &self,
                id: &UserId,
            ) -> StorageResult<Option<(User, UserClaims)>> {
                // The roles and permissions joined in a derived table, so that the user's
                // columns keep their plain names; a user without roles has one row. The
                // derived table is limited to the user itself: SQLite materializes it before
                // the join, which without the filter reads every user's roles (9 ms per
                // call at 20,000 users with a role, BENCHMARKS.md "MFA grant").
                let rows: Vec<UserClaimsRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    user_columns!(),
                    ", c.role_name, c.permission FROM users \
                     LEFT JOIN (SELECT ur.user_id, r.name AS role_name, rp.permission \
                       FROM user_roles ur \
                       LEFT JOIN roles r ON r.id = ur.role_id \
                       LEFT JOIN role_permissions rp ON rp.role_id = r.id \
                       WHERE ur.user_id = $1) c \
                       ON c.user_id = users.id \
                     WHERE users.id = $1"
                ))
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                fold_user_claims(rows)
            }
        }
    };
}

fn fold_user_claims(rows: Vec<UserClaimsRow>) -> StorageResult<Option<(User, UserClaims)>> {
    let mut roles = BTreeSet::new();
    let mut permissions = BTreeSet::new();
    let mut user = None;
    for row in rows {
        roles.extend(row.role_name);
        permissions.extend(row.permission);
        if user.is_none() {
            user = Some(User::try_from(row.user)?);
        }
    }
    Ok(user.map(|user| {
        let claims = UserClaims {
            is_active: user.is_active,
            roles: roles.into_iter().collect(),
            permissions: permissions.into_iter().collect(),
        };
        (user, claims)
    }))
}

impl_user_store!(Sqlite);
impl_user_store!(Postgres);
