//! Latchkey's own SSO session: the browser's sign-in cookie. A session starts at every
//! sign-in (a new id each time: no fixation), is found by the hash of the cookie's secret,
//! slides its idle expiry with each use (never past its absolute expiry), and ends by logout,
//! by "sign out everywhere", by an operator or by expiry. Ending a session revokes the
//! refresh-token families started in it that were not granted `offline_access`.

use std::sync::Arc;

use tracing::info;

use super::audit::{detail, AuditContext, AuditLog};
use super::revocation::{RevocationError, RevocationService, UserSessionEnder};
use crate::clock::{Clock, UnixTime};
use crate::crypto::{lookup_hash, mint_lookup_secret, BrowserSeal};
use crate::domain::{Amr, ClientId, RequestOrigin, SessionId, SsoSession, UserId};
use crate::storage::{SessionStore, StorageError, UserStore};

crate::secret_newtype! {
    /// The secret the session cookie carries.
    pub struct SessionSecret;
}

/// Session lifetimes, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_timeout: i64,
    pub absolute_timeout: i64,
    /// "Remember me": idle and absolute lifetime, and the persistent cookie's `Max-Age`.
    pub remember_for: i64,
}

/// A session that just started: the record, and the cookie that names it.
#[derive(Debug)]
pub struct StartedSession {
    pub session: SsoSession,
    pub secret: SessionSecret,
    /// The cookie's `Max-Age` (a remembered session); `None`: a browser-session cookie.
    pub cookie_max_age: Option<i64>,
}

/// Why a session ended (the audit trail's and the refresh families' reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Logout,
    LogoutEverywhere,
    /// Replaced by a new sign-in in the same browser.
    SignedInAgain,
    /// An operator, a password change, a deactivation.
    Revoked,
    Expired,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::LogoutEverywhere => "logout-all",
            EndReason::SignedInAgain => "signed-in-again",
            EndReason::Revoked => "revoked",
            EndReason::Expired => "expired",
        }
    }
}

/// Told when sessions end, after the fact and without delaying the caller (back-channel
/// logout to the clients the sessions issued codes to).
pub trait SessionEndListener: Send + Sync {
    fn sessions_ended(&self, sessions: Vec<SsoSession>, reason: EndReason);
}

pub struct SessionService {
    store: Arc<dyn SessionStore>,
    users: Arc<dyn UserStore>,
    revocations: Arc<RevocationService>,
    audit: Arc<AuditLog>,
    seal: Arc<BrowserSeal>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    listener: std::sync::OnceLock<Arc<dyn SessionEndListener>>,
}

pub mod audit_events {
    pub const SESSION_STARTED: &str = "session_started";
    pub const SESSION_STEPPED_UP: &str = "session_stepped_up";
    pub const SESSION_ENDED: &str = "session_ended";
}

impl SessionService {
    pub fn new(
        store: Arc<dyn SessionStore>,
        users: Arc<dyn UserStore>,
        revocations: Arc<RevocationService>,
        audit: Arc<AuditLog>,
        seal: Arc<BrowserSeal>,
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
    ) -> Self {
        Self {
            store,
            users,
            revocations,
            audit,
            seal,
            clock,
            policy,
            listener: std::sync::OnceLock::new(),
        }
    }

    /// Registers who hears of ended sessions (set once, at start-up).
    pub fn set_end_listener(&self, listener: Arc<dyn SessionEndListener>) {
        let _ = self.listener.set(listener);
    }

    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    pub fn store_name(&self) -> &'static str {
        self.store.name()
    }

    /// Starts a session for a user who just signed in, ending `replacing` (the session the
    /// browser held, if any): a new id at every sign-in.
    pub async fn start(
        &self,
        user_id: &UserId,
        amr: Vec<Amr>,
        remember: bool,
        origin: &RequestOrigin,
        replacing: Option<&SessionId>,
    ) -> Result<StartedSession, RevocationError> {
        let now = self.clock.now();
        if let Some(old) = replacing {
            self.end(old, EndReason::SignedInAgain, Some(origin))
                .await?;
        }
        let (value, secret_hash) = mint_lookup_secret();
        let (idle, absolute) = if remember {
            (self.policy.remember_for, self.policy.remember_for)
        } else {
            (self.policy.idle_timeout, self.policy.absolute_timeout)
        };
        let session = SsoSession {
            id: SessionId::generate(),
            secret_hash,
            user_id: user_id.clone(),
            auth_time: now,
            amr,
            remember,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now + idle.min(absolute),
            absolute_expires_at: now + absolute,
            user_agent: origin.user_agent.clone(),
            ip: Some(origin.ip.to_string()),
            clients: Vec::new(),
        };
        self.store.create(&session).await?;
        self.audit
            .record(
                audit_events::SESSION_STARTED,
                AuditContext {
                    user_id: Some(user_id),
                    client_id: None,
                    origin: Some(origin),
                },
                detail([
                    ("session_id", session.id.as_str().into()),
                    ("remember", remember.into()),
                ]),
            )
            .await;
        info!(session_id = session.id.as_str(), "session started");
        Ok(StartedSession {
            cookie_max_age: remember.then_some(absolute),
            session,
            secret: SessionSecret::new(value),
        })
    }

    /// The live session a cookie names, if its user may still sign in; each use slides the
    /// idle expiry. A session whose user was deactivated is ended here.
    pub async fn resolve(&self, cookie: &str) -> Result<Option<SsoSession>, RevocationError> {
        let Some(hash) = lookup_hash(cookie) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let Some(found) = self.store.find_live_with_user(&hash, now).await? else {
            return Ok(None);
        };
        let mut session = found.session;
        let active = match found.user_active {
            Some(active) => active,
            None => self
                .users
                .find_by_id(&session.user_id)
                .await?
                .is_some_and(|u| u.is_active),
        };
        if !active {
            self.end(&session.id, EndReason::Revoked, None).await?;
            return Ok(None);
        }
        let idle = if session.remember {
            self.policy.remember_for
        } else {
            self.policy.idle_timeout
        };
        let idle_expires_at = (now + idle).min(session.absolute_expires_at);
        // Sliding the expiry writes; once a minute is enough.
        if now - session.last_seen_at >= 60 {
            if !self.store.touch(&session.id, idle_expires_at, now).await? {
                return Ok(None);
            }
            session.last_seen_at = now;
            session.idle_expires_at = idle_expires_at;
        }
        Ok(Some(session))
    }

    /// A step-up (issue 15): the session's user just proved `added` (a second factor, or the
    /// password again), so the session's `amr` gains them and its `auth_time` is now. The
    /// session keeps its id and cookie. `None` if it is no longer live.
    pub async fn step_up(
        &self,
        session: &SsoSession,
        added: &[Amr],
        origin: &RequestOrigin,
    ) -> Result<Option<SsoSession>, StorageError> {
        let now = self.clock.now();
        let mut amr = session.amr.clone();
        amr.extend(added.iter().cloned());
        amr.sort_unstable();
        amr.dedup();
        if !self.store.step_up(&session.id, &amr, now, now).await? {
            return Ok(None);
        }
        self.audit
            .record(
                audit_events::SESSION_STEPPED_UP,
                AuditContext {
                    user_id: Some(&session.user_id),
                    client_id: None,
                    origin: Some(origin),
                },
                detail([
                    ("session_id", session.id.as_str().into()),
                    (
                        "amr",
                        amr.iter()
                            .map(|a| a.as_str().to_owned())
                            .collect::<Vec<_>>()
                            .into(),
                    ),
                ]),
            )
            .await;
        info!(session_id = session.id.as_str(), "session stepped up");
        let mut stepped = session.clone();
        stepped.amr = amr;
        stepped.auth_time = now;
        Ok(Some(stepped))
    }

    /// Notes that the session issued a code to `client` (back-channel logout goes there).
    pub async fn add_client(
        &self,
        session: &SsoSession,
        client: &ClientId,
    ) -> Result<(), StorageError> {
        if session.clients.contains(client) {
            return Ok(());
        }
        self.store
            .add_client(&session.id, client, self.clock.now())
            .await
            .map(|_| ())
    }

    /// The user's live sessions, newest first.
    pub async fn list(&self, user_id: &UserId) -> Result<Vec<SsoSession>, StorageError> {
        self.store.list_for_user(user_id, self.clock.now()).await
    }

    /// Ends one session (if live): revokes its refresh-token families that were not granted
    /// `offline_access`, audits, and tells the listener. Returns whether it was live.
    pub async fn end(
        &self,
        id: &SessionId,
        reason: EndReason,
        origin: Option<&RequestOrigin>,
    ) -> Result<bool, RevocationError> {
        let Some(session) = self.store.end(id, self.clock.now()).await? else {
            return Ok(false);
        };
        self.after_end(vec![session], reason, false, origin).await?;
        Ok(true)
    }

    /// Ends every session of a user but `except`. With `include_offline`, the families
    /// granted `offline_access` are revoked too (the caller revokes the user's tokens anyway,
    /// or asked for it: "sign out everywhere").
    pub async fn end_all(
        &self,
        user_id: &UserId,
        except: Option<&SessionId>,
        reason: EndReason,
        include_offline: bool,
        origin: Option<&RequestOrigin>,
    ) -> Result<usize, RevocationError> {
        let ended = self
            .store
            .end_for_user(user_id, except, self.clock.now())
            .await?;
        let n = ended.len();
        if n > 0 {
            self.after_end(ended, reason, include_offline, origin)
                .await?;
        }
        Ok(n)
    }

    /// Ends sessions past their expiry (a background loop), at most `limit` per call.
    pub async fn end_expired(&self, limit: u32) -> Result<usize, RevocationError> {
        let ended = self.store.take_expired(self.clock.now(), limit).await?;
        let n = ended.len();
        if n > 0 {
            self.after_end(ended, EndReason::Expired, false, None)
                .await?;
        }
        Ok(n)
    }

    async fn after_end(
        &self,
        sessions: Vec<SsoSession>,
        reason: EndReason,
        include_offline: bool,
        origin: Option<&RequestOrigin>,
    ) -> Result<(), RevocationError> {
        for s in &sessions {
            self.revocations
                .revoke_session(&s.id, include_offline, reason.as_str())
                .await?;
            self.audit
                .record(
                    audit_events::SESSION_ENDED,
                    AuditContext {
                        user_id: Some(&s.user_id),
                        client_id: None,
                        origin,
                    },
                    detail([
                        ("session_id", s.id.as_str().into()),
                        ("reason", reason.as_str().into()),
                    ]),
                )
                .await;
            info!(
                session_id = s.id.as_str(),
                reason = reason.as_str(),
                "session ended"
            );
        }
        if let Some(listener) = self.listener.get() {
            listener.sessions_ended(sessions, reason);
        }
        Ok(())
    }

    /// A new CSRF binding for a browser that has none (its cookie's value).
    pub fn new_csrf_binding(&self) -> String {
        crate::crypto::random_token(32)
    }

    /// The CSRF token for forms shown to the browser holding the CSRF cookie `binding`.
    pub fn csrf_token(&self, binding: &str) -> String {
        self.seal.csrf_token(binding)
    }

    /// Whether a form's CSRF token belongs to the browser holding `binding`.
    pub fn csrf_matches(&self, binding: &str, token: &str) -> bool {
        self.seal.csrf_matches(binding, token)
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}

#[async_trait::async_trait]
impl UserSessionEnder for SessionService {
    async fn end_user_sessions(
        &self,
        user_id: &UserId,
        except: Option<&SessionId>,
        _reason: &str,
    ) -> Result<(), RevocationError> {
        // The caller revokes every token of the user itself.
        self.end_all(user_id, except, EndReason::Revoked, false, None)
            .await
            .map(|_| ())
    }
}
