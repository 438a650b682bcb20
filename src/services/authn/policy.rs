//! MFA policies at sign-in (issue 15): after a right first factor, whether the user must also
//! prove a second one, set one up first, or is done; and the sealed, single-use enrolment
//! token that carries a first step to the enrolment page (as the `mfa_token` carries it to the
//! second step).

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tracing::warn;

use super::super::audit::{detail, events};
use super::second_factor::{EnrolmentStart, MfaTokenBody};
use super::{ctx, AuthMethod, Authenticator, AuthnError, SignedIn};
use crate::crypto::sha256_hex;
use crate::domain::{within_grace, ClientId, MfaRequirement, RequestOrigin, UserId};

/// How long an enrolment token may wait (scanning a QR code takes longer than typing a code).
pub const ENROLMENT_TOKEN_TTL: i64 = 900;
const ENROLMENT_PURPOSE: &str = "latchkey mfa enrolment token v1";
const ENROLMENT_ONE_TIME: &str = "mfa_enrolment";

/// The MFA policy settings (`[mfa]`).
#[derive(Debug, Clone, Copy)]
pub struct MfaPolicy {
    /// `mfa.required`.
    pub required: MfaRequirement,
    /// `mfa.enrolment_grace`, in seconds.
    pub enrolment_grace: i64,
    /// `mfa.after_federation`.
    pub after_federation: bool,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        Self {
            required: MfaRequirement::Optional,
            enrolment_grace: 0,
            after_federation: true,
        }
    }
}

/// What a sign-in needs after its first factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondStep {
    /// Nothing: the user is signed in.
    Done,
    /// The user's second factor.
    Verify,
    /// A policy covers the user, who has no second factor: set one up first (`may_skip`:
    /// within the grace period, later is allowed).
    Enrol { may_skip: bool },
}

impl Authenticator {
    pub fn mfa_policy(&self) -> MfaPolicy {
        self.settings.mfa_policy
    }

    /// Whether a policy requires a second factor of the user: `mfa.required = "required"`,
    /// one of their roles, or the client they sign in to (`client_requires`).
    pub async fn covered_by_policy(
        &self,
        user: &UserId,
        client_requires: bool,
    ) -> Result<bool, AuthnError> {
        if client_requires || self.settings.mfa_policy.required == MfaRequirement::Required {
            return Ok(true);
        }
        Ok(self.mfa.required_by_role(user).await?)
    }

    /// After a right first factor: the second step the sign-in needs. A user with a second
    /// factor is asked for it (after a federated sign-in only if `mfa.after_federation` or a
    /// policy covers them); a user a policy covers who has none sets one up (the first time
    /// they are asked starts the grace period). With `mfa.required = "off"` nobody can set
    /// one up: a covered user without one is refused once the grace period is over
    /// (`Refusal`-free: `AuthnError::EnrolmentRequired`).
    pub async fn second_step(
        &self,
        signed_in: &SignedIn,
        client_requires: bool,
    ) -> Result<SecondStep, AuthnError> {
        let user = &signed_in.user.id;
        let federated = signed_in.methods.first() == Some(&AuthMethod::Federated);
        if self.has_second_factor(user).await? {
            if federated
                && !self.settings.mfa_policy.after_federation
                && !self.covered_by_policy(user, client_requires).await?
            {
                return Ok(SecondStep::Done);
            }
            return Ok(SecondStep::Verify);
        }
        if !self.covered_by_policy(user, client_requires).await? {
            return Ok(SecondStep::Done);
        }
        let now = self.clock.now();
        let first = self.mfa.enrolment_first_asked(user, now).await?;
        let may_skip = within_grace(first, self.settings.mfa_policy.enrolment_grace, now);
        if !self.settings.mfa_policy.required.allows_enrolment() {
            return if may_skip {
                Ok(SecondStep::Done)
            } else {
                Err(AuthnError::EnrolmentRequired)
            };
        }
        Ok(SecondStep::Enrol { may_skip })
    }

    /// The token an enrolment page carries for a first step (single use, `ENROLMENT_TOKEN_TTL`,
    /// bound to the client and the user).
    pub async fn enrolment_token(
        &self,
        signed_in: &SignedIn,
        client_id: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<SecretString, AuthnError> {
        let expires = self.clock.now() + ENROLMENT_TOKEN_TTL;
        let body = MfaTokenBody::of(signed_in, client_id, expires);
        let plain = serde_json::to_vec(&body).map_err(|e| AuthnError::Unexpected(e.into()))?;
        let token = self.seal.seal(ENROLMENT_PURPOSE, &plain).map_err(|_| {
            AuthnError::Unexpected(anyhow::anyhow!("sealing an enrolment token failed"))
        })?;
        self.one_time
            .put(ENROLMENT_ONE_TIME, &sha256_hex(token.as_bytes()), expires)
            .await?;
        self.audit
            .record(
                events::MFA_ENROLMENT_REQUIRED,
                ctx(Some(&signed_in.user.id), Some(client_id.as_str()), origin),
                detail([("method", json!(body.first().as_str()))]),
            )
            .await;
        Ok(SecretString::from(token))
    }

    /// Opens an enrolment token of `client_id` without using it up.
    pub fn open_enrolment_token(
        &self,
        token: &SecretString,
        client_id: &ClientId,
    ) -> Result<EnrolmentStart, AuthnError> {
        let body: MfaTokenBody = self
            .seal
            .open(ENROLMENT_PURPOSE, token.expose_secret().trim())
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or(AuthnError::InvalidMfaToken)?;
        if body.c != client_id.as_str() || body.e <= self.clock.now() {
            return Err(AuthnError::InvalidMfaToken);
        }
        body.start()
    }

    /// Uses up an enrolment token (`Ok(false)`: used already).
    pub async fn take_enrolment_token(&self, token: &SecretString) -> Result<bool, AuthnError> {
        let key = sha256_hex(token.expose_secret().trim().as_bytes());
        Ok(self
            .one_time
            .take(ENROLMENT_ONE_TIME, &key, self.clock.now())
            .await?)
    }

    /// Gives an enrolment token back (a wrong code: the user may try again).
    pub async fn give_back_enrolment_token(&self, token: &SecretString, expires_at: i64) {
        let key = sha256_hex(token.expose_secret().trim().as_bytes());
        if let Err(e) = self
            .one_time
            .put(ENROLMENT_ONE_TIME, &key, expires_at)
            .await
        {
            warn!(error = %e, "could not give an enrolment token back");
        }
    }

    /// "Set up later" on the enrolment page, within the grace period: recorded.
    pub async fn record_enrolment_skipped(
        &self,
        user: &UserId,
        client_id: &str,
        origin: &RequestOrigin,
    ) {
        self.audit
            .record(
                events::MFA_ENROLMENT_SKIPPED,
                ctx(Some(user), Some(client_id), origin),
                detail([]),
            )
            .await;
    }

    /// Whether the user has a password (re-authentication can ask for it).
    pub async fn has_password(&self, user: &UserId) -> Result<bool, AuthnError> {
        Ok(self
            .users
            .find_by_id(user)
            .await?
            .is_some_and(|u| u.password_hash.is_some()))
    }

    /// Whether a session of the user must be multi-factor now: a policy covers them (the
    /// server's, a role's, or the client's: `client_requires`) and they have a second factor
    /// or are past their grace period.
    pub async fn session_needs_mfa(
        &self,
        user: &UserId,
        client_requires: bool,
    ) -> Result<bool, AuthnError> {
        if !self.covered_by_policy(user, client_requires).await? {
            return Ok(false);
        }
        if self.has_second_factor(user).await? {
            return Ok(true);
        }
        let now = self.clock.now();
        let first = self.mfa.enrolment_first_asked(user, now).await?;
        Ok(!within_grace(
            first,
            self.settings.mfa_policy.enrolment_grace,
            now,
        ))
    }

    /// The user of an opened token, if they may still sign in.
    pub async fn signed_in_by_enrolment(
        &self,
        start: &EnrolmentStart,
        with: Option<AuthMethod>,
        origin: &RequestOrigin,
    ) -> Result<SignedIn, AuthnError> {
        let user = self
            .users
            .find_by_id(&start.user_id)
            .await?
            .ok_or(AuthnError::InvalidMfaToken)?;
        self.may_still_sign_in(&user, &start.client_id, origin)
            .await?;
        let mut methods = vec![start.first];
        methods.extend(with);
        Ok(SignedIn {
            user,
            methods,
            password: None,
            provider: start.provider.clone(),
            session: start.session.clone(),
            claims: None,
        })
    }
}
