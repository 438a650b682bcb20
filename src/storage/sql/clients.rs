use std::collections::BTreeSet;

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};

use super::{corrupt, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::domain::{
    Audience, Client, ClientId, ClientKind, ClientOidcSettings, ClientTokenSettings, GrantType,
    Scope, SigningAlg,
};
use crate::storage::{ClientStore, StorageResult};

macro_rules! client_columns {
    () => {
        "id, name, kind, secret_hash, is_enabled, grant_types, scopes, redirect_uris, audiences, \
         default_audience, access_token_ttl, refresh_idle_ttl, refresh_absolute_ttl, created_at, updated_at, \
         post_logout_redirect_uris, allowed_origins, first_party, backchannel_logout_uri, id_token_alg, \
         refresh_grace_secs, refresh_grace_uses, require_mfa"
    };
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: String,
    name: String,
    kind: String,
    secret_hash: Option<String>,
    is_enabled: bool,
    grant_types: String,
    scopes: String,
    redirect_uris: String,
    audiences: String,
    default_audience: Option<String>,
    access_token_ttl: Option<i64>,
    refresh_idle_ttl: Option<i64>,
    refresh_absolute_ttl: Option<i64>,
    created_at: i64,
    updated_at: i64,
    post_logout_redirect_uris: String,
    allowed_origins: String,
    first_party: bool,
    require_mfa: bool,
    backchannel_logout_uri: Option<String>,
    id_token_alg: String,
    refresh_grace_secs: Option<i64>,
    refresh_grace_uses: Option<i64>,
}

fn json_list(raw: &str, what: &str) -> StorageResult<Vec<String>> {
    serde_json::from_str(raw).map_err(|_| corrupt(what))
}

impl TryFrom<ClientRow> for Client {
    type Error = crate::storage::StorageError;

    fn try_from(r: ClientRow) -> Result<Self, Self::Error> {
        let grant_types = json_list(&r.grant_types, "client grant_types")?
            .iter()
            .map(|g| GrantType::parse(g).map_err(corrupt))
            .collect::<StorageResult<BTreeSet<_>>>()?;
        let audiences = json_list(&r.audiences, "client audiences")?
            .iter()
            .map(|a| Audience::parse(a).map_err(corrupt))
            .collect::<StorageResult<Vec<_>>>()?;
        Ok(Client {
            id: ClientId::parse(&r.id).map_err(corrupt)?,
            name: r.name,
            kind: ClientKind::parse(&r.kind).map_err(corrupt)?,
            secret_hash: r.secret_hash,
            enabled: r.is_enabled,
            grant_types,
            scopes: Scope::parse(&r.scopes).map_err(corrupt)?,
            redirect_uris: json_list(&r.redirect_uris, "client redirect_uris")?,
            audiences,
            default_audience: r
                .default_audience
                .as_deref()
                .map(Audience::parse)
                .transpose()
                .map_err(corrupt)?,
            token_settings: ClientTokenSettings {
                access_token_ttl: r.access_token_ttl,
                refresh_idle_ttl: r.refresh_idle_ttl,
                refresh_absolute_ttl: r.refresh_absolute_ttl,
                refresh_grace_secs: r.refresh_grace_secs,
                refresh_grace_uses: r.refresh_grace_uses,
            },
            oidc: ClientOidcSettings {
                post_logout_redirect_uris: json_list(
                    &r.post_logout_redirect_uris,
                    "client post_logout_redirect_uris",
                )?,
                allowed_origins: json_list(&r.allowed_origins, "client allowed_origins")?,
                first_party: r.first_party,
                require_mfa: r.require_mfa,
                backchannel_logout_uri: r.backchannel_logout_uri,
                id_token_alg: SigningAlg::parse(&r.id_token_alg).map_err(corrupt)?,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

macro_rules! impl_client_store {
    ($db:ty) => {
        #[async_trait]
        impl ClientStore for SqlStore<$db> {
            async fn create(&self, c: &Client) -> StorageResult<()> {
                let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                sqlx::query(concat!(
                    "INSERT INTO clients (",
                    client_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
                ))
                .bind(c.id.as_str())
                .bind(&c.name)
                .bind(c.kind.as_str())
                .bind(c.secret_hash.as_deref())
                .bind(c.enabled)
                .bind(to_json(&grants))
                .bind(c.scopes.to_wire())
                .bind(to_json(&c.redirect_uris))
                .bind(to_json(&c.audiences))
                .bind(c.default_audience.as_ref().map(|a| a.as_str()))
                .bind(c.token_settings.access_token_ttl)
                .bind(c.token_settings.refresh_idle_ttl)
                .bind(c.token_settings.refresh_absolute_ttl)
                .bind(c.created_at)
                .bind(c.updated_at)
                .bind(to_json(&c.oidc.post_logout_redirect_uris))
                .bind(to_json(&c.oidc.allowed_origins))
                .bind(c.oidc.first_party)
                .bind(c.oidc.backchannel_logout_uri.as_deref())
                .bind(c.oidc.id_token_alg.as_str())
                .bind(c.token_settings.refresh_grace_secs)
                .bind(c.token_settings.refresh_grace_uses)
                .bind(c.oidc.require_mfa)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn find(&self, id: &ClientId) -> StorageResult<Option<Client>> {
                let row: Option<ClientRow> =
                    sqlx::query_as(concat!("SELECT ", client_columns!(), " FROM clients WHERE id = $1"))
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_err)?;
                row.map(Client::try_from).transpose()
            }

            async fn list(&self) -> StorageResult<Vec<Client>> {
                let rows: Vec<ClientRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    client_columns!(),
                    " FROM clients ORDER BY created_at, id"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.into_iter().map(Client::try_from).collect()
            }

            async fn set_enabled(&self, id: &ClientId, enabled: bool, now: UnixTime) -> StorageResult<bool> {
                let r = sqlx::query("UPDATE clients SET is_enabled = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(enabled)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn set_secret_hash(&self, id: &ClientId, hash: &str, now: UnixTime) -> StorageResult<bool> {
                let r = sqlx::query(
                    "UPDATE clients SET secret_hash = $2, updated_at = $3 WHERE id = $1 AND kind = 'confidential'",
                )
                .bind(id.as_str())
                .bind(hash)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn update(&self, c: &Client) -> StorageResult<bool> {
                let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                let r = sqlx::query(
                    "UPDATE clients SET name = $2, grant_types = $3, scopes = $4, redirect_uris = $5, \
                     audiences = $6, default_audience = $7, access_token_ttl = $8, refresh_idle_ttl = $9, \
                     refresh_absolute_ttl = $10, post_logout_redirect_uris = $11, allowed_origins = $12, \
                     first_party = $13, backchannel_logout_uri = $14, id_token_alg = $15, updated_at = $16, \
                     refresh_grace_secs = $17, refresh_grace_uses = $18, require_mfa = $19 \
                     WHERE id = $1",
                )
                .bind(c.id.as_str())
                .bind(&c.name)
                .bind(to_json(&grants))
                .bind(c.scopes.to_wire())
                .bind(to_json(&c.redirect_uris))
                .bind(to_json(&c.audiences))
                .bind(c.default_audience.as_ref().map(|a| a.as_str()))
                .bind(c.token_settings.access_token_ttl)
                .bind(c.token_settings.refresh_idle_ttl)
                .bind(c.token_settings.refresh_absolute_ttl)
                .bind(to_json(&c.oidc.post_logout_redirect_uris))
                .bind(to_json(&c.oidc.allowed_origins))
                .bind(c.oidc.first_party)
                .bind(c.oidc.backchannel_logout_uri.as_deref())
                .bind(c.oidc.id_token_alg.as_str())
                .bind(c.updated_at)
                .bind(c.token_settings.refresh_grace_secs)
                .bind(c.token_settings.refresh_grace_uses)
                .bind(c.oidc.require_mfa)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete(&self, id: &ClientId) -> StorageResult<bool> {
                let r = sqlx::query("DELETE FROM clients WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }
        }
    };
}

impl_client_store!(Sqlite);
impl_client_store!(Postgres);
