//! The pages a policy or an authorization request adds to a sign-in (issue 15):
//! `POST /login/mfa/enrol` sets up the authenticator app a policy requires (or, within the
//! grace period, puts it off), `POST /login/continue` goes on with the pending request once
//! the recovery codes are saved, and `POST /login/reauth` is the password again when a
//! request's `max_age` finds the sign-in too old. The pages themselves are rendered by
//! `browser.rs`.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::SecretString;

use super::authorize::{answer, continue_after, refused_page, sign_in_failure, with_retry_after};
use super::browser::{
    current_session, enrolment_page, further_step_failed, read_form, reauth_page, SignInFrom,
};
use super::cookies;
use super::csrf::{form_is_genuine, form_page};
use crate::http::AppState;
use crate::services::{AuthnError, PendingRequest, SessionReady, StepUpStart};

/// The code was wrong: the enrolment page again, with the same authenticator app.
const WRONG_CODE: &str =
    "That code is not correct. Check the time on your phone and try again with the newest code.";

fn unreadable(state: &AppState) -> HttpResponse {
    state.pages.message(
        StatusCode::BAD_REQUEST,
        "Sign-in failed",
        "The form could not be read.",
    )
}

/// The pending request a form names, if any. `Err`: a page (expired or untrusted).
async fn pending_of(
    state: &AppState,
    sealed: Option<&str>,
) -> Result<Option<PendingRequest>, HttpResponse> {
    match sealed {
        Some(s) => state
            .authorize
            .describe(s)
            .await
            .map(Some)
            .map_err(|e| refused_page(state, e)),
        None => Ok(None),
    }
}

/// `POST /login/mfa/enrol`: the code that turns the new authenticator app on (then the
/// recovery codes, shown once), or `skip` ("set up later", within the grace period).
pub async fn post_enrol(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(mut f) = read_form(&req, payload, &state).await else {
        return unreadable(&state);
    };
    let sealed = f.remove("request").filter(|r| !r.is_empty());
    let pending = match pending_of(&state, sealed.as_deref()).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let client = pending.as_ref().map(|p| &p.client_id);
    let token = f.remove("enrolment_token").unwrap_or_default();
    let secret = SecretString::from(token.clone());
    let factor_id = f.remove("factor_id").unwrap_or_default();
    let from = match SignInFrom::read(&req, &state, &f).await {
        Ok(from) => from,
        Err(page) => return page,
    };
    let again = |status, message: &str| {
        let state = state.clone();
        let req = req.clone();
        let secret = SecretString::from(token.clone());
        let pending = &pending;
        let factor_id = factor_id.clone();
        let token = token.clone();
        let message = message.to_owned();
        async move {
            match state
                .sign_in
                .pending_enrolment(&secret, pending.as_ref().map(|p| &p.client_id), &factor_id)
                .await
            {
                Ok(page) => enrolment_page(
                    &req,
                    &state,
                    pending.as_ref(),
                    &token,
                    from.remember,
                    &page,
                    Some((status, &message)),
                ),
                Err(e) => further_step_failed(&state, &e),
            }
        }
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return again(
            StatusCode::FORBIDDEN,
            "This form has expired. Please enter the code again.",
        )
        .await;
    }
    if f.contains_key("skip") {
        let done = state
            .sign_in
            .skip_enrolment(
                &secret,
                from.remember,
                client,
                &from.origin,
                from.current.as_ref(),
            )
            .await;
        return match done {
            Ok(ready) => continue_after(&req, &state, &ready, sealed.as_deref()).await,
            Err(e) => further_step_failed(&state, &e),
        };
    }
    let Some(code) = f.remove("otp").filter(|c| !c.trim().is_empty()) else {
        return again(StatusCode::BAD_REQUEST, "Please enter the code.").await;
    };
    let confirmed = state
        .sign_in
        .confirm_enrolment(
            &secret,
            &factor_id,
            &SecretString::from(code),
            from.remember,
            client,
            &from.origin,
            from.current.as_ref(),
        )
        .await;
    match confirmed {
        Ok((ready, Some(codes))) => codes_page(
            &req,
            &state,
            pending.as_ref(),
            &ready,
            &codes.recovery_codes,
        ),
        Ok((ready, None)) => continue_after(&req, &state, &ready, sealed.as_deref()).await,
        Err(AuthnError::InvalidSecondFactor) => again(StatusCode::BAD_REQUEST, WRONG_CODE).await,
        Err(e @ (AuthnError::Throttled(_) | AuthnError::Unavailable(_))) => {
            let (status, message) = sign_in_failure(&e);
            with_retry_after(again(status, &message).await, &e)
        }
        Err(e) => further_step_failed(&state, &e),
    }
}

/// The recovery codes of the new authenticator app, shown this once, with the way on (the
/// session starts with this page: its cookie is set here).
fn codes_page(
    req: &HttpRequest,
    state: &AppState,
    pending: Option<&PendingRequest>,
    ready: &SessionReady,
    codes: &[String],
) -> HttpResponse {
    let mut page = form_page(
        req,
        state,
        StatusCode::OK,
        "sign_in_codes.html",
        context! {
            title => "Save your recovery codes",
            client_name => pending.map(|p| p.client_name.as_str()),
            request => pending.map(|p| p.sealed.as_str()),
            codes => codes.to_vec(),
        },
        pending.map(|p| p.redirect_uri.as_str()),
    );
    if let SessionReady::Started(started) = ready {
        let cookie = cookies::session_cookie(state, &started.secret, started.cookie_max_age);
        let _ = page.add_cookie(&cookie);
    }
    page
}

/// `POST /login/continue`: on with the pending request, signed in (after the recovery codes
/// page), or to the account page.
pub async fn post_continue(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(f) = read_form(&req, payload, &state).await else {
        return unreadable(&state);
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return state.pages.message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back to the application and start again.",
        );
    }
    let session = match current_session(&req, &state).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    match f.get("request").filter(|r| !r.is_empty()) {
        Some(sealed) => match state.authorize.resume(sealed, session.as_ref()).await {
            Ok(next) => answer(&req, &state, next, None, None).await,
            Err(e) => refused_page(&state, e),
        },
        None => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/account"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    }
}

/// `POST /login/reauth`: the signed-in user's password again (a request's `max_age` found
/// the sign-in too old); the session keeps its id, its `auth_time` is now.
pub async fn post_reauth(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(mut f) = read_form(&req, payload, &state).await else {
        return unreadable(&state);
    };
    let sealed = f.remove("request").filter(|r| !r.is_empty());
    let pending = match pending_of(&state, sealed.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => return unreadable(&state),
        Err(page) => return page,
    };
    let from = match SignInFrom::read(&req, &state, &f).await {
        Ok(from) => from,
        Err(page) => return page,
    };
    let Some(session) = from.current.as_ref() else {
        // Signed out meanwhile: the request starts over (a whole sign-in).
        return match state.authorize.resume(&pending.sealed, None).await {
            Ok(next) => answer(&req, &state, next, None, None).await,
            Err(e) => refused_page(&state, e),
        };
    };
    let account = match state
        .sign_in
        .start_step_up(session, false, &pending.client_id, &from.origin)
        .await
    {
        Ok(StepUpStart::Password { account }) => account,
        Ok(_) => return unreadable(&state),
        Err(e) => return further_step_failed(&state, &e),
    };
    let again = |status, message: &str| {
        reauth_page(&req, &state, &pending, &account, Some((status, message)))
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return again(
            StatusCode::FORBIDDEN,
            "This form has expired. Please enter your password again.",
        );
    }
    let password = SecretString::from(f.remove("password").unwrap_or_default());
    match state
        .sign_in
        .reauthenticate(session, password, &pending.client_id, &from.origin)
        .await
    {
        Ok(ready) => continue_after(&req, &state, &ready, sealed.as_deref()).await,
        Err(AuthnError::InvalidCredentials) => {
            again(StatusCode::UNAUTHORIZED, "The password is not correct.")
        }
        Err(e @ (AuthnError::Throttled(_) | AuthnError::Unavailable(_))) => {
            let (status, message) = sign_in_failure(&e);
            with_retry_after(again(status, &message), &e)
        }
        Err(e) => further_step_failed(&state, &e),
    }
}
