//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): a client sends the user to
//! the end-session endpoint; Latchkey ends its own session (and with it the refresh tokens
//! issued in it that lack `offline_access`), then sends the user back to a registered
//! post-logout redirect URI. A request that cannot prove who sent it (no valid
//! `id_token_hint` for this browser's session) is confirmed by the user first.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::info;

use super::client_registry::ClientRegistry;
use super::revocation::RevocationError;
use super::sessions::{EndReason, SessionService};
use crate::clock::{Clock, UnixTime};
use crate::crypto::{verify_id_token_hint, BrowserSeal, KeyRing};
use crate::domain::{ClientId, RequestOrigin, SsoSession};

/// The end-session request's parameters, as received.
#[derive(Debug, Default, Clone)]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub logout_hint: Option<String>,
    pub ui_locales: Option<String>,
}

/// What happens next.
#[derive(Debug)]
pub enum LogoutNext {
    /// Ask the user ("Sign out?"); the page posts `sealed` back.
    Confirm {
        sealed: String,
        client_name: Option<String>,
        /// Where confirming leads (the checked post-logout redirect URI): the page's CSP
        /// `form-action` must allow it.
        redirect: Option<String>,
    },
    /// Done: back to the client (`redirect`, with `state`), or the signed-out page.
    SignedOut { redirect: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// Shown on an error page; never redirected.
    #[error("{0}")]
    Untrusted(String),
    #[error("the session store failed")]
    Unavailable(#[source] anyhow::Error),
}

impl From<RevocationError> for LogoutError {
    fn from(e: RevocationError) -> Self {
        LogoutError::Unavailable(e.into())
    }
}

/// A checked request, sealed while the user confirms.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckedLogout {
    /// The redirect with `state` already in it.
    redirect: Option<String>,
    client_id: Option<String>,
    issued_at: UnixTime,
}

const SEAL_PURPOSE: &str = "latchkey logout request v1";
/// How long the confirmation page may wait.
const CONFIRM_TTL: i64 = 10 * 60;

pub struct LogoutService {
    clients: Arc<ClientRegistry>,
    sessions: Arc<SessionService>,
    keys: Arc<KeyRing>,
    seal: Arc<BrowserSeal>,
    clock: Arc<dyn Clock>,
    issuer: String,
}

impl LogoutService {
    pub fn new(
        clients: Arc<ClientRegistry>,
        sessions: Arc<SessionService>,
        keys: Arc<KeyRing>,
        seal: Arc<BrowserSeal>,
        clock: Arc<dyn Clock>,
        issuer: String,
    ) -> Self {
        Self {
            clients,
            sessions,
            keys,
            seal,
            clock,
            issuer,
        }
    }

    /// The end-session request, with the browser's session if it has one.
    pub async fn begin(
        &self,
        params: LogoutParams,
        session: Option<&SsoSession>,
        origin: &RequestOrigin,
    ) -> Result<LogoutNext, LogoutError> {
        let untrusted = |m: &str| LogoutError::Untrusted(m.to_owned());
        let hint =
            match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
                Some(token) => {
                    let ring = self.keys.current().ok_or_else(|| {
                        LogoutError::Unavailable(anyhow::anyhow!("no signing keys loaded"))
                    })?;
                    Some(verify_id_token_hint(&ring, token, &self.issuer).map_err(|_| {
                    untrusted("The sign-out request carries an ID token this server did not issue.")
                })?)
                }
                None => None,
            };
        let client_id = match (params.client_id.as_deref(), &hint) {
            (Some(c), Some(h)) if c != h.aud => {
                return Err(untrusted(
                    "The sign-out request names two different applications.",
                ))
            }
            (Some(c), _) => Some(c.to_owned()),
            (None, Some(h)) => Some(h.aud.clone()),
            (None, None) => None,
        };
        let client = match &client_id {
            Some(id) => {
                let id = ClientId::parse(id)
                    .map_err(|_| untrusted("The application is not known to this server."))?;
                Some(
                    self.clients
                        .find(&id)
                        .await
                        .map_err(|e| LogoutError::Unavailable(e.into()))?
                        .filter(|c| c.enabled)
                        .ok_or_else(|| untrusted("The application is not known to this server."))?,
                )
            }
            None => None,
        };
        let redirect = match params
            .post_logout_redirect_uri
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            None => None,
            Some(uri) => {
                let Some(client) = &client else {
                    return Err(untrusted(
                        "The sign-out request asks to return to an address, but not which application it is for.",
                    ));
                };
                if !client.accepts_post_logout_redirect_uri(uri) {
                    return Err(untrusted(
                        "The address this application asked to return to after sign-out is not registered for it.",
                    ));
                }
                Some(with_state(uri, params.state.as_deref()))
            }
        };
        let Some(session) = session else {
            return Ok(LogoutNext::SignedOut { redirect });
        };
        let proven = hint.as_ref().is_some_and(|h| {
            h.sid.as_deref() == Some(session.id.as_str()) || h.sub == session.user_id.as_str()
        });
        if proven {
            self.sessions
                .end(&session.id, EndReason::Logout, Some(origin))
                .await?;
            info!(
                session_id = session.id.as_str(),
                "signed out by the application"
            );
            return Ok(LogoutNext::SignedOut { redirect });
        }
        let checked = CheckedLogout {
            redirect: redirect.clone(),
            client_id: client.as_ref().map(|c| c.id.as_str().to_owned()),
            issued_at: self.clock.now(),
        };
        let plain = serde_json::to_vec(&checked).map_err(|e| LogoutError::Unavailable(e.into()))?;
        let sealed = self
            .seal
            .seal(SEAL_PURPOSE, &plain)
            .map_err(|e| LogoutError::Unavailable(e.into()))?;
        Ok(LogoutNext::Confirm {
            sealed,
            client_name: client.map(|c| c.name.clone()),
            redirect,
        })
    }

    /// The user confirmed on the page: ends the browser's session.
    pub async fn confirm(
        &self,
        sealed: &str,
        session: Option<&SsoSession>,
        origin: &RequestOrigin,
    ) -> Result<LogoutNext, LogoutError> {
        let checked: CheckedLogout = self
            .seal
            .open(SEAL_PURPOSE, sealed)
            .and_then(|p| serde_json::from_slice(&p).ok())
            .filter(|c: &CheckedLogout| self.clock.now() - c.issued_at <= CONFIRM_TTL)
            .ok_or_else(|| {
                LogoutError::Untrusted(
                    "This sign-out page has expired. Sign out again from the application.".into(),
                )
            })?;
        if let Some(session) = session {
            self.sessions
                .end(&session.id, EndReason::Logout, Some(origin))
                .await?;
            info!(session_id = session.id.as_str(), "signed out");
        }
        Ok(LogoutNext::SignedOut {
            redirect: checked.redirect,
        })
    }
}

/// `uri` with `state` added to its query.
fn with_state(uri: &str, state: Option<&str>) -> String {
    match state.filter(|s| !s.is_empty()) {
        None => uri.to_owned(),
        Some(state) => {
            let q: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("state", state)
                .finish();
            let sep = if uri.contains('?') { '&' } else { '?' };
            format!("{uri}{sep}{q}")
        }
    }
}
