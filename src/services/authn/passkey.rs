//! Passkeys in the login pipeline (issue 15): a sign-in with a passkey and no password
//! (discoverable credentials), a passkey as the second factor after a password, and the
//! ceremonies of registering one (used by the MFA service).
//!
//! A ceremony's state travels sealed in the page (AES-GCM under a key derived from the master
//! key, bound to its kind and, but for a discoverable sign-in, to its user), lives
//! [`CEREMONY_TTL`], and is accepted once (`OneTimeStore::first_use`): stateless instances can
//! finish what another started, and a replayed answer is refused. Wrong answers count in the
//! login throttle of the account they name, like wrong passwords.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::warn;

use super::{AuthMethod, Authenticator, AuthnError, SignedIn};
use crate::crypto::passkey::{user_handle, Assertion, PasskeyRp, StoredPasskey};
use crate::crypto::sha256_hex;
use crate::domain::{Email, FactorKind, MfaFactor, RequestOrigin, User, UserId};

/// How long a ceremony may wait for the browser's answer (the sign-in page offers passkeys
/// from autofill while it is open).
pub const CEREMONY_TTL: i64 = 600;
const CEREMONY_PURPOSE: &str = "latchkey passkey ceremony v1";
const CEREMONY_ONE_TIME: &str = "passkey_ceremony";

/// What a ceremony is for; a sealed state of one kind is refused as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Register,
    SignIn,
    SecondFactor,
}

impl CeremonyKind {
    fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::SignIn => "sign_in",
            CeremonyKind::SecondFactor => "second_factor",
        }
    }
}

/// A ceremony started: the options for the browser (`{"publicKey": ...}`, binary values in
/// base64url) and the sealed state it is finished with.
#[derive(Debug, Clone)]
pub struct PasskeyChallenge {
    pub options: Value,
    pub ceremony: String,
}

#[derive(Serialize, Deserialize)]
struct CeremonyBody {
    /// The kind.
    k: String,
    /// The user (none for a discoverable sign-in).
    u: Option<String>,
    /// Expiry (Unix seconds).
    e: i64,
    /// The `webauthn-rs` state.
    s: String,
}

impl Authenticator {
    /// The relying party, when passkeys are on.
    pub fn passkeys(&self) -> Option<&PasskeyRp> {
        self.passkeys.as_deref()
    }

    fn rp(&self) -> Result<&PasskeyRp, AuthnError> {
        self.passkeys().ok_or(AuthnError::PasskeysUnavailable)
    }

    fn seal_ceremony(
        &self,
        kind: CeremonyKind,
        user: Option<&UserId>,
        options: Value,
        state: Vec<u8>,
    ) -> Result<PasskeyChallenge, AuthnError> {
        let body = CeremonyBody {
            k: kind.as_str().to_owned(),
            u: user.map(|u| u.as_str().to_owned()),
            e: self.clock.now() + CEREMONY_TTL,
            s: String::from_utf8(state).map_err(|e| AuthnError::Unexpected(e.into()))?,
        };
        let plain = serde_json::to_vec(&body).map_err(|e| AuthnError::Unexpected(e.into()))?;
        let ceremony = self.seal.seal(CEREMONY_PURPOSE, &plain).map_err(|_| {
            AuthnError::Unexpected(anyhow::anyhow!("sealing a passkey ceremony failed"))
        })?;
        Ok(PasskeyChallenge { options, ceremony })
    }

    /// Opens a sealed ceremony of `kind` (and of `user`, if given), live and not used
    /// before; it is used up here. Its state, and the user it was for.
    async fn open_ceremony(
        &self,
        kind: CeremonyKind,
        sealed: &str,
        user: Option<&UserId>,
    ) -> Result<(Vec<u8>, Option<String>), AuthnError> {
        let now = self.clock.now();
        let sealed = sealed.trim();
        let body: CeremonyBody = self
            .seal
            .open(CEREMONY_PURPOSE, sealed)
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or(AuthnError::InvalidPasskey)?;
        if body.k != kind.as_str() || body.e <= now {
            return Err(AuthnError::InvalidPasskey);
        }
        if let Some(user) = user {
            if body.u.as_deref() != Some(user.as_str()) {
                return Err(AuthnError::InvalidPasskey);
            }
        }
        if !self
            .one_time
            .first_use(
                CEREMONY_ONE_TIME,
                &sha256_hex(sealed.as_bytes()),
                body.e,
                now,
            )
            .await?
        {
            return Err(AuthnError::InvalidPasskey);
        }
        Ok((body.s.into_bytes(), body.u))
    }

    /// The user's confirmed passkeys, as stored.
    async fn passkeys_of(
        &self,
        user: &UserId,
    ) -> Result<Vec<(MfaFactor, StoredPasskey)>, AuthnError> {
        Ok(self
            .mfa
            .list(user)
            .await?
            .into_iter()
            .filter(|f| f.kind == FactorKind::Passkey && f.is_confirmed())
            .filter_map(|f| {
                let stored = StoredPasskey {
                    credential_id: f.credential_id.clone()?,
                    credential: f.credential.clone()?,
                    synced: false,
                };
                Some((f, stored))
            })
            .collect())
    }

    /// Starts registering a passkey for `user`; the user's passkeys are excluded (an
    /// authenticator holds one credential per account).
    pub async fn start_passkey_registration(
        &self,
        user: &User,
    ) -> Result<PasskeyChallenge, AuthnError> {
        let rp = self.rp()?;
        let handle = user_handle(user.id.as_str())
            .ok_or_else(|| AuthnError::Unexpected(anyhow::anyhow!("a user id is not a UUID")))?;
        let name = user
            .email
            .as_ref()
            .map_or_else(|| user.id.to_string(), Email::to_string);
        let display = user.display_name.clone().unwrap_or_else(|| name.clone());
        let exclude: Vec<String> = self
            .passkeys_of(&user.id)
            .await?
            .into_iter()
            .map(|(_, p)| p.credential_id)
            .collect();
        let (options, state) = rp
            .start_registration(handle, &name, &display, &exclude)
            .map_err(|e| AuthnError::Unexpected(e.into()))?;
        self.seal_ceremony(CeremonyKind::Register, Some(&user.id), options, state)
    }

    /// Finishes a registration `user` started: the new credential (not stored yet).
    pub async fn finish_passkey_registration(
        &self,
        user: &User,
        ceremony: &str,
        response: &str,
    ) -> Result<StoredPasskey, AuthnError> {
        let rp = self.rp()?;
        let (state, _) = self
            .open_ceremony(CeremonyKind::Register, ceremony, Some(&user.id))
            .await?;
        rp.finish_registration(response, &state).map_err(|e| {
            warn!(error = %e, "a passkey registration was refused");
            AuthnError::InvalidPasskey
        })
    }

    /// Starts a sign-in with a passkey and no password (the browser offers this site's
    /// discoverable credentials).
    pub fn start_passkey_sign_in(&self) -> Result<PasskeyChallenge, AuthnError> {
        let (options, state) = self
            .rp()?
            .start_discoverable()
            .map_err(|e| AuthnError::Unexpected(e.into()))?;
        self.seal_ceremony(CeremonyKind::SignIn, None, options, state)
    }

    /// Signs in with a passkey alone: the credential names its user (the user handle), the
    /// assertion proves it with user verification. Throttled per account like a password;
    /// the same refusals as any sign-in (disabled, unverified address).
    pub async fn sign_in_with_passkey(
        &self,
        ceremony: &str,
        response: &str,
        client_id: &str,
        origin: &RequestOrigin,
    ) -> Result<SignedIn, AuthnError> {
        let rp = self.rp()?;
        let assertion = Assertion::parse(response).map_err(|_| AuthnError::InvalidPasskey)?;
        let (state, _) = self
            .open_ceremony(CeremonyKind::SignIn, ceremony, None)
            .await?;
        let handle = assertion.user_handle();
        let user = match handle {
            Some(handle) => {
                self.users
                    .find_by_id(&UserId::from_trusted(handle.to_string()))
                    .await?
            }
            None => None,
        };
        // Admitted like a password attempt: by the account the credential names (or, for a
        // credential of nobody, by what it named), and by the network.
        let named = handle.map_or_else(|| "passkey:none".to_owned(), |h| format!("passkey:{h}"));
        let account = match &user {
            Some(u) => u
                .email
                .as_ref()
                .map_or_else(|| u.id.to_string(), Email::to_string),
            None => named,
        };
        let account = account.as_str();
        let attempt = self.admit(account, origin).await?;
        let Some(user) = user else {
            self.failed(attempt, account, None, Some(client_id), origin, "passkey")
                .await;
            return Err(AuthnError::InvalidPasskey);
        };
        let used = self
            .check_assertion(&user, &assertion, |stored| {
                rp.finish_discoverable(&assertion, &state, stored)
            })
            .await?;
        let Some(method) = used else {
            self.failed(
                attempt,
                account,
                Some(&user.id),
                Some(client_id),
                origin,
                "passkey",
            )
            .await;
            return Err(AuthnError::InvalidPasskey);
        };
        self.accepted(attempt, account, origin).await;
        if let Some(refusal) = self.refusal_of(&user) {
            self.refused(&user.id, client_id, origin, refusal).await;
            return Err(AuthnError::Refused(refusal));
        }
        Ok(SignedIn {
            user,
            methods: vec![method],
            password: None,
            provider: None,
            session: None,
            claims: None,
        })
    }

    /// Starts proving one of `user`'s passkeys as the second factor; `None` if they have
    /// none (or passkeys are off).
    pub async fn start_passkey_second_factor(
        &self,
        user: &UserId,
    ) -> Result<Option<PasskeyChallenge>, AuthnError> {
        let Some(rp) = self.passkeys() else {
            return Ok(None);
        };
        let stored: Vec<StoredPasskey> = self
            .passkeys_of(user)
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if stored.is_empty() {
            return Ok(None);
        }
        let (options, state) = rp
            .start_authentication(&stored)
            .map_err(|e| AuthnError::Unexpected(e.into()))?;
        self.seal_ceremony(CeremonyKind::SecondFactor, Some(user), options, state)
            .map(Some)
    }

    /// Checks a passkey given as `user`'s second factor: `Some(method)` when it verifies
    /// (the credential's counter and flags updated), `None` when it does not. The
    /// throttle is the caller's (`verify_second_factor`).
    pub(super) async fn passkey_second_factor(
        &self,
        user: &User,
        ceremony: &str,
        response: &str,
    ) -> Result<Option<AuthMethod>, AuthnError> {
        let Some(rp) = self.passkeys() else {
            return Ok(None);
        };
        let Ok(assertion) = Assertion::parse(response) else {
            return Ok(None);
        };
        let state = match self
            .open_ceremony(CeremonyKind::SecondFactor, ceremony, Some(&user.id))
            .await
        {
            Ok((state, _)) => state,
            Err(AuthnError::InvalidPasskey) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.check_assertion(user, &assertion, |stored| {
            rp.finish_authentication(&assertion, &state, stored)
        })
        .await
    }

    /// Finds the user's passkey the assertion names, verifies it with `verify`, and stores
    /// the updated credential. `None` when there is no such passkey or it does not verify.
    async fn check_assertion(
        &self,
        user: &User,
        assertion: &Assertion,
        verify: impl FnOnce(
            &StoredPasskey,
        ) -> Result<StoredPasskey, crate::crypto::passkey::PasskeyError>,
    ) -> Result<Option<AuthMethod>, AuthnError> {
        let wanted = assertion.credential_id();
        let found = self
            .passkeys_of(&user.id)
            .await?
            .into_iter()
            .find(|(_, p)| p.credential_id == wanted);
        let Some((factor, stored)) = found else {
            return Ok(None);
        };
        let updated = match verify(&stored) {
            Ok(updated) => updated,
            Err(e) => {
                warn!(error = %e, factor = factor.id.as_str(), "a passkey assertion was refused");
                return Ok(None);
            }
        };
        let now = self.clock.now();
        if !self
            .mfa
            .use_passkey(
                &user.id,
                &factor.id,
                &stored.credential,
                &updated.credential,
                now,
            )
            .await?
        {
            // Another sign-in used the credential at the same moment (its counter moved):
            // this one does not count.
            return Ok(None);
        }
        Ok(Some(if updated.synced {
            AuthMethod::SyncedPasskey
        } else {
            AuthMethod::Passkey
        }))
    }
}
