//! The admin API (`/admin/v1/...`) for signing keys. Disabled (404) unless the operator
//! configured an admin token; every request carries it as `Authorization: Bearer`.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::body::read_limited;
use super::client_auth::{authorization, Authorization};
use super::error::{method_not_allowed, not_found};
use super::{ApiError, AppState};
use crate::domain::SigningAlg;
use crate::services::{AdminCredential, KeyError, KeyService, KeyView};

/// What the admin API needs: the credential to check and the service it drives.
pub struct AdminApi {
    credential: AdminCredential,
    keys: Arc<KeyService>,
}

impl AdminApi {
    pub fn new(credential: AdminCredential, keys: Arc<KeyService>) -> Self {
        Self { credential, keys }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// ES256, RS256 or EdDSA; default: the configured algorithm.
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
    cfg.service(
        web::resource("/admin/v1/keys")
            .route(web::get().to(get_keys))
            .default_service(web::to(other_method)),
    )
    .service(
        web::resource("/admin/v1/keys/rotate")
            .route(web::post().to(post_key_rotation))
            .default_service(web::to(other_method)),
    )
    .service(
        web::resource("/admin/v1/keys/import")
            .route(web::post().to(post_key_import))
            .default_service(web::to(other_method)),
    )
    .service(
        web::resource("/admin/v1/keys/{kid}/retire")
            .route(web::post().to(post_key_retirement))
            .default_service(web::to(other_method)),
    )
    .service(
        web::resource("/admin/v1/keys/{kid}")
            .route(web::delete().to(delete_key))
            .default_service(web::to(other_method)),
    );
}

/// Another method on an admin path: `405`, or `404` while the admin API is disabled, so a
/// disabled admin API cannot be told apart from an unknown path.
async fn other_method(state: web::Data<AppState>) -> HttpResponse {
    match state.admin {
        Some(_) => method_not_allowed().await,
        None => not_found().await,
    }
}

/// The key service, once the request proved it holds the admin token.
fn authorize<'a>(req: &HttpRequest, state: &'a AppState) -> Result<&'a KeyService, ApiError> {
    let admin = state.admin.as_ref().ok_or(ApiError::NotFound)?;
    let Ok(Authorization::Bearer(presented)) = authorization(req) else {
        return Err(ApiError::AdminUnauthorized);
    };
    if !admin.credential.verify(&presented) {
        return Err(ApiError::AdminUnauthorized);
    }
    Ok(&admin.keys)
}

/// A JSON body of at most `max_body_bytes`; `None` when the body is empty.
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
    let keys = authorize(&req, &state)?;
    let keys = keys.list().await?;
    Ok(ok(StatusCode::OK, &ListKeysResponse { keys }))
}

/// `POST /admin/v1/keys/rotate`
pub async fn post_key_rotation(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let keys = authorize(&req, &state)?;
    let request: RotateKeyRequest = json_body(&req, payload, &state).await?.unwrap_or_default();
    let alg = match request.alg.as_deref() {
        Some(a) => SigningAlg::parse(a).map_err(|e| KeyError::Invalid(e.to_string()))?,
        None => keys.policy().signing_alg,
    };
    let key = keys.rotate_with(alg, request.now).await?;
    Ok(ok(StatusCode::CREATED, &key))
}

/// `POST /admin/v1/keys/import`
pub async fn post_key_import(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let keys = authorize(&req, &state)?;
    let request: ImportKeyRequest = json_body(&req, payload, &state).await?.ok_or_else(|| {
        ApiError::BadRequest(
            StatusCode::BAD_REQUEST,
            "a JSON body {\"pem\": \"...\"} is required".into(),
        )
    })?;
    let key = keys.import_pem(&request.pem, request.now).await?;
    Ok(ok(StatusCode::CREATED, &key))
}

/// `POST /admin/v1/keys/{kid}/retire`
pub async fn post_key_retirement(
    req: HttpRequest,
    kid: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let keys = authorize(&req, &state)?;
    let key = keys.retire(&kid).await?;
    Ok(ok(StatusCode::OK, &key))
}

/// `DELETE /admin/v1/keys/{kid}[?force=true]`
pub async fn delete_key(
    req: HttpRequest,
    kid: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let keys = authorize(&req, &state)?;
    let query = web::Query::<RemoveKeyQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(StatusCode::BAD_REQUEST, e.to_string()))?;
    let key = keys.remove(&kid, query.force).await?;
    Ok(ok(StatusCode::OK, &key))
}
