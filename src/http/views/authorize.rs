//! The authorization endpoint (`GET`/`POST /oauth2/authorize`) and the pages of the flow: the
//! sign-in page (`/login`) and the consent page (`/consent`). Every outcome is a page or a
//! redirect to a URI registered for the client; nothing here redirects anywhere else.

use actix_web::cookie::Cookie;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::SecretString;

use super::browser::{current_session, read_form, unavailable, SignInFrom};
use super::cookies;
use super::csrf::{form_is_genuine, form_page, form_page_with};
use super::Pages;
use crate::domain::{LoginName, SsoSession};
use crate::http::body::read_limited;
use crate::http::AppState;
use crate::services::{
    AuthnError, AuthorizationResponse, AuthorizeError, AuthorizeParams, Next, PendingRequest,
    Refusal, ResponseMode, SessionReady, StartedSession,
};

/// The parameters of a query string or form body, each parameter once; a repeated one is
/// named in `duplicated`.
fn params_of(raw: &[u8]) -> AuthorizeParams {
    let mut p = AuthorizeParams::default();
    for (key, value) in url::form_urlencoded::parse(raw) {
        let slot = match key.as_ref() {
            "client_id" => &mut p.client_id,
            "redirect_uri" => &mut p.redirect_uri,
            "response_type" => &mut p.response_type,
            "response_mode" => &mut p.response_mode,
            "scope" => &mut p.scope,
            "state" => &mut p.state,
            "nonce" => &mut p.nonce,
            "code_challenge" => &mut p.code_challenge,
            "code_challenge_method" => &mut p.code_challenge_method,
            "prompt" => &mut p.prompt,
            "max_age" => &mut p.max_age,
            "acr_values" => &mut p.acr_values,
            "login_hint" => &mut p.login_hint,
            "ui_locales" => &mut p.ui_locales,
            "resource" => &mut p.resource,
            "request" => &mut p.request,
            "request_uri" => &mut p.request_uri,
            "idp_hint" => &mut p.idp_hint,
            _ => continue,
        };
        if slot.is_some() {
            p.duplicated.push(key.into_owned());
        } else {
            *slot = Some(value.into_owned());
        }
    }
    p
}

/// `GET /oauth2/authorize`.
pub async fn get_authorize(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = params_of(req.query_string().as_bytes());
    authorize(&req, &state, params).await
}

/// `POST /oauth2/authorize` (form-encoded, OIDC Core §3.1.2.1).
pub async fn post_authorize(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Ok(body) = read_limited(&req, payload, state.max_body_bytes).await else {
        return bad_request(&state.pages, "The request could not be read.");
    };
    authorize(&req, &state, params_of(&body)).await
}

async fn authorize(req: &HttpRequest, state: &AppState, params: AuthorizeParams) -> HttpResponse {
    let session = match current_session(req, state).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    match state.authorize.begin(params, session.as_ref()).await {
        Ok(next) => answer(req, state, next, None, None).await,
        Err(e) => refused(state, e),
    }
}

fn bad_request(pages: &Pages, text: &str) -> HttpResponse {
    pages.message(
        StatusCode::BAD_REQUEST,
        "This sign-in request cannot be used",
        text,
    )
}

/// An error of the request: a page when the client cannot be trusted, else the response
/// the client gets.
pub(super) fn refused_page(state: &AppState, e: AuthorizeError) -> HttpResponse {
    refused(state, e)
}

fn refused(state: &AppState, e: AuthorizeError) -> HttpResponse {
    match e {
        AuthorizeError::Untrusted(text) => bad_request(&state.pages, &text),
        AuthorizeError::Redirect(e) => respond(state, state.authorize.redirect_error(e), None),
        AuthorizeError::Unavailable => unavailable(&state.pages),
    }
}

/// Shows what comes next: the sign-in page, the consent page, a step-up, or the response to
/// the client.
pub(super) async fn answer(
    req: &HttpRequest,
    state: &AppState,
    next: Next,
    set: Option<Cookie<'static>>,
    error: Option<(StatusCode, &str)>,
) -> HttpResponse {
    let mut response = match next {
        Next::SignIn(pending) if pending.create && error.is_none() => {
            super::self_service::signup_page(
                req,
                state,
                Some(&pending),
                StatusCode::OK,
                Vec::new(),
                "",
            )
        }
        // `idp_hint`: the application's own "Sign in with ..." button skips this page.
        Next::SignIn(pending) => match error
            .is_none()
            .then(|| super::browser::hinted(state, &pending))
            .flatten()
        {
            Some(redirect) => redirect,
            None => sign_in_page(req, state, Some(&pending), error, None),
        },
        Next::Consent(pending) => consent_page(req, state, &pending),
        Next::Respond(r) => respond(state, r, None),
        Next::StepUp(step) => super::browser::step_up_page(req, state, *step).await,
    };
    if let Some(c) = set {
        let _ = response.add_cookie(&c);
    }
    response
}

/// The response to the client: a redirect with the parameters in the query (RFC 6749
/// §4.1.2), or a page that posts them (Form Post Response Mode).
fn respond(
    state: &AppState,
    r: AuthorizationResponse,
    set: Option<Cookie<'static>>,
) -> HttpResponse {
    let mut response = match r.response_mode {
        ResponseMode::Query => {
            let mut url = r.redirect_uri.clone();
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(r.params.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query);
            HttpResponse::Found()
                .insert_header((header::LOCATION, url))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::REFERRER_POLICY, "no-referrer"))
                .finish()
        }
        ResponseMode::FormPost => {
            let fields: Vec<minijinja::Value> = r
                .params
                .iter()
                .map(|(k, v)| context! { name => *k, value => v })
                .collect();
            state.pages.render_with_script(
                StatusCode::OK,
                "form_post.html",
                context! { title => "Signing you in", action => r.redirect_uri, fields },
            )
        }
    };
    if let Some(c) = set {
        let _ = response.add_cookie(&c);
    }
    response
}

/// The sign-in page, for a pending request or on its own. `typed`: the name the user typed
/// (kept after a failed attempt), else the request's `login_hint`.
pub(super) fn sign_in_page(
    req: &HttpRequest,
    state: &AppState,
    pending: Option<&PendingRequest>,
    error: Option<(StatusCode, &str)>,
    typed: Option<&str>,
) -> HttpResponse {
    let (status, message) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let passkey = state
        .sign_in
        .passkey_sign_in()
        .map(|c| super::browser::ceremony(&c));
    form_page_with(
        req,
        state,
        status,
        "sign_in.html",
        context! {
            title => "Sign in",
            client_name => pending.map(|p| p.client_name.as_str()),
            request => pending.map(|p| p.sealed.as_str()),
            login_hint => typed.or_else(|| pending.and_then(|p| p.login_hint.as_deref())),
            error => message,
            signup_open => super::self_service::signup_open(state),
            magic_links => state.accounts.policy().magic_links,
            providers => super::browser::buttons(state),
            passkey => passkey.clone(),
        },
        pending.map(|p| p.redirect_uri.as_str()),
        passkey.is_some(),
    )
}

/// Where a scope comes on the consent page: who you are first, then what the application
/// may see, then what it may do (stable: the request's order within each group).
fn scope_rank(scope: &str) -> u8 {
    match scope {
        "openid" => 0,
        "profile" => 1,
        "email" => 2,
        "offline_access" => 4,
        _ => 3,
    }
}

/// The words a consent page uses for a scope.
fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Confirm who you are".into(),
        "profile" => "See your name and username".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Stay connected to your account when you are not using it".into(),
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

fn consent_page(req: &HttpRequest, state: &AppState, pending: &PendingRequest) -> HttpResponse {
    let mut ordered: Vec<&String> = pending.scopes.iter().collect();
    ordered.sort_by_key(|s| scope_rank(s));
    let scopes: Vec<String> = ordered.into_iter().map(|s| describe_scope(s)).collect();
    form_page(
        req,
        state,
        StatusCode::OK,
        "consent.html",
        context! {
            title => format!("Allow {}?", pending.client_name),
            client_name => pending.client_name.as_str(),
            scopes,
            request => pending.sealed.as_str(),
        },
        Some(&pending.redirect_uri),
    )
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    request: Option<String>,
}

/// `GET /login`: the sign-in page, for a pending request (`request`, sealed: the links of the
/// sign-up and forgot-password pages come back here) or on its own (the account pages).
pub async fn get_login(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    match query.request.as_deref().filter(|r| !r.is_empty()) {
        Some(sealed) => match state.authorize.describe(sealed).await {
            Ok(pending) => sign_in_page(&req, &state, Some(&pending), None, None),
            Err(e) => refused(&state, e),
        },
        None => sign_in_page(&req, &state, None, None, None),
    }
}

/// `POST /login`: signs in, then continues the pending request (if any).
pub async fn post_login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(mut f) = read_form(&req, payload, &state).await else {
        return bad_request(&state.pages, "The form could not be read.");
    };
    let sealed = f.remove("request").filter(|r| !r.is_empty());
    let pending = match &sealed {
        Some(s) => match state.authorize.describe(s).await {
            Ok(p) => Some(p),
            Err(e) => return refused(&state, e),
        },
        None => None,
    };
    let typed: Option<String> = f
        .get("username")
        .map(|u| u.trim().to_owned())
        .filter(|u| u.len() <= 256);
    let again = |status, message: &str| {
        sign_in_page(
            &req,
            &state,
            pending.as_ref(),
            Some((status, message)),
            typed.as_deref(),
        )
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return again(
            StatusCode::FORBIDDEN,
            "This form has expired. Please sign in again.",
        );
    }
    let name = LoginName::parse(f.get("username").map(String::as_str).unwrap_or(""));
    let password = SecretString::from(f.remove("password").unwrap_or_default());
    let from = match SignInFrom::read(&req, &state, &f).await {
        Ok(from) => from,
        Err(page) => return page,
    };
    let started = state
        .sign_in
        .with_password(
            &name,
            password,
            from.remember,
            pending.as_ref().map(|p| &p.client_id),
            &from.origin,
            from.replacing.as_ref(),
        )
        .await;
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            return match super::browser::next_step_page(
                &req,
                &state,
                pending.as_ref(),
                from.remember,
                e,
            )
            .await
            {
                Ok(page) => page,
                Err(e) => {
                    let (status, message) = sign_in_failure(&e);
                    with_retry_after(again(status, &message), &e)
                }
            }
        }
    };
    continue_after_sign_in(&req, &state, &started, sealed.as_deref()).await
}

/// After a sign-in on the hosted pages: sets the new session's cookie and continues the
/// pending authorization request (`sealed`), or opens the account page when there is none.
pub(super) async fn continue_after_sign_in(
    req: &HttpRequest,
    state: &AppState,
    started: &StartedSession,
    sealed: Option<&str>,
) -> HttpResponse {
    let cookie = cookies::session_cookie(state, &started.secret, started.cookie_max_age);
    continue_with(req, state, &started.session, Some(cookie), sealed).await
}

/// After a sign-in or a step-up (the session keeps its cookie): continues as above.
pub(super) async fn continue_after(
    req: &HttpRequest,
    state: &AppState,
    ready: &SessionReady,
    sealed: Option<&str>,
) -> HttpResponse {
    match ready {
        SessionReady::Started(started) => continue_after_sign_in(req, state, started, sealed).await,
        SessionReady::SteppedUp(session) => continue_with(req, state, session, None, sealed).await,
    }
}

/// Continues the pending request with `session` (setting `cookie`, if any), or opens the
/// account page.
pub(super) async fn continue_with(
    req: &HttpRequest,
    state: &AppState,
    session: &SsoSession,
    cookie: Option<Cookie<'static>>,
    sealed: Option<&str>,
) -> HttpResponse {
    match sealed {
        Some(sealed) => match state.authorize.resume(sealed, Some(session)).await {
            Ok(next) => answer(req, state, next, cookie, None).await,
            Err(e) => {
                let mut r = refused(state, e);
                if let Some(c) = &cookie {
                    let _ = r.add_cookie(c);
                }
                r
            }
        },
        None => {
            let mut r = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/account"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
            if let Some(c) = &cookie {
                let _ = r.add_cookie(c);
            }
            r
        }
    }
}

/// What the sign-in page says when signing in fails. Unknown account and wrong password
/// read the same.
pub(super) fn sign_in_failure(e: &AuthnError) -> (StatusCode, String) {
    match e {
        AuthnError::InvalidCredentials | AuthnError::InvalidLink => (
            StatusCode::UNAUTHORIZED,
            "The email address or password is not correct.".into(),
        ),
        AuthnError::Throttled(t) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many attempts. Please wait {} seconds and try again.",
                t.retry_after_secs
            ),
        ),
        AuthnError::Refused(Refusal::Disabled) => {
            (StatusCode::FORBIDDEN, "This account is disabled.".into())
        }
        AuthnError::Refused(Refusal::EmailNotVerified) => (
            StatusCode::FORBIDDEN,
            "Please confirm your email address first: follow the link we sent you.".into(),
        ),
        AuthnError::Refused(Refusal::PasswordChangeRequired) => (
            StatusCode::FORBIDDEN,
            "Your password must be changed before you can sign in.".into(),
        ),
        AuthnError::MagicLinksDisabled => (StatusCode::BAD_REQUEST, "Not available.".into()),
        AuthnError::InvalidSecondFactor => (
            StatusCode::UNAUTHORIZED,
            "That code is not correct, or it was used already.".into(),
        ),
        AuthnError::InvalidPasskey => (
            StatusCode::UNAUTHORIZED,
            "That passkey was not accepted. Please try again, or use another way to sign in."
                .into(),
        ),
        AuthnError::PasskeysUnavailable => (
            StatusCode::BAD_REQUEST,
            "Passkeys are not available here.".into(),
        ),
        AuthnError::InvalidMfaToken
        | AuthnError::SecondFactorRequired(_)
        | AuthnError::EnrolmentNeeded { .. } => (
            StatusCode::BAD_REQUEST,
            "This sign-in took too long. Please start again.".into(),
        ),
        AuthnError::EnrolmentRequired => (
            StatusCode::FORBIDDEN,
            "Your account must use two-step sign-in, and it cannot be set up here. Please contact your administrator.".into(),
        ),
        AuthnError::Unavailable(_) | AuthnError::Unexpected(_) => {
            if let AuthnError::Unexpected(cause) = e {
                tracing::error!(error = ?cause, "sign-in failed");
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing in is not possible right now. Please try again in a moment.".into(),
            )
        }
    }
}

/// Adds `Retry-After` to a page answering a throttled sign-in.
pub(super) fn with_retry_after(mut page: HttpResponse, e: &AuthnError) -> HttpResponse {
    if let AuthnError::Throttled(t) = e {
        if let Ok(v) = header::HeaderValue::from_str(&t.retry_after_secs.to_string()) {
            page.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    page
}

/// `POST /consent`: the user's answer to the consent page.
pub async fn post_consent(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(f) = read_form(&req, payload, &state).await else {
        return bad_request(&state.pages, "The form could not be read.");
    };
    let Some(sealed) = f.get("request").filter(|r| !r.is_empty()) else {
        return bad_request(&state.pages, "The form is incomplete.");
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return state.pages.message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back to the application and start again.",
        );
    }
    let allow = match f.get("decision").map(String::as_str) {
        Some("allow") => true,
        Some("deny") => false,
        _ => return bad_request(&state.pages, "The form is incomplete."),
    };
    let session = match current_session(&req, &state).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    match state
        .authorize
        .answer_consent(sealed, session.as_ref(), allow)
        .await
    {
        Ok(next) => answer(&req, &state, next, None, None).await,
        Err(e) => refused(&state, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_named() {
        let p = params_of(b"client_id=a&scope=openid&scope=email&state=x&other=1&other=2");
        assert_eq!(p.client_id.as_deref(), Some("a"));
        assert_eq!(p.scope.as_deref(), Some("openid"));
        assert_eq!(p.duplicated, vec!["scope".to_owned()]);
    }
}
