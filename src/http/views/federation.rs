//! Federated sign-in's pages: `GET /federation/{provider}/start` sends the browser to the
//! provider (with the pending authorization request, if any), `GET .../callback` takes the
//! answer back, and `POST /federation/link` is the page where a user proves they own the
//! local account an identity asks to join. Every failure is a page with a way back to the
//! sign-in page.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use secrecy::SecretString;

use super::authorize::{continue_after_sign_in, sign_in_failure, with_retry_after};
use super::browser::{current_session, read_form, SignInFrom};
use super::cookies;
use super::csrf::{form_is_genuine, form_page};
use crate::domain::LoginName;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{
    CallbackParams, Continuation, FederationError, FederationService, PendingLink, PendingView,
    Resolution,
};

#[derive(serde::Deserialize)]
pub struct StartQuery {
    request: Option<String>,
    /// The invitation a sign-up starts from (the invitation page's buttons).
    invitation: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn federation(state: &AppState) -> Option<&FederationService> {
    state.federation.as_deref()
}

/// A page that says what went wrong, with the way back to the sign-in page (for the pending
/// request, if there is one).
fn failure(
    state: &AppState,
    status: StatusCode,
    title: &str,
    text: &str,
    request: Option<&str>,
) -> HttpResponse {
    let back = match request {
        Some(r) => format!(
            "/login?request={}",
            url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>()
        ),
        None => "/login".to_owned(),
    };
    let mut r = state.pages.render(
        status,
        "federation_error.html",
        context! { title, text, back },
    );
    let _ = r.add_cookie(&cookies::clear_federation_cookie(state));
    r
}

/// What a federation error tells the user.
fn explain(e: &FederationError) -> (StatusCode, &'static str, String) {
    use FederationError as E;
    match e {
        E::UnknownProvider => (
            StatusCode::NOT_FOUND,
            "Unknown sign-in provider",
            "This way of signing in is not available.".into(),
        ),
        E::StateMismatch => (
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be completed",
            "It was not started in this browser, or it took too long. Please start again.".into(),
        ),
        E::StateReplayed | E::TokenReplayed => (
            StatusCode::BAD_REQUEST,
            "This sign-in was used already",
            "Please start again.".into(),
        ),
        E::Denied(_) => (
            StatusCode::BAD_REQUEST,
            "You were not signed in",
            "The provider did not sign you in. You can try again or sign in another way.".into(),
        ),
        E::Upstream(crate::services::UpstreamError::InvalidToken(_))
        | E::Upstream(crate::services::UpstreamError::Refused(_)) => (
            StatusCode::BAD_REQUEST,
            "You were not signed in",
            "The provider's answer could not be trusted. Please try again.".into(),
        ),
        E::Upstream(crate::services::UpstreamError::UnknownProvider) => (
            StatusCode::NOT_FOUND,
            "Unknown sign-in provider",
            "This way of signing in is not available.".into(),
        ),
        E::Upstream(crate::services::UpstreamError::Unavailable(_)) => (
            StatusCode::BAD_GATEWAY,
            "The provider cannot be reached",
            "Signing in with this provider is not possible right now. Please try again in a moment, or sign in another way.".into(),
        ),
        E::SignupClosed => (
            StatusCode::FORBIDDEN,
            "No account here yet",
            "There is no account for this identity, and new accounts cannot be created.".into(),
        ),
        E::InviteRequired => (
            StatusCode::FORBIDDEN,
            "No account here yet",
            "There is no account for this identity, and new accounts need an invitation.".into(),
        ),
        E::InvitationInvalid => (
            StatusCode::BAD_REQUEST,
            "This invitation cannot be used",
            "The invitation is invalid, has expired or was used already. Ask for a new one.".into(),
        ),
        E::InvitationMismatch => (
            StatusCode::FORBIDDEN,
            "This invitation is for another address",
            "The provider's verified email address is not the one the invitation was sent to. Sign in there with the invited address, or accept the invitation with a password.".into(),
        ),
        E::NoVerifiedEmail => (
            StatusCode::FORBIDDEN,
            "No verified email address",
            "The provider did not give a verified email address, which a new account needs. Verify your address there and try again.".into(),
        ),
        E::ProofFailed => (
            StatusCode::FORBIDDEN,
            "Not linked to this account",
            "The account you signed in with there is not linked to this account. Use its password, or another provider linked to it.".into(),
        ),
        E::LinkedElsewhere => (
            StatusCode::CONFLICT,
            "Already linked",
            "This identity is linked to another account.".into(),
        ),
        E::Throttled(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins",
            "Too many sign-ins were started from your network. Please try again later.".into(),
        ),
        E::Unavailable(_) | E::Unexpected(_) => {
            if let E::Unexpected(cause) = e {
                tracing::error!(error = ?cause, "federated sign-in failed");
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "The service cannot complete the sign-in right now. Please try again in a moment.".into(),
            )
        }
    }
}

fn explained(state: &AppState, e: &FederationError, request: Option<&str>) -> HttpResponse {
    let (status, title, text) = explain(e);
    failure(state, status, title, &text, request)
}

/// `GET /federation/{provider}/start`: to the provider.
pub async fn start(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<StartQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(fed) = federation(&state) else {
        return explained(&state, &FederationError::UnknownProvider, None);
    };
    let query = query.into_inner();
    let request = query.request.filter(|r| !r.is_empty());
    let invitation = query.invitation.filter(|i| !i.is_empty());
    if let Some(r) = &request {
        if let Err(e) = state.authorize.describe(r).await {
            return super::authorize::refused_page(&state, e);
        }
    }
    let from = origin(&req, &state.trusted_proxies);
    let then = Continuation {
        request,
        invitation,
        ..Continuation::default()
    };
    to_provider(&state, fed, &path, then, &from).await
}

/// Sends the browser to the provider with the binding cookie.
pub(super) async fn to_provider(
    state: &AppState,
    fed: &FederationService,
    provider: &str,
    then: Continuation,
    from: &crate::domain::RequestOrigin,
) -> HttpResponse {
    let back = then.request.clone();
    match fed.begin(provider, then, from).await {
        Ok(started) => {
            let mut r = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, started.redirect))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::REFERRER_POLICY, "no-referrer"))
                .finish();
            let _ = r.add_cookie(&cookies::federation_cookie(
                state,
                &started.cookie,
                started.max_age,
            ));
            r
        }
        Err(FederationError::Throttled(t)) => {
            let mut r = failure(
                state,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins",
                &format!(
                    "Too many sign-ins were started from your network. Please wait {} seconds and try again.",
                    t.retry_after_secs
                ),
                back.as_deref(),
            );
            if let Ok(v) = header::HeaderValue::from_str(&t.retry_after_secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(e) => explained(state, &e, back.as_deref()),
    }
}

/// `GET /federation/{provider}/callback`: the provider's answer.
pub async fn callback(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CallbackQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(fed) = federation(&state) else {
        return explained(&state, &FederationError::UnknownProvider, None);
    };
    let q = query.into_inner();
    let from = origin(&req, &state.trusted_proxies);
    let cookie = cookies::read(&req, cookies::federation_name(&state));
    let arrived = match fed
        .callback(
            &path,
            CallbackParams {
                code: q.code,
                state: q.state,
                error: q.error,
            },
            cookie.as_deref(),
            &from,
        )
        .await
    {
        Ok(a) => a,
        Err(e) => return explained(&state, &e, None),
    };
    let request = arrived.request.clone();
    let session = match current_session(&req, &state).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    // Adding an identity from the account page: only for the user who started it.
    if let Some(user) = &arrived.link_to {
        if session.as_ref().map(|s| &s.user_id) != Some(user) {
            return explained(&state, &FederationError::StateMismatch, None);
        }
        let mut r = match fed.link_to(&arrived.identity, user, &from).await {
            Ok(()) => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/account"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish(),
            Err(e) => return explained(&state, &e, None),
        };
        let _ = r.add_cookie(&cookies::clear_federation_cookie(&state));
        return r;
    }
    // Proving the local account of a pending link through an identity already linked to it.
    let resolution = if let Some(pending) = &arrived.proof {
        match fed
            .link_after_linked_proof(pending, &arrived.identity, &from)
            .await
        {
            Ok(user) => Resolution::SignIn {
                user,
                new_user: false,
            },
            Err(e) => return explained(&state, &e, request.as_deref()),
        }
    } else {
        match fed
            .resolve(&arrived.identity, arrived.invitation.as_deref(), &from)
            .await
        {
            Ok(r) => r,
            Err(e) => return explained(&state, &e, request.as_deref()),
        }
    };
    let mut r = match resolution {
        Resolution::SignIn { user, .. } => {
            let pending = match &request {
                Some(r) => match state.authorize.describe(r).await {
                    Ok(p) => Some(p),
                    Err(e) => return super::authorize::refused_page(&state, e),
                },
                None => None,
            };
            let started = state
                .sign_in
                .with_federation(
                    user,
                    &arrived.identity.provider,
                    false,
                    pending.as_ref().map(|p| &p.client_id),
                    &from,
                    session.as_ref().map(|s| &s.id),
                )
                .await;
            // A user with a second factor, or whom a policy covers (issue 15): the provider's
            // sign-in was the first step.
            match started {
                Ok(started) => {
                    continue_after_sign_in(&req, &state, &started, request.as_deref()).await
                }
                Err(e) => {
                    match super::browser::next_step_page(&req, &state, pending.as_ref(), false, e)
                        .await
                    {
                        Ok(page) => page,
                        Err(e) => {
                            let (status, message) = sign_in_failure(&e);
                            with_retry_after(
                                failure(
                                    &state,
                                    status,
                                    "You were not signed in",
                                    &message,
                                    request.as_deref(),
                                ),
                                &e,
                            )
                        }
                    }
                }
            }
        }
        Resolution::NeedsProof(pending) => proof_page(
            &req,
            &state,
            StatusCode::OK,
            &pending,
            &arrived.identity.provider,
            request.as_deref(),
            None,
        ),
    };
    let _ = r.add_cookie(&cookies::clear_federation_cookie(&state));
    r
}

/// The page where the user proves they own the local account: its password, or a sign-in
/// at another configured provider (one linked to the account proves it).
fn proof_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    pending: &PendingLink,
    asking: &crate::domain::ProviderId,
    request: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    let others: Vec<minijinja::Value> = state
        .federation
        .as_deref()
        .map(|f| f.providers())
        .unwrap_or_default()
        .iter()
        .filter(|p| &p.id != asking)
        .map(|p| context! { id => p.id.as_str(), name => p.display_name.as_str() })
        .collect();
    form_page(
        req,
        state,
        status,
        "federation_link.html",
        context! {
            title => format!("Link your {} account", pending.provider_name),
            provider_name => pending.provider_name.as_str(),
            email => pending.email.as_str(),
            pending => pending.sealed.as_str(),
            request,
            providers => others,
            error,
        },
        None,
    )
}

/// What both of the proof page's forms carry: the form, the pending authorization request,
/// and the pending link (sealed, and opened); a page when any of it cannot be used.
type ProofForm<'a> = (
    &'a FederationService,
    std::collections::HashMap<String, String>,
    Option<String>,
    String,
    PendingView,
);

async fn proof_form<'a>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &'a AppState,
) -> Result<ProofForm<'a>, HttpResponse> {
    let Some(fed) = federation(state) else {
        return Err(explained(state, &FederationError::UnknownProvider, None));
    };
    let Some(mut f) = read_form(req, payload, state).await else {
        return Err(failure(
            state,
            StatusCode::BAD_REQUEST,
            "This form cannot be used",
            "The form could not be read.",
            None,
        ));
    };
    let request = f.remove("request").filter(|r| !r.is_empty());
    let sealed = f.remove("pending").unwrap_or_default();
    let Some(pending) = fed.describe_pending(&sealed) else {
        return Err(explained(
            state,
            &FederationError::StateMismatch,
            request.as_deref(),
        ));
    };
    Ok((fed, f, request, sealed, pending))
}

/// `POST /federation/link/proof`: the proof page's other way: sign in at a provider already
/// linked to the local account.
pub async fn post_link_proof(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (fed, mut f, request, sealed, pending) = match proof_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        let page = PendingLink {
            email: pending.email,
            provider_name: pending.provider_name,
            sealed,
        };
        return proof_page(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            &page,
            &pending.provider,
            request.as_deref(),
            Some("This form has expired. Please try again."),
        );
    }
    let provider = f.remove("provider").unwrap_or_default();
    if provider == pending.provider.as_str() {
        return explained(
            &state,
            &FederationError::UnknownProvider,
            request.as_deref(),
        );
    }
    let from = origin(&req, &state.trusted_proxies);
    let then = Continuation {
        request,
        proof: Some(sealed),
        ..Continuation::default()
    };
    to_provider(&state, fed, &provider, then, &from).await
}

/// `POST /federation/link`: the user signs in to the local account with its password; the
/// pending identity is then linked to it and the sign-in continues.
pub async fn post_link(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (fed, mut f, request, sealed, view) = match proof_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let (user_id, email) = (view.user_id.clone(), view.email.clone());
    let page = PendingLink {
        email: view.email,
        provider_name: view.provider_name,
        sealed: sealed.clone(),
    };
    let again = |status, message: &str| {
        proof_page(
            &req,
            &state,
            status,
            &page,
            &view.provider,
            request.as_deref(),
            Some(message),
        )
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return again(
            StatusCode::FORBIDDEN,
            "This form has expired. Please try again.",
        );
    }
    let client = match &request {
        Some(r) => match state.authorize.describe(r).await {
            Ok(p) => Some(p.client_id),
            Err(e) => return super::authorize::refused_page(&state, e),
        },
        None => None,
    };
    let from = match SignInFrom::read(&req, &state, &f).await {
        Ok(from) => from,
        Err(page) => return page,
    };
    let password = SecretString::from(f.remove("password").unwrap_or_default());
    let started = state
        .sign_in
        .with_password(
            &LoginName::parse(email.as_str()),
            password,
            from.remember,
            client.as_ref(),
            &from.origin,
            from.replacing.as_ref(),
        )
        .await;
    let started = match started {
        Ok(s) if s.session.user_id == user_id => s,
        Ok(_) => return explained(&state, &FederationError::StateMismatch, request.as_deref()),
        // The account uses two-step sign-in (or must set it up): a password alone does not
        // link a provider to it, as it would not sign in to it.
        Err(crate::services::AuthnError::SecondFactorRequired(_))
        | Err(crate::services::AuthnError::EnrolmentNeeded { .. }) => {
            return failure(
                &state,
                StatusCode::FORBIDDEN,
                "Not linked yet",
                "This account uses two-step sign-in. Sign in to it with your password and your second step, then link this provider from your account page.",
                request.as_deref(),
            )
        }
        Err(e) => {
            let (status, message) = sign_in_failure(&e);
            return with_retry_after(again(status, &message), &e);
        }
    };
    if let Err(e) = fed.link_after_proof(&sealed, &user_id, &from.origin).await {
        return explained(&state, &e, request.as_deref());
    }
    continue_after_sign_in(&req, &state, &started, request.as_deref()).await
}
