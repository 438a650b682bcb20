//! The pages that links mailed to a user open (an invitation, a verification link, a reset
//! link), and the forms they post.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::SecretString;
use serde::Deserialize;

use super::error::{expired_page, page_error, problems};
use super::Pages;
use crate::domain::{AccountTokenPurpose, Email, RequestOrigin};
use crate::http::api::error::ApiError;
use crate::http::body::Params;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{AccountError, SignupInput, SignupProof};

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn from(req: &HttpRequest, state: &AppState) -> RequestOrigin {
    origin(req, &state.trusted_proxies)
}

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
        Ok(expired_page(&state.pages))
    }
}

/// The page a verification link opens: a button, and the password chosen at sign-up when
/// the account has one (`needs_password`), with a way out for a mailbox owner who did not
/// sign up. `error` is shown above the form.
fn verify_page(
    pages: &Pages,
    status: StatusCode,
    token: &str,
    needs_password: bool,
    error: Option<&str>,
) -> HttpResponse {
    pages.render(
        status,
        "verify_email.html",
        context! { title => "Confirm your email address", token, needs_password, error },
    )
}

// --- invitation ----------------------------------------------------------------------------

/// `GET /api/v1/signup/invitation?token=`: the invitation page.
pub async fn get_invitation(
    query: web::Query<TokenQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    link_page(&state, AccountTokenPurpose::Invite, &query, |token| {
        state.pages.render(
            StatusCode::OK,
            "invitation.html",
            context! {
                title => "Accept your invitation",
                token,
                providers => super::browser::buttons(&state),
            },
        )
    })
    .await
}

/// The invitation page's form, posted to `POST /api/v1/signup`.
pub async fn post_signup_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let o = from(req, state);
    let mut p = Params::read(req, payload, state.max_body_bytes).await?;
    let input = SignupInput {
        email: p.take("email").as_deref().map(Email::parse),
        password: SecretString::from(required(&mut p, "password")?),
        display_name: p.take("display_name"),
        attributes: None,
        invite_token: p.take("token"),
    };
    Ok(match state.accounts.signup(input, &o).await {
        Ok(()) => state.pages.message(
            StatusCode::OK,
            "Welcome",
            "Your account is ready. You can now sign in from the app.",
        ),
        Err(e) => page_error(&state.pages, e),
    })
}

// --- email verification ---------------------------------------------------------------------

/// `GET /api/v1/email/verify?token=`: a page with a button, so that a link scanner that
/// fetches the link does not use it; it asks for the password chosen at sign-up when the
/// account has one.
pub async fn get_verify_email(
    query: web::Query<TokenQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = query.token.as_deref().unwrap_or("");
    Ok(match state.accounts.verification_link(token).await? {
        Some(needs_password) => {
            verify_page(&state.pages, StatusCode::OK, token, needs_password, None)
        }
        None => expired_page(&state.pages),
    })
}

/// The verification page's form, posted to `POST /api/v1/email/verify`.
pub async fn post_verify_email_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let o = from(req, state);
    let mut p = Params::read(req, payload, state.max_body_bytes).await?;
    let token = required(&mut p, "token")?;
    let proof = match p.take("password") {
        Some(pw) if !pw.is_empty() => SignupProof::Password(SecretString::from(pw)),
        _ => SignupProof::None,
    };
    Ok(match state.accounts.verify_email(&token, proof, &o).await {
        Ok(v) => state.pages.message(
            StatusCode::OK,
            "Email address confirmed",
            &format!(
                "Thank you: {} is confirmed. You can close this page.",
                v.email
            ),
        ),
        Err(AccountError::PasswordRequired) => verify_page(
            &state.pages,
            StatusCode::BAD_REQUEST,
            &token,
            true,
            Some("Please enter the password to confirm."),
        ),
        Err(AccountError::InvalidCredentials) => verify_page(
            &state.pages,
            StatusCode::BAD_REQUEST,
            &token,
            true,
            Some("That is not the password this account was signed up with."),
        ),
        Err(e) => page_error(&state.pages, e),
    })
}

// --- password reset --------------------------------------------------------------------------

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
            state.pages.render(
                StatusCode::OK,
                "password_reset.html",
                context! { title => "Choose a new password", token },
            )
        },
    )
    .await
}

/// The reset page's form, posted to `POST /api/v1/password/reset/confirm`.
pub async fn post_password_reset_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let o = from(req, state);
    let mut p = Params::read(req, payload, state.max_body_bytes).await?;
    let token = required(&mut p, "token")?;
    let password = SecretString::from(required(&mut p, "new_password")?);
    Ok(match state.accounts.reset_password(&token, password, &o).await {
        Ok(()) => state.pages.message(
            StatusCode::OK,
            "Password changed",
            "Your password has been changed and every session signed out. Sign in with the new password.",
        ),
        Err(AccountError::PasswordPolicy(v)) => state.pages.render(
            StatusCode::BAD_REQUEST,
            "password_retry.html",
            context! { title => "Choose a new password", problems => problems(&v), token },
        ),
        Err(e) => page_error(&state.pages, e),
    })
}

/// A form field the page always sends; missing, the JSON 400 of the API answers.
fn required(params: &mut Params, key: &str) -> Result<String, ApiError> {
    params.take(key).ok_or_else(|| {
        ApiError::Account(AccountError::InvalidRequest(format!(
            "missing parameter {key}"
        )))
    })
}
