//! The one place that maps errors to HTTP statuses and bodies.
//!
//! Every error body has the RFC 6749 §5.2 shape: `{"error": "...", "error_description": "..."}`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use secrecy::ExposeSecret;

use crate::services::{
    storage_unavailable, AccountError, AdminError, AuthnError, FederationError, KeyError, MfaError,
    RevocationError, TokenError, UpstreamError,
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Revocation(#[from] RevocationError),
    /// A malformed request outside the OAuth grant logic (body, content type).
    #[error("{1}")]
    BadRequest(StatusCode, String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The admin API was called without the admin token, or with a wrong one.
    #[error("admin authentication failed")]
    AdminUnauthorized,
    /// Too many failed admin authentications from this network: retry after the seconds.
    #[error("too many failed admin authentications")]
    AdminThrottled(u64),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The admin API's client operations.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// Linking identities of upstream providers (`/api/v1/me/links`).
    #[error(transparent)]
    Federation(#[from] FederationError),
    /// The caller's second factors (`/api/v1/me/mfa`).
    #[error(transparent)]
    Mfa(#[from] MfaError),
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

fn body(status: StatusCode, error: &str, description: Option<&str>) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ErrorBody {
            error,
            error_description: description,
        })
}

impl ApiError {
    /// The database could not be had in time (busy, pool exhausted) or reached: whatever
    /// error carries it, the answer is 503 with `Retry-After`, never a 500 that says nothing.
    fn database_unavailable(&self) -> bool {
        storage_unavailable(self)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        if self.database_unavailable() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self {
            ApiError::Token(TokenError::InvalidClient) => StatusCode::UNAUTHORIZED,
            ApiError::Token(TokenError::Unexpected(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Token(TokenError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Token(TokenError::RateLimited(_)) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Token(TokenError::MfaRequired(_)) => StatusCode::FORBIDDEN,
            ApiError::Token(TokenError::MfaEnrollmentRequired) => StatusCode::FORBIDDEN,
            ApiError::Token(_) => StatusCode::BAD_REQUEST,
            ApiError::Revocation(e) => match e {
                RevocationError::InvalidClient
                | RevocationError::InvalidToken(_)
                | RevocationError::MissingToken => StatusCode::UNAUTHORIZED,
                RevocationError::InsufficientScope(_) | RevocationError::ClientNotAllowed(_) => {
                    StatusCode::FORBIDDEN
                }
                RevocationError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                RevocationError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
                RevocationError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
                RevocationError::InvalidRequest(_) | RevocationError::UnauthorizedClient(_) => {
                    StatusCode::BAD_REQUEST
                }
            },
            ApiError::BadRequest(s, _) => *s,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::AdminThrottled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Key(KeyError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Key(KeyError::Conflict(_) | KeyError::ActiveKey(_)) => StatusCode::CONFLICT,
            ApiError::Key(KeyError::Invalid(_)) => StatusCode::BAD_REQUEST,
            ApiError::Key(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Admin(e) => match e {
                AdminError::Validation(_) | AdminError::PasswordPolicy(_) => {
                    StatusCode::BAD_REQUEST
                }
                AdminError::NotFound(_) => StatusCode::NOT_FOUND,
                AdminError::Conflict(_) => StatusCode::CONFLICT,
                AdminError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Account(e) => match e {
                AccountError::Validation(_)
                | AccountError::PasswordPolicy(_)
                | AccountError::InvalidToken
                | AccountError::InvalidCredentials
                | AccountError::PasswordRequired
                | AccountError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
                AccountError::SignupClosed
                | AccountError::InviteRequired
                | AccountError::MagicLinksDisabled
                | AccountError::NotAUser => StatusCode::FORBIDDEN,
                AccountError::AccountGone => StatusCode::UNAUTHORIZED,
                AccountError::Conflict(_) => StatusCode::CONFLICT,
                AccountError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
                AccountError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                AccountError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Federation(e) => federation_status(e),
            ApiError::Mfa(e) => mfa_status(e),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if self.database_unavailable() {
            tracing::warn!(error = ?self, "the database is unavailable; answering 503");
            return with_header(
                body(
                    status,
                    "temporarily_unavailable",
                    Some("the service is temporarily unavailable; retry shortly"),
                ),
                header::RETRY_AFTER,
                DATABASE_RETRY_AFTER_SECS,
            );
        }
        match self {
            ApiError::Token(TokenError::MfaRequired(mfa_token)) => {
                // As Auth0 answers it: the client completes the sign-in with the MFA grant.
                HttpResponse::build(status)
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .insert_header((header::PRAGMA, "no-cache"))
                    .json(serde_json::json!({
                        "error": "mfa_required",
                        "error_description": "a second factor is required: send the mfa_token with an otp or a recovery_code (grant_type urn:latchkey:params:oauth:grant-type:mfa)",
                        "mfa_token": mfa_token.expose_secret(),
                    }))
            }
            ApiError::Token(e) => {
                let (code, desc): (&str, Option<String>) = match e {
                    TokenError::InvalidRequest(d) => ("invalid_request", Some(d.clone())),
                    TokenError::InvalidClient => (
                        "invalid_client",
                        Some("client authentication failed".into()),
                    ),
                    TokenError::InvalidGrant(d) => ("invalid_grant", Some(d.clone())),
                    TokenError::UnauthorizedClient(d) => ("unauthorized_client", Some(d.clone())),
                    TokenError::UnsupportedGrantType(d) => {
                        ("unsupported_grant_type", Some(d.clone()))
                    }
                    TokenError::InvalidScope(d) => ("invalid_scope", Some(d.clone())),
                    TokenError::InvalidTarget(d) => ("invalid_target", Some(d.clone())),
                    TokenError::Throttled(_) => (
                        "invalid_grant",
                        Some("too many failed attempts; try again later".into()),
                    ),
                    TokenError::PasswordChangeRequired => (
                        "password_change_required",
                        Some(
                            "the password must be changed first: POST /api/v1/password/required-change"
                                .into(),
                        ),
                    ),
                    TokenError::EmailNotVerified => (
                        "email_verification_required",
                        Some("the email address must be verified first".into()),
                    ),
                    TokenError::MfaRequired(_) => ("mfa_required", None),
                    TokenError::MfaEnrollmentRequired => (
                        "mfa_enrollment_required",
                        Some("a policy requires a second factor of this account and none is set up: sign in on the hosted pages to set one up".into()),
                    ),
                    TokenError::Unavailable(d) => ("temporarily_unavailable", Some(d.clone())),
                    TokenError::RateLimited(_) => (
                        "too_many_requests",
                        Some("too many requests; try again later".into()),
                    ),
                    TokenError::Unexpected(cause) => {
                        tracing::error!(error = ?cause, "token request failed");
                        ("server_error", None)
                    }
                };
                let mut resp = body(status, code, desc.as_deref());
                match e {
                    TokenError::Throttled(secs) | TokenError::RateLimited(secs) => {
                        resp = with_header(resp, header::RETRY_AFTER, &(*secs).max(1).to_string());
                    }
                    TokenError::Unavailable(_) => {
                        resp = with_header(resp, header::RETRY_AFTER, "1");
                    }
                    _ => {}
                }
                if let TokenError::InvalidClient = e {
                    if let Ok(v) =
                        header::HeaderValue::from_str(r#"Basic realm="latchkey", charset="UTF-8""#)
                    {
                        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    }
                }
                resp
            }
            ApiError::Revocation(e) => revocation_response(status, e),
            ApiError::Account(e) => account_response(status, e),
            ApiError::BadRequest(_, d) => body(status, "invalid_request", Some(d)),
            ApiError::NotFound => body(status, "not_found", Some("no such endpoint")),
            ApiError::MethodNotAllowed => body(
                status,
                "method_not_allowed",
                Some("method not allowed on this endpoint"),
            ),
            ApiError::AdminUnauthorized => {
                let mut resp = body(
                    status,
                    "unauthorized",
                    Some("a valid admin bearer token is required"),
                );
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static(r#"Bearer realm="latchkey-admin""#),
                );
                resp
            }
            ApiError::AdminThrottled(secs) => with_header(
                body(
                    status,
                    "too_many_requests",
                    Some(
                        "too many failed admin authentications from this address; try again later",
                    ),
                ),
                header::RETRY_AFTER,
                &(*secs).max(1).to_string(),
            ),
            ApiError::Key(e) => match e {
                KeyError::NotFound(_) => body(status, "not_found", Some(&e.to_string())),
                KeyError::Conflict(_) | KeyError::ActiveKey(_) => {
                    body(status, "conflict", Some(&e.to_string()))
                }
                KeyError::Invalid(_) => body(status, "invalid_request", Some(&e.to_string())),
                _ => {
                    tracing::error!(error = ?e, "key administration failed");
                    body(status, "server_error", None)
                }
            },
            ApiError::Federation(e) => federation_response(status, e),
            ApiError::Mfa(e) => mfa_response(status, e),
            ApiError::Admin(e) => match e {
                AdminError::Validation(_) | AdminError::PasswordPolicy(_) => {
                    body(status, "invalid_request", Some(&e.to_string()))
                }
                AdminError::NotFound(_) => body(status, "not_found", Some(&e.to_string())),
                AdminError::Conflict(_) => body(status, "conflict", Some(&e.to_string())),
                AdminError::Unexpected(cause) => {
                    tracing::error!(error = ?cause, "client administration failed");
                    body(status, "server_error", None)
                }
            },
        }
    }
}

fn federation_status(e: &FederationError) -> StatusCode {
    use FederationError as E;
    match e {
        E::UnknownProvider => StatusCode::NOT_FOUND,
        E::LinkedElsewhere => StatusCode::CONFLICT,
        E::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        E::Upstream(UpstreamError::Unavailable(_)) | E::Unavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        E::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Linking an identity: a token that fails a check is `invalid_grant` (as at the token
/// endpoint), an identity of another account `conflict`.
fn federation_response(status: StatusCode, e: &FederationError) -> HttpResponse {
    use FederationError as E;
    match e {
        E::UnknownProvider => body(
            status,
            "not_found",
            Some("federated sign-in is not configured"),
        ),
        E::LinkedElsewhere => body(status, "conflict", Some(&e.to_string())),
        E::Throttled(t) => with_header(
            body(status, "too_many_requests", Some(&e.to_string())),
            header::RETRY_AFTER,
            &t.retry_after_secs.max(1).to_string(),
        ),
        E::Upstream(UpstreamError::Unavailable(_)) | E::Unavailable(_) => with_header(
            body(
                status,
                "temporarily_unavailable",
                Some("the identity provider or the storage cannot answer now"),
            ),
            header::RETRY_AFTER,
            "1",
        ),
        E::Unexpected(cause) => {
            tracing::error!(error = ?cause, "linking an identity failed");
            body(status, "server_error", None)
        }
        _ => body(status, "invalid_grant", Some(&e.to_string())),
    }
}

/// `Retry-After` when the database could not be had: a busy or exhausted pool clears in
/// moments, and a restarting database soon after.
pub(crate) const DATABASE_RETRY_AFTER_SECS: &str = "1";

fn with_header(mut resp: HttpResponse, name: header::HeaderName, value: &str) -> HttpResponse {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
    resp
}

/// RFC 6749 §5.2 codes for client errors, RFC 6750 §3 challenges for bearer errors, and
/// 503 `temporarily_unavailable` with `Retry-After` when the denylist cannot answer.
fn revocation_response(status: StatusCode, e: &RevocationError) -> HttpResponse {
    match e {
        RevocationError::InvalidRequest(d) => body(status, "invalid_request", Some(d)),
        RevocationError::InvalidClient => with_header(
            body(
                status,
                "invalid_client",
                Some("client authentication failed"),
            ),
            header::WWW_AUTHENTICATE,
            r#"Basic realm="latchkey", charset="UTF-8""#,
        ),
        RevocationError::UnauthorizedClient(d) | RevocationError::ClientNotAllowed(d) => {
            body(status, "unauthorized_client", Some(d))
        }
        RevocationError::MissingToken => with_header(
            body(
                status,
                "invalid_token",
                Some("an access token is required (Authorization: Bearer <token>)"),
            ),
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="latchkey""#,
        ),
        RevocationError::InvalidToken(d) => with_header(
            body(status, "invalid_token", Some(d)),
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="latchkey", error="invalid_token""#,
        ),
        RevocationError::InsufficientScope(d) => with_header(
            body(status, "insufficient_scope", Some(d)),
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="latchkey", error="insufficient_scope""#,
        ),
        RevocationError::Unavailable(d) => with_header(
            body(status, "temporarily_unavailable", Some(d)),
            header::RETRY_AFTER,
            "1",
        ),
        RevocationError::RateLimited(secs) => with_header(
            body(
                status,
                "too_many_requests",
                Some("too many requests; try again later"),
            ),
            header::RETRY_AFTER,
            &(*secs).max(1).to_string(),
        ),
        RevocationError::Unexpected(cause) => {
            tracing::error!(error = ?cause, "request failed");
            body(status, "server_error", None)
        }
    }
}

/// The JSON API's answers for account flows (README, Accounts).
fn account_response(status: StatusCode, e: &AccountError) -> HttpResponse {
    let text = e.to_string();
    match e {
        AccountError::Validation(v) => body(status, "invalid_request", Some(&v.to_string())),
        AccountError::PasswordPolicy(violations) => HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "error": "invalid_password",
                "error_description": "the password breaks the password policy",
                "violations": violations
                    .iter()
                    .map(|v| serde_json::json!({"rule": v.rule, "message": format!("the password {}", v.message)}))
                    .collect::<Vec<_>>(),
            })),
        AccountError::InvalidToken => body(status, "invalid_or_expired_token", Some(&text)),
        AccountError::InvalidCredentials => body(status, "invalid_credentials", Some(&text)),
        AccountError::PasswordRequired => body(status, "password_required", Some(&text)),
        AccountError::InvalidRequest(d) => body(status, "invalid_request", Some(d)),
        AccountError::SignupClosed => body(status, "signup_disabled", Some(&text)),
        AccountError::InviteRequired => body(status, "invite_required", Some(&text)),
        AccountError::MagicLinksDisabled => body(status, "magic_links_disabled", Some(&text)),
        AccountError::NotAUser => body(status, "access_denied", Some(&text)),
        AccountError::AccountGone => with_header(
            body(status, "invalid_token", Some(&text)),
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="latchkey", error="invalid_token""#,
        ),
        AccountError::Conflict(d) => body(status, "conflict", Some(d)),
        AccountError::Throttled(t) => with_header(
            body(status, "too_many_requests", Some("too many requests; try again later")),
            header::RETRY_AFTER,
            &t.retry_after_secs.max(1).to_string(),
        ),
        AccountError::Unavailable(d) => with_header(
            body(status, "temporarily_unavailable", Some(d)),
            header::RETRY_AFTER,
            "1",
        ),
        AccountError::Unexpected(cause) => {
            tracing::error!(error = ?cause, "account request failed");
            body(status, "server_error", None)
        }
    }
}

pub async fn not_found() -> HttpResponse {
    ApiError::NotFound.error_response()
}

/// A method the resource does not serve. `allow` lists the ones it does (RFC 9110
/// §15.5.6); `OPTIONS` is among them: it answers `204` with the same `Allow` (RFC 9110
/// §9.3.7). Everything else gets the JSON `405`.
pub fn unserved_method(method: &Method, allow: &str) -> HttpResponse {
    let mut resp = if method == Method::OPTIONS {
        HttpResponse::NoContent().finish()
    } else {
        ApiError::MethodNotAllowed.error_response()
    };
    if let Ok(v) = header::HeaderValue::from_str(allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// A CORS preflight the middleware refused (origin, method or header not allowed, or no
/// `Origin`): `400 invalid_request` in the JSON error shape instead of `actix-cors`'s bare
/// text without a `Content-Type`.
pub async fn cors_refusal_as_json(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let res = next.call(req).await?;
    let refusal = res
        .response()
        .error()
        .and_then(|e| e.as_error::<actix_cors::CorsError>())
        .map(|e| (e.status_code(), e.to_string()));
    Ok(match refusal {
        Some((status, description)) => res
            .into_response(body(status, "invalid_request", Some(&description)))
            .map_into_right_body(),
        None => res.map_into_left_body(),
    })
}

fn mfa_status(e: &MfaError) -> StatusCode {
    match e {
        MfaError::Validation(_)
        | MfaError::InvalidCode
        | MfaError::InvalidPasskey
        | MfaError::PasskeysUnavailable => StatusCode::BAD_REQUEST,
        MfaError::NotAUser | MfaError::ReauthenticationRequired => StatusCode::FORBIDDEN,
        MfaError::AccountGone => StatusCode::UNAUTHORIZED,
        MfaError::NotFound => StatusCode::NOT_FOUND,
        MfaError::EnrolmentDisabled => StatusCode::FORBIDDEN,
        MfaError::RequiredByPolicy => StatusCode::CONFLICT,
        MfaError::Authn(a) => match a {
            AuthnError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            AuthnError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AuthnError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        },
        MfaError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        MfaError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn mfa_response(status: StatusCode, e: &MfaError) -> HttpResponse {
    let text = e.to_string();
    match e {
        MfaError::Validation(v) => body(status, "invalid_request", Some(&v.to_string())),
        MfaError::InvalidCode => body(status, "invalid_code", Some(&text)),
        MfaError::InvalidPasskey => body(status, "invalid_passkey", Some(&text)),
        MfaError::PasskeysUnavailable => body(status, "passkeys_unavailable", Some(&text)),
        MfaError::NotAUser => body(status, "access_denied", Some(&text)),
        MfaError::ReauthenticationRequired => {
            body(status, "reauthentication_required", Some(&text))
        }
        MfaError::AccountGone => with_header(
            body(status, "invalid_token", Some(&text)),
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="latchkey", error="invalid_token""#,
        ),
        MfaError::NotFound => body(status, "not_found", Some(&text)),
        MfaError::EnrolmentDisabled => body(status, "mfa_enrollment_disabled", Some(&text)),
        MfaError::RequiredByPolicy => body(status, "mfa_required_by_policy", Some(&text)),
        MfaError::Authn(AuthnError::Throttled(t)) => with_header(
            body(
                status,
                "too_many_requests",
                Some("too many attempts; try again later"),
            ),
            header::RETRY_AFTER,
            &t.retry_after_secs.max(1).to_string(),
        ),
        MfaError::Authn(AuthnError::Unavailable(d)) => with_header(
            body(status, "temporarily_unavailable", Some(d)),
            header::RETRY_AFTER,
            "1",
        ),
        MfaError::Authn(AuthnError::Unexpected(cause)) | MfaError::Unexpected(cause) => {
            tracing::error!(error = ?cause, "second-factor request failed");
            body(status, "server_error", None)
        }
        MfaError::Authn(_) => body(status, "invalid_credentials", Some("the password is wrong")),
        MfaError::Unavailable(_) => with_header(
            body(status, "temporarily_unavailable", Some("retry shortly")),
            header::RETRY_AFTER,
            "1",
        ),
    }
}
