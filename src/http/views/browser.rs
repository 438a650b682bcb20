//! What the hosted pages share: the browser's SSO session from its cookie, posted forms,
//! and the wording of service messages.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::cookies;
use super::csrf::{form_page, form_page_with};
use super::Pages;
use crate::domain::{RequestOrigin, SessionId, SsoSession};
use crate::http::body::read_limited;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{
    AuthnError, EnrolmentPage, PasskeyChallenge, PendingRequest, StepUp, StepUpStart,
};
use minijinja::{context, Value};
use secrecy::ExposeSecret;

/// The browser's live session, if its cookie names one. `Err` is a page: the store failed.
pub async fn current_session(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<SsoSession>, HttpResponse> {
    let Some(cookie) = cookies::read(req, cookies::session_name(state)) else {
        return Ok(None);
    };
    state
        .sign_in
        .sessions()
        .resolve(&cookie)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the session store failed");
            unavailable(&state.pages)
        })
}

/// What every sign-in form hands to the sign-in service besides the credential: the "keep
/// me signed in" box, the browser's current session (the new one replaces it) and where the
/// request came from.
pub struct SignInFrom {
    pub remember: bool,
    pub replacing: Option<SessionId>,
    /// The browser's live session (a step-up continues it).
    pub current: Option<SsoSession>,
    pub origin: RequestOrigin,
}

impl SignInFrom {
    /// Reads them from the request and its posted form. `Err` is a page: the session store
    /// failed.
    pub async fn read(
        req: &HttpRequest,
        state: &AppState,
        form: &std::collections::HashMap<String, String>,
    ) -> Result<Self, HttpResponse> {
        let remember = form
            .get("remember")
            .is_some_and(|v| v == "on" || v == "true");
        let current = current_session(req, state).await?;
        Ok(Self {
            remember,
            replacing: current.as_ref().map(|s| s.id.clone()),
            current,
            origin: origin(req, &state.trusted_proxies),
        })
    }
}

pub fn unavailable(pages: &Pages) -> HttpResponse {
    pages.message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "The service cannot complete the sign-in right now. Please try again in a moment.",
    )
}

/// A posted form of the flow: its fields, each once.
pub async fn read_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Option<std::collections::HashMap<String, String>> {
    let body = read_limited(req, payload, state.max_body_bytes)
        .await
        .ok()?;
    let mut fields = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        if fields.insert(k.into_owned(), v.into_owned()).is_some() {
            return None;
        }
    }
    Some(fields)
}

/// A service message as a sentence: capitalised, with a full stop.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut s = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => return String::new(),
    };
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}

/// The sign-in page's buttons: one per configured provider.
pub(super) fn buttons(state: &AppState) -> Vec<minijinja::Value> {
    state
        .federation
        .as_deref()
        .map(|f| {
            f.providers()
                .iter()
                .map(|p| context! { id => p.id.as_str(), name => p.display_name.as_str() })
                .collect()
        })
        .unwrap_or_default()
}

/// For a request whose `idp_hint` names a configured provider: the redirect that starts the
/// sign-in there (the pending request goes along).
pub(super) fn hinted(
    state: &AppState,
    pending: &crate::services::PendingRequest,
) -> Option<HttpResponse> {
    let hint = pending.idp_hint.as_deref()?;
    let provider = state.federation.as_deref()?.provider(hint).ok()?;
    let location = format!(
        "/federation/{}/start?request={}",
        provider.id,
        url::form_urlencoded::byte_serialize(pending.sealed.as_bytes()).collect::<String>()
    );
    Some(
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    )
}

/// The page that asks for the second factor.
pub(super) async fn second_step_page(
    req: &HttpRequest,
    state: &AppState,
    pending: Option<&PendingRequest>,
    mfa_token: &str,
    remember: bool,
    error: Option<(StatusCode, &str)>,
) -> HttpResponse {
    let (status, message) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let offered = state.sign_in.second_step(mfa_token).await;
    let passkey = offered.passkey.as_ref().map(ceremony);
    form_page_with(
        req,
        state,
        status,
        "sign_in_mfa.html",
        context! {
            title => "Two-step sign-in",
            client_name => pending.map(|p| p.client_name.as_str()),
            request => pending.map(|p| p.sealed.as_str()),
            mfa_token,
            remember,
            error => message,
            totp => offered.totp,
            passkey => passkey.clone(),
        },
        pending.map(|p| p.redirect_uri.as_str()),
        passkey.is_some(),
    )
}

/// After a right first factor that needs a further step: the page of that step (the second
/// factor, or setting one up when a policy requires it). `Err`: any other failure, for the
/// caller's own page.
pub(super) async fn next_step_page(
    req: &HttpRequest,
    state: &AppState,
    pending: Option<&PendingRequest>,
    remember: bool,
    e: AuthnError,
) -> Result<HttpResponse, AuthnError> {
    match e {
        AuthnError::SecondFactorRequired(token) => {
            Ok(second_step_page(req, state, pending, token.expose_secret(), remember, None).await)
        }
        AuthnError::EnrolmentNeeded { token, .. } => {
            Ok(start_enrolment_page(req, state, pending, token.expose_secret(), remember).await)
        }
        other => Err(other),
    }
}

/// Starts the enrolment a policy requires (a new authenticator app to add) and shows it.
pub(super) async fn start_enrolment_page(
    req: &HttpRequest,
    state: &AppState,
    pending: Option<&PendingRequest>,
    token: &str,
    remember: bool,
) -> HttpResponse {
    let from = origin(req, &state.trusted_proxies);
    match state
        .sign_in
        .start_enrolment(
            &secrecy::SecretString::from(token.to_owned()),
            pending.map(|p| &p.client_id),
            &from,
        )
        .await
    {
        Ok(page) => enrolment_page(req, state, pending, token, remember, &page, None),
        Err(e) => further_step_failed(state, &e),
    }
}

/// What a failed enrolment or step-up says when the page cannot be shown again.
pub(super) fn further_step_failed(state: &AppState, e: &AuthnError) -> HttpResponse {
    match e {
        AuthnError::InvalidMfaToken => state.pages.message(
            StatusCode::BAD_REQUEST,
            "Please sign in again",
            "This sign-in took too long or was finished already. Please start again.",
        ),
        AuthnError::EnrolmentRequired => state.pages.message(
            StatusCode::FORBIDDEN,
            "Two-step sign-in is required",
            "Your account must use two-step sign-in, and it cannot be set up here. Please contact your administrator.",
        ),
        AuthnError::Refused(_) | AuthnError::Throttled(_) => state.pages.message(
            StatusCode::FORBIDDEN,
            "You were not signed in",
            "This account cannot sign in right now.",
        ),
        other => {
            tracing::error!(error = ?other, "a sign-in step failed");
            unavailable(&state.pages)
        }
    }
}

/// The page that takes a user a policy covers through setting up an authenticator app
/// before the sign-in completes (issue 15).
pub(super) fn enrolment_page(
    req: &HttpRequest,
    state: &AppState,
    pending: Option<&PendingRequest>,
    token: &str,
    remember: bool,
    page: &EnrolmentPage,
    error: Option<(StatusCode, &str)>,
) -> HttpResponse {
    let (status, message) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    form_page(
        req,
        state,
        status,
        "sign_in_enrol.html",
        context! {
            title => "Set up two-step sign-in",
            client_name => pending.map(|p| p.client_name.as_str()),
            request => pending.map(|p| p.sealed.as_str()),
            enrolment_token => token,
            factor_id => page.enrolment.id.as_str(),
            qr_svg => page.enrolment.qr_svg.as_str(),
            secret => page.enrolment.secret.as_str(),
            may_skip => page.may_skip,
            remember,
            error => message,
        },
        pending.map(|p| p.redirect_uri.as_str()),
    )
}

/// The page that asks a signed-in user for their password again (`max_age`, issue 15).
pub(super) fn reauth_page(
    req: &HttpRequest,
    state: &AppState,
    pending: &PendingRequest,
    account: &str,
    error: Option<(StatusCode, &str)>,
) -> HttpResponse {
    let (status, message) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    form_page(
        req,
        state,
        status,
        "sign_in_reauth.html",
        context! {
            title => "Confirm it is you",
            client_name => pending.client_name.as_str(),
            request => pending.sealed.as_str(),
            account,
            error => message,
        },
        Some(pending.redirect_uri.as_str()),
    )
}

/// A signed-in user proves what the request misses (issue 15): their second factor, a
/// second factor set up now, or their password again.
pub(super) async fn step_up_page(
    req: &HttpRequest,
    state: &AppState,
    step: StepUp,
) -> HttpResponse {
    let from = origin(req, &state.trusted_proxies);
    let started = state
        .sign_in
        .start_step_up(
            &step.session,
            step.second_factor,
            &step.pending.client_id,
            &from,
        )
        .await;
    match started {
        Ok(StepUpStart::SecondFactor(token)) => {
            second_step_page(
                req,
                state,
                Some(&step.pending),
                token.expose_secret(),
                false,
                None,
            )
            .await
        }
        Ok(StepUpStart::Enrol(token)) => {
            start_enrolment_page(
                req,
                state,
                Some(&step.pending),
                token.expose_secret(),
                false,
            )
            .await
        }
        Ok(StepUpStart::Password { account }) => {
            reauth_page(req, state, &step.pending, &account, None)
        }
        Err(e) => further_step_failed(state, &e),
    }
}

/// A passkey ceremony as the pages carry it: the options (JSON, for the form's
/// `data-options`) and the sealed state.
pub fn ceremony(c: &PasskeyChallenge) -> Value {
    context! { options => c.options.to_string(), ceremony => c.ceremony.as_str() }
}
