//! The self-service account API under `/api/v1` (JSON). The pages its mailed links open, and
//! the forms those pages post to the same paths, are in `views::links`; `http::routes` sends
//! each request to one or the other by its content type.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::extract::principal;
use crate::domain::{ClientId, Email, RequestOrigin};
use crate::http::body::read_json;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{
    AccountError, PasswordChange, ProfileUpdate, SignupInput, SignupProof, TokenError,
};

/// What every request that takes an address answers, whether or not it has an account.
const ACCEPTED: &str =
    "If the address can be used, a message has been sent to it. It may take a few minutes.";

fn accepted() -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"status": "accepted", "message": ACCEPTED}))
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn from(req: &HttpRequest, state: &AppState) -> RequestOrigin {
    origin(req, &state.trusted_proxies)
}

/// The address of a request that takes one.
fn email(raw: &str) -> Result<Email, ApiError> {
    Ok(Email::parse(raw).map_err(AccountError::from)?)
}

// --- sign-up -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Optional with an invitation (its address is used).
    email: Option<String>,
    password: SecretString,
    display_name: Option<String>,
    attributes: Option<Map<String, Value>>,
    invite_token: Option<String>,
}

/// `POST /api/v1/signup` (JSON; the invitation page posts a form).
pub async fn post_signup(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let o = from(&req, &state);
    let r: SignupRequest = read_json(&req, payload, state.max_body_bytes).await?;
    state
        .accounts
        .signup(
            SignupInput {
                email: r.email.as_deref().map(Email::parse),
                password: r.password,
                display_name: r.display_name,
                attributes: r.attributes,
                invite_token: r.invite_token,
            },
            &o,
        )
        .await?;
    Ok(accepted())
}

// --- email verification ---------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    token: String,
    /// The password chosen at sign-up (needed while the account has one and no session of
    /// it comes with the request).
    password: Option<SecretString>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    email: String,
}

/// The proof that comes with a verification: a password, else a bearer session, if any.
async fn signup_proof(
    req: &HttpRequest,
    state: &AppState,
    password: Option<SecretString>,
) -> Result<SignupProof, ApiError> {
    if let Some(p) = password.filter(|p| !p.expose_secret().is_empty()) {
        return Ok(SignupProof::Password(p));
    }
    if req.headers().contains_key(header::AUTHORIZATION) {
        if let Some(id) = principal(req, state).await?.user_id() {
            return Ok(SignupProof::Session(id.clone()));
        }
    }
    Ok(SignupProof::None)
}

/// `POST /api/v1/email/verify`: JSON `{token, password?}` (or a bearer session of the
/// account), or the page's form.
pub async fn post_verify_email(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let o = from(&req, &state);
    let r: VerifyEmailRequest = read_json(&req, payload, state.max_body_bytes).await?;
    let proof = signup_proof(&req, &state, r.password).await?;
    let verified = state.accounts.verify_email(&r.token, proof, &o).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(verified))
}

/// `POST /api/v1/email/verify/resend`
pub async fn post_resend_verification(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r: EmailRequest = read_json(&req, payload, state.max_body_bytes).await?;
    state
        .accounts
        .resend_verification(&email(&r.email)?, &from(&req, &state))
        .await?;
    Ok(accepted())
}

// --- password reset --------------------------------------------------------------------------

/// `POST /api/v1/password/reset`: mails a reset link.
pub async fn post_password_reset(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r: EmailRequest = read_json(&req, payload, state.max_body_bytes).await?;
    state
        .accounts
        .request_password_reset(&email(&r.email)?, &from(&req, &state))
        .await?;
    Ok(accepted())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmRequest {
    token: String,
    new_password: SecretString,
}

/// `POST /api/v1/password/reset/confirm`: JSON, or the page's form.
pub async fn post_password_reset_confirm(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let o = from(&req, &state);
    let r: ResetConfirmRequest = read_json(&req, payload, state.max_body_bytes).await?;
    state
        .accounts
        .reset_password(&r.token, r.new_password, &o)
        .await?;
    Ok(no_content())
}

// --- password change -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: SecretString,
    new_password: SecretString,
    #[serde(default)]
    keep_current_session: bool,
}

/// `POST /api/v1/password/change` (bearer).
pub async fn post_password_change(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = principal(&req, &state).await?;
    let r: ChangePasswordRequest = read_json(&req, payload, state.max_body_bytes).await?;
    state
        .accounts
        .change_password(
            &caller,
            PasswordChange {
                current_password: r.current_password,
                new_password: r.new_password,
                keep_current_session: r.keep_current_session,
            },
            &from(&req, &state),
        )
        .await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredChangeRequest {
    email: String,
    current_password: SecretString,
    new_password: SecretString,
}

/// `POST /api/v1/password/required-change`: the forced change, with the credentials.
pub async fn post_password_required_change(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r: RequiredChangeRequest = read_json(&req, payload, state.max_body_bytes).await?;
    let email = Email::parse(&r.email).map_err(|_| AccountError::InvalidCredentials)?;
    state
        .accounts
        .change_required_password(
            &email,
            r.current_password,
            r.new_password,
            &from(&req, &state),
        )
        .await?;
    Ok(no_content())
}

// --- profile ---------------------------------------------------------------------------------

/// `GET /api/v1/me` (bearer).
pub async fn get_me(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = principal(&req, &state).await?;
    let profile = state.accounts.profile(&caller).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(profile))
}

/// `null` and absent differ: `Some(None)` clears a field.
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdateRequest {
    #[serde(default, deserialize_with = "nullable")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    username: Option<Option<String>>,
    attributes: Option<Map<String, Value>>,
}

/// `PATCH /api/v1/me` (bearer).
pub async fn patch_me(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = principal(&req, &state).await?;
    let r: ProfileUpdateRequest = read_json(&req, payload, state.max_body_bytes).await?;
    let profile = state
        .accounts
        .update_profile(
            &caller,
            ProfileUpdate {
                display_name: r.display_name,
                username: r.username,
                attributes: r.attributes,
            },
            &from(&req, &state),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(profile))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    password: SecretString,
}

/// `DELETE /api/v1/me` (bearer, with the password in the body).
pub async fn delete_me(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = principal(&req, &state).await?;
    let r: DeleteAccountRequest = read_json(&req, payload, state.max_body_bytes).await?;
    state
        .accounts
        .delete_account(&caller, r.password, &from(&req, &state))
        .await?;
    Ok(no_content())
}

// --- magic links -----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MagicLinkRequest {
    email: String,
    client_id: String,
}

/// `POST /api/v1/magic-link`: mails a sign-in link and code for `client_id`.
pub async fn post_magic_link(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !state.accounts.policy().magic_links {
        return Err(AccountError::MagicLinksDisabled.into());
    }
    let r: MagicLinkRequest = read_json(&req, payload, state.max_body_bytes).await?;
    let client_id =
        ClientId::parse(&r.client_id).map_err(|e| TokenError::InvalidRequest(e.message))?;
    let client_id = state.tokens.client_for_magic_link(&client_id).await?;
    state
        .accounts
        .request_magic_link(&email(&r.email)?, &client_id, &from(&req, &state))
        .await?;
    Ok(accepted())
}
