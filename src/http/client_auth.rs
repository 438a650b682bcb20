//! Reading client credentials (RFC 6749 §2.3.1) and bearer tokens (RFC 6750 §2.1) from a
//! request.

use actix_web::http::header;
use actix_web::HttpRequest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::SecretString;

use super::body::{decode_component, Params};
use super::ApiError;
use crate::services::{ClientCredentials, TokenError};

/// What the `Authorization` header carries.
pub enum Authorization {
    None,
    Basic(String, SecretString),
    /// A bearer token (RFC 6750), where client credentials were expected.
    Bearer,
}

fn invalid_client() -> ApiError {
    ApiError::Token(TokenError::InvalidClient)
}

/// Parses `Authorization`: Basic (id and secret form-urlencoded, then joined) or Bearer.
pub fn authorization(req: &HttpRequest) -> Result<Authorization, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(Authorization::None);
    };
    let value = value.to_str().map_err(|_| invalid_client())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(invalid_client());
    };
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() || rest.contains(' ') {
            return Err(ApiError::Token(TokenError::InvalidRequest(
                "malformed bearer token".into(),
            )));
        }
        return Ok(Authorization::Bearer);
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
    let basic = match authorization(req)? {
        Authorization::None => None,
        Authorization::Basic(id, secret) => Some((id, secret)),
        Authorization::Bearer => {
            return Err(ApiError::Token(TokenError::InvalidRequest(
                "this endpoint needs client authentication, not a bearer token".into(),
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
    use crate::services::RevocationError;
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::Revocation(RevocationError::MissingToken));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty() && !t.contains(' '));
    token.map(str::to_owned).ok_or_else(|| {
        ApiError::Revocation(RevocationError::InvalidToken(
            "this endpoint needs an access token (Authorization: Bearer <token>)".into(),
        ))
    })
}
