use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::user_listing::Bind;
use super::{corrupt, map_err, SqlStore};
use crate::domain::{AuditEvent, AuditFilter, LoggedAuditEvent, UserId};
use crate::storage::{AuditStore, StorageError, StorageResult};

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    event: String,
    user_id: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: String,
}

impl TryFrom<AuditRow> for LoggedAuditEvent {
    type Error = StorageError;

    fn try_from(r: AuditRow) -> Result<Self, Self::Error> {
        let detail = match serde_json::from_str(&r.detail) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err(corrupt(format!("detail of audit event {}", r.id))),
        };
        Ok(LoggedAuditEvent {
            id: r.id,
            event: AuditEvent {
                at: r.at,
                event: r.event,
                user_id: r.user_id,
                client_id: r.client_id,
                ip: r.ip,
                user_agent: r.user_agent,
                detail,
            },
        })
    }
}

macro_rules! impl_audit_store {
    ($db:ty) => {
        #[async_trait]
        impl AuditStore for SqlStore<$db> {
            async fn append(&self, e: &AuditEvent) -> StorageResult<()> {
                sqlx::query(
                    "INSERT INTO audit_events (at, event, user_id, client_id, ip, user_agent, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(e.at)
                .bind(&e.event)
                .bind(e.user_id.as_deref())
                .bind(e.client_id.as_deref())
                .bind(e.ip.as_deref())
                .bind(e.user_agent.as_deref())
                .bind(serde_json::Value::Object(e.detail.clone()).to_string())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn append_all(&self, events: &[AuditEvent]) -> StorageResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                // One multi-row INSERT per chunk, in one transaction (a group commit carries
                // up to a few hundred events).
                let mut tx = self.begin_write().await?;
                for chunk in events.chunks(500) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO audit_events (at, event, user_id, client_id, ip, user_agent, detail) ",
                    );
                    insert.push_values(chunk, |mut row, e| {
                        row.push_bind(e.at)
                            .push_bind(e.event.clone())
                            .push_bind(e.user_id.clone())
                            .push_bind(e.client_id.clone())
                            .push_bind(e.ip.clone())
                            .push_bind(e.user_agent.clone())
                            .push_bind(serde_json::Value::Object(e.detail.clone()).to_string());
                    });
                    insert.build().execute(&mut *tx).await.map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn list(&self, f: &AuditFilter) -> StorageResult<Vec<LoggedAuditEvent>> {
                // Following (`after_id`): the first `limit` after it. Otherwise the newest
                // `limit`. Either way returned oldest first.
                let page = super::user_listing::audit_page(f);
                let mut query = sqlx::query_as::<_, AuditRow>(&page.sql);
                for b in page.binds {
                    query = match b {
                        Bind::Bool(v) => query.bind(v),
                        Bind::Int(v) => query.bind(v),
                        Bind::Text(v) => query.bind(v),
                    };
                }
                let rows = query.fetch_all(&self.pool).await.map_err(map_err)?;
                let mut out = rows
                    .into_iter()
                    .map(LoggedAuditEvent::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                out.sort_by_key(|e| e.id);
                Ok(out)
            }

            async fn scrub_user(&self, user_id: &UserId) -> StorageResult<u64> {
                let r = sqlx::query(
                    "UPDATE audit_events SET ip = NULL, user_agent = NULL WHERE user_id = $1",
                )
                .bind(user_id.as_str())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected())
            }
        }
    };
}

impl_audit_store!(Sqlite);
impl_audit_store!(Postgres);
