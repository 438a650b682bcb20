//! Self-service accounts: sign-up, email verification, password reset and change, forced
//! password change, profile, account deletion, magic-link sign-in and invitations.
//!
//! Enumeration: every answer that takes an email address (sign-up, resend, reset, magic
//! link) is the same whether or not an account exists, and takes the same time: whatever
//! depends on the account (looking it up, issuing a token, sending the mail) runs after the
//! answer, in a background task. Sign-up hashes the password in both cases.

use std::collections::BTreeSet;
use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{json, Map, Value};
use tracing::{error, warn};

use super::audit::{detail, events, AuditContext, AuditLog};
use super::authn::{Authenticator, AuthnError, Confirmation};
use super::mail::{Mail, MailError, MailKind, Mailer};
use super::password_rules::PasswordRules;
use super::revocation::{RevocationError, RevocationService};
use super::throttle::{LimitedAction, Throttle, Throttled};
use super::Stores;
use crate::clock::{rfc3339, Clock};
use crate::config::{SignupMode, VerificationPolicy};
use crate::crypto::{AccountTokenCodec, PasswordHasher};
use crate::domain::{
    AccountToken, AccountTokenPurpose, ClientId, Email, PasswordContext, PolicyViolation,
    Principal, RequestOrigin, RoleName, User, UserId, ValidationError,
};
use crate::storage::{NewUserRecord, StorageError, UserPatch};

/// Size of the attributes object a user may keep on their profile.
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The new password breaks the policy: every broken rule.
    #[error("the password breaks the password policy")]
    PasswordPolicy(Vec<PolicyViolation>),
    /// The link or code is unknown, expired, used or superseded (one answer for all).
    #[error("the link is invalid, expired or already used")]
    InvalidToken,
    /// The current password is wrong.
    #[error("the password is wrong")]
    InvalidCredentials,
    /// Confirming this address needs the password chosen at sign-up (or a session opened
    /// with it): the click alone proves only the mailbox.
    #[error(
        "enter the password chosen when this account was signed up to confirm the address; \
         if you did not sign up, set your own password with a password reset instead"
    )]
    PasswordRequired,
    #[error("sign-up is closed")]
    SignupClosed,
    #[error("sign-up needs an invitation")]
    InviteRequired,
    #[error("magic-link sign-in is not enabled")]
    MagicLinksDisabled,
    /// The bearer token's user was deleted or disabled.
    #[error("the account no longer exists or is disabled")]
    AccountGone,
    /// The bearer token belongs to a client, not to a user.
    #[error("this token was issued to a client, not to a user")]
    NotAUser,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// Something the request needs cannot answer now (mail queue full, denylist): retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("unexpected error")]
    Unexpected(#[source] anyhow::Error),
}

impl From<StorageError> for AccountError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(c) if c == "users_username_key" => {
                AccountError::Conflict("this username is taken".into())
            }
            other => AccountError::Unexpected(other.into()),
        }
    }
}

impl From<RevocationError> for AccountError {
    fn from(e: RevocationError) -> Self {
        match e {
            RevocationError::Unavailable(d) => AccountError::Unavailable(d),
            other => AccountError::Unexpected(other.into()),
        }
    }
}

impl From<AuthnError> for AccountError {
    fn from(e: AuthnError) -> Self {
        match e {
            AuthnError::InvalidCredentials => AccountError::InvalidCredentials,
            AuthnError::InvalidLink => AccountError::InvalidToken,
            AuthnError::MagicLinksDisabled => AccountError::MagicLinksDisabled,
            AuthnError::Throttled(t) => AccountError::Throttled(t),
            AuthnError::Refused(r) => AccountError::InvalidRequest(r.as_str().into()),
            AuthnError::Unavailable(d) => AccountError::Unavailable(d),
            AuthnError::Unexpected(cause) => AccountError::Unexpected(cause),
        }
    }
}

impl From<MailError> for AccountError {
    fn from(e: MailError) -> Self {
        AccountError::Unavailable(e.to_string())
    }
}

/// The rules of self-service accounts, from the configuration.
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    pub signup: SignupMode,
    pub verification: VerificationPolicy,
    pub verification_ttl: i64,
    pub reset_ttl: i64,
    pub magic_link_ttl: i64,
    pub invite_ttl: i64,
    pub magic_links: bool,
    pub profile_attributes: BTreeSet<String>,
    /// Link templates with `{token}`.
    pub verify_url: String,
    pub reset_url: String,
    pub invite_url: String,
    /// Without it, magic-link mails carry only the code.
    pub magic_link_url: Option<String>,
}

pub struct SignupInput {
    /// Optional with an invitation: its address is used.
    pub email: Option<String>,
    pub password: SecretString,
    pub display_name: Option<String>,
    pub attributes: Option<Map<String, Value>>,
    pub invite_token: Option<String>,
}

pub struct PasswordChange {
    pub current_password: SecretString,
    pub new_password: SecretString,
    /// Keep the session the bearer token belongs to (its refresh-token family).
    pub keep_current_session: bool,
}

/// Changes to one's own profile; `None` leaves a field alone.
#[derive(Default)]
pub struct ProfileUpdate {
    /// `Some(None)` removes it.
    pub display_name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    /// Merged into the stored attributes; a `null` value removes the key.
    pub attributes: Option<Map<String, Value>>,
}

/// What a user sees of their own account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProfileView {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// Only the attributes users may set themselves.
    pub attributes: Map<String, Value>,
    pub must_change_password: bool,
    pub has_password: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

/// An invitation as created by an operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InviteView {
    pub email: String,
    pub roles: Vec<String>,
    pub link: String,
    pub expires_at: String,
}

/// The answer given for a verified address.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifiedEmail {
    pub email: String,
    pub email_verified: bool,
}

struct Inner {
    stores: Stores,
    authn: Arc<Authenticator>,
    hasher: PasswordHasher,
    rules: Arc<PasswordRules>,
    revocations: Arc<RevocationService>,
    throttle: Arc<Throttle>,
    mailer: Arc<Mailer>,
    audit: Arc<AuditLog>,
    codec: Arc<AccountTokenCodec>,
    clock: Arc<dyn Clock>,
    policy: AccountPolicy,
    /// Places for deferred work.
    deferred: Arc<tokio::sync::Semaphore>,
}

/// Account work still to do after a request's answer (at most `MAX_DEFERRED` at once).
const MAX_DEFERRED: usize = 512;

/// A reserved place for deferred work.
struct Deferred {
    inner: Arc<Inner>,
    permit: tokio::sync::OwnedSemaphorePermit,
}

impl Deferred {
    fn run<F, Fut>(self, what: &'static str, f: F)
    where
        F: FnOnce(Arc<Inner>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), AccountError>> + Send + 'static,
    {
        let Deferred { inner, permit } = self;
        tokio::spawn(async move {
            match f(inner).await {
                Ok(()) => {}
                // The cause chain, once (no backtrace: a flood of failures stays readable).
                Err(AccountError::Unexpected(cause)) => {
                    error!(
                        error = format!("{cause:#}"),
                        what, "account background step failed"
                    );
                }
                Err(e) => error!(error = %e, what, "account background step failed"),
            }
            drop(permit);
        });
    }
}

/// The account use cases. Cheap to clone.
#[derive(Clone)]
pub struct AccountService {
    inner: Arc<Inner>,
}

fn ctx<'a>(
    user_id: Option<&'a UserId>,
    client_id: Option<&'a str>,
    origin: &'a RequestOrigin,
) -> AuditContext<'a> {
    AuditContext {
        user_id,
        client_id,
        origin: Some(origin),
    }
}

fn link(template: &str, token: &str) -> String {
    template.replace("{token}", token)
}

fn minutes(secs: i64) -> String {
    (secs / 60).max(1).to_string()
}

fn unexpected(e: impl Into<anyhow::Error>) -> AccountError {
    AccountError::Unexpected(e.into())
}

impl AccountService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stores: Stores,
        authn: Arc<Authenticator>,
        hasher: PasswordHasher,
        rules: Arc<PasswordRules>,
        revocations: Arc<RevocationService>,
        throttle: Arc<Throttle>,
        mailer: Arc<Mailer>,
        audit: Arc<AuditLog>,
        codec: Arc<AccountTokenCodec>,
        clock: Arc<dyn Clock>,
        policy: AccountPolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                stores,
                authn,
                hasher,
                rules,
                revocations,
                throttle,
                mailer,
                audit,
                codec,
                clock,
                policy,
                deferred: Arc::new(tokio::sync::Semaphore::new(MAX_DEFERRED)),
            }),
        }
    }

    pub fn policy(&self) -> &AccountPolicy {
        &self.inner.policy
    }

    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.inner.audit
    }

    /// A place for the account-dependent part of a request, run after its answer (see the
    /// module docs). Places are bounded (`MAX_DEFERRED`): past them the request is refused
    /// with 503 before it changed anything, whatever the address, so that a flood can
    /// neither grow memory without bound nor reveal anything.
    fn reserve(&self) -> Result<Deferred, AccountError> {
        let permit = self
            .inner
            .deferred
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                AccountError::Unavailable("too many account requests in progress; retry".into())
            })?;
        Ok(Deferred {
            inner: self.inner.clone(),
            permit,
        })
    }

    // --- sign-up --------------------------------------------------------------------------

    /// Open or invite-only sign-up. The answer is the same for a new and an existing address;
    /// the owner of an existing one is told by mail that someone tried.
    pub async fn signup(
        &self,
        input: SignupInput,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        if i.policy.signup == SignupMode::Closed {
            return Err(AccountError::SignupClosed);
        }
        let display_name = input
            .display_name
            .as_deref()
            .map(User::validate_display_name)
            .transpose()?;
        let attributes = match input.attributes {
            Some(a) => i.own_attributes(Map::new(), a)?,
            None => Map::new(),
        };
        let invite = match (&input.invite_token, i.policy.signup) {
            (Some(t), _) => Some(t.as_str()),
            (None, SignupMode::Invite) => return Err(AccountError::InviteRequired),
            (None, _) => None,
        };
        let invitation = match invite {
            Some(t) => Some(i.live_token(AccountTokenPurpose::Invite, t).await?),
            None => None,
        };
        let given_email = match (&input.email, &invitation) {
            (Some(e), Some(inv)) => {
                let e = Email::parse(e)?;
                if e != inv.email {
                    return Err(AccountError::InvalidRequest(
                        "the invitation is for another email address".into(),
                    ));
                }
                e
            }
            (Some(e), None) => Email::parse(e)?,
            (None, Some(inv)) => inv.email.clone(),
            (None, None) => return Err(ValidationError::new("email", "is required").into()),
        };
        // The policy first (pure, cheap): a refused password does not use up the address's
        // sign-up allowance, so the user can retry at once with a better one.
        i.check_new_password(
            &input.password,
            &PasswordContext {
                email: Some(given_email.as_str()),
                username: None,
                display_name: display_name.as_deref(),
            },
        )?;
        i.throttle
            .limit(LimitedAction::SignUp, Some(given_email.as_str()), origin.ip)
            .await?;
        let deferred = self.reserve()?;
        let hash = i.hash(input.password).await?;
        let mut role_ids = Vec::new();
        // An invitation is used only once the rest of the request is known to be good.
        if let Some(inv) = &invitation {
            if i.stores
                .account_tokens
                .consume(AccountTokenPurpose::Invite, &inv.token_hash, i.clock.now())
                .await?
                .is_none()
            {
                return Err(AccountError::InvalidToken);
            }
            for name in inv
                .data
                .get("roles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let Ok(name) = RoleName::parse(name) else {
                    continue;
                };
                match i.stores.roles.find_by_name(&name).await? {
                    Some(role) => role_ids.push(role.id),
                    None => warn!(role = name.as_str(), "invited role no longer exists"),
                }
            }
        }
        let now = i.clock.now();
        let user = User {
            id: UserId::generate(),
            email: given_email,
            username: None,
            display_name,
            is_active: true,
            // An invitation was delivered to the address: it is proven.
            email_verified: invitation.is_some(),
            password_hash: Some(hash),
            attributes,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            must_change_password: false,
            password_changed_at: Some(now),
        };
        let origin = origin.clone();
        match i
            .stores
            .users
            .create(&NewUserRecord {
                user: user.clone(),
                role_ids,
            })
            .await
        {
            Ok(()) => {
                let invited = invitation.is_some();
                deferred.run("sign-up", move |i| async move {
                    i.audit
                        .record(
                            events::SIGNUP,
                            ctx(Some(&user.id), None, &origin),
                            detail([("invited", json!(invited))]),
                        )
                        .await;
                    if !invited {
                        i.send_verification(&user, &origin).await?;
                    }
                    Ok(())
                });
                Ok(())
            }
            Err(StorageError::Conflict(c)) if c == "users_email_key" => {
                let email = user.email.clone();
                deferred.run("sign-up of an existing address", move |i| async move {
                    let existing = i.stores.users.find_by_email(email.as_str()).await?;
                    i.audit
                        .record(
                            events::SIGNUP_EXISTING_EMAIL,
                            ctx(existing.as_ref().map(|u| &u.id), None, &origin),
                            Map::new(),
                        )
                        .await;
                    if let Some(u) = existing {
                        i.mailer.enqueue(Mail {
                            kind: MailKind::SignupExisting,
                            to: u.email.clone(),
                            display_name: greeting_name(&u),
                            vars: vec![("reset_link", String::new())],
                        })?;
                    }
                    Ok(())
                });
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    // --- email verification ---------------------------------------------------------------

    /// Uses a verification link. The click proves only that the mailbox owner opened it,
    /// not that they chose the account's password (someone may have signed up with another
    /// person's address): while an unverified account has a password, confirming needs that
    /// password (`proof`), or a session opened with it, else `PasswordRequired` and nothing
    /// changes. The mailbox owner who did not sign up uses a password reset or a magic link
    /// instead, which removes the stranger's password and sessions.
    pub async fn verify_email(
        &self,
        token: &str,
        proof: SignupProof,
        origin: &RequestOrigin,
    ) -> Result<VerifiedEmail, AccountError> {
        let i = &self.inner;
        let live = i
            .live_token(AccountTokenPurpose::VerifyEmail, token)
            .await?;
        let user = i.token_user(&live).await?;
        if needs_signup_proof(&user) {
            match proof {
                SignupProof::Session(id) if id == user.id => {}
                SignupProof::Password(password) => {
                    i.authn
                        .confirm_password(
                            &user,
                            password,
                            None,
                            origin,
                            Confirmation::EmailVerification,
                        )
                        .await?
                }
                _ => return Err(AccountError::PasswordRequired),
            }
        }
        let used = i.consume(AccountTokenPurpose::VerifyEmail, token).await?;
        if used.user_id.as_ref() != Some(&user.id) {
            return Err(AccountError::InvalidToken);
        }
        i.stores
            .users
            .update(
                &user.id,
                &UserPatch {
                    email_verified: Some(true),
                    ..Default::default()
                },
                i.clock.now(),
            )
            .await?;
        i.audit
            .record(
                events::EMAIL_VERIFIED,
                ctx(Some(&user.id), None, origin),
                Map::new(),
            )
            .await;
        Ok(VerifiedEmail {
            email: user.email.to_string(),
            email_verified: true,
        })
    }

    /// Whether the verification link `token` can be used, and if so whether confirming it
    /// needs the password chosen at sign-up (for the page the link opens).
    pub async fn verification_link(&self, token: &str) -> Result<Option<bool>, AccountError> {
        let i = &self.inner;
        let live = match i.live_token(AccountTokenPurpose::VerifyEmail, token).await {
            Ok(t) => t,
            Err(AccountError::InvalidToken) => return Ok(None),
            Err(e) => return Err(e),
        };
        match i.token_user(&live).await {
            Ok(user) => Ok(Some(needs_signup_proof(&user))),
            Err(AccountError::InvalidToken) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends a new verification link (the older ones stop working), if the address has an
    /// unverified account. Same answer either way.
    pub async fn resend_verification(
        &self,
        email: &str,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let email = i
            .admit(LimitedAction::VerificationResend, email, origin)
            .await?;
        let deferred = self.reserve()?;
        let origin = origin.clone();
        deferred.run("verification resend", move |i| async move {
            match i.stores.users.find_by_email(email.as_str()).await? {
                Some(u) if u.is_active && !u.email_verified => {
                    i.send_verification(&u, &origin).await
                }
                _ => Ok(()),
            }
        });
        Ok(())
    }

    // --- password reset -------------------------------------------------------------------

    /// Mails a reset link if the address has an active account. Same answer, same time,
    /// either way.
    pub async fn request_password_reset(
        &self,
        email: &str,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let email = i.admit(LimitedAction::PasswordReset, email, origin).await?;
        let deferred = self.reserve()?;
        let origin = origin.clone();
        deferred.run("password reset request", move |i| async move {
            let user = i
                .stores
                .users
                .find_by_email(email.as_str())
                .await?
                .filter(|u| u.is_active);
            i.audit
                .record(
                    events::PASSWORD_RESET_REQUESTED,
                    ctx(user.as_ref().map(|u| &u.id), None, &origin),
                    detail([("account_found", json!(user.is_some()))]),
                )
                .await;
            let Some(user) = user else { return Ok(()) };
            let secret = i
                .issue(
                    AccountTokenPurpose::PasswordReset,
                    &user,
                    None,
                    None,
                    Map::new(),
                )
                .await?;
            i.mailer.enqueue(Mail {
                kind: MailKind::PasswordReset,
                to: user.email.clone(),
                display_name: greeting_name(&user),
                vars: vec![
                    ("link", link(&i.policy.reset_url, &secret)),
                    ("expires_in_minutes", minutes(i.policy.reset_ttl)),
                ],
            })?;
            Ok(())
        });
        Ok(())
    }

    /// Sets a new password with a reset link; every token of the user is revoked.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: SecretString,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let found = i
            .live_token(AccountTokenPurpose::PasswordReset, token)
            .await?;
        let user = match &found.user_id {
            Some(id) => i.stores.users.find_by_id(id).await?,
            None => None,
        };
        let Some(user) = user.filter(|u| u.is_active && u.email == found.email) else {
            return Err(AccountError::InvalidToken);
        };
        i.check_new_password(&new_password, &password_context(&user))?;
        let hash = i.hash(new_password).await?;
        // The policy is checked before the link is used, so a refused password keeps it.
        if i.stores
            .account_tokens
            .consume(
                AccountTokenPurpose::PasswordReset,
                &found.token_hash,
                i.clock.now(),
            )
            .await?
            .is_none()
        {
            return Err(AccountError::InvalidToken);
        }
        i.set_password(&user, &hash, true).await?;
        i.revocations
            .revoke_user(&user.id, "password reset")
            .await?;
        i.audit
            .record(
                events::PASSWORD_RESET_COMPLETED,
                ctx(Some(&user.id), None, origin),
                Map::new(),
            )
            .await;
        i.notify_password_changed(&user);
        Ok(())
    }

    // --- password change ------------------------------------------------------------------

    /// A signed-in user changes their password. Every other session is revoked; the caller's
    /// own too unless it asks to keep it.
    pub async fn change_password(
        &self,
        caller: &Principal,
        change: PasswordChange,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let user = i.caller(caller).await?;
        i.authn
            .confirm_password(
                &user,
                change.current_password,
                Some(caller.client_id.as_str()),
                origin,
                Confirmation::PasswordChange,
            )
            .await?;
        i.check_new_password(&change.new_password, &password_context(&user))?;
        let hash = i.hash(change.new_password).await?;
        i.set_password(&user, &hash, false).await?;
        match (&caller.session, change.keep_current_session) {
            (Some(sid), true) => {
                i.revocations
                    .revoke_other_sessions(&user.id, sid, "password changed")
                    .await?
            }
            _ => {
                i.revocations
                    .revoke_user(&user.id, "password changed")
                    .await?
            }
        }
        i.audit
            .record(
                events::PASSWORD_CHANGED,
                ctx(Some(&user.id), Some(caller.client_id.as_str()), origin),
                detail([(
                    "kept_session",
                    json!(change.keep_current_session && caller.session.is_some()),
                )]),
            )
            .await;
        i.notify_password_changed(&user);
        Ok(())
    }

    /// The forced change of a user flagged `must_change_password`: the current credentials
    /// and a new password. Throttled like a login.
    pub async fn change_required_password(
        &self,
        email: &str,
        current_password: SecretString,
        new_password: SecretString,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let email = Email::parse(email).map_err(|_| AccountError::InvalidCredentials)?;
        let user = i
            .authn
            .check_credentials(&email, current_password, origin)
            .await?;
        if !user.must_change_password {
            return Err(AccountError::InvalidRequest(
                "no password change is pending for this account; sign in as usual".into(),
            ));
        }
        i.check_new_password(&new_password, &password_context(&user))?;
        let hash = i.hash(new_password).await?;
        i.set_password(&user, &hash, false).await?;
        i.revocations
            .revoke_user(&user.id, "password changed")
            .await?;
        i.audit
            .record(
                events::PASSWORD_CHANGED,
                ctx(Some(&user.id), None, origin),
                detail([("required", json!(true))]),
            )
            .await;
        i.notify_password_changed(&user);
        Ok(())
    }

    // --- profile --------------------------------------------------------------------------

    pub async fn profile(&self, caller: &Principal) -> Result<ProfileView, AccountError> {
        let user = self.inner.caller(caller).await?;
        Ok(self.inner.view(user))
    }

    pub async fn update_profile(
        &self,
        caller: &Principal,
        update: ProfileUpdate,
        origin: &RequestOrigin,
    ) -> Result<ProfileView, AccountError> {
        let i = &self.inner;
        let user = i.caller(caller).await?;
        let display_name = update
            .display_name
            .map(|d| d.as_deref().map(User::validate_display_name).transpose())
            .transpose()?;
        let username = update
            .username
            .map(|u| u.as_deref().map(User::validate_username).transpose())
            .transpose()?;
        let attributes = update
            .attributes
            .map(|a| i.own_attributes(user.attributes.clone(), a))
            .transpose()?;
        let mut changed: Vec<&str> = Vec::new();
        if display_name.is_some() {
            changed.push("display_name");
        }
        if username.is_some() {
            changed.push("username");
        }
        if attributes.is_some() {
            changed.push("attributes");
        }
        i.stores
            .users
            .update(
                &user.id,
                &UserPatch {
                    display_name,
                    username,
                    attributes,
                    ..Default::default()
                },
                i.clock.now(),
            )
            .await?;
        i.audit
            .record(
                events::PROFILE_UPDATED,
                ctx(Some(&user.id), Some(caller.client_id.as_str()), origin),
                detail([("fields", json!(changed))]),
            )
            .await;
        self.profile(caller).await
    }

    /// Deletes the caller's account after confirming the password: personal data goes (the
    /// user row and everything hanging off it; IP and user agent in its audit events), and
    /// every token is revoked.
    pub async fn delete_account(
        &self,
        caller: &Principal,
        password: SecretString,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let user = i.caller(caller).await?;
        i.authn
            .confirm_password(
                &user,
                password,
                Some(caller.client_id.as_str()),
                origin,
                Confirmation::AccountDeletion,
            )
            .await?;
        i.revocations.revoke_user(&user.id, "deleted").await?;
        // Scrubbed first: if the deletion then fails, the account is still there to delete
        // again, and no personal data outlived it either way.
        i.audit.scrub_user(&user.id).await?;
        i.stores.users.delete(&user.id).await?;
        i.audit
            .record(
                events::ACCOUNT_DELETED,
                AuditContext {
                    user_id: Some(&user.id),
                    client_id: Some(caller.client_id.as_str()),
                    origin: None,
                },
                Map::new(),
            )
            .await;
        Ok(())
    }

    // --- magic links ----------------------------------------------------------------------

    /// Mails a sign-in link and code for `client_id` if the address has an active account.
    /// Same answer either way. The caller has checked that the client may use magic links.
    pub async fn request_magic_link(
        &self,
        email: &str,
        client_id: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        if !i.policy.magic_links {
            return Err(AccountError::MagicLinksDisabled);
        }
        let email = i.admit(LimitedAction::MagicLink, email, origin).await?;
        let deferred = self.reserve()?;
        let origin = origin.clone();
        let client_id = client_id.clone();
        deferred.run("magic link request", move |i| async move {
            let user = i
                .stores
                .users
                .find_by_email(email.as_str())
                .await?
                .filter(|u| u.is_active);
            i.audit
                .record(
                    events::MAGIC_LINK_REQUESTED,
                    ctx(
                        user.as_ref().map(|u| &u.id),
                        Some(client_id.as_str()),
                        &origin,
                    ),
                    detail([("account_found", json!(user.is_some()))]),
                )
                .await;
            let Some(user) = user else { return Ok(()) };
            let code = i.codec.mint_code(user.email.as_str());
            let secret = i
                .issue(
                    AccountTokenPurpose::MagicLink,
                    &user,
                    Some(client_id),
                    Some(code.hash),
                    Map::new(),
                )
                .await?;
            let link = i
                .policy
                .magic_link_url
                .as_deref()
                .map(|t| link(t, &secret))
                .unwrap_or_default();
            i.mailer.enqueue(Mail {
                kind: MailKind::MagicLink,
                to: user.email.clone(),
                display_name: greeting_name(&user),
                vars: vec![
                    ("link", link),
                    ("code", code.value),
                    ("expires_in_minutes", minutes(i.policy.magic_link_ttl)),
                ],
            })?;
            Ok(())
        });
        Ok(())
    }

    // --- invitations ----------------------------------------------------------------------

    /// An operator invites `email` (with roles granted at sign-up). The mail is queued; the
    /// link is returned too, for delivery by other means.
    pub async fn invite(&self, email: &str, roles: &[String]) -> Result<InviteView, AccountError> {
        let i = &self.inner;
        if i.policy.signup == SignupMode::Closed {
            return Err(AccountError::InvalidRequest(
                "sign-up is closed (accounts.signup = \"closed\"): an invitation could not be used"
                    .into(),
            ));
        }
        let email = Email::parse(email)?;
        let mut names = Vec::new();
        for r in roles {
            let name = RoleName::parse(r)?;
            if i.stores.roles.find_by_name(&name).await?.is_none() {
                return Err(AccountError::InvalidRequest(format!(
                    "no role named {name}"
                )));
            }
            names.push(name.to_string());
        }
        if i.stores
            .users
            .find_by_email(email.as_str())
            .await?
            .is_some()
        {
            return Err(AccountError::Conflict(
                "a user with this email already exists".into(),
            ));
        }
        let now = i.clock.now();
        let secret = i.codec.mint();
        let token = AccountToken {
            id: uuid::Uuid::new_v4().to_string(),
            purpose: AccountTokenPurpose::Invite,
            token_hash: secret.hash,
            code_hash: None,
            user_id: None,
            email: email.clone(),
            client_id: None,
            data: detail([("roles", json!(names))]),
            attempts: 0,
            created_at: now,
            expires_at: now + i.policy.invite_ttl,
            used_at: None,
        };
        i.stores.account_tokens.issue(&token).await?;
        let link = link(&i.policy.invite_url, &secret.value);
        i.mailer.enqueue(Mail {
            kind: MailKind::Invite,
            to: email.clone(),
            display_name: None,
            vars: vec![
                ("link", link.clone()),
                ("expires_in_minutes", minutes(i.policy.invite_ttl)),
            ],
        })?;
        i.audit
            .record(
                events::INVITE_CREATED,
                AuditContext {
                    origin: Some(&RequestOrigin::local()),
                    ..Default::default()
                },
                detail([("email", json!(email.as_str())), ("roles", json!(names))]),
            )
            .await;
        Ok(InviteView {
            email: email.to_string(),
            roles: names,
            link,
            expires_at: rfc3339(token.expires_at),
        })
    }

    /// Whether a link is still usable (the hosted pages show a form only for one that is).
    pub async fn link_is_live(
        &self,
        purpose: AccountTokenPurpose,
        token: &str,
    ) -> Result<bool, AccountError> {
        match self.inner.live_token(purpose, token).await {
            Ok(_) => Ok(true),
            Err(AccountError::InvalidToken) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes expired account tokens (housekeeping).
    pub async fn purge_expired(&self) -> Result<u64, StorageError> {
        let i = &self.inner;
        i.stores.account_tokens.purge_expired(i.clock.now()).await
    }
}

/// What shows that whoever confirms an address also chose the account's password.
pub enum SignupProof {
    /// Nothing but the link.
    None,
    /// The password, as typed.
    Password(SecretString),
    /// A session of this user (a bearer access token's subject): opened with the password.
    Session(UserId),
}

impl std::fmt::Debug for SignupProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignupProof::None => f.write_str("None"),
            SignupProof::Password(_) => f.write_str("Password([redacted])"),
            SignupProof::Session(id) => f.debug_tuple("Session").field(id).finish(),
        }
    }
}

/// An unverified account with a password: whoever chose it may not own the mailbox.
fn needs_signup_proof(user: &User) -> bool {
    !user.email_verified && user.password_hash.is_some()
}

/// The name a mail greets with: only a verified account's (a stranger who signed up with
/// someone else's address must not put words into the mail sent to it).
fn greeting_name(u: &User) -> Option<String> {
    u.display_name.clone().filter(|_| u.email_verified)
}

fn password_context(u: &User) -> PasswordContext<'_> {
    PasswordContext {
        email: Some(u.email.as_str()),
        username: u.username.as_deref(),
        display_name: u.display_name.as_deref(),
    }
}

impl Inner {
    fn check_new_password(
        &self,
        password: &SecretString,
        context: &PasswordContext<'_>,
    ) -> Result<(), AccountError> {
        let violations = self.rules.violations(password, context);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(AccountError::PasswordPolicy(violations))
        }
    }

    async fn hash(&self, password: SecretString) -> Result<String, AccountError> {
        self.hasher.hash(password).await.map_err(unexpected)
    }

    /// The user the caller speaks for.
    async fn caller(&self, caller: &Principal) -> Result<User, AccountError> {
        let Some(id) = caller.user_id() else {
            return Err(AccountError::NotAUser);
        };
        match self.stores.users.find_by_id(id).await? {
            Some(u) if u.is_active => Ok(u),
            // Deleted or disabled since the token was issued (its revocation may still be
            // on its way to the denylist).
            _ => Err(AccountError::AccountGone),
        }
    }

    /// Parses the address of a mail-sending request and counts the request against its
    /// limits (`Throttled` past them).
    async fn admit(
        &self,
        action: LimitedAction,
        email: &str,
        origin: &RequestOrigin,
    ) -> Result<Email, AccountError> {
        let email = Email::parse(email)?;
        self.throttle
            .limit(action, Some(email.as_str()), origin.ip)
            .await?;
        Ok(email)
    }

    /// Sets the password hash; clears a pending forced change; with `verified`, marks the
    /// address verified (a reset link reached it).
    async fn set_password(
        &self,
        user: &User,
        hash: &str,
        verified: bool,
    ) -> Result<(), AccountError> {
        let now = self.clock.now();
        self.stores
            .users
            .set_password_hash(&user.id, Some(hash), now)
            .await?;
        if user.must_change_password || (verified && !user.email_verified) {
            self.stores
                .users
                .update(
                    &user.id,
                    &UserPatch {
                        must_change_password: Some(false),
                        email_verified: verified.then_some(true),
                        ..Default::default()
                    },
                    now,
                )
                .await?;
        }
        Ok(())
    }

    fn notify_password_changed(&self, user: &User) {
        if let Err(e) = self.mailer.enqueue(Mail {
            kind: MailKind::PasswordChanged,
            to: user.email.clone(),
            display_name: greeting_name(user),
            vars: vec![],
        }) {
            warn!(error = %e, "password-changed notice not queued");
        }
    }

    /// Stores a new token of `purpose` for `user` (superseding older ones); returns the
    /// secret for the link.
    async fn issue(
        &self,
        purpose: AccountTokenPurpose,
        user: &User,
        client_id: Option<ClientId>,
        code_hash: Option<String>,
        data: Map<String, Value>,
    ) -> Result<String, AccountError> {
        let ttl = match purpose {
            AccountTokenPurpose::VerifyEmail => self.policy.verification_ttl,
            AccountTokenPurpose::PasswordReset => self.policy.reset_ttl,
            AccountTokenPurpose::MagicLink => self.policy.magic_link_ttl,
            AccountTokenPurpose::Invite => self.policy.invite_ttl,
        };
        let now = self.clock.now();
        let secret = self.codec.mint();
        self.stores
            .account_tokens
            .issue(&AccountToken {
                id: uuid::Uuid::new_v4().to_string(),
                purpose,
                token_hash: secret.hash,
                code_hash,
                user_id: Some(user.id.clone()),
                email: user.email.clone(),
                client_id,
                data,
                attempts: 0,
                created_at: now,
                expires_at: now + ttl,
                used_at: None,
            })
            .await?;
        Ok(secret.value)
    }

    async fn send_verification(
        &self,
        user: &User,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let secret = self
            .issue(
                AccountTokenPurpose::VerifyEmail,
                user,
                None,
                None,
                Map::new(),
            )
            .await?;
        self.mailer.enqueue(Mail {
            kind: MailKind::VerifyEmail,
            to: user.email.clone(),
            display_name: greeting_name(user),
            vars: vec![
                ("link", link(&self.policy.verify_url, &secret)),
                ("expires_in_minutes", minutes(self.policy.verification_ttl)),
            ],
        })?;
        self.audit
            .record(
                events::VERIFICATION_SENT,
                ctx(Some(&user.id), None, origin),
                Map::new(),
            )
            .await;
        Ok(())
    }

    /// The stored form of a presented link secret; `InvalidToken` for one that cannot be ours.
    fn presented_hash(&self, presented: &str) -> Result<String, AccountError> {
        self.codec
            .hash(presented.trim())
            .ok_or(AccountError::InvalidToken)
    }

    /// The live token a presented link secret names, or `InvalidToken`.
    /// The user a verification token was issued to, while its address is still theirs.
    async fn token_user(&self, token: &AccountToken) -> Result<User, AccountError> {
        let Some(user_id) = &token.user_id else {
            return Err(AccountError::InvalidToken);
        };
        match self.stores.users.find_by_id(user_id).await? {
            Some(user) if user.email == token.email => Ok(user),
            _ => Err(AccountError::InvalidToken),
        }
    }

    async fn live_token(
        &self,
        purpose: AccountTokenPurpose,
        presented: &str,
    ) -> Result<AccountToken, AccountError> {
        let hash = self.presented_hash(presented)?;
        self.stores
            .account_tokens
            .find_live(purpose, &hash, self.clock.now())
            .await?
            .ok_or(AccountError::InvalidToken)
    }

    /// Uses a presented link secret, or `InvalidToken`.
    async fn consume(
        &self,
        purpose: AccountTokenPurpose,
        presented: &str,
    ) -> Result<AccountToken, AccountError> {
        let hash = self.presented_hash(presented)?;
        self.stores
            .account_tokens
            .consume(purpose, &hash, self.clock.now())
            .await?
            .ok_or(AccountError::InvalidToken)
    }

    /// Merges `changes` into `current`, allowing only the configured profile attributes; a
    /// `null` removes a key.
    fn own_attributes(
        &self,
        mut current: Map<String, Value>,
        changes: Map<String, Value>,
    ) -> Result<Map<String, Value>, AccountError> {
        for (k, v) in changes {
            if !self.policy.profile_attributes.contains(&k) {
                return Err(ValidationError::new(
                    "attributes",
                    format!("{k:?} is not an attribute users may set"),
                )
                .into());
            }
            if v.is_null() {
                current.remove(&k);
            } else {
                current.insert(k, v);
            }
        }
        if serde_json::to_string(&current)
            .map(|s| s.len())
            .unwrap_or(usize::MAX)
            > MAX_ATTRIBUTES_BYTES
        {
            return Err(
                ValidationError::new("attributes", "must be at most 16 KiB of JSON").into(),
            );
        }
        Ok(current)
    }

    fn view(&self, u: User) -> ProfileView {
        let attributes = u
            .attributes
            .into_iter()
            .filter(|(k, _)| self.policy.profile_attributes.contains(k))
            .collect();
        ProfileView {
            id: u.id.to_string(),
            email: u.email.to_string(),
            email_verified: u.email_verified,
            username: u.username,
            display_name: u.display_name,
            attributes,
            must_change_password: u.must_change_password,
            has_password: u.password_hash.is_some(),
            created_at: rfc3339(u.created_at),
            last_login_at: u.last_login_at.map(rfc3339),
        }
    }
}
