//! Magic-link sign-in on the hosted pages (`accounts.magic_links`): the user asks for a link
//! by email (`/login/magic`), then either types the code from the mail on the next page
//! (`/login/magic/code`) or follows the link (`/login/magic/link`, a page with a button, so
//! that a mail scanner fetching the link does not use it). Either way an SSO session starts
//! and the pending authorization request continues.
//!
//! The request and the sign-in go through the account and sign-in services the JSON API
//! uses (same throttles, audit and mail); links asked for here are bound to the hosted pages'
//! own client id, so an application cannot exchange them at the token endpoint. The code page
//! carries the pending request in a hidden field; for the link, which may be opened later, a
//! cookie keeps it (`latchkey_magic`, 30 minutes).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::SecretString;

use super::authorize::{continue_after_sign_in, sign_in_failure, with_retry_after};
use super::browser::{read_form, unavailable, SignInFrom};
use super::cookies;
use super::csrf::{form_is_genuine, form_page};
use super::error::expired_page;
use super::self_service::{pending, RequestQuery};
use crate::domain::{Email, LoginName};
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{pages_client, AccountError, AuthnError, MagicCredential, PendingRequest};

/// The longest sealed request kept in the cookie (browsers keep about 4 KB per cookie).
const MAX_COOKIE_VALUE: usize = 3800;

#[derive(serde::Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

fn not_offered(state: &AppState) -> HttpResponse {
    state.pages.message(
        StatusCode::NOT_FOUND,
        "Not available",
        "Signing in with a link by email is not offered here. Please sign in with your password.",
    )
}

fn bad_form(state: &AppState) -> HttpResponse {
    state.pages.message(
        StatusCode::BAD_REQUEST,
        "This did not work",
        "The form could not be read.",
    )
}

/// Which page of the flow, with what it shows besides the pending request and the error.
enum Step<'a> {
    /// Asks for the address (`email`: as typed, after a refusal).
    Request { email: &'a str },
    /// Asks for the code mailed to `email`.
    Code { email: &'a str },
    /// The link's landing page, with its secret and the address it signs in.
    Landing { token: &'a str, email: &'a str },
}

/// A page of the flow. The code and landing pages may end at the client (their form's answer
/// continues the pending request), so their CSP lets a form go to its redirect URI.
fn page(
    req: &HttpRequest,
    state: &AppState,
    step: Step<'_>,
    pending: Option<&PendingRequest>,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let minutes = (state.accounts.policy().magic_link_ttl / 60).max(1);
    let (template, title, extra, ends_at_client) = match step {
        Step::Request { email } => (
            "magic_request.html",
            "Sign in with a link",
            context! { email },
            false,
        ),
        Step::Code { email } => (
            "magic_code.html",
            "Check your email",
            context! { email, minutes },
            true,
        ),
        Step::Landing { token, email } => (
            "magic_landing.html",
            "Sign in",
            context! { token, email },
            true,
        ),
    };
    form_page(
        req,
        state,
        status,
        template,
        context! {
            title,
            client_name => pending.map(|p| p.client_name.as_str()),
            request => pending.map(|p| p.sealed.as_str()),
            error,
            ..extra
        },
        pending
            .filter(|_| ends_at_client)
            .map(|p| p.redirect_uri.as_str()),
    )
}

/// The pending request the magic-link cookie keeps, if it is still good.
async fn pending_of_cookie(req: &HttpRequest, state: &AppState) -> Option<PendingRequest> {
    let sealed = cookies::read(req, cookies::magic_name(state))?;
    pending(state, Some(&sealed)).await
}

/// Signs in with the link or code, then continues the pending request (or opens the account
/// page); the magic-link cookie is no longer needed either way.
async fn sign_in(
    req: &HttpRequest,
    state: &AppState,
    credential: MagicCredential,
    from: &SignInFrom,
    pending: Option<&PendingRequest>,
) -> Result<HttpResponse, AuthnError> {
    let started = match state
        .sign_in
        .with_magic_link(
            credential,
            from.remember,
            pending.map(|p| &p.client_id),
            &from.origin,
            from.replacing.as_ref(),
        )
        .await
    {
        Ok(started) => started,
        // A user with a second factor (or who must set one up): the link (or code) was the
        // first step.
        Err(e) => {
            return super::browser::next_step_page(req, state, pending, from.remember, e).await
        }
    };
    let sealed = pending.map(|p| p.sealed.as_str());
    let mut answer = continue_after_sign_in(req, state, &started, sealed).await;
    let _ = answer.add_cookie(&cookies::clear_magic_cookie(state));
    Ok(answer)
}

/// `GET /login/magic`: the form that asks for a link.
pub async fn get_magic(
    req: HttpRequest,
    query: web::Query<RequestQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !state.accounts.policy().magic_links {
        return not_offered(&state);
    }
    let pending = pending(&state, query.request.as_deref()).await;
    page(
        &req,
        &state,
        Step::Request { email: "" },
        pending.as_ref(),
        StatusCode::OK,
        None,
    )
}

/// `POST /login/magic`: mails a link and a code if the address has an active account, and
/// answers the same page (where the code goes) either way.
pub async fn post_magic(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !state.accounts.policy().magic_links {
        return not_offered(&state);
    }
    let Some(f) = read_form(&req, payload, &state).await else {
        return bad_form(&state);
    };
    let pending = pending(&state, f.get("request").map(String::as_str)).await;
    let typed = f.get("email").map(|e| e.trim()).unwrap_or("");
    let again = |status, message: &str| {
        page(
            &req,
            &state,
            Step::Request { email: typed },
            pending.as_ref(),
            status,
            Some(message),
        )
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return again(
            StatusCode::FORBIDDEN,
            "This form has expired. Please try again.",
        );
    }
    let Ok(email) = Email::parse(typed) else {
        return again(
            StatusCode::BAD_REQUEST,
            "Please enter a valid email address.",
        );
    };
    let from = origin(&req, &state.trusted_proxies);
    let client = match pages_client() {
        Ok(c) => c,
        Err(_) => return unavailable(&state.pages),
    };
    match state
        .accounts
        .request_magic_link(&email, &client, &from)
        .await
    {
        Ok(()) => {
            let mut page = page(
                &req,
                &state,
                Step::Code {
                    email: email.as_str(),
                },
                pending.as_ref(),
                StatusCode::OK,
                None,
            );
            let cookie = match &pending {
                Some(p) if p.sealed.len() <= MAX_COOKIE_VALUE => {
                    cookies::magic_cookie(&state, &p.sealed)
                }
                _ => cookies::clear_magic_cookie(&state),
            };
            let _ = page.add_cookie(&cookie);
            page
        }
        Err(AccountError::MagicLinksDisabled) => not_offered(&state),
        Err(AccountError::Throttled(t)) => {
            let mut page = again(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many requests. Please wait {} seconds and try again.",
                    t.retry_after_secs
                ),
            );
            if let Ok(v) = t.retry_after_secs.to_string().parse() {
                page.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
            page
        }
        Err(e) => {
            tracing::error!(error = %e, "magic link request failed");
            again(
                StatusCode::SERVICE_UNAVAILABLE,
                "This is not possible right now. Please try again.",
            )
        }
    }
}

/// `POST /login/magic/code`: signs in with the code from the mail (wrong codes count in the
/// login throttle), then continues the pending request.
pub async fn post_magic_code(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(mut f) = read_form(&req, payload, &state).await else {
        return bad_form(&state);
    };
    let sealed = f.remove("request").filter(|r| !r.is_empty());
    let pending = pending(&state, sealed.as_deref()).await;
    let email = f.get("email").map(|e| e.trim()).unwrap_or("").to_owned();
    let again = |status, message: &str| {
        page(
            &req,
            &state,
            Step::Code { email: &email },
            pending.as_ref(),
            status,
            Some(message),
        )
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return again(
            StatusCode::FORBIDDEN,
            "This form has expired. Please enter the code again.",
        );
    }
    let code = f.remove("code").unwrap_or_default();
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let from = match SignInFrom::read(&req, &state, &f).await {
        Ok(from) => from,
        Err(page) => return page,
    };
    let credential = MagicCredential::Code {
        email: LoginName::parse(&email),
        code: SecretString::from(code),
    };
    match sign_in(&req, &state, credential, &from, pending.as_ref()).await {
        Ok(answer) => answer,
        Err(AuthnError::InvalidCredentials | AuthnError::InvalidLink) => again(
            StatusCode::UNAUTHORIZED,
            "The code is not correct or has expired.",
        ),
        Err(e) => {
            let (status, message) = sign_in_failure(&e);
            with_retry_after(again(status, &message), &e)
        }
    }
}

/// `GET /login/magic/link?token=`: the page a mailed link opens, with a button; the link is
/// used only when the button is pressed.
pub async fn get_magic_link(
    req: HttpRequest,
    query: web::Query<LinkQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !state.accounts.policy().magic_links {
        return not_offered(&state);
    }
    let token = query.token.as_deref().unwrap_or("");
    landing(&req, &state, token, StatusCode::OK, None).await
}

/// The landing page of a live link for the pages (naming the account it signs in, and the
/// application of the request the cookie keeps), else the expired page.
async fn landing(
    req: &HttpRequest,
    state: &AppState,
    token: &str,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let client = match pages_client() {
        Ok(c) => c,
        Err(_) => return unavailable(&state.pages),
    };
    match state.accounts.magic_link_account(token, &client).await {
        Ok(Some(email)) => {
            let pending = pending_of_cookie(req, state).await;
            let email = email.as_str();
            page(
                req,
                state,
                Step::Landing { token, email },
                pending.as_ref(),
                status,
                error,
            )
        }
        Ok(None) => expired_page(&state.pages),
        Err(e) => {
            tracing::error!(error = %e, "magic link check failed");
            unavailable(&state.pages)
        }
    }
}

/// `POST /login/magic/link`: signs in with the link's secret, then continues the request the
/// cookie kept (or opens the account page).
pub async fn post_magic_link(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(mut f) = read_form(&req, payload, &state).await else {
        return bad_form(&state);
    };
    let token = f.remove("token").unwrap_or_default();
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return landing(
            &req,
            &state,
            &token,
            StatusCode::FORBIDDEN,
            Some("This form has expired. Please press the button again."),
        )
        .await;
    }
    let pending = pending_of_cookie(&req, &state).await;
    let from = match SignInFrom::read(&req, &state, &f).await {
        Ok(from) => from,
        Err(page) => return page,
    };
    let credential = MagicCredential::Token(SecretString::from(token));
    match sign_in(&req, &state, credential, &from, pending.as_ref()).await {
        Ok(answer) => answer,
        Err(AuthnError::InvalidCredentials | AuthnError::InvalidLink) => expired_page(&state.pages),
        Err(e) => {
            let (status, message) = sign_in_failure(&e);
            with_retry_after(state.pages.message(status, "Sign-in failed", &message), &e)
        }
    }
}
