//! Second factors, as their owner manages them (issue 15): enrolling an authenticator app
//! (TOTP: the secret sealed under the master key, confirmed with a current code), recovery
//! codes (shown once, stored hashed, regenerated on demand), listing and removing factors,
//! and an operator's reset. Adding or removing a factor needs a recent sign-in or, in the
//! request, the password or a second factor; the user is mailed about every change. The
//! second step of a sign-in itself is the login pipeline's (`authn/second_factor.rs`).

mod passkeys;
mod views;

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tracing::warn;

use super::audit::{detail, events, AuditContext, AuditLog};
use super::authn::{Authenticator, AuthnError, Confirmation, SecondFactor};
use super::mail::{Mail, MailKind, Mailer};
use crate::clock::Clock;
use crate::crypto::{recovery_code, totp, TotpSecret, TotpVault};
use crate::domain::{
    FactorId, FactorKind, MfaFactor, Principal, RequestOrigin, User, UserId, ValidationError,
};
use crate::storage::{MfaStore, RefreshTokenStore, StorageError, UserStore};
pub use passkeys::DEFAULT_PASSKEY_NAME;
pub use views::{FactorView, MfaOverview, PasskeyRegistrationStart, RecoveryCodes, TotpEnrolment};

/// How many recovery codes a set holds.
pub const RECOVERY_CODES: usize = 10;
/// How long an enrolment may wait for its confirming code before it is purged.
pub const PENDING_TTL: i64 = 3600;

/// The rules of second factors, from the configuration.
#[derive(Debug, Clone)]
pub struct MfaSettings {
    /// The name authenticator apps show beside the account (the issuer's host).
    pub issuer_label: String,
    /// How recent a sign-in must be to add or remove a factor without proving it again
    /// (`mfa.reauth_within`).
    pub reauth_within: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The bearer token belongs to a client, not to a user.
    #[error("this token was issued to a client, not to a user")]
    NotAUser,
    /// The bearer token's user was deleted or disabled.
    #[error("the account no longer exists or is disabled")]
    AccountGone,
    /// The sign-in is older than `mfa.reauth_within` and the request proves nothing.
    #[error("sign in again, or send the account's password (or a current code), to change its second factors")]
    ReauthenticationRequired,
    /// The code that should confirm an enrolment or prove the user is wrong or used.
    #[error("the code is invalid or was used already")]
    InvalidCode,
    /// No such factor (or enrolment) of this user.
    #[error("no such factor")]
    NotFound,
    /// `mfa.required = "off"`: no new second factor may be set up.
    #[error("two-step sign-in is switched off on this server: no new second factor can be set up")]
    EnrolmentDisabled,
    /// The last second factor of a user a policy (the server's, or a role's) requires one of.
    #[error("a policy requires a second factor of this account: add another one before removing the last")]
    RequiredByPolicy,
    /// The passkey's answer did not verify, its ceremony expired or was used, or the
    /// credential is registered already.
    #[error("the passkey was not accepted")]
    InvalidPasskey,
    /// Passkeys are off (or the issuer's host cannot be a relying party id).
    #[error("passkeys are not available on this server")]
    PasskeysUnavailable,
    /// The proof given was refused by the login pipeline (wrong password, throttled, ...).
    #[error(transparent)]
    Authn(AuthnError),
    #[error("storage unavailable")]
    Unavailable(#[source] StorageError),
    #[error("unexpected error")]
    Unexpected(#[source] anyhow::Error),
}

impl From<StorageError> for MfaError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Backend(_) | StorageError::Unavailable(_) => MfaError::Unavailable(e),
            other => MfaError::Unexpected(other.into()),
        }
    }
}

impl From<AuthnError> for MfaError {
    fn from(e: AuthnError) -> Self {
        match e {
            AuthnError::InvalidSecondFactor => MfaError::InvalidCode,
            AuthnError::InvalidPasskey => MfaError::InvalidPasskey,
            AuthnError::PasskeysUnavailable => MfaError::PasskeysUnavailable,
            other => MfaError::Authn(other),
        }
    }
}

/// Who asks for a change: a bearer token's user (the API), or a signed-in browser session
/// (the account page) with its sign-in time.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    Token(&'a Principal),
    Session {
        user: &'a UserId,
        client_id: &'a str,
        signed_in_at: i64,
    },
}

impl<'a> Caller<'a> {
    fn user_id(self) -> Option<&'a UserId> {
        match self {
            Caller::Token(p) => p.user_id(),
            Caller::Session { user, .. } => Some(user),
        }
    }

    fn client_id(self) -> &'a str {
        match self {
            Caller::Token(p) => p.client_id.as_str(),
            Caller::Session { client_id, .. } => client_id,
        }
    }
}

/// What a change of factors is proved with when the sign-in is not recent.
#[derive(Debug, Default)]
pub struct Reauthentication {
    pub password: Option<SecretString>,
    pub factor: Option<SecondFactor>,
}

pub struct MfaService {
    users: Arc<dyn UserStore>,
    mfa: Arc<dyn MfaStore>,
    families: Arc<dyn RefreshTokenStore>,
    authn: Arc<Authenticator>,
    totp: Arc<TotpVault>,
    mailer: Arc<Mailer>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    settings: MfaSettings,
}

impl MfaService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        users: Arc<dyn UserStore>,
        mfa: Arc<dyn MfaStore>,
        families: Arc<dyn RefreshTokenStore>,
        authn: Arc<Authenticator>,
        totp: Arc<TotpVault>,
        mailer: Arc<Mailer>,
        audit: Arc<AuditLog>,
        clock: Arc<dyn Clock>,
        settings: MfaSettings,
    ) -> Self {
        Self {
            users,
            mfa,
            families,
            authn,
            totp,
            mailer,
            audit,
            clock,
            settings,
        }
    }

    /// The caller's user, active.
    async fn user_of(&self, p: Caller<'_>) -> Result<User, MfaError> {
        let id = p.user_id().ok_or(MfaError::NotAUser)?;
        self.users
            .find_by_id(id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(MfaError::AccountGone)
    }

    /// The user's factors (confirmed ones; an enrolment waiting for its code is left out)
    /// and how many unused recovery codes they have.
    pub async fn overview(&self, user: &UserId) -> Result<MfaOverview, MfaError> {
        let factors = self.mfa.list(user).await?;
        Ok(MfaOverview {
            factors: factors
                .iter()
                .filter(|f| f.is_confirmed())
                .map(FactorView::of)
                .collect(),
            recovery_codes_left: self.mfa.recovery_codes_left(user).await?,
        })
    }

    /// Whether a sign-in at `signed_in_at` is recent enough to change factors without
    /// proving it again (`mfa.reauth_within`).
    pub fn is_recent(&self, signed_in_at: i64) -> bool {
        self.clock.now() - signed_in_at <= self.settings.reauth_within
    }

    /// The caller's factors.
    pub async fn overview_of(&self, p: &Principal) -> Result<MfaOverview, MfaError> {
        let user = self.user_of(Caller::Token(p)).await?;
        self.overview(&user.id).await
    }

    /// Proves the caller again before a change: a sign-in within `mfa.reauth_within` (the
    /// session the token belongs to), else the password or a second factor in the request.
    async fn reauthenticate(
        &self,
        p: Caller<'_>,
        user: &User,
        proof: Reauthentication,
        origin: &RequestOrigin,
    ) -> Result<(), MfaError> {
        let client = Some(p.client_id());
        match proof {
            Reauthentication {
                password: Some(password),
                ..
            } => {
                self.authn
                    .confirm_password(user, password, client, origin, Confirmation::MfaChange)
                    .await?;
                Ok(())
            }
            Reauthentication {
                factor: Some(factor),
                ..
            } => {
                self.authn
                    .verify_second_factor(user, factor, client, origin)
                    .await?;
                Ok(())
            }
            _ => {
                let now = self.clock.now();
                let signed_in_at = match p {
                    Caller::Token(p) => match &p.session {
                        Some(family) => self
                            .families
                            .find_family(family)
                            .await?
                            .filter(|f| f.user_id == user.id && f.revoked_at.is_none())
                            .map(|f| f.signed_in_at),
                        None => None,
                    },
                    Caller::Session { signed_in_at, .. } => Some(signed_in_at),
                };
                let recent = signed_in_at.is_some_and(|at| now - at <= self.settings.reauth_within);
                if recent {
                    Ok(())
                } else {
                    Err(MfaError::ReauthenticationRequired)
                }
            }
        }
    }

    /// Starts enrolling an authenticator app: a new secret (sealed and stored as a pending
    /// factor, replacing an earlier pending one), for the user to scan or type in, then
    /// confirm with a current code.
    pub async fn start_totp(
        &self,
        p: Caller<'_>,
        name: Option<&str>,
        proof: Reauthentication,
        origin: &RequestOrigin,
    ) -> Result<TotpEnrolment, MfaError> {
        if !self.authn.mfa_policy().required.allows_enrolment() {
            return Err(MfaError::EnrolmentDisabled);
        }
        let user = self.user_of(p).await?;
        let name = MfaFactor::validate_name(name.unwrap_or("Authenticator app"))?;
        self.reauthenticate(p, &user, proof, origin).await?;
        let secret = TotpSecret::generate()
            .ok_or_else(|| MfaError::Unexpected(anyhow::anyhow!("no randomness")))?;
        let id = FactorId::generate();
        let (sealed, key_id) = self
            .totp
            .seal(&id, &secret)
            .ok_or_else(|| MfaError::Unexpected(anyhow::anyhow!("sealing failed")))?;
        let created = self.clock.now();
        self.mfa
            .create(&MfaFactor {
                id: id.clone(),
                user_id: user.id.clone(),
                kind: FactorKind::Totp,
                name: name.clone(),
                secret_enc: Some(sealed),
                enc_key_id: Some(key_id),
                credential: None,
                credential_id: None,
                confirmed_at: None,
                last_step: 0,
                created_at: created,
                last_used_at: None,
            })
            .await?;
        let enrolment = self.enrolment_view(&user, &id, &name, &secret, PENDING_TTL)?;
        self.record(
            events::MFA_ENROLMENT_STARTED,
            &user.id,
            p,
            origin,
            &id,
            FactorKind::Totp,
        )
        .await;
        Ok(enrolment)
    }

    /// What the user scans or types in for an enrolment.
    fn enrolment_view(
        &self,
        user: &User,
        id: &FactorId,
        name: &str,
        secret: &TotpSecret,
        expires_in: i64,
    ) -> Result<TotpEnrolment, MfaError> {
        let account = user
            .email
            .as_ref()
            .map_or_else(|| user.id.to_string(), |e| e.to_string());
        let uri = totp::otpauth_uri(&self.settings.issuer_label, &account, secret);
        let qr_svg = totp::qr_svg(&uri)
            .ok_or_else(|| MfaError::Unexpected(anyhow::anyhow!("no QR code")))?;
        Ok(TotpEnrolment {
            id: id.as_str().to_owned(),
            name: name.to_owned(),
            secret: secret.base32(),
            otpauth_uri: uri,
            qr_svg,
            expires_in,
        })
    }

    /// The user's TOTP enrolment `id` still waiting for its code (younger than
    /// `PENDING_TTL`), with its secret unsealed.
    async fn waiting_totp(
        &self,
        user: &UserId,
        id: &FactorId,
        now: i64,
    ) -> Result<(MfaFactor, TotpSecret), MfaError> {
        let factor = self
            .mfa
            .find(user, id)
            .await?
            .filter(|f| {
                f.kind == FactorKind::Totp && !f.is_confirmed() && now - f.created_at <= PENDING_TTL
            })
            .ok_or(MfaError::NotFound)?;
        let secret = self
            .totp
            .open(&factor)
            .ok_or_else(|| MfaError::Unexpected(anyhow::anyhow!("the secret does not open")))?;
        Ok((factor, secret))
    }

    /// An enrolment of the user still waiting for its code, shown again (a wrong code on the
    /// sign-in's enrolment page).
    pub async fn pending_totp(&self, user: &UserId, id: &str) -> Result<TotpEnrolment, MfaError> {
        let user = self
            .users
            .find_by_id(user)
            .await?
            .filter(|u| u.is_active)
            .ok_or(MfaError::AccountGone)?;
        let id = FactorId::parse(id).map_err(|_| MfaError::NotFound)?;
        let now = self.clock.now();
        let (factor, secret) = self.waiting_totp(&user.id, &id, now).await?;
        let left = PENDING_TTL - (now - factor.created_at);
        self.enrolment_view(&user, &id, &factor.name, &secret, left)
    }

    /// Confirms an enrolment with a current code from the app: the factor is on. With the
    /// user's first factor (or no recovery codes left), a new set of recovery codes, shown
    /// this once.
    pub async fn confirm_totp(
        &self,
        p: Caller<'_>,
        id: &str,
        code: &SecretString,
        origin: &RequestOrigin,
    ) -> Result<(FactorView, Option<RecoveryCodes>), MfaError> {
        let user = self.user_of(p).await?;
        let id = FactorId::parse(id).map_err(|_| MfaError::NotFound)?;
        let now = self.clock.now();
        let (_, secret) = self.waiting_totp(&user.id, &id, now).await?;
        let Some(step) = totp::check(&secret, code.expose_secret(), now, 0) else {
            self.audit
                .record(
                    events::MFA_FAILED,
                    self.ctx(&user.id, p, origin),
                    detail([("method", json!("totp")), ("enrolment", json!(true))]),
                )
                .await;
            return Err(MfaError::InvalidCode);
        };
        self.turn_on(p, &user, &id, FactorKind::Totp, step, origin)
            .await
    }

    /// Turns a pending factor on (`step`: a TOTP factor's first step used): with the user's
    /// first factor (or no recovery code left), a new set of recovery codes in the same
    /// transaction; recorded and mailed. The factor, and the codes to show once.
    pub(super) async fn turn_on(
        &self,
        p: Caller<'_>,
        user: &User,
        id: &FactorId,
        kind: FactorKind,
        step: i64,
        origin: &RequestOrigin,
    ) -> Result<(FactorView, Option<RecoveryCodes>), MfaError> {
        let codes = if self.mfa.recovery_codes_left(&user.id).await? == 0 {
            Some(new_recovery_codes())
        } else {
            None
        };
        let hashes = codes.as_ref().map(|c| c.hashes());
        if !self
            .mfa
            .confirm(&user.id, id, step, hashes.as_deref(), self.clock.now())
            .await?
        {
            return Err(MfaError::NotFound);
        }
        self.record(events::MFA_FACTOR_ADDED, &user.id, p, origin, id, kind)
            .await;
        self.notify(
            user,
            match kind {
                FactorKind::Totp => "An authenticator app was added.",
                FactorKind::Passkey => "A passkey was added.",
            },
        );
        let confirmed = self
            .mfa
            .find(&user.id, id)
            .await?
            .ok_or(MfaError::NotFound)?;
        Ok((
            FactorView::of(&confirmed),
            codes.map(|c| RecoveryCodes {
                recovery_codes: c.plain,
            }),
        ))
    }

    /// Removes one of the caller's factors (an enrolment still waiting counts too). With
    /// the last factor gone, the recovery codes go too.
    pub async fn remove(
        &self,
        p: Caller<'_>,
        id: &str,
        proof: Reauthentication,
        origin: &RequestOrigin,
    ) -> Result<(), MfaError> {
        let user = self.user_of(p).await?;
        let id = FactorId::parse(id).map_err(|_| MfaError::NotFound)?;
        let factor = self
            .mfa
            .find(&user.id, &id)
            .await?
            .ok_or(MfaError::NotFound)?;
        if factor.is_confirmed() {
            let others = self
                .mfa
                .list(&user.id)
                .await?
                .iter()
                .any(|f| f.is_confirmed() && f.id != id);
            if !others && self.authn.covered_by_policy(&user.id, false).await? {
                return Err(MfaError::RequiredByPolicy);
            }
        }
        self.reauthenticate(p, &user, proof, origin).await?;
        if !self.mfa.delete(&user.id, &id).await? {
            return Err(MfaError::NotFound);
        }
        let left = self.mfa.list(&user.id).await?;
        if !left.iter().any(|f| f.is_confirmed()) {
            self.mfa
                .replace_recovery_codes(&user.id, &[], self.clock.now())
                .await?;
        }
        if factor.is_confirmed() {
            self.record(
                events::MFA_FACTOR_REMOVED,
                &user.id,
                p,
                origin,
                &id,
                factor.kind,
            )
            .await;
            self.notify(
                &user,
                &format!("The factor \"{}\" was removed.", factor.name),
            );
        }
        Ok(())
    }

    /// A new set of recovery codes for the caller (the old set stops working), shown once.
    pub async fn regenerate_recovery_codes(
        &self,
        p: Caller<'_>,
        proof: Reauthentication,
        origin: &RequestOrigin,
    ) -> Result<RecoveryCodes, MfaError> {
        let user = self.user_of(p).await?;
        if !self
            .mfa
            .list(&user.id)
            .await?
            .iter()
            .any(|f| f.is_confirmed())
        {
            return Err(MfaError::NotFound);
        }
        self.reauthenticate(p, &user, proof, origin).await?;
        let codes = new_recovery_codes();
        self.mfa
            .replace_recovery_codes(&user.id, &codes.hashes(), self.clock.now())
            .await?;
        self.audit
            .record(
                events::RECOVERY_CODES_REGENERATED,
                self.ctx(&user.id, p, origin),
                detail([("codes", json!(RECOVERY_CODES))]),
            )
            .await;
        self.notify(
            &user,
            "A new set of recovery codes was made; the old set no longer works.",
        );
        Ok(RecoveryCodes {
            recovery_codes: codes.plain,
        })
    }

    /// An operator's reset: every factor and recovery code of the user goes (audited, the
    /// user mailed). Returns how many factors were removed.
    pub async fn reset(&self, user: &User) -> Result<u64, MfaError> {
        let removed = self.mfa.delete_all(&user.id).await?;
        self.audit
            .record(
                events::MFA_RESET,
                AuditContext {
                    user_id: Some(&user.id),
                    client_id: None,
                    origin: None,
                },
                detail([("factors", json!(removed))]),
            )
            .await;
        if removed > 0 {
            self.notify(
                user,
                "An administrator removed all of its second factors and recovery codes.",
            );
        }
        Ok(removed)
    }

    /// Deletes enrolments never confirmed within `PENDING_TTL` (housekeeping).
    pub async fn purge_pending(&self) -> Result<u64, MfaError> {
        Ok(self
            .mfa
            .purge_pending(self.clock.now() - PENDING_TTL)
            .await?)
    }

    fn ctx<'a>(
        &self,
        user: &'a UserId,
        p: Caller<'a>,
        origin: &'a RequestOrigin,
    ) -> AuditContext<'a> {
        AuditContext {
            user_id: Some(user),
            client_id: Some(p.client_id()),
            origin: Some(origin),
        }
    }

    async fn record(
        &self,
        event: &'static str,
        user: &UserId,
        p: Caller<'_>,
        origin: &RequestOrigin,
        factor: &FactorId,
        kind: FactorKind,
    ) {
        self.audit
            .record(
                event,
                self.ctx(user, p, origin),
                detail([
                    ("factor_id", json!(factor.as_str())),
                    ("kind", json!(kind.as_str())),
                ]),
            )
            .await;
    }

    /// Mails the user about a change of their factors (a full queue loses the notice, not
    /// the change).
    fn notify(&self, user: &User, change: &str) {
        let Some(to) = user.email.clone() else { return };
        if let Err(e) = self.mailer.enqueue(Mail {
            kind: MailKind::MfaChanged,
            to,
            display_name: user.display_name.clone().filter(|_| user.email_verified),
            vars: vec![("change", change.to_owned())],
        }) {
            warn!(error = %e, "could not queue the second-factor notice");
        }
    }
}

/// A new set of recovery codes: as shown, and their hashes.
struct NewCodes {
    plain: Vec<String>,
}

impl NewCodes {
    fn hashes(&self) -> Vec<String> {
        self.plain
            .iter()
            .filter_map(|c| recovery_code::normalize(c))
            .map(|n| recovery_code::hash(&n))
            .collect()
    }
}

fn new_recovery_codes() -> NewCodes {
    NewCodes {
        plain: (0..RECOVERY_CODES)
            .map(|_| recovery_code::generate().expose_secret().to_owned())
            .collect(),
    }
}
