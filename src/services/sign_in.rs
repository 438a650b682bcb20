//! Signing in on Latchkey's own pages: the login pipeline proves who the user is, then an SSO
//! session starts (a new one at every sign-in, replacing the browser's old one).

use std::sync::Arc;

use secrecy::SecretString;

use super::authn::{
    AuthMethod, Authenticator, AuthnError, MagicCredential, PasskeyChallenge, SecondFactor,
    SecondStep as AfterFirstFactor, SignedIn,
};
use super::client_registry::ClientRegistry;
use super::mfa::MfaService;
use super::sessions::{SessionService, StartedSession};
use crate::domain::{
    Amr, ClientId, LoginName, ProviderId, RequestOrigin, SessionId, SsoSession, User,
};
use crate::storage::UserStore;

/// The client id the audit trail names for sign-ins on the account pages (no application
/// asked for them).
pub const ACCOUNT_PAGES_CLIENT: &str = "latchkey-account";

pub struct SignInService {
    pub(super) authn: Arc<Authenticator>,
    pub(super) users: Arc<dyn UserStore>,
    pub(super) sessions: Arc<SessionService>,
    /// Whether the client a sign-in is for requires a second factor.
    pub(super) clients: Arc<ClientRegistry>,
    /// Enrolling a second factor during a sign-in (a policy requires one).
    pub(super) mfa: Arc<MfaService>,
}

/// A sign-in that completed: a new session, or the browser's session stepped up (issue 15:
/// its user proved a second factor or their password again; same id and cookie).
#[derive(Debug)]
pub enum SessionReady {
    Started(StartedSession),
    SteppedUp(SsoSession),
}

impl SessionReady {
    pub fn session(&self) -> &SsoSession {
        match self {
            SessionReady::Started(s) => &s.session,
            SessionReady::SteppedUp(s) => s,
        }
    }
}

impl SignInService {
    pub fn new(
        authn: Arc<Authenticator>,
        users: Arc<dyn UserStore>,
        sessions: Arc<SessionService>,
        clients: Arc<ClientRegistry>,
        mfa: Arc<MfaService>,
    ) -> Self {
        Self {
            authn,
            users,
            sessions,
            clients,
            mfa,
        }
    }

    pub fn sessions(&self) -> &Arc<SessionService> {
        &self.sessions
    }

    /// Signs in with a name and password (throttled and audited exactly as the password
    /// grant), then starts a session.
    pub async fn with_password(
        &self,
        name: &LoginName,
        password: SecretString,
        remember: bool,
        client: Option<&ClientId>,
        origin: &RequestOrigin,
        replacing: Option<&SessionId>,
    ) -> Result<StartedSession, AuthnError> {
        let client_id = client_or_pages(client)?;
        let signed_in = self
            .authn
            .sign_in_with_password(name, password, &client_id, origin)
            .await?;
        self.second_factor_first(&signed_in, &client_id, origin)
            .await?;
        self.finish(signed_in, remember, &client_id, origin, replacing)
            .await
    }

    /// A user with a second factor is not signed in by the first one alone:
    /// `SecondFactorRequired` with the `mfa_token` the second step page carries. A user a
    /// policy covers who has none is taken through enrolment first: `EnrolmentNeeded`.
    async fn second_factor_first(
        &self,
        signed_in: &SignedIn,
        client_id: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<(), AuthnError> {
        let client_requires = self.client_requires_mfa(client_id).await?;
        match self.authn.second_step(signed_in, client_requires).await? {
            AfterFirstFactor::Done => Ok(()),
            AfterFirstFactor::Verify => {
                let token = self.authn.mfa_token(signed_in, client_id, origin).await?;
                Err(AuthnError::SecondFactorRequired(token))
            }
            AfterFirstFactor::Enrol { may_skip } => {
                let token = self
                    .authn
                    .enrolment_token(signed_in, client_id, origin)
                    .await?;
                Err(AuthnError::EnrolmentNeeded { token, may_skip })
            }
        }
    }

    /// Whether the client requires a second factor (`clients ... --require-mfa`).
    pub(super) async fn client_requires_mfa(&self, id: &ClientId) -> Result<bool, AuthnError> {
        if id.as_str() == ACCOUNT_PAGES_CLIENT {
            return Ok(false);
        }
        Ok(self
            .clients
            .find(id)
            .await?
            .is_some_and(|c| c.oidc.require_mfa))
    }

    /// The second step of a sign-in on the hosted pages: the `mfa_token` of the first and a
    /// TOTP or recovery code, then a session (`amr`: the first method, `otp` and `mfa`); for
    /// a step-up, the browser's session (`current`) is stepped up instead.
    pub async fn with_second_factor(
        &self,
        mfa_token: &SecretString,
        factor: SecondFactor,
        remember: bool,
        client: Option<&ClientId>,
        origin: &RequestOrigin,
        current: Option<&SsoSession>,
    ) -> Result<SessionReady, AuthnError> {
        let client_id = client_or_pages(client)?;
        let signed_in = self
            .authn
            .sign_in_with_mfa_token(mfa_token, factor, &client_id, origin)
            .await?;
        self.complete(signed_in, remember, &client_id, origin, current)
            .await
    }

    /// A sign-in whose every step is done: a new session, or, for a step-up, the browser's
    /// session (which must be the one the step-up started from) stepped up.
    pub(super) async fn complete(
        &self,
        signed_in: SignedIn,
        remember: bool,
        client_id: &ClientId,
        origin: &RequestOrigin,
        current: Option<&SsoSession>,
    ) -> Result<SessionReady, AuthnError> {
        let Some(id) = signed_in.session.clone() else {
            return self
                .finish(
                    signed_in,
                    remember,
                    client_id,
                    origin,
                    current.map(|s| &s.id),
                )
                .await
                .map(SessionReady::Started);
        };
        let session = current
            .filter(|s| s.id == id && s.user_id == signed_in.user.id)
            .ok_or(AuthnError::InvalidMfaToken)?;
        // What this step proved: the methods after the first (the session holds that one).
        let proved = signed_in.methods.get(1..).unwrap_or(&[]);
        let mut added = amr_of(proved);
        if proved.iter().any(|m| m.is_second_factor()) {
            added.push(Amr::Mfa);
        }
        let stepped = self
            .sessions
            .step_up(session, &added, origin)
            .await?
            .ok_or(AuthnError::InvalidMfaToken)?;
        self.authn
            .record_sign_in(&signed_in, client_id.as_str(), origin)
            .await;
        Ok(SessionReady::SteppedUp(stepped))
    }

    /// Signs in with a passkey and no password (a discoverable credential, from the sign-in
    /// page's button or the browser's autofill), then starts a session (`amr`: `hwk` or
    /// `swk`, and `mfa`: the passkey's user verification is the second factor).
    pub async fn with_passkey(
        &self,
        ceremony: &str,
        response: &str,
        remember: bool,
        client: Option<&ClientId>,
        origin: &RequestOrigin,
        replacing: Option<&SessionId>,
    ) -> Result<StartedSession, AuthnError> {
        let client_id = client_or_pages(client)?;
        let signed_in = self
            .authn
            .sign_in_with_passkey(ceremony, response, client_id.as_str(), origin)
            .await?;
        self.finish(signed_in, remember, &client_id, origin, replacing)
            .await
    }

    /// A passkey sign-in for the sign-in page to offer (its button and the browser's
    /// autofill); `None` when passkeys are off.
    pub fn passkey_sign_in(&self) -> Option<PasskeyChallenge> {
        self.authn.passkeys()?;
        match self.authn.start_passkey_sign_in() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "could not start a passkey sign-in");
                None
            }
        }
    }

    /// What the second step page offers for the user of `mfa_token`: whether they have an
    /// authenticator app, and a passkey ceremony when they have passkeys. An unknown or
    /// expired token offers the code form only (the step then says to start again).
    pub async fn second_step(&self, mfa_token: &str) -> SecondStep {
        let Some(user) = self.authn.mfa_token_user(mfa_token) else {
            return SecondStep {
                totp: true,
                passkey: None,
            };
        };
        let (totp, passkeys) = self
            .authn
            .second_factor_kinds(&user)
            .await
            .unwrap_or((true, false));
        let passkey = if passkeys {
            self.authn
                .start_passkey_second_factor(&user)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not start a passkey second factor");
                    None
                })
        } else {
            None
        };
        SecondStep {
            // A user whose only factor is a passkey still sees the code form when passkeys
            // were turned off since (then only a recovery code gets them in).
            totp: totp || passkey.is_none(),
            passkey,
        }
    }

    /// Signs in with a magic link or its code asked for on the hosted pages (bound to
    /// [`ACCOUNT_PAGES_CLIENT`]; wrong codes count in the login throttle), then starts a
    /// session.
    /// `client`: the application the sign-in continues to (its policy applies, and the
    /// second step is bound to it).
    pub async fn with_magic_link(
        &self,
        credential: MagicCredential,
        remember: bool,
        client: Option<&ClientId>,
        origin: &RequestOrigin,
        replacing: Option<&SessionId>,
    ) -> Result<StartedSession, AuthnError> {
        let pages = pages_client()?;
        let signed_in = self
            .authn
            .redeem_magic_link(credential, &pages, origin)
            .await?;
        let client_id = client_or_pages(client)?;
        self.second_factor_first(&signed_in, &client_id, origin)
            .await?;
        self.finish(signed_in, remember, &pages, origin, replacing)
            .await
    }

    /// Signs in the user an upstream provider's identity belongs to (found or created by the
    /// federation service), then starts a session. A user with a second factor is asked for
    /// it (unless `mfa.after_federation` is off and no policy covers them), and a user a
    /// policy covers sets one up first, as after a password.
    pub async fn with_federation(
        &self,
        user: User,
        provider: &ProviderId,
        remember: bool,
        client: Option<&ClientId>,
        origin: &RequestOrigin,
        replacing: Option<&SessionId>,
    ) -> Result<StartedSession, AuthnError> {
        let client_id = client_or_pages(client)?;
        let signed_in = self
            .authn
            .sign_in_federated(user, provider, client_id.as_str(), origin)
            .await?;
        self.second_factor_first(&signed_in, &client_id, origin)
            .await?;
        self.finish(signed_in, remember, &client_id, origin, replacing)
            .await
    }

    /// Records the sign-in and starts the session; the upstream provider of a federated
    /// sign-in joins `fed` in `amr`.
    pub(super) async fn finish(
        &self,
        signed_in: SignedIn,
        remember: bool,
        client_id: &ClientId,
        origin: &RequestOrigin,
        replacing: Option<&SessionId>,
    ) -> Result<StartedSession, AuthnError> {
        let user = &signed_in.user;
        let (verified, rehashed) = match &signed_in.password {
            Some(p) => (Some(p.hash.as_str()), p.rehashed.as_deref()),
            None => (None, None),
        };
        let now = self.sessions.now();
        if !self
            .users
            .record_login(&user.id, verified, rehashed, now)
            .await?
        {
            // The password changed while this sign-in was checked: it does not complete.
            return Err(AuthnError::InvalidCredentials);
        }
        let mut amr = amr_of(&signed_in.methods);
        if let Some(p) = &signed_in.provider {
            amr.push(Amr::Idp(p.clone()));
            amr.sort_unstable();
        }
        let started = self
            .sessions
            .start(&user.id, amr, remember, origin, replacing)
            .await?;
        self.authn
            .record_sign_in(&signed_in, client_id.as_str(), origin)
            .await;
        Ok(started)
    }
}

/// What the second step of a sign-in offers.
pub struct SecondStep {
    /// The authenticator-app code form.
    pub totp: bool,
    /// A passkey ceremony, for a user with passkeys.
    pub passkey: Option<PasskeyChallenge>,
}

/// The application a sign-in continues to, or the pages' own client id when there is none.
fn client_or_pages(client: Option<&ClientId>) -> Result<ClientId, AuthnError> {
    match client {
        Some(c) => Ok(c.clone()),
        None => pages_client(),
    }
}

/// The client id of the hosted pages' own sign-ins.
pub fn pages_client() -> Result<ClientId, AuthnError> {
    ClientId::parse(ACCOUNT_PAGES_CLIENT)
        .map_err(|e| AuthnError::Unexpected(anyhow::anyhow!(e.message)))
}

/// The `amr` values (RFC 8176) of the methods a sign-in used.
pub fn amr_of(methods: &[AuthMethod]) -> Vec<Amr> {
    let mut amr: Vec<Amr> = methods
        .iter()
        .map(|m| match m {
            AuthMethod::Password => Amr::Pwd,
            AuthMethod::MagicLink | AuthMethod::MagicCode => Amr::Otp,
            AuthMethod::Federated => Amr::Fed,
            AuthMethod::Totp | AuthMethod::RecoveryCode => Amr::Otp,
            AuthMethod::Passkey => Amr::Hwk,
            AuthMethod::SyncedPasskey => Amr::Swk,
        })
        .collect();
    // RFC 8176 `mfa`: a second factor followed a first, or a passkey with user verification
    // (two factors in one) was used.
    if (methods.len() > 1 && methods.iter().any(|m| m.is_second_factor()))
        || methods.iter().any(|m| m.is_multi_factor())
    {
        amr.push(Amr::Mfa);
    }
    amr.sort_unstable();
    amr.dedup();
    amr
}
