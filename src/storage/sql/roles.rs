use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{corrupt, map_err, SqlStore};
use crate::domain::{Permission, Role, RoleId, RoleName};
use crate::storage::{RoleStore, StorageResult};

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: String,
    name: String,
    description: Option<String>,
    require_mfa: bool,
    created_at: i64,
}

fn to_role(row: RoleRow, permissions: Vec<String>) -> StorageResult<Role> {
    Ok(Role {
        name: RoleName::parse(&row.name).map_err(corrupt)?,
        id: RoleId::from_trusted(row.id),
        description: row.description,
        permissions: permissions
            .iter()
            .map(|p| Permission::parse(p).map_err(corrupt))
            .collect::<StorageResult<_>>()?,
        require_mfa: row.require_mfa,
        created_at: row.created_at,
    })
}

macro_rules! impl_role_store {
    ($db:ty) => {
        #[async_trait]
        impl RoleStore for SqlStore<$db> {
            async fn create(&self, role: &Role) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO roles (id, name, description, require_mfa, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(role.id.as_str())
                    .bind(role.name.as_str())
                    .bind(role.description.as_deref())
                    .bind(role.require_mfa)
                    .bind(role.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                for p in &role.permissions {
                    sqlx::query(
                        "INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2) \
                         ON CONFLICT (role_id, permission) DO NOTHING",
                    )
                    .bind(role.id.as_str())
                    .bind(p.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn find_by_name(&self, name: &RoleName) -> StorageResult<Option<Role>> {
                let row: Option<RoleRow> =
                    sqlx::query_as("SELECT id, name, description, require_mfa, created_at FROM roles WHERE name = $1")
                        .bind(name.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let permissions: Vec<String> = sqlx::query_scalar(
                    "SELECT permission FROM role_permissions WHERE role_id = $1 ORDER BY permission",
                )
                .bind(&row.id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                to_role(row, permissions).map(Some)
            }

            async fn list(&self) -> StorageResult<Vec<Role>> {
                let rows: Vec<RoleRow> =
                    sqlx::query_as("SELECT id, name, description, require_mfa, created_at FROM roles ORDER BY name")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?;
                let pairs: Vec<(String, String)> = sqlx::query_as(
                    "SELECT role_id, permission FROM role_permissions ORDER BY permission",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                let mut by_role: HashMap<String, Vec<String>> = HashMap::new();
                for (role_id, permission) in pairs {
                    by_role.entry(role_id).or_default().push(permission);
                }
                rows.into_iter()
                    .map(|r| {
                        let perms = by_role.remove(&r.id).unwrap_or_default();
                        to_role(r, perms)
                    })
                    .collect()
            }

            async fn add_permissions(&self, role_id: &RoleId, permissions: &[Permission]) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                for p in permissions {
                    sqlx::query(
                        "INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2) \
                         ON CONFLICT (role_id, permission) DO NOTHING",
                    )
                    .bind(role_id.as_str())
                    .bind(p.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn remove_permissions(&self, role_id: &RoleId, permissions: &[Permission]) -> StorageResult<()> {
                let mut tx = self.begin_write().await?;
                for p in permissions {
                    sqlx::query("DELETE FROM role_permissions WHERE role_id = $1 AND permission = $2")
                        .bind(role_id.as_str())
                        .bind(p.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn set_require_mfa(&self, role_id: &RoleId, require_mfa: bool) -> StorageResult<bool> {
                let r = sqlx::query("UPDATE roles SET require_mfa = $2 WHERE id = $1")
                    .bind(role_id.as_str())
                    .bind(require_mfa)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete(&self, role_id: &RoleId) -> StorageResult<bool> {
                let r = sqlx::query("DELETE FROM roles WHERE id = $1")
                    .bind(role_id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }
        }
    };
}

impl_role_store!(Sqlite);
impl_role_store!(Postgres);
