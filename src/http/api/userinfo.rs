//! `GET`/`POST /oauth2/userinfo` (OIDC Core §5.3): the claims the bearer token's scopes
//! grant about its user. Bearer failures answer RFC 6750's `WWW-Authenticate`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::extract::bearer;
use crate::http::AppState;
use crate::services::RevocationError;

pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = bearer(&req)?;
    let caller = state
        .revocations
        .authenticate_userinfo_bearer(&token)
        .await?;
    if !caller.scope.contains("openid") {
        return Err(ApiError::Revocation(RevocationError::InsufficientScope(
            "the userinfo endpoint needs a token with the openid scope".into(),
        )));
    }
    let claims = state.accounts.userinfo(&caller).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(claims))
}
