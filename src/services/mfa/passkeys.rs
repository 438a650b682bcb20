//! Adding a passkey (issue 15): the browser's `navigator.credentials.create` ceremony,
//! started for the caller (their passkeys excluded) and finished with a re-authentication
//! like every change of factors. The passkey is on at once (the ceremony proved it works);
//! with the user's first factor come their recovery codes, shown once.

use super::super::authn::CEREMONY_TTL;
use super::views::{FactorView, PasskeyRegistrationStart, RecoveryCodes};
use super::{Caller, MfaError, MfaService, Reauthentication};
use crate::domain::{FactorId, FactorKind, MfaFactor, RequestOrigin};
use crate::storage::StorageError;

/// The name a passkey gets when the user gives none.
pub const DEFAULT_PASSKEY_NAME: &str = "Passkey";

impl MfaService {
    /// Starts adding a passkey for the caller. The API checks the re-authentication here
    /// already (`proof`), so that nobody touches their authenticator for a change that will
    /// be refused; the account page passes `None` and asks for it with the answer.
    pub async fn start_passkey(
        &self,
        p: Caller<'_>,
        proof: Option<Reauthentication>,
        origin: &RequestOrigin,
    ) -> Result<PasskeyRegistrationStart, MfaError> {
        if !self.authn.mfa_policy().required.allows_enrolment() {
            return Err(MfaError::EnrolmentDisabled);
        }
        let user = self.user_of(p).await?;
        if let Some(proof) = proof {
            self.reauthenticate(p, &user, proof, origin).await?;
        }
        let started = self.authn.start_passkey_registration(&user).await?;
        Ok(PasskeyRegistrationStart {
            ceremony: started.ceremony,
            options: started.options,
            expires_in: CEREMONY_TTL,
        })
    }

    /// Finishes adding a passkey: the re-authentication (a recent sign-in, or the password
    /// or a second factor in `proof`), then the browser's answer checked against the
    /// ceremony; the passkey is stored, the user mailed. With the first factor, recovery
    /// codes.
    pub async fn finish_passkey(
        &self,
        p: Caller<'_>,
        name: Option<&str>,
        ceremony: &str,
        response: &str,
        proof: Reauthentication,
        origin: &RequestOrigin,
    ) -> Result<(FactorView, Option<RecoveryCodes>), MfaError> {
        if !self.authn.mfa_policy().required.allows_enrolment() {
            return Err(MfaError::EnrolmentDisabled);
        }
        let user = self.user_of(p).await?;
        let name = MfaFactor::validate_name(name.unwrap_or(DEFAULT_PASSKEY_NAME))?;
        self.reauthenticate(p, &user, proof, origin).await?;
        let passkey = self
            .authn
            .finish_passkey_registration(&user, ceremony, response)
            .await?;
        let now = self.clock.now();
        let id = FactorId::generate();
        // Stored pending, then confirmed with the recovery codes in one transaction.
        let created = self
            .mfa
            .create(&MfaFactor {
                id: id.clone(),
                user_id: user.id.clone(),
                kind: FactorKind::Passkey,
                name,
                secret_enc: None,
                enc_key_id: None,
                credential: Some(passkey.credential),
                credential_id: Some(passkey.credential_id),
                confirmed_at: None,
                last_step: 0,
                created_at: now,
                last_used_at: None,
            })
            .await;
        match created {
            Ok(()) => {}
            // The authenticator's credential is someone's already.
            Err(StorageError::Conflict(_)) => return Err(MfaError::InvalidPasskey),
            Err(e) => return Err(e.into()),
        }
        // Stored pending above, turned on here with the recovery codes in one transaction.
        self.turn_on(p, &user, &id, FactorKind::Passkey, 0, origin)
            .await
    }
}
