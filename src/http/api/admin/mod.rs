//! The admin API (`/admin/v1/...`) for signing keys (here), OAuth clients (`clients.rs`) and
//! the user listing (`users.rs`).
//! Disabled (404) unless the operator configured an admin token; every request carries it as
//! `Authorization: Bearer`. Failed authentications are throttled per network and audited;
//! every write is audited with what it changed. With `admin.bind` it is served on a listener
//! of its own.

mod clients;
mod users;

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use serde_json::json;

use super::error::ApiError;
use super::extract::{authorization, Authorization};
use crate::domain::{RequestOrigin, SigningAlg};
use crate::http::body::read_limited;
use crate::http::origin::origin;
use crate::http::{AppState, Endpoint};
use crate::services::{
    detail, events, AdminAuthError, AdminGate, AdminService, KeyError, KeyService, KeyView,
};

/// What the admin API needs: the door (credential, throttle, audit) and the services it
/// drives.
pub struct AdminApi {
    gate: AdminGate,
    keys: Arc<KeyService>,
    admin: Arc<AdminService>,
}

impl AdminApi {
    pub fn new(gate: AdminGate, keys: Arc<KeyService>, admin: Arc<AdminService>) -> Self {
        Self { gate, keys, admin }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// ES256, RS256 or EdDSA: rotate this algorithm only; default: every algorithm that has
    /// an active key (and the access-token algorithm).
    alg: Option<String>,
    /// Activate at once instead of after the publication delay.
    #[serde(default)]
    now: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportKeyRequest {
    pem: String,
    #[serde(default)]
    now: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveKeyQuery {
    #[serde(default)]
    force: bool,
}

#[derive(serde::Serialize)]
pub struct ListKeysResponse {
    keys: Vec<KeyView>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(admin("/admin/v1/keys").get(get_keys).finish())
        .service(
            admin("/admin/v1/keys/rotate")
                .post(post_key_rotation)
                .finish(),
        )
        .service(
            admin("/admin/v1/keys/import")
                .post(post_key_import)
                .finish(),
        )
        .service(
            admin("/admin/v1/keys/{kid}/retire")
                .post(post_key_retirement)
                .finish(),
        )
        .service(admin("/admin/v1/keys/{kid}").delete(delete_key).finish())
        .service(
            admin("/admin/v1/clients")
                .get(clients::get_clients)
                .post(clients::post_client)
                .finish(),
        )
        .service(
            admin("/admin/v1/clients/{client_id}")
                .get(clients::get_client)
                .patch(clients::patch_client)
                .finish(),
        )
        .service(admin("/admin/v1/users").get(users::get_users).finish());
}

/// An admin resource: another method gets the regular `405`/`OPTIONS` answers, or `404`
/// while the admin API is disabled, so a disabled admin API cannot be told apart from an
/// unknown path.
fn admin(path: &str) -> Endpoint {
    Endpoint::new(path).hidden_when(|state| state.admin.is_none())
}

/// The admin API and the caller's origin, once the request proved it holds the admin token.
async fn authorize<'a>(
    req: &HttpRequest,
    state: &'a AppState,
) -> Result<(&'a AdminApi, RequestOrigin), ApiError> {
    let admin = state.admin.as_ref().ok_or(ApiError::NotFound)?;
    let o = origin(req, &state.trusted_proxies);
    let presented = match authorization(req) {
        Ok(Authorization::Bearer(p)) => Some(p),
        _ => None,
    };
    match admin.gate.authenticate(presented.as_deref(), &o).await {
        Ok(()) => Ok((admin, o)),
        Err(AdminAuthError::Unauthorized) => Err(ApiError::AdminUnauthorized),
        Err(AdminAuthError::Throttled(t)) => Err(ApiError::AdminThrottled(t.retry_after_secs)),
    }
}

/// What an admin write changed, for the audit trail.
fn changed(
    key: &KeyView,
    extra: &[(&str, serde_json::Value)],
) -> serde_json::Map<String, serde_json::Value> {
    let mut d = detail([
        ("kid", json!(key.kid)),
        ("alg", json!(key.alg)),
        ("state", json!(key.state)),
    ]);
    for (k, v) in extra {
        d.insert((*k).to_owned(), v.clone());
    }
    d
}

/// A JSON object body of at most `max_body_bytes`; `None` when the body is empty.
async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Option<T>, ApiError> {
    let body = read_limited(req, payload, state.max_body_bytes).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::BadRequest(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "use Content-Type application/json".into(),
        ));
    }
    // serde reads a struct from a JSON array too (members in order): only an object is a body.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_slice(&body).map(Some).map_err(|e| {
        ApiError::BadRequest(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}"))
    })
}

fn ok(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `GET /admin/v1/keys`
pub async fn get_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (admin, _) = authorize(&req, &state).await?;
    let keys = admin.keys.list().await?;
    Ok(ok(StatusCode::OK, &ListKeysResponse { keys }))
}

/// `POST /admin/v1/keys/rotate`
pub async fn post_key_rotation(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (admin, o) = authorize(&req, &state).await?;
    let request: RotateKeyRequest = json_body(&req, payload, &state).await?.unwrap_or_default();
    let alg = request
        .alg
        .as_deref()
        .map(|a| SigningAlg::parse(a).map_err(|e| KeyError::Invalid(e.to_string())))
        .transpose()?;
    let rotation = admin.keys.rotate_keys(alg, request.now).await?;
    for key in &rotation.rotated {
        admin
            .gate
            .record_write(
                events::ADMIN_KEY_ROTATED,
                &o,
                changed(key, &[("now", json!(request.now))]),
            )
            .await;
    }
    Ok(ok(StatusCode::CREATED, &rotation))
}

/// `POST /admin/v1/keys/import`
pub async fn post_key_import(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (admin, o) = authorize(&req, &state).await?;
    let request: ImportKeyRequest = json_body(&req, payload, &state).await?.ok_or_else(|| {
        ApiError::BadRequest(
            StatusCode::BAD_REQUEST,
            "a JSON body {\"pem\": \"...\"} is required".into(),
        )
    })?;
    let key = admin.keys.import_pem(&request.pem, request.now).await?;
    admin
        .gate
        .record_write(
            events::ADMIN_KEY_IMPORTED,
            &o,
            changed(&key, &[("now", json!(request.now))]),
        )
        .await;
    Ok(ok(StatusCode::CREATED, &key))
}

/// `POST /admin/v1/keys/{kid}/retire`
pub async fn post_key_retirement(
    req: HttpRequest,
    kid: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (admin, o) = authorize(&req, &state).await?;
    let key = admin.keys.retire(&kid).await?;
    admin
        .gate
        .record_write(events::ADMIN_KEY_RETIRED, &o, changed(&key, &[]))
        .await;
    Ok(ok(StatusCode::OK, &key))
}

/// `DELETE /admin/v1/keys/{kid}[?force=true]`
pub async fn delete_key(
    req: HttpRequest,
    kid: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (admin, o) = authorize(&req, &state).await?;
    let query = web::Query::<RemoveKeyQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(StatusCode::BAD_REQUEST, e.to_string()))?;
    let key = admin.keys.remove(&kid, query.force).await?;
    admin
        .gate
        .record_write(
            events::ADMIN_KEY_REMOVED,
            &o,
            changed(&key, &[("force", json!(query.force))]),
        )
        .await;
    Ok(ok(StatusCode::OK, &key))
}
