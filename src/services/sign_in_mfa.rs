//! The steps a policy or an authorization request adds to a sign-in on the hosted pages
//! (issue 15): setting up a second factor a policy requires before the session starts
//! ("forced enrolment", with "set up later" within the grace period), and the step-up of a
//! live session that does not meet a request's `acr_values` or `max_age` (its user proves
//! the missing factor, or their password again, and the session keeps its id).

use secrecy::SecretString;

use super::authn::{AuthMethod, AuthnError, Confirmation, SecondStep, SignedIn};
use super::mfa::{Caller, MfaError, Reauthentication, RecoveryCodes, TotpEnrolment};
use super::sign_in::{SessionReady, SignInService};
use crate::domain::{Amr, ClientId, RequestOrigin, SsoSession, User};

/// What the enrolment page shows: the authenticator app to add, and whether the user may
/// set it up later (within the grace period).
#[derive(Debug)]
pub struct EnrolmentPage {
    pub enrolment: TotpEnrolment,
    pub may_skip: bool,
}

/// How a session's user proves what a request misses (issue 15), and the token the page
/// carries.
#[derive(Debug)]
pub enum StepUpStart {
    /// Their second factor: the second-step page with this `mfa_token`.
    SecondFactor(SecretString),
    /// They have none, and one is required: the enrolment page with this token.
    Enrol(SecretString),
    /// Their password again (no second factor; the authentication is too old): the
    /// re-authentication page for this account.
    Password { account: String },
}

impl From<MfaError> for AuthnError {
    fn from(e: MfaError) -> Self {
        match e {
            MfaError::InvalidCode => AuthnError::InvalidSecondFactor,
            MfaError::NotFound | MfaError::AccountGone | MfaError::NotAUser => {
                AuthnError::InvalidMfaToken
            }
            MfaError::EnrolmentDisabled => AuthnError::EnrolmentRequired,
            MfaError::Authn(e) => e,
            MfaError::Unavailable(e) => AuthnError::Unexpected(e.into()),
            other => AuthnError::Unexpected(other.into()),
        }
    }
}

impl SignInService {
    /// The enrolment page of an enrolment token: a new authenticator app to add (replacing
    /// one not confirmed yet). Only for a user without a second factor: a first factor alone
    /// never adds one to an account that has one.
    pub async fn start_enrolment(
        &self,
        token: &SecretString,
        client: Option<&ClientId>,
        origin: &RequestOrigin,
    ) -> Result<EnrolmentPage, AuthnError> {
        let client_id = client_or_pages(client)?;
        let start = self.authn.open_enrolment_token(token, &client_id)?;
        if self.authn.has_second_factor(&start.user_id).await? {
            return Err(AuthnError::InvalidMfaToken);
        }
        let caller = Caller::Session {
            user: &start.user_id,
            client_id: client_id.as_str(),
            signed_in_at: self.sessions.now(),
        };
        let enrolment = self
            .mfa
            .start_totp(caller, None, Reauthentication::default(), origin)
            .await?;
        Ok(EnrolmentPage {
            enrolment,
            may_skip: self.may_skip(&start.user_id, &client_id, &start).await?,
        })
    }

    /// The enrolment page again, after a wrong code: the same authenticator app.
    pub async fn pending_enrolment(
        &self,
        token: &SecretString,
        client: Option<&ClientId>,
        factor_id: &str,
    ) -> Result<EnrolmentPage, AuthnError> {
        let client_id = client_or_pages(client)?;
        let start = self.authn.open_enrolment_token(token, &client_id)?;
        let enrolment = self.mfa.pending_totp(&start.user_id, factor_id).await?;
        Ok(EnrolmentPage {
            enrolment,
            may_skip: self.may_skip(&start.user_id, &client_id, &start).await?,
        })
    }

    /// Whether the user may still put the enrolment off (never for a step-up).
    async fn may_skip(
        &self,
        user: &crate::domain::UserId,
        client_id: &ClientId,
        start: &super::authn::EnrolmentStart,
    ) -> Result<bool, AuthnError> {
        if start.session.is_some() {
            return Ok(false);
        }
        let signed_in = SignedIn {
            user: self
                .users
                .find_by_id(user)
                .await?
                .ok_or(AuthnError::InvalidMfaToken)?,
            methods: vec![start.first],
            password: None,
            provider: start.provider.clone(),
            session: None,
            claims: None,
        };
        let client_requires = self.client_requires_mfa(client_id).await?;
        Ok(matches!(
            self.authn.second_step(&signed_in, client_requires).await?,
            SecondStep::Enrol { may_skip: true } | SecondStep::Done
        ))
    }

    /// Confirms the enrolment with a code from the app; then the sign-in completes (a new
    /// session, or the step-up of `current`) with both factors, and the new recovery codes
    /// are shown this once. The token is used up by a right code only.
    #[allow(clippy::too_many_arguments)]
    pub async fn confirm_enrolment(
        &self,
        token: &SecretString,
        factor_id: &str,
        code: &SecretString,
        remember: bool,
        client: Option<&ClientId>,
        origin: &RequestOrigin,
        current: Option<&SsoSession>,
    ) -> Result<(SessionReady, Option<RecoveryCodes>), AuthnError> {
        let client_id = client_or_pages(client)?;
        let start = self.authn.open_enrolment_token(token, &client_id)?;
        if !self.authn.take_enrolment_token(token).await? {
            return Err(AuthnError::InvalidMfaToken);
        }
        let caller = Caller::Session {
            user: &start.user_id,
            client_id: client_id.as_str(),
            signed_in_at: self.sessions.now(),
        };
        let codes = match self.mfa.confirm_totp(caller, factor_id, code, origin).await {
            Ok((_, codes)) => codes,
            Err(e) => {
                self.authn
                    .give_back_enrolment_token(token, start.expires_at)
                    .await;
                return Err(e.into());
            }
        };
        let signed_in = self
            .authn
            .signed_in_by_enrolment(&start, Some(AuthMethod::Totp), origin)
            .await?;
        let ready = self
            .complete(signed_in, remember, &client_id, origin, current)
            .await?;
        Ok((ready, codes))
    }

    /// "Set up later", within the grace period: the sign-in completes with the first factor
    /// alone (audited).
    pub async fn skip_enrolment(
        &self,
        token: &SecretString,
        remember: bool,
        client: Option<&ClientId>,
        origin: &RequestOrigin,
        current: Option<&SsoSession>,
    ) -> Result<SessionReady, AuthnError> {
        let client_id = client_or_pages(client)?;
        let start = self.authn.open_enrolment_token(token, &client_id)?;
        if !self.may_skip(&start.user_id, &client_id, &start).await? {
            return Err(AuthnError::EnrolmentRequired);
        }
        if !self.authn.take_enrolment_token(token).await? {
            return Err(AuthnError::InvalidMfaToken);
        }
        let signed_in = self
            .authn
            .signed_in_by_enrolment(&start, None, origin)
            .await?;
        self.authn
            .record_enrolment_skipped(&signed_in.user.id, client_id.as_str(), origin)
            .await;
        self.complete(signed_in, remember, &client_id, origin, current)
            .await
    }

    /// Starts the step-up of `session` for `client`: the page that proves what is missing.
    /// `second`: prove a second factor (the user has one, or must set one up); otherwise the
    /// password again.
    pub async fn start_step_up(
        &self,
        session: &SsoSession,
        second: bool,
        client: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<StepUpStart, AuthnError> {
        let user = self
            .users
            .find_by_id(&session.user_id)
            .await?
            .ok_or(AuthnError::InvalidMfaToken)?;
        if !second {
            return Ok(StepUpStart::Password {
                account: account_label(&user),
            });
        }
        let has_factor = self.authn.has_second_factor(&user.id).await?;
        let signed_in = SignedIn {
            methods: vec![first_method(&session.amr)],
            password: None,
            provider: session.amr.iter().find_map(|a| match a {
                Amr::Idp(p) => Some(p.clone()),
                _ => None,
            }),
            session: Some(session.id.clone()),
            claims: None,
            user,
        };
        if has_factor {
            let token = self.authn.mfa_token(&signed_in, client, origin).await?;
            Ok(StepUpStart::SecondFactor(token))
        } else {
            let token = self
                .authn
                .enrolment_token(&signed_in, client, origin)
                .await?;
            Ok(StepUpStart::Enrol(token))
        }
    }

    /// Re-authentication with the password (issue 15: `max_age` exceeded, no second factor):
    /// the session's `auth_time` becomes now, `pwd` joins its `amr`. A user with a second
    /// factor re-proves that instead, never the password alone.
    pub async fn reauthenticate(
        &self,
        session: &SsoSession,
        password: SecretString,
        client: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<SessionReady, AuthnError> {
        let user = self
            .users
            .find_by_id(&session.user_id)
            .await?
            .ok_or(AuthnError::InvalidCredentials)?;
        if self.authn.has_second_factor(&user.id).await? {
            return Err(AuthnError::InvalidMfaToken);
        }
        self.authn
            .confirm_password(
                &user,
                password,
                Some(client.as_str()),
                origin,
                Confirmation::Reauthentication,
            )
            .await?;
        let stepped = self
            .sessions
            .step_up(session, &[Amr::Pwd], origin)
            .await?
            .ok_or(AuthnError::InvalidMfaToken)?;
        Ok(SessionReady::SteppedUp(stepped))
    }
}

/// The first factor a session was started with, as the login pipeline names it.
fn first_method(amr: &[Amr]) -> AuthMethod {
    if amr.contains(&Amr::Pwd) {
        AuthMethod::Password
    } else if amr.contains(&Amr::Fed) {
        AuthMethod::Federated
    } else if amr.contains(&Amr::Otp) {
        AuthMethod::MagicLink
    } else {
        AuthMethod::Password
    }
}

/// How the re-authentication page names the account: its address, else its username.
fn account_label(user: &User) -> String {
    match (&user.email, &user.username) {
        (Some(e), _) => e.to_string(),
        (None, Some(u)) => u.to_string(),
        (None, None) => user.display_name.clone().unwrap_or_default(),
    }
}

fn client_or_pages(client: Option<&ClientId>) -> Result<ClientId, AuthnError> {
    match client {
        Some(c) => Ok(c.clone()),
        None => super::sign_in::pages_client(),
    }
}
