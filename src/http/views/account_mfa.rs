//! The account page's two-step sign-in (issue 15): add an authenticator app (a page with its
//! QR code, then a current code turns it on and the recovery codes are shown once), remove a
//! factor, make new recovery codes. Each form needs a sign-in within `mfa.reauth_within`,
//! else the password typed into it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::SecretString;

use super::account::{account_page, signed_in_form, Notice};
use super::csrf::form_page;
use crate::domain::SsoSession;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{AuthnError, MfaCaller, MfaError, Reauthentication, ACCOUNT_PAGES_CLIENT};

/// The signed-in session, the posted form (its CSRF token checked) and where it came from.
async fn change_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<
    (
        SsoSession,
        std::collections::HashMap<String, String>,
        crate::domain::RequestOrigin,
    ),
    HttpResponse,
> {
    let (session, form) = signed_in_form(req, payload, state).await?;
    Ok((session, form, origin(req, &state.trusted_proxies)))
}

fn caller(session: &SsoSession) -> MfaCaller<'_> {
    MfaCaller::Session {
        user: &session.user_id,
        client_id: ACCOUNT_PAGES_CLIENT,
        signed_in_at: session.auth_time,
    }
}

fn proof(form: &mut std::collections::HashMap<String, String>) -> Reauthentication {
    Reauthentication {
        password: form
            .remove("password")
            .filter(|p| !p.is_empty())
            .map(SecretString::from),
        factor: None,
    }
}

/// What the account page says when a change is refused.
fn failure(e: &MfaError) -> Notice {
    let (status, text) = match e {
        MfaError::ReauthenticationRequired => (
            StatusCode::FORBIDDEN,
            "Please enter your password (or sign in again) to change your two-step sign-in.",
        ),
        MfaError::Authn(AuthnError::InvalidCredentials) => {
            (StatusCode::BAD_REQUEST, "The password is not correct.")
        }
        MfaError::Authn(AuthnError::Throttled(_)) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts. Please wait a moment and try again.",
        ),
        MfaError::InvalidCode => (StatusCode::BAD_REQUEST, WRONG_CODE),
        MfaError::NotFound => (
            StatusCode::NOT_FOUND,
            "That sign-in method no longer exists, or the setup took too long. Please start again.",
        ),
        MfaError::Validation(_) => (StatusCode::BAD_REQUEST, "That is not valid."),
        MfaError::EnrolmentDisabled => (
            StatusCode::FORBIDDEN,
            "Two-step sign-in is switched off on this server: no new sign-in method can be added.",
        ),
        MfaError::RequiredByPolicy => (
            StatusCode::CONFLICT,
            "Two-step sign-in is required for your account: add another method before removing this one.",
        ),
        MfaError::InvalidPasskey => (
            StatusCode::BAD_REQUEST,
            "The passkey could not be added (it took too long, or it is registered already). Please try again.",
        ),
        MfaError::PasskeysUnavailable => {
            (StatusCode::BAD_REQUEST, "Passkeys are not available here.")
        }
        other => {
            tracing::error!(error = ?other, "a two-step sign-in change failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "This could not be done right now. Please try again.",
            )
        }
    };
    Notice::Failed(status, vec![text.into()])
}

/// `POST /account/mfa/totp`: a new authenticator app; the page with its QR code.
pub async fn post_add_totp(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, mut form, from) = match change_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let name = form.remove("name").filter(|n| !n.trim().is_empty());
    match state
        .mfa
        .start_totp(caller(&session), name.as_deref(), proof(&mut form), &from)
        .await
    {
        Ok(enrolment) => enrol_page(
            &req,
            &state,
            StatusCode::OK,
            &enrolment.id,
            Some((&enrolment.qr_svg, grouped(&enrolment.secret))),
            None,
        ),
        Err(e) => account_page(&req, &state, &session, Some(failure(&e))).await,
    }
}

const WRONG_CODE: &str = "That code is not correct. Check the time on your phone and try again.";

/// The "Add an authenticator app" page: with the QR code and the key (`shown`) when the
/// enrolment starts, without them after a wrong code (they are not kept in the clear).
fn enrol_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    factor_id: &str,
    shown: Option<(&str, String)>,
    error: Option<&str>,
) -> HttpResponse {
    let (qr_svg, secret) = match shown {
        Some((qr, secret)) => (Some(qr), Some(secret)),
        None => (None, None),
    };
    form_page(
        req,
        state,
        status,
        "account_mfa_enrol.html",
        context! { title => "Add an authenticator app", qr_svg, secret, factor_id, error },
        None,
    )
}

/// The key in groups of four, as apps show it.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `POST /account/mfa/totp/confirm`: a current code turns the app on; the recovery codes
/// (with the first factor) are shown once.
pub async fn post_confirm_totp(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, mut form, from) = match change_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let id = form.remove("factor_id").unwrap_or_default();
    let code = SecretString::from(form.remove("code").unwrap_or_default());
    match state
        .mfa
        .confirm_totp(caller(&session), &id, &code, &from)
        .await
    {
        Ok((_, codes)) => {
            added_page(
                &req,
                &state,
                &session,
                codes,
                "Two-step sign-in is on.",
                "The authenticator app was added.",
            )
            .await
        }
        Err(MfaError::InvalidCode) => enrol_page(
            &req,
            &state,
            StatusCode::BAD_REQUEST,
            &id,
            None,
            Some(WRONG_CODE),
        ),
        Err(e) => account_page(&req, &state, &session, Some(failure(&e))).await,
    }
}

fn codes_page(req: &HttpRequest, state: &AppState, done: &str, codes: Vec<String>) -> HttpResponse {
    form_page(
        req,
        state,
        StatusCode::OK,
        "account_mfa_codes.html",
        context! { title => "Your recovery codes", done, codes },
        None,
    )
}

/// `POST /account/mfa/remove`.
pub async fn post_remove(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, mut form, from) = match change_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let id = form.remove("factor_id").unwrap_or_default();
    let notice = match state
        .mfa
        .remove(caller(&session), &id, proof(&mut form), &from)
        .await
    {
        Ok(()) => Notice::Done("The sign-in method was removed."),
        Err(e) => failure(&e),
    };
    account_page(&req, &state, &session, Some(notice)).await
}

/// `POST /account/mfa/recovery-codes`: a new set, shown once.
pub async fn post_recovery_codes(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, mut form, from) = match change_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    match state
        .mfa
        .regenerate_recovery_codes(caller(&session), proof(&mut form), &from)
        .await
    {
        Ok(codes) => codes_page(
            &req,
            &state,
            "New recovery codes were made; the old ones no longer work.",
            codes.recovery_codes,
        ),
        Err(e) => account_page(&req, &state, &session, Some(failure(&e))).await,
    }
}

/// `POST /account/passkeys`: the browser's answer to the page's passkey registration; the
/// passkey is on (with the first factor, the recovery codes are shown once).
pub async fn post_add_passkey(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, mut form, from) = match change_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let ceremony = form.remove("ceremony").unwrap_or_default();
    let response = form.remove("credential").unwrap_or_default();
    if ceremony.is_empty() || response.is_empty() {
        let notice = Notice::Failed(
            StatusCode::BAD_REQUEST,
            vec!["Your browser did not create a passkey. Please try again.".into()],
        );
        return account_page(&req, &state, &session, Some(notice)).await;
    }
    let name = form.remove("name").filter(|n| !n.trim().is_empty());
    match state
        .mfa
        .finish_passkey(
            caller(&session),
            name.as_deref(),
            &ceremony,
            &response,
            proof(&mut form),
            &from,
        )
        .await
    {
        Ok((_, codes)) => {
            added_page(
                &req,
                &state,
                &session,
                codes,
                "Your passkey was added: two-step sign-in is on.",
                "The passkey was added.",
            )
            .await
        }
        Err(e) => account_page(&req, &state, &session, Some(failure(&e))).await,
    }
}

/// After a factor was turned on: the recovery codes that came with it (the first factor),
/// shown once, else the account page saying so.
async fn added_page(
    req: &HttpRequest,
    state: &AppState,
    session: &SsoSession,
    codes: Option<crate::services::RecoveryCodes>,
    with_codes: &str,
    done: &'static str,
) -> HttpResponse {
    match codes {
        Some(codes) => codes_page(req, state, with_codes, codes.recovery_codes),
        None => account_page(req, state, session, Some(Notice::Done(done))).await,
    }
}
