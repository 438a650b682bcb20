//! The second step of a sign-in on the hosted pages (issue 15): after a right password or
//! magic link, a user with a second factor enters a code from their authenticator app or a
//! recovery code (`POST /login/mfa`); the `mfa_token` of the first step travels in the form.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;

use super::authorize::{continue_after, refused_page, sign_in_failure, with_retry_after};
use super::browser::{read_form, second_step_page, SignInFrom};
use super::csrf::form_is_genuine;
use crate::http::AppState;
use crate::services::{AuthnError, SecondFactor};

/// `POST /login/mfa`: the second step; then the session, and the pending request goes on.
pub async fn post_login_mfa(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(mut f) = read_form(&req, payload, &state).await else {
        return state.pages.message(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The form could not be read.",
        );
    };
    let sealed = f.remove("request").filter(|r| !r.is_empty());
    let pending = match &sealed {
        Some(s) => match state.authorize.describe(s).await {
            Ok(p) => Some(p),
            Err(e) => return refused_page(&state, e),
        },
        None => None,
    };
    let mfa_token = f.remove("mfa_token").unwrap_or_default();
    let from = match SignInFrom::read(&req, &state, &f).await {
        Ok(from) => from,
        Err(page) => return page,
    };
    let again = async |status, message: &str| {
        second_step_page(
            &req,
            &state,
            pending.as_ref(),
            &mfa_token,
            from.remember,
            Some((status, message)),
        )
        .await
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return again(
            StatusCode::FORBIDDEN,
            "This form has expired. Please enter the code again.",
        )
        .await;
    }
    let factor = match (f.remove("otp"), f.remove("recovery_code")) {
        (Some(otp), None) => SecondFactor::Totp(SecretString::from(otp)),
        (None, Some(code)) => SecondFactor::RecoveryCode(SecretString::from(code)),
        _ => return again(StatusCode::BAD_REQUEST, "Please enter the code.").await,
    };
    let started = state
        .sign_in
        .with_second_factor(
            &SecretString::from(mfa_token.clone()),
            factor,
            from.remember,
            pending.as_ref().map(|p| &p.client_id),
            &from.origin,
            from.current.as_ref(),
        )
        .await;
    match started {
        Ok(ready) => continue_after(&req, &state, &ready, sealed.as_deref()).await,
        Err(AuthnError::InvalidMfaToken) => state.pages.message(
            StatusCode::BAD_REQUEST,
            "Please sign in again",
            "This sign-in took too long or was finished already. Please start again.",
        ),
        Err(e) => {
            let (status, message) = sign_in_failure(&e);
            with_retry_after(again(status, &message).await, &e)
        }
    }
}
