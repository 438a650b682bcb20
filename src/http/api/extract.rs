//! Reading client credentials (RFC 6749 §2.3.1) and bearer tokens (RFC 6750 §2.1) from a
//! request.

use actix_web::http::header;
use actix_web::HttpRequest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::SecretString;

use super::error::ApiError;
use crate::domain::Principal;
use crate::http::body::{decode_component, Params};
use crate::http::AppState;
use crate::services::{ClientCredentials, IntrospectionCaller, RevocationError, TokenError};

/// What the `Authorization` header carries. The one parser of that header: the token,
/// revocation, introspection, session and admin endpoints all read it through here.
pub enum Authorization {
    None,
    Basic(String, SecretString),
    /// A well-formed `Bearer <token>` (RFC 6750 §2.1).
    Bearer(String),
    /// `Bearer` with an empty value or a space in it.
    MalformedBearer,
}

fn invalid_client() -> ApiError {
    ApiError::Token(TokenError::InvalidClient)
}

fn invalid_token() -> ApiError {
    ApiError::Revocation(RevocationError::InvalidToken(
        "this endpoint needs an access token (Authorization: Bearer <token>)".into(),
    ))
}

/// Parses `Authorization`: Basic (id and secret form-urlencoded, then joined) or Bearer.
pub fn authorization(req: &HttpRequest) -> Result<Authorization, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(Authorization::None);
    };
    let value = value.to_str().map_err(|_| invalid_client())?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() || rest.contains(' ') {
            return Ok(Authorization::MalformedBearer);
        }
        return Ok(Authorization::Bearer(rest.to_owned()));
    }
    if rest.is_empty() {
        return Err(invalid_client());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::Token(TokenError::InvalidRequest(
            "only Basic and Bearer authorization are accepted".into(),
        )));
    }
    let decoded = STANDARD.decode(rest).map_err(|_| invalid_client())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid_client())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid_client)?;
    let unescape = |s: &str| decode_component(s.as_bytes()).ok_or_else(invalid_client);
    Ok(Authorization::Basic(
        unescape(id)?,
        SecretString::from(unescape(secret)?),
    ))
}

/// Client credentials from `Authorization: Basic` and/or the body (`client_id`,
/// `client_secret`). A bearer token here is refused.
pub fn client_credentials(
    req: &HttpRequest,
    params: &mut Params,
) -> Result<ClientCredentials, ApiError> {
    client_credentials_from(authorization(req)?, params)
}

/// The same, from an already parsed `Authorization`.
pub fn client_credentials_from(
    auth: Authorization,
    params: &mut Params,
) -> Result<ClientCredentials, ApiError> {
    let basic = match auth {
        Authorization::None => None,
        Authorization::Basic(id, secret) => Some((id, secret)),
        Authorization::Bearer(_) => {
            return Err(ApiError::Token(TokenError::InvalidRequest(
                "this endpoint needs client authentication, not a bearer token".into(),
            )))
        }
        Authorization::MalformedBearer => {
            return Err(ApiError::Token(TokenError::InvalidRequest(
                "malformed bearer token".into(),
            )))
        }
    };
    Ok(ClientCredentials {
        basic,
        body_client_id: params.take("client_id"),
        body_secret: params.take("client_secret").map(SecretString::from),
    })
}

/// The bearer token of a request that must carry one (RFC 6750 §2.1). No `Authorization`
/// header is `MissingToken` (a challenge without an error code, §3.1); anything but a
/// well-formed `Bearer <token>` is `InvalidToken`.
pub fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    match authorization(req) {
        Ok(Authorization::None) => Err(ApiError::Revocation(RevocationError::MissingToken)),
        Ok(Authorization::Bearer(token)) => Ok(token),
        _ => Err(invalid_token()),
    }
}

/// The caller a request's bearer token authenticates (verified, not revoked, issued for
/// Latchkey itself).
pub async fn principal(req: &HttpRequest, state: &AppState) -> Result<Principal, ApiError> {
    let token = bearer(req)?;
    Ok(state.revocations.authenticate_bearer(&token).await?)
}

/// The caller of introspection: a Bearer caller is judged by RFC 6750 (a malformed one is
/// `InvalidToken`) and authenticated, anyone else as a client.
pub async fn bearer_or_client(
    req: &HttpRequest,
    params: &mut Params,
    state: &AppState,
) -> Result<IntrospectionCaller, ApiError> {
    match authorization(req)? {
        Authorization::Bearer(token) => Ok(IntrospectionCaller::Bearer(
            state.revocations.authenticate_bearer(&token).await?,
        )),
        Authorization::MalformedBearer => Err(invalid_token()),
        other => Ok(IntrospectionCaller::Client(client_credentials_from(
            other, params,
        )?)),
    }
}
