//! The self-service account API under `/api/v1` (JSON), and the pages its mailed links open.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::extract::bearer;
use crate::crypto::AccessTokenClaims;
use crate::domain::{AccountTokenPurpose, RequestOrigin, UserId};
use crate::http::body::{is_form, read_json, Params};
use crate::http::origin::origin;
use crate::http::views as pages;
use crate::http::AppState;
use crate::services::{AccountError, PasswordChange, ProfileUpdate, SignupInput, SignupProof};

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

async fn caller(req: &HttpRequest, state: &AppState) -> Result<AccessTokenClaims, ApiError> {
    let token = bearer(req)?;
    Ok(state.revocations.authenticate_bearer(&token).await?)
}

fn required(params: &mut Params, key: &str) -> Result<String, ApiError> {
    params.take(key).ok_or_else(|| {
        ApiError::Account(AccountError::InvalidRequest(format!(
            "missing parameter {key}"
        )))
    })
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
    if is_form(&req) {
        let mut p = Params::read(&req, payload, state.max_body_bytes).await?;
        let input = SignupInput {
            email: p.take("email"),
            password: SecretString::from(required(&mut p, "password")?),
            display_name: p.take("display_name"),
            attributes: None,
            invite_token: p.take("token"),
        };
        return Ok(match state.accounts.signup(input, &o).await {
            Ok(()) => pages::message(
                StatusCode::OK,
                "Welcome",
                "Your account is ready. You can now sign in from the app.",
            ),
            Err(e) => page_error(e),
        });
    }
    let r: SignupRequest = read_json(&req, payload, state.max_body_bytes).await?;
    state
        .accounts
        .signup(
            SignupInput {
                email: r.email,
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

/// `GET /api/v1/signup/invitation?token=`: the invitation page.
pub async fn get_invitation(
    query: web::Query<TokenQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    link_page(&state, AccountTokenPurpose::Invite, &query, |token| {
        pages::form(
            "Accept your invitation",
            "Choose a password to create your account.",
            "/api/v1/signup",
            token,
            &[
                ("display_name", "Your name (optional)", "text"),
                ("password", "Password", "password"),
            ],
            "Create account",
        )
    })
    .await
}

// --- email verification ---------------------------------------------------------------------

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

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

/// `GET /api/v1/email/verify?token=`: a page with a button, so that a link scanner that
/// fetches the link does not use it; it asks for the password chosen at sign-up when the
/// account has one.
pub async fn get_verify_email(
    query: web::Query<TokenQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = query.token.as_deref().unwrap_or("");
    Ok(match state.accounts.verification_link(token).await? {
        Some(needs_password) => pages::verify_form(StatusCode::OK, token, needs_password, None),
        None => expired_page(),
    })
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
        let claims = caller(req, state).await?;
        if let Ok(id) = UserId::parse(&claims.sub) {
            return Ok(SignupProof::Session(id));
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
    if is_form(&req) {
        let mut p = Params::read(&req, payload, state.max_body_bytes).await?;
        let token = required(&mut p, "token")?;
        let proof = match p.take("password") {
            Some(pw) if !pw.is_empty() => SignupProof::Password(SecretString::from(pw)),
            _ => SignupProof::None,
        };
        return Ok(match state.accounts.verify_email(&token, proof, &o).await {
            Ok(v) => pages::message(
                StatusCode::OK,
                "Email address confirmed",
                &format!(
                    "Thank you: {} is confirmed. You can close this page.",
                    v.email
                ),
            ),
            Err(AccountError::PasswordRequired) => pages::verify_form(
                StatusCode::BAD_REQUEST,
                &token,
                true,
                Some("Please enter the password to confirm."),
            ),
            Err(AccountError::InvalidCredentials) => pages::verify_form(
                StatusCode::BAD_REQUEST,
                &token,
                true,
                Some("That is not the password this account was signed up with."),
            ),
            Err(e) => page_error(e),
        });
    }
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
        .resend_verification(&r.email, &from(&req, &state))
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
        .request_password_reset(&r.email, &from(&req, &state))
        .await?;
    Ok(accepted())
}

/// `GET /api/v1/password/reset?token=`: the page that asks for the new password.
pub async fn get_password_reset(
    query: web::Query<TokenQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    link_page(
        &state,
        AccountTokenPurpose::PasswordReset,
        &query,
        |token| {
            pages::form(
                "Choose a new password",
                "Enter a new password for your account. You will be signed out everywhere.",
                "/api/v1/password/reset/confirm",
                token,
                &[("new_password", "New password", "password")],
                "Set password",
            )
        },
    )
    .await
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
    if is_form(&req) {
        let mut p = Params::read(&req, payload, state.max_body_bytes).await?;
        let token = required(&mut p, "token")?;
        let password = SecretString::from(required(&mut p, "new_password")?);
        return Ok(match state.accounts.reset_password(&token, password, &o).await {
            Ok(()) => pages::message(
                StatusCode::OK,
                "Password changed",
                "Your password has been changed and every session signed out. Sign in with the new password.",
            ),
            Err(AccountError::PasswordPolicy(v)) => {
                let items: String = v
                    .iter()
                    .map(|v| format!("<li>The password {}.</li>", pages::escape(&v.message)))
                    .collect();
                let retry = format!(
                    "<p class=\"err\">Please choose another password:</p><ul class=\"err\">{items}</ul>\
                     <p><a href=\"/api/v1/password/reset?token={}\">Try again</a></p>",
                    pages::escape(&token)
                );
                pages::page(StatusCode::BAD_REQUEST, "Choose a new password", &retry)
            }
            Err(e) => page_error(e),
        });
    }
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
    let claims = caller(&req, &state).await?;
    let r: ChangePasswordRequest = read_json(&req, payload, state.max_body_bytes).await?;
    state
        .accounts
        .change_password(
            &claims,
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
    state
        .accounts
        .change_required_password(
            &r.email,
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
    let claims = caller(&req, &state).await?;
    let profile = state.accounts.profile(&claims).await?;
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
    let claims = caller(&req, &state).await?;
    let r: ProfileUpdateRequest = read_json(&req, payload, state.max_body_bytes).await?;
    let profile = state
        .accounts
        .update_profile(
            &claims,
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
    let claims = caller(&req, &state).await?;
    let r: DeleteAccountRequest = read_json(&req, payload, state.max_body_bytes).await?;
    state
        .accounts
        .delete_account(&claims, r.password, &from(&req, &state))
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
    let client_id = state.tokens.client_for_magic_link(&r.client_id).await?;
    state
        .accounts
        .request_magic_link(&r.email, &client_id, &from(&req, &state))
        .await?;
    Ok(accepted())
}

// --- pages -----------------------------------------------------------------------------------

/// A page for a mailed link: `page(token)` while the link is usable, else the expired page.
async fn link_page(
    state: &AppState,
    purpose: AccountTokenPurpose,
    query: &TokenQuery,
    page: impl FnOnce(&str) -> HttpResponse,
) -> Result<HttpResponse, ApiError> {
    let token = query.token.as_deref().unwrap_or("");
    if state.accounts.link_is_live(purpose, token).await? {
        Ok(page(token))
    } else {
        Ok(expired_page())
    }
}

fn expired_page() -> HttpResponse {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This link cannot be used",
        "The link is invalid, has expired or was already used. Ask for a new one from the app.",
    )
}

/// An error answered as a page (the form posts).
fn page_error(e: AccountError) -> HttpResponse {
    match e {
        AccountError::InvalidToken => expired_page(),
        AccountError::PasswordPolicy(v) => {
            let items: String = v
                .iter()
                .map(|v| format!("<li>The password {}.</li>", pages::escape(&v.message)))
                .collect();
            pages::page(
                StatusCode::BAD_REQUEST,
                "Please choose another password",
                &format!("<ul class=\"err\">{items}</ul><p>Go back and try again.</p>"),
            )
        }
        AccountError::Throttled(_) => pages::message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Please wait a few minutes and try again.",
        ),
        AccountError::Unexpected(cause) => {
            tracing::error!(error = ?cause, "account page request failed");
            pages::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again later.",
            )
        }
        other => pages::message(
            StatusCode::BAD_REQUEST,
            "This did not work",
            &other.to_string(),
        ),
    }
}
