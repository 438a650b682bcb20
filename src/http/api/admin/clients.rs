//! `/admin/v1/clients`: list and register OAuth clients, show one and change its settings.
//! Member names follow the client view (and, for the browser sign-in settings, OpenID Connect
//! Dynamic Registration: `post_logout_redirect_uris`, `id_token_signed_response_alg`, ...).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::{authorize, json_body, ok};
use crate::domain::{ClientId, ClientKind, ClientTokenSettings};
use crate::http::api::error::ApiError;
use crate::http::AppState;
use crate::services::{
    detail, events, AdminError, ClientOidcInput, ClientUpdate, ClientView, NewClientInput,
};

/// A member that may be absent but not `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `null` and absent differ: `Some(None)` clears the setting.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /admin/v1/clients`: absent lists are empty, absent optional settings use the
/// defaults (a generated `client_id`, the server's lifetimes, RS256 ID tokens).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    client_id: Option<String>,
    name: String,
    kind: String,
    grant_types: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    default_audience: Option<String>,
    access_token_ttl: Option<i64>,
    refresh_idle_ttl: Option<i64>,
    refresh_absolute_ttl: Option<i64>,
    refresh_grace_secs: Option<i64>,
    refresh_grace_uses: Option<i64>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    first_party: bool,
    #[serde(default)]
    require_mfa: bool,
    backchannel_logout_uri: Option<String>,
    id_token_signed_response_alg: Option<String>,
}

/// `PATCH /admin/v1/clients/{client_id}`: absent members are left alone, a list replaces the
/// whole list, `null` clears an optional setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateClientRequest {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    grant_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    redirect_uris: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    audiences: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    default_audience: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    access_token_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    refresh_idle_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    refresh_absolute_ttl: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    refresh_grace_secs: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    refresh_grace_uses: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    allowed_origins: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    first_party: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    require_mfa: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    backchannel_logout_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    id_token_signed_response_alg: Option<String>,
}

impl From<UpdateClientRequest> for ClientUpdate {
    fn from(r: UpdateClientRequest) -> Self {
        Self {
            name: r.name,
            grant_types: r.grant_types,
            scopes: r.scopes,
            redirect_uris: r.redirect_uris,
            audiences: r.audiences,
            default_audience: r.default_audience,
            access_token_ttl: r.access_token_ttl,
            refresh_idle_ttl: r.refresh_idle_ttl,
            refresh_absolute_ttl: r.refresh_absolute_ttl,
            refresh_grace_secs: r.refresh_grace_secs,
            refresh_grace_uses: r.refresh_grace_uses,
            post_logout_redirect_uris: r.post_logout_redirect_uris,
            allowed_origins: r.allowed_origins,
            first_party: r.first_party,
            require_mfa: r.require_mfa,
            backchannel_logout_uri: r.backchannel_logout_uri,
            id_token_alg: r.id_token_signed_response_alg,
        }
    }
}

#[derive(serde::Serialize)]
pub struct ListClientsResponse {
    clients: Vec<ClientView>,
}

fn body_required() -> ApiError {
    ApiError::BadRequest(
        StatusCode::BAD_REQUEST,
        "a JSON object body is required".into(),
    )
}

/// The client id of the path; one that cannot be a client id names no client.
fn client_id(raw: &str) -> Result<ClientId, ApiError> {
    ClientId::parse(raw).map_err(|_| AdminError::NotFound(format!("client {raw}")).into())
}

/// `GET /admin/v1/clients`
pub async fn get_clients(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (api, _) = authorize(&req, &state).await?;
    let clients = api.admin.list_clients().await?;
    Ok(ok(StatusCode::OK, &ListClientsResponse { clients }))
}

/// `POST /admin/v1/clients`
pub async fn post_client(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (api, o) = authorize(&req, &state).await?;
    let r: CreateClientRequest = json_body(&req, payload, &state)
        .await?
        .ok_or_else(body_required)?;
    let kind = ClientKind::parse(&r.kind).map_err(AdminError::from)?;
    let input = NewClientInput {
        client_id: r.client_id,
        name: r.name,
        kind,
        grant_types: r.grant_types,
        scopes: r.scopes,
        redirect_uris: r.redirect_uris,
        audiences: r.audiences,
        default_audience: r.default_audience,
        token_settings: ClientTokenSettings {
            access_token_ttl: r.access_token_ttl,
            refresh_idle_ttl: r.refresh_idle_ttl,
            refresh_absolute_ttl: r.refresh_absolute_ttl,
            refresh_grace_secs: r.refresh_grace_secs,
            refresh_grace_uses: r.refresh_grace_uses,
        },
    };
    let oidc = ClientOidcInput {
        post_logout_redirect_uris: r.post_logout_redirect_uris,
        allowed_origins: r.allowed_origins,
        first_party: r.first_party,
        require_mfa: r.require_mfa,
        backchannel_logout_uri: r.backchannel_logout_uri,
        id_token_alg: r.id_token_signed_response_alg,
    };
    let created = api.admin.create_client_with(input, oidc).await?;
    api.gate
        .record_write(
            events::ADMIN_CLIENT_CREATED,
            &o,
            detail([
                ("client_id", json!(created.client.client_id)),
                ("kind", json!(created.client.kind)),
                ("grant_types", json!(created.client.grant_types)),
            ]),
        )
        .await;
    Ok(ok(StatusCode::CREATED, &created))
}

/// `GET /admin/v1/clients/{client_id}`
pub async fn get_client(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (api, _) = authorize(&req, &state).await?;
    let id = client_id(&id)?;
    let client = api.admin.show_client(id.as_str()).await?;
    Ok(ok(StatusCode::OK, &client))
}

/// `PATCH /admin/v1/clients/{client_id}`
pub async fn patch_client(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (api, o) = authorize(&req, &state).await?;
    let id = client_id(&id)?;
    let r: UpdateClientRequest = json_body(&req, payload, &state)
        .await?
        .ok_or_else(body_required)?;
    let update = ClientUpdate::from(r);
    let fields = update.fields();
    let client = api.admin.update_client(id.as_str(), update).await?;
    if !fields.is_empty() {
        api.gate
            .record_write(
                events::ADMIN_CLIENT_UPDATED,
                &o,
                detail([
                    ("client_id", json!(client.client_id)),
                    ("fields", json!(fields)),
                ]),
            )
            .await;
    }
    Ok(ok(StatusCode::OK, &client))
}
