use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;

use super::error::ApiError;
use super::extract::client_credentials;
use crate::domain::GrantType;
use crate::http::body::Params;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{GrantRequest, MagicCredential, TokenError, TokenRequest};

fn invalid_request(msg: impl Into<String>) -> ApiError {
    ApiError::Token(TokenError::InvalidRequest(msg.into()))
}

pub(super) fn required(params: &mut Params, key: &str) -> Result<String, ApiError> {
    params
        .take(key)
        .ok_or_else(|| invalid_request(format!("missing parameter {key}")))
}

/// `POST /oauth2/token` (RFC 6749 §3.2), form-encoded or JSON.
pub async fn post_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::read(&req, payload, state.max_body_bytes).await?;
    let grant_type = required(&mut params, "grant_type")?;
    let grant = match grant_type.as_str() {
        "password" => GrantRequest::Password {
            username: required(&mut params, "username")?,
            password: SecretString::from(required(&mut params, "password")?),
        },
        "refresh_token" => GrantRequest::RefreshToken {
            refresh_token: SecretString::from(required(&mut params, "refresh_token")?),
        },
        "client_credentials" => GrantRequest::ClientCredentials,
        GrantType::MAGIC_LINK_URN => GrantRequest::MagicLink(match params.take("token") {
            Some(token) => MagicCredential::Token(SecretString::from(token)),
            None => MagicCredential::Code {
                email: required(&mut params, "email")?,
                code: SecretString::from(required(&mut params, "code")?),
            },
        }),
        other => return Err(unsupported_grant_type(other)),
    };
    let client = client_credentials(&req, &mut params)?;
    let request = TokenRequest {
        grant,
        client,
        scope: params.take("scope"),
        resource: params.take("resource"),
        audience: params.take("audience"),
        origin: origin(&req, &state.trusted_proxies),
    };
    let issued = state.tokens.exchange(request).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(issued))
}

fn unsupported_grant_type(grant_type: &str) -> ApiError {
    let shown: String = grant_type
        .chars()
        .take(64)
        .filter(|c| !c.is_control())
        .collect();
    ApiError::Token(TokenError::UnsupportedGrantType(format!(
        "grant type {shown:?} is not supported"
    )))
}
