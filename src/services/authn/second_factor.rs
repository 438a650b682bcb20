//! The second step of a sign-in for a user with a second factor (issue 15): a TOTP code or a
//! recovery code, throttled and audited like a password (wrong codes count against the
//! account, with back-off and lockout), and the `mfa_token` that carries a password grant's
//! first step to the MFA grant.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::warn;

use super::super::audit::{detail, events};
use super::super::mail::{Mail, MailKind};
use super::{ctx, AuthMethod, Authenticator, AuthnError, SignedIn};
use crate::crypto::{recovery_code, sha256_hex, totp};
use crate::domain::{
    ClientId, Email, FactorKind, ProviderId, RequestOrigin, SessionId, User, UserId,
};

/// How long an `mfa_token` may wait for its second step.
pub const MFA_TOKEN_TTL: i64 = 300;
/// The seal purpose and the one-time store's purpose of `mfa_token`s.
const MFA_TOKEN_PURPOSE: &str = "latchkey mfa token v1";
const MFA_TOKEN_ONE_TIME: &str = "mfa_token";

/// A second factor as presented.
#[derive(Debug)]
pub enum SecondFactor {
    /// A code from the user's authenticator app.
    Totp(SecretString),
    /// One of the user's recovery codes.
    RecoveryCode(SecretString),
    /// One of the user's passkeys: the sealed ceremony the page or client was given, and the
    /// browser's answer (the assertion, as JSON).
    Passkey { ceremony: String, response: String },
}

/// An `mfa_token` or an enrolment token (`policy.rs`), opened: whose first step, for which
/// client.
#[derive(Debug)]
pub struct EnrolmentStart {
    pub user_id: UserId,
    pub client_id: ClientId,
    /// The first step's method and provider.
    pub first: AuthMethod,
    pub provider: Option<ProviderId>,
    /// A step-up of this session (rather than a new sign-in).
    pub session: Option<SessionId>,
    pub expires_at: i64,
}

/// The first step's proof: whom, for which client, until when (the enrolment token of
/// `policy.rs` carries the same).
#[derive(Serialize, Deserialize)]
pub(super) struct MfaTokenBody {
    /// The user.
    pub u: String,
    /// The client.
    pub c: String,
    /// Expiry (Unix seconds).
    pub e: i64,
    /// The first step's method (`password`, `magic_link`, ...).
    #[serde(default)]
    pub m: Option<String>,
    /// The upstream provider of a federated first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    /// A step-up: the SSO session whose user proves a second factor (issue 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
}

impl MfaTokenBody {
    pub(super) fn of(signed_in: &SignedIn, client_id: &ClientId, expires: i64) -> Self {
        let first = signed_in
            .methods
            .first()
            .copied()
            .unwrap_or(AuthMethod::Password);
        Self {
            u: signed_in.user.id.as_str().to_owned(),
            c: client_id.as_str().to_owned(),
            e: expires,
            m: Some(first.as_str().to_owned()),
            p: signed_in.provider.as_ref().map(|p| p.as_str().to_owned()),
            s: signed_in.session.as_ref().map(|s| s.as_str().to_owned()),
        }
    }

    /// The first step's method (`None` in tokens older than the field: a password).
    pub(super) fn first(&self) -> AuthMethod {
        self.m
            .as_deref()
            .and_then(AuthMethod::parse)
            .unwrap_or(AuthMethod::Password)
    }

    /// What the token says, checked: a first step's method, a provider and session that
    /// parse.
    pub(super) fn start(self) -> Result<EnrolmentStart, AuthnError> {
        let first = match self.m.as_deref() {
            None => AuthMethod::Password,
            Some(m) => AuthMethod::parse(m)
                .filter(|m| !m.is_second_factor())
                .ok_or(AuthnError::InvalidMfaToken)?,
        };
        let provider = match self.p.as_deref() {
            Some(p) => Some(ProviderId::parse(p).map_err(|_| AuthnError::InvalidMfaToken)?),
            None => None,
        };
        let session = match self.s.as_deref() {
            Some(s) => Some(SessionId::parse(s).ok_or(AuthnError::InvalidMfaToken)?),
            None => None,
        };
        Ok(EnrolmentStart {
            user_id: UserId::from_trusted(self.u),
            client_id: ClientId::parse(&self.c).map_err(|_| AuthnError::InvalidMfaToken)?,
            first,
            provider,
            session,
            expires_at: self.e,
        })
    }
}

impl Authenticator {
    /// Whether `user` has a confirmed second factor, so that a sign-in needs one.
    pub async fn has_second_factor(&self, user: &UserId) -> Result<bool, AuthnError> {
        Ok(self.mfa.list(user).await?.iter().any(|f| f.is_confirmed()))
    }

    /// After a right first factor (a password, a magic link) for a user with a second
    /// factor: the `mfa_token` the sign-in is completed with (single use, `MFA_TOKEN_TTL`,
    /// bound to the client and the user). The first step is recorded.
    pub async fn mfa_token(
        &self,
        signed_in: &SignedIn,
        client_id: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<SecretString, AuthnError> {
        let expires = self.clock.now() + MFA_TOKEN_TTL;
        let body = MfaTokenBody::of(signed_in, client_id, expires);
        let first = body.first();
        let plain = serde_json::to_vec(&body).map_err(|e| AuthnError::Unexpected(e.into()))?;
        let token = self
            .seal
            .seal(MFA_TOKEN_PURPOSE, &plain)
            .map_err(|_| AuthnError::Unexpected(anyhow::anyhow!("sealing an mfa_token failed")))?;
        self.one_time
            .put(MFA_TOKEN_ONE_TIME, &sha256_hex(token.as_bytes()), expires)
            .await?;
        self.audit
            .record(
                events::MFA_REQUIRED,
                ctx(Some(&signed_in.user.id), Some(client_id.as_str()), origin),
                detail([("method", json!(first.as_str()))]),
            )
            .await;
        Ok(SecretString::from(token))
    }

    /// The user a live `mfa_token` is for (the token is not used up): what the second step
    /// page offers depends on their factors.
    pub fn mfa_token_user(&self, mfa_token: &str) -> Option<UserId> {
        let body: MfaTokenBody = self
            .seal
            .open(MFA_TOKEN_PURPOSE, mfa_token.trim())
            .and_then(|plain| serde_json::from_slice(&plain).ok())?;
        (body.e > self.clock.now()).then(|| UserId::from_trusted(body.u))
    }

    /// Which kinds of second factor `user` has confirmed: (TOTP, passkey).
    pub async fn second_factor_kinds(&self, user: &UserId) -> Result<(bool, bool), AuthnError> {
        let factors = self.mfa.list(user).await?;
        let has = |kind| factors.iter().any(|f| f.kind == kind && f.is_confirmed());
        Ok((has(FactorKind::Totp), has(FactorKind::Passkey)))
    }

    /// The MFA grant: the user of a live `mfa_token` of `client_id`, signed in with the
    /// password step and `factor`. The token is used up only by a right factor, so a typo
    /// can be retried (wrong codes count against the account like wrong passwords).
    pub async fn sign_in_with_mfa_token(
        &self,
        mfa_token: &SecretString,
        factor: SecondFactor,
        client_id: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<SignedIn, AuthnError> {
        let now = self.clock.now();
        let token = mfa_token.expose_secret().trim();
        let body: MfaTokenBody = self
            .seal
            .open(MFA_TOKEN_PURPOSE, token)
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or(AuthnError::InvalidMfaToken)?;
        if body.c != client_id.as_str() || body.e <= now {
            return Err(AuthnError::InvalidMfaToken);
        }
        let expires_at = body.e;
        let start = body.start()?;
        // The user with their roles and permissions in one read: the tokens that follow are
        // issued from these claims, not from a second read.
        let (user, claims) = self
            .users
            .find_with_claims(&start.user_id)
            .await?
            .ok_or(AuthnError::InvalidMfaToken)?;
        // Taken before the code is looked at, so that a used token never spends a code (a
        // TOTP step, a recovery code); given back when the code is wrong, so that a typo can
        // be retried until the token expires.
        let key = sha256_hex(token.as_bytes());
        if !self.one_time.take(MFA_TOKEN_ONE_TIME, &key, now).await? {
            return Err(AuthnError::InvalidMfaToken);
        }
        let method = match self
            .verify_second_factor(&user, factor, Some(client_id.as_str()), origin)
            .await
        {
            Ok(method) => method,
            Err(e) => {
                if let Err(put) = self
                    .one_time
                    .put(MFA_TOKEN_ONE_TIME, &key, expires_at)
                    .await
                {
                    warn!(error = %put, "could not give an mfa_token back after a wrong code");
                }
                return Err(e);
            }
        };
        self.may_still_sign_in(&user, client_id, origin).await?;
        Ok(SignedIn {
            user,
            methods: vec![start.first, method],
            password: None,
            provider: start.provider,
            session: start.session,
            claims: Some(claims),
        })
    }

    /// The account may have changed in the minutes since the first step: refused if it may
    /// no longer sign in.
    pub(super) async fn may_still_sign_in(
        &self,
        user: &User,
        client_id: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<(), AuthnError> {
        if let Some(refusal) = self.refusal_of(user) {
            self.refused(&user.id, client_id.as_str(), origin, refusal)
                .await;
            return Err(AuthnError::Refused(refusal));
        }
        Ok(())
    }

    /// Checks a second factor of `user`: a TOTP code of one of their confirmed authenticators
    /// (one step of drift either way; a used code or an earlier step is refused), or one of
    /// their unused recovery codes (used up). Throttled per account like a password.
    pub async fn verify_second_factor(
        &self,
        user: &User,
        factor: SecondFactor,
        client_id: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<AuthMethod, AuthnError> {
        let account = user.email.as_ref().map_or(user.id.as_str(), Email::as_str);
        let attempt = self.admit(account, origin).await?;
        let now = self.clock.now();
        let (method, ok) = match &factor {
            SecondFactor::Totp(code) => {
                (AuthMethod::Totp, self.totp_matches(user, code, now).await?)
            }
            SecondFactor::RecoveryCode(code) => {
                let ok = match recovery_code::normalize(code.expose_secret()) {
                    Some(normal) => {
                        self.mfa
                            .use_recovery_code(&user.id, &recovery_code::hash(&normal), now)
                            .await?
                    }
                    None => false,
                };
                (AuthMethod::RecoveryCode, ok)
            }
            SecondFactor::Passkey { ceremony, response } => {
                match self.passkey_second_factor(user, ceremony, response).await? {
                    Some(method) => (method, true),
                    None => (AuthMethod::Passkey, false),
                }
            }
        };
        if !ok {
            self.failed(
                attempt,
                account,
                Some(&user.id),
                client_id,
                origin,
                method.as_str(),
            )
            .await;
            self.audit
                .record(
                    events::MFA_FAILED,
                    ctx(Some(&user.id), client_id, origin),
                    detail([("method", json!(method.as_str()))]),
                )
                .await;
            return Err(AuthnError::InvalidSecondFactor);
        }
        self.accepted(attempt, account, origin).await;
        let left = match method {
            AuthMethod::RecoveryCode => Some(self.mfa.recovery_codes_left(&user.id).await?),
            _ => None,
        };
        let (event, extra) = match left {
            Some(left) => (events::RECOVERY_CODE_USED, json!(left)),
            None => (events::MFA_SUCCEEDED, json!(null)),
        };
        self.audit
            .record(
                event,
                ctx(Some(&user.id), client_id, origin),
                detail([("method", json!(method.as_str())), ("codes_left", extra)]),
            )
            .await;
        if let (Some(to), Some(left)) = (user.email.clone(), left) {
            // The mailbox owner learns that a recovery code was spent (someone may hold
            // their codes); a full queue loses the notice, not the sign-in.
            if let Err(e) = self.mailer.enqueue(Mail {
                kind: MailKind::RecoveryCodeUsed,
                to,
                display_name: user.display_name.clone().filter(|_| user.email_verified),
                vars: vec![("codes_left", left.to_string())],
            }) {
                warn!(error = %e, "could not queue the recovery-code notice");
            }
        }
        Ok(method)
    }

    /// Whether `code` is the current code of one of the user's confirmed authenticators, and
    /// if so takes its step (compare-and-set: a code is accepted once).
    async fn totp_matches(
        &self,
        user: &User,
        code: &SecretString,
        now: i64,
    ) -> Result<bool, AuthnError> {
        let factors = self.mfa.list(&user.id).await?;
        for f in factors
            .iter()
            .filter(|f| f.kind == FactorKind::Totp && f.is_confirmed())
        {
            let Some(secret) = self.totp.open(f) else {
                warn!(
                    factor = f.id.as_str(),
                    "a TOTP secret does not open (another master key?)"
                );
                continue;
            };
            if let Some(step) = totp::check(&secret, code.expose_secret(), now, f.last_step) {
                return Ok(self.mfa.use_totp_step(&user.id, &f.id, step, now).await?);
            }
        }
        Ok(false)
    }
}
