//! The end-session endpoint (`GET`/`POST /oauth2/logout`, OpenID Connect RP-Initiated Logout
//! 1.0) and its confirmation page. Leaving goes only to a post-logout redirect URI
//! registered for the client; anything else gets an error page.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;

use super::browser::{current_session, read_form};
use super::cookies;
use super::csrf::{form_is_genuine, form_page};
use crate::http::body::read_limited;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{LogoutError, LogoutNext, LogoutParams};

fn params_of(raw: &[u8]) -> Result<LogoutParams, String> {
    let mut p = LogoutParams::default();
    for (key, value) in url::form_urlencoded::parse(raw) {
        let slot = match key.as_ref() {
            "id_token_hint" => &mut p.id_token_hint,
            "client_id" => &mut p.client_id,
            "post_logout_redirect_uri" => &mut p.post_logout_redirect_uri,
            "state" => &mut p.state,
            "logout_hint" => &mut p.logout_hint,
            "ui_locales" => &mut p.ui_locales,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("The sign-out request repeats {key}."));
        }
        *slot = Some(value.into_owned());
    }
    Ok(p)
}

/// `GET /oauth2/logout`.
pub async fn get_logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = params_of(req.query_string().as_bytes());
    logout(&req, &state, params).await
}

/// `POST /oauth2/logout` (form-encoded).
pub async fn post_logout(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = match read_limited(&req, payload, state.max_body_bytes).await {
        Ok(body) => params_of(&body),
        Err(_) => Err("The request could not be read.".into()),
    };
    logout(&req, &state, params).await
}

async fn logout(
    req: &HttpRequest,
    state: &AppState,
    params: Result<LogoutParams, String>,
) -> HttpResponse {
    let params = match params {
        Ok(p) => p,
        Err(text) => return refused_page(state, &text),
    };
    let session = match current_session(req, state).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let from = origin(req, &state.trusted_proxies);
    match state.logout.begin(params, session.as_ref(), &from).await {
        Ok(next) => answer(req, state, next),
        Err(e) => failed(state, e),
    }
}

/// `POST /oauth2/logout/confirm`: the user confirmed.
pub async fn post_logout_confirm(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(f) = read_form(&req, payload, &state).await else {
        return refused_page(&state, "The form could not be read.");
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return state.pages.message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Sign out again from the application.",
        );
    }
    let session = match current_session(&req, &state).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let from = origin(&req, &state.trusted_proxies);
    let sealed = f.get("request").map(String::as_str).unwrap_or("");
    match state.logout.confirm(sealed, session.as_ref(), &from).await {
        Ok(next) => answer(&req, &state, next),
        Err(e) => failed(&state, e),
    }
}

fn refused_page(state: &AppState, text: &str) -> HttpResponse {
    state.pages.message(
        StatusCode::BAD_REQUEST,
        "This sign-out request cannot be used",
        text,
    )
}

fn failed(state: &AppState, e: LogoutError) -> HttpResponse {
    match e {
        LogoutError::Untrusted(text) => refused_page(state, &text),
        LogoutError::Unavailable(cause) => {
            tracing::error!(error = ?cause, "sign-out failed");
            state.pages.message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "Signing out is not possible right now. Please try again in a moment.",
            )
        }
    }
}

fn answer(req: &HttpRequest, state: &AppState, next: LogoutNext) -> HttpResponse {
    match next {
        LogoutNext::Confirm {
            sealed,
            client_name,
            redirect,
        } => form_page(
            req,
            state,
            StatusCode::OK,
            "logout_confirm.html",
            context! {
                title => "Sign out?",
                client_name,
                request => sealed,
            },
            redirect.as_deref(),
        ),
        LogoutNext::SignedOut { redirect } => {
            let mut r = match redirect {
                Some(url) => HttpResponse::Found()
                    .insert_header((header::LOCATION, url))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .insert_header((header::REFERRER_POLICY, "no-referrer"))
                    .finish(),
                None => state.pages.render(
                    StatusCode::OK,
                    "signed_out.html",
                    context! { title => "You are signed out" },
                ),
            };
            let _ = r.add_cookie(&cookies::clear_session_cookie(state));
            r
        }
    }
}
