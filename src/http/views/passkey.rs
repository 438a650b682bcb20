//! `POST /login/passkey` (issue 15): the browser's answer to a passkey ceremony of the hosted
//! sign-in pages. Without an `mfa_token`, a sign-in with a passkey and no password (the
//! sign-in page's button or the browser's autofill); with one, the passkey is the second
//! step after a password or a magic link. Either way the session starts and the pending
//! request goes on, as after any sign-in.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;

use super::authorize::{
    continue_after, refused_page, sign_in_failure, sign_in_page, with_retry_after,
};
use super::browser::{read_form, second_step_page, SignInFrom};
use super::csrf::form_is_genuine;
use crate::http::AppState;
use crate::services::{AuthnError, PendingRequest, SecondFactor, SessionReady};

const NOT_ACCEPTED: &str =
    "That passkey was not accepted. Please try again, or use another way to sign in.";
const NOTHING_SENT: &str = "Your browser did not send a passkey. Please try again.";

/// `POST /login/passkey`.
pub async fn post_login_passkey(
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
    let from = match SignInFrom::read(&req, &state, &f).await {
        Ok(from) => from,
        Err(page) => return page,
    };
    let mfa_token = f.remove("mfa_token").filter(|t| !t.is_empty());
    let step = Step {
        req: &req,
        state: &state,
        pending: pending.as_ref(),
        mfa_token: mfa_token.as_deref(),
        remember: from.remember,
    };
    if !form_is_genuine(&req, &state, f.get("csrf").map(String::as_str)) {
        return step
            .again(
                StatusCode::FORBIDDEN,
                "This form has expired. Please try again.",
            )
            .await;
    }
    let ceremony = f.remove("ceremony").unwrap_or_default();
    let response = f.remove("credential").unwrap_or_default();
    if ceremony.is_empty() || response.is_empty() {
        return step.again(StatusCode::BAD_REQUEST, NOTHING_SENT).await;
    }
    let client = pending.as_ref().map(|p| &p.client_id);
    let started = match &mfa_token {
        Some(token) => {
            state
                .sign_in
                .with_second_factor(
                    &SecretString::from(token.clone()),
                    SecondFactor::Passkey { ceremony, response },
                    from.remember,
                    client,
                    &from.origin,
                    from.current.as_ref(),
                )
                .await
        }
        None => state
            .sign_in
            .with_passkey(
                &ceremony,
                &response,
                from.remember,
                client,
                &from.origin,
                from.replacing.as_ref(),
            )
            .await
            .map(SessionReady::Started),
    };
    match started {
        Ok(ready) => continue_after(&req, &state, &ready, sealed.as_deref()).await,
        Err(AuthnError::InvalidMfaToken) => state.pages.message(
            StatusCode::BAD_REQUEST,
            "Please sign in again",
            "This sign-in took too long or was finished already. Please start again.",
        ),
        Err(AuthnError::InvalidSecondFactor | AuthnError::InvalidPasskey) => {
            step.again(StatusCode::UNAUTHORIZED, NOT_ACCEPTED).await
        }
        Err(e) => {
            let (status, message) = sign_in_failure(&e);
            with_retry_after(step.again(status, &message).await, &e)
        }
    }
}

/// Where a passkey answer came from, to show that page again with a message.
struct Step<'a> {
    req: &'a HttpRequest,
    state: &'a AppState,
    pending: Option<&'a PendingRequest>,
    mfa_token: Option<&'a str>,
    remember: bool,
}

impl Step<'_> {
    async fn again(&self, status: StatusCode, message: &str) -> HttpResponse {
        match self.mfa_token {
            Some(token) => {
                second_step_page(
                    self.req,
                    self.state,
                    self.pending,
                    token,
                    self.remember,
                    Some((status, message)),
                )
                .await
            }
            None => sign_in_page(
                self.req,
                self.state,
                self.pending,
                Some((status, message)),
                None,
            ),
        }
    }
}
