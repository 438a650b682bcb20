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
use crate::services::{CallbackParams, FederationError, FederationService, Resolution};

#[derive(serde::Deserialize)]
pub struct StartQuery {
    request: Option<String>,
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
        E::StateReplayed => (
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
        E::NoVerifiedEmail => (
            StatusCode::FORBIDDEN,
            "No verified email address",
            "The provider did not give a verified email address, which a new account needs. Verify your address there and try again.".into(),
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
    let request = query.into_inner().request.filter(|r| !r.is_empty());
    if let Some(r) = &request {
        if let Err(e) = state.authorize.describe(r).await {
            return super::authorize::refused_page(&state, e);
        }
    }
    let from = origin(&req, &state.trusted_proxies);
    to_provider(&state, fed, &path, request, None, &from).await
}

/// Sends the browser to the provider with the binding cookie.
pub(super) async fn to_provider(
    state: &AppState,
    fed: &FederationService,
    provider: &str,
    request: Option<String>,
    link_to: Option<&crate::domain::UserId>,
    from: &crate::domain::RequestOrigin,
) -> HttpResponse {
    let back = request.clone();
    match fed.begin(provider, request, link_to, from).await {
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
    let resolution = match fed.resolve(&arrived.identity, &from).await {
        Ok(r) => r,
        Err(e) => return explained(&state, &e, request.as_deref()),
    };
    let mut r = match resolution {
        Resolution::SignIn { user, .. } => {
            let client = match &request {
                Some(r) => match state.authorize.describe(r).await {
                    Ok(p) => Some(p.client_id),
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
                    client.as_ref(),
                    &from,
                    session.as_ref().map(|s| &s.id),
                )
                .await;
            match started {
                Ok(started) => {
                    continue_after_sign_in(&req, &state, &started, request.as_deref()).await
                }
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
        Resolution::NeedsProof(pending) => form_page(
            &req,
            &state,
            StatusCode::OK,
            "federation_link.html",
            context! {
                title => format!("Link your {} account", pending.provider_name),
                provider_name => pending.provider_name,
                email => pending.email.as_str(),
                pending => pending.sealed,
                request => request.as_deref(),
                error => None::<&str>,
            },
            None,
        ),
    };
    let _ = r.add_cookie(&cookies::clear_federation_cookie(&state));
    r
}

/// `POST /federation/link`: the user signs in to the local account with its password; the
/// pending identity is then linked to it and the sign-in continues.
pub async fn post_link(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(fed) = federation(&state) else {
        return explained(&state, &FederationError::UnknownProvider, None);
    };
    let Some(mut f) = read_form(&req, payload, &state).await else {
        return failure(
            &state,
            StatusCode::BAD_REQUEST,
            "This form cannot be used",
            "The form could not be read.",
            None,
        );
    };
    let request = f.remove("request").filter(|r| !r.is_empty());
    let sealed = f.remove("pending").unwrap_or_default();
    let Some((user_id, email, provider_name)) = fed.describe_pending(&sealed) else {
        return explained(&state, &FederationError::StateMismatch, request.as_deref());
    };
    let again = |status, message: &str| {
        form_page(
            &req,
            &state,
            status,
            "federation_link.html",
            context! {
                title => format!("Link your {provider_name} account"),
                provider_name => provider_name.as_str(),
                email => email.as_str(),
                pending => sealed.as_str(),
                request => request.as_deref(),
                error => Some(message),
            },
            None,
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
