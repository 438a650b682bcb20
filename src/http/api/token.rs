use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;

use super::error::ApiError;
use super::extract::client_credentials;
use crate::domain::{Audience, GrantType, LoginName, Scope};
use crate::http::body::Params;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{
    GrantRequest, IssuedTokens, MagicCredential, SecondFactor, TokenError, TokenRequest,
};

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
            username: LoginName::parse(&required(&mut params, "username")?),
            password: SecretString::from(required(&mut params, "password")?),
        },
        "refresh_token" => GrantRequest::RefreshToken {
            refresh_token: SecretString::from(required(&mut params, "refresh_token")?),
        },
        "client_credentials" => GrantRequest::ClientCredentials,
        "authorization_code" => GrantRequest::AuthorizationCode {
            code: SecretString::from(required(&mut params, "code")?),
            redirect_uri: params.take("redirect_uri"),
            code_verifier: params.take("code_verifier").map(SecretString::from),
        },
        GrantType::MAGIC_LINK_URN => GrantRequest::MagicLink(match params.take("token") {
            Some(token) => MagicCredential::Token(SecretString::from(token)),
            None => MagicCredential::Code {
                email: LoginName::parse(&required(&mut params, "email")?),
                code: SecretString::from(required(&mut params, "code")?),
            },
        }),
        GrantType::TOKEN_EXCHANGE_URN => {
            if params.take("actor_token").is_some() {
                return Err(invalid_request("actor_token is not supported"));
            }
            GrantRequest::TokenExchange {
                subject_token: SecretString::from(required(&mut params, "subject_token")?),
                subject_token_type: required(&mut params, "subject_token_type")?,
                requested_token_type: params.take("requested_token_type"),
                nonce: params.take("nonce"),
            }
        }
        GrantType::MFA_URN => {
            let mfa_token = SecretString::from(required(&mut params, "mfa_token")?);
            let factor = match (params.take("otp"), params.take("recovery_code")) {
                (Some(otp), None) => SecondFactor::Totp(SecretString::from(otp)),
                (None, Some(code)) => SecondFactor::RecoveryCode(SecretString::from(code)),
                (Some(_), Some(_)) => {
                    return Err(invalid_request("send otp or recovery_code, not both"))
                }
                (None, None) => return Err(invalid_request("missing parameter otp")),
            };
            GrantRequest::Mfa { mfa_token, factor }
        }
        other => return Err(unsupported_grant_type(other)),
    };
    let client = client_credentials(&req, &mut params)?;
    let origin = origin(&req, &state.trusted_proxies);
    let scope = params.take("scope");
    let (resource, audience) = (params.take("resource"), params.take("audience"));
    let target = requested_scope(scope.as_deref()).and_then(|s| {
        Ok((
            s,
            requested_audience(resource.as_deref(), audience.as_deref())?,
        ))
    });
    let (scope, audience) = match target {
        Ok(target) => target,
        Err(e) => {
            // Who asks first, then what: the client is authenticated (and its request
            // counted) before a malformed scope or audience is refused.
            state
                .tokens
                .admit_client(&client, grant.grant_type(), &origin)
                .await?;
            return Err(ApiError::Token(e));
        }
    };
    let request = TokenRequest {
        grant,
        client,
        scope,
        audience,
        origin,
    };
    let issued = state.tokens.exchange(request).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse::of(&issued)))
}

/// The body of a successful token response (RFC 6749 §5.1): the one place the issued
/// tokens are exposed.
#[derive(serde::Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<&'static str>,
}

impl<'a> TokenResponse<'a> {
    fn of(issued: &'a IssuedTokens) -> Self {
        Self {
            access_token: issued.access_token.expose_secret(),
            token_type: issued.token_type,
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token.as_ref().map(|t| t.expose_secret()),
            id_token: issued.id_token.as_ref().map(|t| t.expose_secret()),
            scope: &issued.scope,
            issued_token_type: issued.issued_token_type,
        }
    }
}

/// `scope` (RFC 6749 §3.3).
fn requested_scope(scope: Option<&str>) -> Result<Option<Scope>, TokenError> {
    scope
        .map(Scope::parse)
        .transpose()
        .map_err(|e| TokenError::InvalidScope(e.message))
}

/// The API a token is asked for: RFC 8707 `resource`, or `audience`; both must then name
/// the same one.
fn requested_audience(
    resource: Option<&str>,
    audience: Option<&str>,
) -> Result<Option<Audience>, TokenError> {
    let resource = resource
        .map(Audience::parse_resource)
        .transpose()
        .map_err(|e| TokenError::InvalidTarget(e.message))?;
    let audience = audience
        .map(Audience::parse)
        .transpose()
        .map_err(|e| TokenError::InvalidTarget(e.message))?;
    match (resource, audience) {
        (Some(r), Some(a)) if r != a => Err(TokenError::InvalidTarget(
            "resource and audience name different APIs".into(),
        )),
        (r, a) => Ok(r.or(a)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccessTokenText, RefreshTokenText};

    #[test]
    fn the_token_response_body_is_rfc_6749_json() {
        let mut issued = IssuedTokens {
            access_token: AccessTokenText::new("a.b.c"),
            token_type: "Bearer",
            expires_in: 900,
            refresh_token: Some(RefreshTokenText::new("lkrt_x")),
            id_token: None,
            scope: "openid profile".into(),
            issued_token_type: None,
        };
        let body = |i: &IssuedTokens| serde_json::to_string(&TokenResponse::of(i)).ok();
        assert_eq!(
            body(&issued).as_deref(),
            Some(
                r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":900,"refresh_token":"lkrt_x","scope":"openid profile"}"#
            )
        );
        issued.refresh_token = None;
        issued.scope.clear();
        assert_eq!(
            body(&issued).as_deref(),
            Some(r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":900}"#)
        );
    }
}
