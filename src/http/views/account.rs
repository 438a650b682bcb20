//! The account page (`/account`): the signed-in user's profile, password, sessions and the
//! applications they approved. Signed in through the SSO session cookie; every form carries
//! the browser's CSRF token. Each action calls the account, session and consent services the
//! JSON API uses.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{TimeZone, Utc};
use minijinja::context;
use secrecy::SecretString;

use super::browser::sentence;
use super::browser::{current_session, read_form};
use super::cookies;
use super::csrf::{form_is_genuine, form_page_with};
use crate::domain::{ClientId, SessionId, SsoSession};
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{AccountError, EndReason, MfaCaller, PasswordChange, ACCOUNT_PAGES_CLIENT};

pub(super) fn when(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// To the sign-in page, which comes back here.
pub(super) fn to_sign_in() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A notice or an error shown at the top of the page.
pub(super) enum Notice {
    Done(&'static str),
    Failed(StatusCode, Vec<String>),
}

/// `GET /account`.
pub async fn get_account(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match current_session(&req, &state).await {
        Ok(Some(session)) => account_page(&req, &state, &session, None).await,
        Ok(None) => to_sign_in(),
        Err(page) => page,
    }
}

pub(super) async fn account_page(
    req: &HttpRequest,
    state: &AppState,
    session: &SsoSession,
    notice: Option<Notice>,
) -> HttpResponse {
    let profile = match state.accounts.profile_of(&session.user_id).await {
        Ok(p) => p,
        Err(AccountError::Unexpected(cause)) => {
            tracing::error!(error = ?cause, "the account page could not be read");
            return super::browser::unavailable(&state.pages);
        }
        Err(_) => return to_sign_in(),
    };
    let sessions = state
        .sign_in
        .sessions()
        .list(&session.user_id)
        .await
        .unwrap_or_default();
    let sessions: Vec<minijinja::Value> = sessions
        .iter()
        .map(|s| {
            context! {
                id => s.id.as_str(),
                device => s.user_agent.as_deref().map_or_else(|| "Unknown device".into(), device_name),
                user_agent => s.user_agent.as_deref().unwrap_or(""),
                ip => s.ip.clone().unwrap_or_default(),
                started => when(s.created_at),
                last_seen => when(s.last_seen_at),
                current => s.id == session.id,
            }
        })
        .collect();
    let consents = state
        .authorize
        .consents_of(&session.user_id)
        .await
        .unwrap_or_default();
    let mut apps = Vec::new();
    for c in &consents {
        let name = match state.authorize.client_name(&c.client_id).await {
            Some(n) => n,
            None => c.client_id.as_str().to_owned(),
        };
        apps.push(context! {
            client_id => c.client_id.as_str(),
            name,
            scopes => c.scope.to_wire(),
            granted => when(c.granted_at),
        });
    }
    let mfa = state
        .mfa
        .overview(&session.user_id)
        .await
        .unwrap_or(crate::services::MfaOverview {
            factors: Vec::new(),
            recovery_codes_left: 0,
        });
    let mfa_factors: Vec<minijinja::Value> = mfa
        .factors
        .iter()
        .map(|f| {
            context! {
                id => f.id.as_str(),
                name => f.name.as_str(),
                kind => if f.kind == "totp" { "Authenticator app" } else { "Passkey" },
                added => f.created_at.get(..16).unwrap_or("").replace('T', " "),
                last_used => f.last_used_at.as_deref().map(|t| t.get(..16).unwrap_or("").replace('T', " ")),
            }
        })
        .collect();
    // Changing factors needs a recent sign-in, else the password in the form.
    let mfa_recent = state.mfa.is_recent(session.auth_time);
    // Adding a passkey: the ceremony is started with the page and finished with its form.
    let passkey = state
        .mfa
        .start_passkey(
            MfaCaller::Session {
                user: &session.user_id,
                client_id: ACCOUNT_PAGES_CLIENT,
                signed_in_at: session.auth_time,
            },
            None,
            &origin(req, &state.trusted_proxies),
        )
        .await
        .ok()
        .map(|c| context! { options => c.options.to_string(), ceremony => c.ceremony });
    let links = match state.federation.as_deref() {
        Some(fed) => fed.links_of(&session.user_id).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let links: Vec<minijinja::Value> = links
        .iter()
        .map(|l| {
            let provider_name = state
                .federation
                .as_deref()
                .map_or_else(|| l.provider.to_string(), |f| f.provider_name(&l.provider));
            context! {
                id => l.id.as_str(),
                provider_name,
                email => l.email.clone(),
                display_name => l.display_name.clone(),
                linked => when(l.created_at),
            }
        })
        .collect();
    let providers: Vec<minijinja::Value> = state
        .federation
        .as_deref()
        .map(|f| f.providers())
        .unwrap_or_default()
        .iter()
        .map(|p| context! { id => p.id.as_str(), name => p.display_name.as_str() })
        .collect();
    let (status, done, errors) = match notice {
        None => (StatusCode::OK, None, Vec::new()),
        Some(Notice::Done(text)) => (StatusCode::OK, Some(text), Vec::new()),
        Some(Notice::Failed(status, errors)) => (status, None, errors),
    };
    let scripted = passkey.is_some();
    form_page_with(
        req,
        state,
        status,
        "account.html",
        context! {
            title => "Your account",
            email => profile.email,
            display_name => profile.display_name,
            username => profile.username,
            has_password => profile.has_password,
            sessions,
            apps,
            links,
            providers,
            mfa_factors,
            recovery_codes_left => mfa.recovery_codes_left,
            mfa_recent,
            passkey,
            done,
            errors,
        },
        None,
        scripted,
    )
}

/// The signed-in session and the posted form of an account action, its CSRF token checked.
pub(super) async fn signed_in_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(SsoSession, std::collections::HashMap<String, String>), HttpResponse> {
    let Some(form) = read_form(req, payload, state).await else {
        return Err(state.pages.message(
            StatusCode::BAD_REQUEST,
            "This did not work",
            "The form could not be read.",
        ));
    };
    let session = match current_session(req, state).await? {
        Some(s) => s,
        None => return Err(to_sign_in()),
    };
    if !form_is_genuine(req, state, form.get("csrf").map(String::as_str)) {
        return Err(state.pages.message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload your account page and try again.",
        ));
    }
    Ok((session, form))
}

/// `POST /account/password`.
pub async fn post_password(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, mut form) = match signed_in_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let change = PasswordChange {
        current_password: SecretString::from(form.remove("current_password").unwrap_or_default()),
        new_password: SecretString::from(form.remove("new_password").unwrap_or_default()),
        keep_current_session: true,
    };
    let from = origin(&req, &state.trusted_proxies);
    let result = state
        .accounts
        .change_password_in_session(
            &session.user_id,
            &session.id,
            ACCOUNT_PAGES_CLIENT,
            change,
            &from,
        )
        .await;
    let notice = match result {
        Ok(()) => Notice::Done("Your password was changed. You were signed out everywhere else."),
        Err(AccountError::PasswordPolicy(v)) => {
            Notice::Failed(StatusCode::BAD_REQUEST, problems_text(&v))
        }
        Err(AccountError::InvalidCredentials) => Notice::Failed(
            StatusCode::BAD_REQUEST,
            vec!["The current password is not correct.".into()],
        ),
        Err(AccountError::Throttled(t)) => Notice::Failed(
            StatusCode::TOO_MANY_REQUESTS,
            vec![format!(
                "Too many attempts. Please wait {} seconds and try again.",
                t.retry_after_secs
            )],
        ),
        Err(AccountError::Unexpected(cause)) => {
            tracing::error!(error = ?cause, "password change failed");
            Notice::Failed(
                StatusCode::SERVICE_UNAVAILABLE,
                vec!["The password could not be changed right now. Please try again.".into()],
            )
        }
        Err(other) => Notice::Failed(StatusCode::BAD_REQUEST, vec![sentence(&other.to_string())]),
    };
    account_page(&req, &state, &session, Some(notice)).await
}

fn problems_text(v: &[crate::domain::PolicyViolation]) -> Vec<String> {
    v.iter().map(|p| sentence(&p.message)).collect()
}

/// `POST /account/sessions/end`: ends one of the user's sessions.
pub async fn post_end_session(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, form) = match signed_in_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let Some(target) = form.get("session_id").and_then(|s| SessionId::parse(s)) else {
        return account_page(
            &req,
            &state,
            &session,
            Some(Notice::Failed(
                StatusCode::BAD_REQUEST,
                vec!["No such session.".into()],
            )),
        )
        .await;
    };
    let from = origin(&req, &state.trusted_proxies);
    let sessions = state.sign_in.sessions();
    let owned = sessions
        .list(&session.user_id)
        .await
        .is_ok_and(|all| all.iter().any(|s| s.id == target));
    if !owned {
        return account_page(
            &req,
            &state,
            &session,
            Some(Notice::Failed(
                StatusCode::NOT_FOUND,
                vec!["No such session.".into()],
            )),
        )
        .await;
    }
    if let Err(e) = sessions.end(&target, EndReason::Logout, Some(&from)).await {
        tracing::error!(error = %e, "ending a session failed");
        return account_page(
            &req,
            &state,
            &session,
            Some(Notice::Failed(
                StatusCode::SERVICE_UNAVAILABLE,
                vec!["The session could not be ended right now. Please try again.".into()],
            )),
        )
        .await;
    }
    if target == session.id {
        return signed_out(&state);
    }
    account_page(
        &req,
        &state,
        &session,
        Some(Notice::Done("The session was ended.")),
    )
    .await
}

/// `POST /account/logout-all`: "sign out everywhere": every session and every token.
pub async fn post_logout_all(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, _) = match signed_in_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    if let Err(e) = state
        .revocations
        .revoke_user(&session.user_id, "logout-all")
        .await
    {
        tracing::error!(error = %e, "sign out everywhere failed");
        return account_page(
            &req,
            &state,
            &session,
            Some(Notice::Failed(
                StatusCode::SERVICE_UNAVAILABLE,
                vec!["Signing out everywhere is not possible right now. Please try again.".into()],
            )),
        )
        .await;
    }
    signed_out(&state)
}

/// `POST /account/consents/revoke`: forgets the approval of an application.
pub async fn post_revoke_consent(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, form) = match signed_in_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let notice = match form.get("client_id").map(|c| ClientId::parse(c)) {
        Some(Ok(client)) => match state
            .authorize
            .revoke_consent(&session.user_id, &client)
            .await
        {
            Ok(true) => Notice::Done("The application will ask for your approval again."),
            Ok(false) => Notice::Failed(StatusCode::NOT_FOUND, vec!["No such application.".into()]),
            Err(e) => {
                tracing::error!(error = %e, "revoking a consent failed");
                Notice::Failed(
                    StatusCode::SERVICE_UNAVAILABLE,
                    vec!["This is not possible right now. Please try again.".into()],
                )
            }
        },
        _ => Notice::Failed(StatusCode::BAD_REQUEST, vec!["No such application.".into()]),
    };
    account_page(&req, &state, &session, Some(notice)).await
}

/// `POST /account/links/add`: to the provider, to link the identity the user signs in with
/// there to this account (the callback checks the same user is still signed in).
pub async fn post_add_link(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, form) = match signed_in_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let provider = form.get("provider").cloned().unwrap_or_default();
    let fed = state.federation.as_deref();
    let Some(fed) = fed.filter(|f| f.provider(&provider).is_ok()) else {
        return account_page(
            &req,
            &state,
            &session,
            Some(Notice::Failed(
                StatusCode::NOT_FOUND,
                vec!["No such provider.".into()],
            )),
        )
        .await;
    };
    let from = crate::http::origin::origin(&req, &state.trusted_proxies);
    let then = crate::services::Continuation {
        link_to: Some(session.user_id.clone()),
        ..Default::default()
    };
    super::federation::to_provider(&state, fed, &provider, then, &from).await
}

/// `POST /account/links/remove`: removes a link, unless it is the last way to sign in.
pub async fn post_remove_link(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, form) = match signed_in_form(&req, payload, &state).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let link = form
        .get("link_id")
        .and_then(|l| crate::domain::LinkId::parse(l).ok());
    let notice = match (state.federation.as_deref(), link) {
        (Some(fed), Some(link)) => {
            let from = crate::http::origin::origin(&req, &state.trusted_proxies);
            match fed.unlink(&session.user_id, &link, &from).await {
                Ok(crate::storage::Unlink::Removed) => Notice::Done("The account was unlinked."),
                Ok(crate::storage::Unlink::NotFound) => {
                    Notice::Failed(StatusCode::NOT_FOUND, vec!["No such linked account.".into()])
                }
                Ok(crate::storage::Unlink::LastWayToSignIn) => Notice::Failed(
                    StatusCode::CONFLICT,
                    vec!["This is your only way to sign in. Set a password or link another account first.".into()],
                ),
                Err(e) => {
                    tracing::error!(error = %e, "removing a link failed");
                    Notice::Failed(
                        StatusCode::SERVICE_UNAVAILABLE,
                        vec!["This is not possible right now. Please try again.".into()],
                    )
                }
            }
        }
        _ => Notice::Failed(
            StatusCode::BAD_REQUEST,
            vec!["No such linked account.".into()],
        ),
    };
    account_page(&req, &state, &session, Some(notice)).await
}

fn signed_out(state: &AppState) -> HttpResponse {
    let mut r = state.pages.render(
        StatusCode::OK,
        "signed_out.html",
        context! { title => "You are signed out" },
    );
    let _ = r.add_cookie(&cookies::clear_session_cookie(state));
    r
}

/// A session's device in words ("Chrome on Linux") from its `User-Agent`; the raw value
/// when neither the browser nor the system is recognised.
fn device_name(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    let system = [
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => ua.chars().take(80).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::device_name;

    #[test]
    fn devices_are_named_in_words() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", "Chrome on Linux"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iOS"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox on macOS"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
            ("curl/8.5.0", "curl"),
            ("something else", "something else"),
        ];
        for (ua, name) in cases {
            assert_eq!(device_name(ua), name, "{ua}");
        }
    }
}
