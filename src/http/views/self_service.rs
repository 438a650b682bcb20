//! The self-service pages around sign-in: create an account (`/signup`, also what
//! `prompt=create` opens) and forgot password (`/password/forgot`). Each calls the account
//! service the JSON API uses, answers the same whether or not the address has an account, and
//! keeps the pending authorization request (`request`) so the user can go back to sign in.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::SecretString;

use super::browser::{read_form, sentence};
use super::csrf::{form_is_genuine, form_page};
use crate::domain::{Email, SignupMode};
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{AccountError, PendingRequest, SignupInput};

#[derive(serde::Deserialize)]
pub struct RequestQuery {
    pub(super) request: Option<String>,
}

/// The pending request a page was opened for, if its sealed value is still good.
pub(super) async fn pending(state: &AppState, sealed: Option<&str>) -> Option<PendingRequest> {
    match sealed.filter(|s| !s.is_empty()) {
        Some(s) => state.authorize.describe(s).await.ok(),
        None => None,
    }
}

/// Whether the sign-in page offers "Create an account" (open sign-up).
pub fn signup_open(state: &AppState) -> bool {
    state.accounts.policy().signup == SignupMode::Open
}

pub(super) fn signup_page(
    req: &HttpRequest,
    state: &AppState,
    pending: Option<&PendingRequest>,
    status: StatusCode,
    errors: Vec<String>,
    email: &str,
) -> HttpResponse {
    form_page(
        req,
        state,
        status,
        "signup.html",
        context! {
            title => "Create an account",
            client_name => pending.map(|p| p.client_name.as_str()),
            request => pending.map(|p| p.sealed.as_str()),
            email,
            errors,
            open => signup_open(state),
        },
        None,
    )
}

/// `GET /signup`.
pub async fn get_signup(
    req: HttpRequest,
    query: web::Query<RequestQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pending = pending(&state, query.request.as_deref()).await;
    signup_page(
        &req,
        &state,
        pending.as_ref(),
        StatusCode::OK,
        Vec::new(),
        "",
    )
}

/// `POST /signup`: creates the account (the mail decides the rest: a verification link, or
/// a note to the owner of an existing address).
pub async fn post_signup(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(mut f) = read_form(&req, payload, &state).await else {
        return bad_form(&state);
    };
    let pending = pending(&state, f.get("request").map(String::as_str)).await;
    let email = f.get("email").cloned().unwrap_or_default();
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return signup_page(
            &req,
            &state,
            pending.as_ref(),
            StatusCode::FORBIDDEN,
            vec!["This form has expired. Please try again.".into()],
            &email,
        );
    }
    let input = SignupInput {
        email: Some(Email::parse(email.trim())),
        password: SecretString::from(f.remove("password").unwrap_or_default()),
        display_name: f.remove("display_name").filter(|n| !n.trim().is_empty()),
        attributes: None,
        invite_token: None,
    };
    let from = origin(&req, &state.trusted_proxies);
    match state.accounts.signup(input, &from).await {
        Ok(()) => check_your_mail(
            &state,
            pending.as_ref(),
            "Check your email",
            "If the address can be used, we have sent a message to it. Follow the link in it to confirm your address, then sign in.",
        ),
        Err(e) => {
            let (status, errors) = signup_errors(e);
            signup_page(&req, &state, pending.as_ref(), status, errors, &email)
        }
    }
}

fn signup_errors(e: AccountError) -> (StatusCode, Vec<String>) {
    match e {
        AccountError::PasswordPolicy(v) => (
            StatusCode::BAD_REQUEST,
            v.iter().map(|p| sentence(&p.message)).collect(),
        ),
        AccountError::Validation(v) if v.field == "email" => (
            StatusCode::BAD_REQUEST,
            vec!["Please enter a valid email address.".into()],
        ),
        AccountError::SignupClosed | AccountError::InviteRequired => (
            StatusCode::FORBIDDEN,
            vec!["New accounts can only be created with an invitation.".into()],
        ),
        AccountError::Throttled(t) => (
            StatusCode::TOO_MANY_REQUESTS,
            vec![format!(
                "Too many attempts. Please wait {} seconds and try again.",
                t.retry_after_secs
            )],
        ),
        AccountError::Unexpected(cause) => {
            tracing::error!(error = ?cause, "sign-up failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                vec!["Creating an account is not possible right now. Please try again.".into()],
            )
        }
        other => (StatusCode::BAD_REQUEST, vec![sentence(&other.to_string())]),
    }
}

fn bad_form(state: &AppState) -> HttpResponse {
    state.pages.message(
        StatusCode::BAD_REQUEST,
        "This did not work",
        "The form could not be read.",
    )
}

fn check_your_mail(
    state: &AppState,
    pending: Option<&PendingRequest>,
    title: &str,
    text: &str,
) -> HttpResponse {
    state.pages.render(
        StatusCode::OK,
        "check_mail.html",
        context! { title, text, request => pending.map(|p| p.sealed.as_str()) },
    )
}

fn forgot_page(
    req: &HttpRequest,
    state: &AppState,
    pending: Option<&PendingRequest>,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    form_page(
        req,
        state,
        status,
        "password_forgot.html",
        context! {
            title => "Forgot your password?",
            request => pending.map(|p| p.sealed.as_str()),
            error,
        },
        None,
    )
}

/// `GET /password/forgot`.
pub async fn get_forgot(
    req: HttpRequest,
    query: web::Query<RequestQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pending = pending(&state, query.request.as_deref()).await;
    forgot_page(&req, &state, pending.as_ref(), StatusCode::OK, None)
}

/// `POST /password/forgot`: mails a reset link if the address has an account; the same
/// page either way.
pub async fn post_forgot(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(f) = read_form(&req, payload, &state).await else {
        return bad_form(&state);
    };
    let pending = pending(&state, f.get("request").map(String::as_str)).await;
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return forgot_page(
            &req,
            &state,
            pending.as_ref(),
            StatusCode::FORBIDDEN,
            Some("This form has expired. Please try again."),
        );
    }
    let Ok(email) = Email::parse(f.get("email").map(|e| e.trim()).unwrap_or("")) else {
        return forgot_page(
            &req,
            &state,
            pending.as_ref(),
            StatusCode::BAD_REQUEST,
            Some("Please enter a valid email address."),
        );
    };
    let from = origin(&req, &state.trusted_proxies);
    match state.accounts.request_password_reset(&email, &from).await {
        Ok(()) => check_your_mail(
            &state,
            pending.as_ref(),
            "Check your email",
            "If an account uses this address, we have sent it a link to choose a new password.",
        ),
        Err(AccountError::Throttled(t)) => forgot_page(
            &req,
            &state,
            pending.as_ref(),
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many requests. Please wait {} seconds and try again.",
                t.retry_after_secs
            )),
        ),
        Err(e) => {
            tracing::error!(error = %e, "password reset request failed");
            forgot_page(
                &req,
                &state,
                pending.as_ref(),
                StatusCode::SERVICE_UNAVAILABLE,
                Some("This is not possible right now. Please try again."),
            )
        }
    }
}
