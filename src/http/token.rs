use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::SecretString;

use super::body::{decode_component, read_limited, Params};
use super::{ApiError, AppState};
use crate::services::{ClientCredentials, GrantRequest, TokenError, TokenRequest};

fn invalid_request(msg: impl Into<String>) -> ApiError {
    ApiError::Token(TokenError::InvalidRequest(msg.into()))
}

/// `Authorization: Basic` per RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, SecretString)>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::Token(TokenError::InvalidClient);
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_request(
            "only HTTP Basic client authentication is accepted in Authorization",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| decode_component(s.as_bytes()).ok_or_else(malformed);
    Ok(Some((unescape(id)?, SecretString::from(unescape(secret)?))))
}

fn required(params: &mut Params, key: &str) -> Result<String, ApiError> {
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
    let body = read_limited(&req, payload, state.max_body_bytes).await?;
    let mut params = Params::parse(&req, &body)?;
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
        other => return Err(unsupported_grant_type(other)),
    };
    let client = ClientCredentials {
        basic: basic_credentials(&req)?,
        body_client_id: params.take("client_id"),
        body_secret: params.take("client_secret").map(SecretString::from),
    };
    let request = TokenRequest {
        grant,
        client,
        scope: params.take("scope"),
        resource: params.take("resource"),
        audience: params.take("audience"),
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
