//! The authorization endpoint's decisions (RFC 6749 §4.1, OIDC Core §3.1.2): check the
//! request, then sign the user in, ask for consent, or answer the client with a code or an
//! error. The request travels sealed (AES-GCM under a key derived from the master key)
//! through the sign-in and consent pages, so no server-side state is kept for it and any
//! instance can continue it.

mod request;

use std::sync::Arc;

use tracing::{error, info};

use super::authn::Authenticator;
use super::client_registry::ClientRegistry;
use super::sessions::SessionService;
use crate::clock::{Clock, UnixTime};
use crate::crypto::{mint_lookup_secret, BrowserSeal};
use crate::domain::{Amr, AuthorizationCode, Client, ClientId, SsoSession};
use crate::storage::{AuthorizationCodeStore, ConsentStore};
pub use request::{
    AuthorizationRequest, AuthorizeError, AuthorizeParams, ErrorRedirect, Prompt, ResponseMode,
    OIDC_SCOPES,
};

/// The endpoint's settings.
#[derive(Debug, Clone)]
pub struct AuthorizeSettings {
    /// `iss` of every response (RFC 9207).
    pub issuer: String,
    /// The audience of tokens when neither request nor client names one.
    pub default_audience: String,
    /// How long a code may be exchanged.
    pub code_ttl: i64,
    /// How long a user may take to sign in and consent.
    pub request_ttl: i64,
}

/// The sealed request's purpose (bound into the AEAD).
const SEAL_PURPOSE: &str = "latchkey authorization request v1";

/// What happens next.
#[derive(Debug)]
pub enum Next {
    /// The user signs in first (or signs up, with `create`).
    SignIn(PendingRequest),
    /// The user approves or denies the client's request.
    Consent(PendingRequest),
    /// Back to the client.
    Respond(AuthorizationResponse),
    /// The user is signed in, but the session does not meet the request (`acr_values`,
    /// `max_age`, a policy): they prove what is missing (issue 15).
    StepUp(Box<StepUp>),
}

/// A step-up: the session, and what its user proves on the next page.
#[derive(Debug)]
pub struct StepUp {
    pub pending: PendingRequest,
    pub session: SsoSession,
    /// A second factor (theirs, or one they set up now); otherwise the password again.
    pub second_factor: bool,
}

/// A request waiting on the user, as the pages need it.
#[derive(Debug)]
pub struct PendingRequest {
    /// The request, sealed: the pages carry it in their forms.
    pub sealed: String,
    pub client_id: ClientId,
    pub client_name: String,
    /// The scopes asked for (the consent page words them).
    pub scopes: Vec<String>,
    pub login_hint: Option<String>,
    /// `prompt=create`: open the sign-up form.
    pub create: bool,
    /// The identity provider the client asked to sign in with, if any.
    pub idp_hint: Option<String>,
    /// Where the pages' forms end up once the user is done (the checked redirect URI): the
    /// pages' CSP `form-action` must allow it, as browsers apply it to the redirect that
    /// answers the form.
    pub redirect_uri: String,
}

/// A response to the client (RFC 6749 §4.1.2): a code or an error, with `state` and `iss`.
#[derive(Debug)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub params: Vec<(&'static str, String)>,
}

pub struct AuthorizeService {
    clients: Arc<ClientRegistry>,
    /// Who must use a second factor, and what a user can prove (step-up).
    authn: Arc<Authenticator>,
    sessions: Arc<SessionService>,
    codes: Arc<dyn AuthorizationCodeStore>,
    consents: Arc<dyn ConsentStore>,
    seal: Arc<BrowserSeal>,
    clock: Arc<dyn Clock>,
    settings: AuthorizeSettings,
}

impl AuthorizeService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        clients: Arc<ClientRegistry>,
        authn: Arc<Authenticator>,
        sessions: Arc<SessionService>,
        codes: Arc<dyn AuthorizationCodeStore>,
        consents: Arc<dyn ConsentStore>,
        seal: Arc<BrowserSeal>,
        clock: Arc<dyn Clock>,
        settings: AuthorizeSettings,
    ) -> Self {
        Self {
            clients,
            authn,
            sessions,
            codes,
            consents,
            seal,
            clock,
            settings,
        }
    }

    pub fn sessions(&self) -> &Arc<SessionService> {
        &self.sessions
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// A new authorization request, with the browser's session if it has one.
    pub async fn begin(
        &self,
        params: AuthorizeParams,
        session: Option<&SsoSession>,
    ) -> Result<Next, AuthorizeError> {
        let client = match params.client_id.as_deref().map(ClientId::parse) {
            Some(Ok(id)) => self.client(&id).await?,
            _ => None,
        };
        let request = request::check(
            params,
            client.as_deref(),
            &self.settings.default_audience,
            self.clock.now(),
        )?;
        let Some(client) = client else {
            return Err(AuthorizeError::Untrusted("unknown client".into()));
        };
        self.decide(&request, &client, session, false).await
    }

    /// Continues a sealed request after the user signed in (or came back with a session).
    pub async fn resume(
        &self,
        sealed: &str,
        session: Option<&SsoSession>,
    ) -> Result<Next, AuthorizeError> {
        let (request, client) = self.open(sealed).await?;
        self.decide(&request, &client, session, false).await
    }

    /// A sealed request, described again for its page (a failed sign-in shows the page
    /// again).
    pub async fn describe(&self, sealed: &str) -> Result<PendingRequest, AuthorizeError> {
        let (request, client) = self.open(sealed).await?;
        self.pending(&request, &client)
    }

    /// The user's answer on the consent page.
    pub async fn answer_consent(
        &self,
        sealed: &str,
        session: Option<&SsoSession>,
        allow: bool,
    ) -> Result<Next, AuthorizeError> {
        let (request, client) = self.open(sealed).await?;
        let Some(session) = session else {
            // Signed out meanwhile: sign in again, then the consent page again.
            return self.decide(&request, &client, None, false).await;
        };
        if !allow {
            info!(
                client_id = client.id.as_str(),
                user_id = session.user_id.as_str(),
                "consent denied"
            );
            return Ok(Next::Respond(self.error_response(
                &request,
                "access_denied",
                "the user denied the request",
            )));
        }
        self.consents
            .grant(
                &session.user_id,
                &client.id,
                &request.scope(),
                self.clock.now(),
            )
            .await
            .map_err(unavailable)?;
        self.decide(&request, &client, Some(session), true).await
    }

    /// The request inside a sealed value, if it is ours, recent, and its client and redirect
    /// URI are still trusted.
    async fn open(
        &self,
        sealed: &str,
    ) -> Result<(AuthorizationRequest, Arc<Client>), AuthorizeError> {
        let expired = || {
            AuthorizeError::Untrusted(
                "This sign-in request has expired or is not valid. Go back to the application and start again."
                    .into(),
            )
        };
        let request: AuthorizationRequest = self
            .seal
            .open(SEAL_PURPOSE, sealed)
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or_else(expired)?;
        let now = self.clock.now();
        if now - request.issued_at > self.settings.request_ttl || request.issued_at > now + 60 {
            return Err(expired());
        }
        let id = ClientId::parse(&request.client_id).map_err(|_| expired())?;
        let client = self
            .client(&id)
            .await?
            .filter(|c| c.enabled && c.accepts_redirect_uri(&request.redirect_uri))
            .ok_or_else(|| {
                AuthorizeError::Untrusted(
                    "The application that sent you here is no longer available.".into(),
                )
            })?;
        Ok((request, client))
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, AuthorizeError> {
        self.clients.find(id).await.map_err(unavailable)
    }

    /// Sign in, consent, or answer.
    async fn decide(
        &self,
        request: &AuthorizationRequest,
        client: &Client,
        session: Option<&SsoSession>,
        consented_now: bool,
    ) -> Result<Next, AuthorizeError> {
        let now = self.clock.now();
        // Signed in during this request: that meets prompt=login, prompt=create and any
        // max_age, however long the user then takes on the consent page (else max_age=0
        // would ask again, and forever with prompt=consent).
        let signed_in_now = |s: &SsoSession| s.auth_time >= request.issued_at;
        let wants_new = request.prompt.login || request.prompt.create;
        let fresh = session.filter(|s| s.is_live(now) && (!wants_new || signed_in_now(s)));
        let Some(session) = fresh else {
            if request.prompt.none {
                return Ok(Next::Respond(self.error_response(
                    request,
                    "login_required",
                    "the user is not signed in",
                )));
            }
            return Ok(Next::SignIn(self.pending(request, client)?));
        };
        if let Some(next) = self.step_up(request, client, session, now).await? {
            return Ok(next);
        }
        if !client.oidc.first_party && !consented_now {
            let scope = request.scope();
            let covered = self
                .consents
                .find(&session.user_id, &client.id)
                .await
                .map_err(unavailable)?
                .is_some_and(|c| scope.is_subset_of(&c.scope));
            if !covered || request.prompt.consent {
                if request.prompt.none {
                    return Ok(Next::Respond(self.error_response(
                        request,
                        "consent_required",
                        "the user has not approved this application",
                    )));
                }
                return Ok(Next::Consent(self.pending(request, client)?));
            }
        }
        self.issue_code(request, client, session, now).await
    }

    /// Issue 15: a session too old for `max_age`, or with one factor where `acr_values`, the
    /// client or a policy asks for two, is stepped up rather than replaced: the user proves
    /// their second factor (or sets one up when one is required), or, with none, their
    /// password again. `prompt=none` cannot show a page: `login_required` (too old) or
    /// `interaction_required`. `None`: the session meets the request.
    async fn step_up(
        &self,
        request: &AuthorizationRequest,
        client: &Client,
        session: &SsoSession,
        now: UnixTime,
    ) -> Result<Option<Next>, AuthorizeError> {
        let stale = request
            .max_age
            .is_some_and(|m| now - session.auth_time > m && session.auth_time < request.issued_at);
        let one_factor = !session.amr.contains(&Amr::Mfa);
        let policy = one_factor
            && self
                .authn
                .session_needs_mfa(&session.user_id, client.oidc.require_mfa)
                .await
                .map_err(unavailable)?;
        let asked = one_factor && request.wants_mfa();
        if !stale && !policy && !asked {
            return Ok(None);
        }
        let has_factor = self
            .authn
            .has_second_factor(&session.user_id)
            .await
            .map_err(unavailable)?;
        let can_enrol = self.authn.mfa_policy().required.allows_enrolment();
        let second_factor = if has_factor || ((policy || asked) && can_enrol) {
            true
        } else if policy {
            // Required, and no second factor can be set up (`mfa.required = "off"`).
            return Ok(Some(Next::Respond(self.error_response(
                request,
                "access_denied",
                "this application requires two-step sign-in, which cannot be set up on this server",
            ))));
        } else if stale {
            false
        } else {
            // `acr_values` is a voluntary claim: the session's own `acr` answers it.
            return Ok(None);
        };
        if request.prompt.none {
            let (error, description) = if stale {
                ("login_required", "the authentication is older than max_age")
            } else {
                (
                    "interaction_required",
                    "the requested authentication context needs the user's second factor",
                )
            };
            return Ok(Some(Next::Respond(self.error_response(
                request,
                error,
                description,
            ))));
        }
        if !second_factor
            && !self
                .authn
                .has_password(&session.user_id)
                .await
                .map_err(unavailable)?
        {
            // Nothing to prove again in this session (no password, no second factor): a
            // whole new sign-in.
            return Ok(Some(Next::SignIn(self.pending(request, client)?)));
        }
        Ok(Some(Next::StepUp(Box::new(StepUp {
            pending: self.pending(request, client)?,
            session: session.clone(),
            second_factor,
        }))))
    }

    fn pending(
        &self,
        request: &AuthorizationRequest,
        client: &Client,
    ) -> Result<PendingRequest, AuthorizeError> {
        let plain = serde_json::to_vec(request).map_err(unavailable)?;
        let sealed = self.seal.seal(SEAL_PURPOSE, &plain).map_err(unavailable)?;
        Ok(PendingRequest {
            sealed,
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            scopes: request.scope().iter().map(str::to_owned).collect(),
            login_hint: request.login_hint.clone(),
            create: request.prompt.create,
            idp_hint: request.idp_hint.clone(),
            redirect_uri: request.redirect_uri.clone(),
        })
    }

    async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        client: &Client,
        session: &SsoSession,
        now: UnixTime,
    ) -> Result<Next, AuthorizeError> {
        let (code, code_hash) = mint_lookup_secret();
        let record = AuthorizationCode {
            code_hash,
            client_id: client.id.clone(),
            user_id: session.user_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            scope: request.scope(),
            resource: request.resource.clone(),
            auth_time: session.auth_time,
            session_id: session.id.clone(),
            amr: session.amr.clone(),
            created_at: now,
            expires_at: now + self.settings.code_ttl,
        };
        self.codes.issue(&record).await.map_err(unavailable)?;
        self.sessions
            .add_client(session, &client.id)
            .await
            .map_err(unavailable)?;
        info!(
            client_id = client.id.as_str(),
            user_id = session.user_id.as_str(),
            "authorization code issued"
        );
        let mut params = vec![("code", code)];
        if let Some(state) = &request.state {
            params.push(("state", state.clone()));
        }
        params.push(("iss", self.settings.issuer.clone()));
        Ok(Next::Respond(AuthorizationResponse {
            redirect_uri: request.redirect_uri.clone(),
            response_mode: request.response_mode,
            params,
        }))
    }

    fn error_response(
        &self,
        request: &AuthorizationRequest,
        error: &'static str,
        description: &str,
    ) -> AuthorizationResponse {
        self.redirect_error(ErrorRedirect {
            redirect_uri: request.redirect_uri.clone(),
            response_mode: request.response_mode,
            state: request.state.clone(),
            error,
            description: description.to_owned(),
        })
    }

    /// An error for the client, as the response it is sent in (with `state` and `iss`).
    pub fn redirect_error(&self, e: ErrorRedirect) -> AuthorizationResponse {
        let mut params = vec![("error", e.error.to_owned())];
        params.push(("error_description", e.description));
        if let Some(state) = e.state {
            params.push(("state", state));
        }
        params.push(("iss", self.settings.issuer.clone()));
        AuthorizationResponse {
            redirect_uri: e.redirect_uri,
            response_mode: e.response_mode,
            params,
        }
    }

    /// The consents a user gave, for the account page.
    pub async fn consents_of(
        &self,
        user: &crate::domain::UserId,
    ) -> Result<Vec<crate::domain::Consent>, crate::storage::StorageError> {
        self.consents.list_for_user(user).await
    }

    /// Withdraws a user's consent to a client.
    pub async fn revoke_consent(
        &self,
        user: &crate::domain::UserId,
        client: &ClientId,
    ) -> Result<bool, crate::storage::StorageError> {
        self.consents.revoke(user, client).await
    }

    /// A client's display name (the account page lists approved applications).
    pub async fn client_name(&self, id: &ClientId) -> Option<String> {
        self.clients
            .find(id)
            .await
            .ok()
            .flatten()
            .map(|c| c.name.clone())
    }
}

/// A storage failure: logged here, answered as "try again later".
fn unavailable(e: impl Into<anyhow::Error>) -> AuthorizeError {
    let e: anyhow::Error = e.into();
    error!(error = %e, "authorization request failed");
    AuthorizeError::Unavailable
}
