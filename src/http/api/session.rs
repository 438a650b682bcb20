//! Logout for first-party apps: `POST /api/v1/logout` and `POST /api/v1/logout-all`, both
//! authenticated with the caller's access token (`Authorization: Bearer`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::extract::principal;
use crate::http::AppState;

/// Revokes the caller's session: the presented access token and its refresh-token family
/// (with every access token issued from it).
pub async fn post_logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = principal(&req, &state).await?;
    state.revocations.logout(&caller).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// Revokes every session and token of the caller's user issued until now.
pub async fn post_logout_all(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = principal(&req, &state).await?;
    state.revocations.logout_everywhere(&caller).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
