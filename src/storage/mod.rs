//! Storage traits: one atomic business step per method. Adapters live in submodules;
//! only `startup` names them.

pub mod group_commit;
pub mod memory;
mod mfa;
pub mod redis;
pub mod sql;

use async_trait::async_trait;

pub use mfa::MfaStore;

use crate::clock::UnixTime;
use crate::domain::{
    AccountToken, AccountTokenPurpose, Amr, AuditEvent, AuditFilter, AuthorizationCode, Client,
    ClientId, CodeOutcome, CodeRedemption, CodeUse, Consent, Email, FamilyId, FamilyRecord, KeyId,
    LinkId, LoggedAuditEvent, LoggedRevocation, NewFamily, NextGeneration, Permission,
    PresentedToken, ProviderId, RetryGrace, Revocation, Role, RoleId, RoleName, RotateOutcome,
    Scope, SessionId, SlidingWindow, SocialLink, SsoSession, StoredKey, TokenIdentity, User,
    UserClaims, UserFilter, UserId, WindowCounts,
};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A uniqueness or reference rule was violated; carries the constraint name.
    #[error("conflict on {0}")]
    Conflict(String),
    /// Stored data could not be read back into domain types.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    #[error("storage backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database could not be had in time (SQLite's busy timeout, the pool's acquire
    /// timeout) or the connection to it failed: nothing was done, and the caller may retry.
    #[error("storage temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StorageError {
    /// Whether `e`, or an error it was caused by, is a `StorageError::Unavailable`: the error
    /// mappings answer those with 503 and `Retry-After` whatever wrapped them on the way.
    pub fn unavailable_in(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(e);
        while let Some(err) = next {
            if matches!(
                err.downcast_ref::<StorageError>(),
                Some(StorageError::Unavailable(_))
            ) {
                return true;
            }
            next = err.source();
        }
        false
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A new user as stored.
#[derive(Debug, Clone)]
pub struct NewUserRecord {
    pub user: User,
    /// Role ids to grant in the same transaction.
    pub role_ids: Vec<RoleId>,
}

/// Changes to a user's profile fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub is_active: Option<bool>,
    pub email_verified: Option<bool>,
    pub display_name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    pub must_change_password: Option<bool>,
    /// A new address (`Some(None)`: none). Another user's address is
    /// `Conflict("users_email_key")`.
    pub email: Option<Option<Email>>,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create(&self, new: &NewUserRecord) -> StorageResult<()>;
    async fn find_by_id(&self, id: &UserId) -> StorageResult<Option<User>>;
    async fn find_by_email(&self, email: &Email) -> StorageResult<Option<User>>;
    /// One page of users in `(created_at, id)` order: after `filter.after` (keyset) or
    /// skipping `filter.offset`; every filter but `email_contains` walks an index in that order.
    async fn list(&self, filter: &UserFilter) -> StorageResult<Vec<User>>;
    /// The role names of each of `ids` (a listed page's, in one query), by user then name.
    async fn role_names_of(&self, ids: &[UserId]) -> StorageResult<Vec<(UserId, String)>>;
    /// Applies the patch; `Ok(false)` when the user does not exist.
    async fn update(&self, id: &UserId, patch: &UserPatch, now: UnixTime) -> StorageResult<bool>;
    /// Sets the password hash and `password_changed_at`, and in the same transaction deletes
    /// the user's pending password resets (a reset never outlives a password change).
    async fn set_password_hash(
        &self,
        id: &UserId,
        hash: Option<&str>,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// Records a successful login, replacing the password hash when it was re-hashed. With
    /// `verified`, only while that is still the stored hash: a login whose password was
    /// checked just before a change or reset does not complete after it (`Ok(false)`).
    async fn record_login(
        &self,
        id: &UserId,
        verified: Option<&str>,
        rehashed: Option<&str>,
        now: UnixTime,
    ) -> StorageResult<bool>;
    async fn delete(&self, id: &UserId) -> StorageResult<bool>;
    /// Idempotent; `Ok(false)` if the user already had the role.
    async fn grant_role(&self, id: &UserId, role_id: &RoleId) -> StorageResult<bool>;
    async fn revoke_role(&self, id: &UserId, role_id: &RoleId) -> StorageResult<bool>;
    async fn role_names(&self, id: &UserId) -> StorageResult<Vec<String>>;
    /// Active flag, role names and the union of permissions, in one read. `None` if no such user.
    async fn claims(&self, id: &UserId) -> StorageResult<Option<UserClaims>>;
    /// The user and its claims (as `claims` answers them), in one read. `None` if no such user.
    async fn find_with_claims(&self, id: &UserId) -> StorageResult<Option<(User, UserClaims)>>;
}

#[async_trait]
pub trait RoleStore: Send + Sync {
    async fn create(&self, role: &Role) -> StorageResult<()>;
    async fn find_by_name(&self, name: &RoleName) -> StorageResult<Option<Role>>;
    async fn list(&self) -> StorageResult<Vec<Role>>;
    async fn add_permissions(
        &self,
        role_id: &RoleId,
        permissions: &[Permission],
    ) -> StorageResult<()>;
    async fn remove_permissions(
        &self,
        role_id: &RoleId,
        permissions: &[Permission],
    ) -> StorageResult<()>;
    /// Sets whether the role's holders must use a second factor; `Ok(false)`: no such role.
    async fn set_require_mfa(&self, role_id: &RoleId, require_mfa: bool) -> StorageResult<bool>;
    async fn delete(&self, role_id: &RoleId) -> StorageResult<bool>;
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn create(&self, client: &Client) -> StorageResult<()>;
    async fn find(&self, id: &ClientId) -> StorageResult<Option<Client>>;
    async fn list(&self) -> StorageResult<Vec<Client>>;
    async fn set_enabled(&self, id: &ClientId, enabled: bool, now: UnixTime)
        -> StorageResult<bool>;
    async fn set_secret_hash(
        &self,
        id: &ClientId,
        hash: &str,
        now: UnixTime,
    ) -> StorageResult<bool>;
    async fn delete(&self, id: &ClientId) -> StorageResult<bool>;
    /// Replaces the client's settings with `client`'s: name, grant types, scopes, redirect
    /// URIs, audiences, default audience, token lifetimes, the OpenID Connect settings and
    /// `updated_at`. The id, kind, secret, `enabled` and `created_at` are left alone (they
    /// have their own steps, so an update never undoes a concurrent disable or re-key).
    /// `Ok(false)` if there is no such client.
    async fn update(&self, client: &Client) -> StorageResult<bool>;
}

/// What became of an attempt to add a pending key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingInsert {
    Inserted,
    /// Another key of the algorithm is already pending (another instance or operator got
    /// there first).
    AnotherPending,
    /// The key it was to replace is no longer the active key of the algorithm.
    ActiveChanged,
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Every key, newest first.
    async fn list(&self) -> StorageResult<Vec<StoredKey>>;
    /// Inserts `key` as the active key of its algorithm, atomically retiring the active key and
    /// any pending key of that algorithm (keys of other algorithms are left alone).
    /// `Conflict("signing_keys_one_active_idx")` if a concurrent call made another key of the
    /// algorithm active first; `Conflict("signing_keys_pkey")` if the kid exists.
    async fn insert_active(&self, key: &StoredKey, now: UnixTime) -> StorageResult<()>;
    /// Inserts `key` as the active key of its algorithm only if that algorithm has no active
    /// key; `Ok(false)` (nothing changed) if it has one, or a concurrent call made one active
    /// first. `Conflict("signing_keys_pkey")` if the kid exists.
    async fn insert_active_if_none(&self, key: &StoredKey, now: UnixTime) -> StorageResult<bool>;
    /// Inserts `key` as the pending key of its algorithm (its `activate_at` set), only while
    /// `replaces` is the active key of that algorithm and no other key of it is pending.
    /// `Conflict("signing_keys_pkey")` if the kid exists.
    async fn insert_pending(
        &self,
        key: &StoredKey,
        replaces: &KeyId,
    ) -> StorageResult<PendingInsert>;
    /// Compare-and-set: if `kid` is pending, it becomes active and the active key of its
    /// algorithm (if any) is retired, in one transaction. `Ok(false)` (nothing changed) if
    /// `kid` is not pending.
    async fn promote(&self, kid: &KeyId, now: UnixTime) -> StorageResult<bool>;
    /// Compare-and-set: a pending key is withdrawn (retired without ever signing).
    async fn retire_pending(&self, kid: &KeyId, now: UnixTime) -> StorageResult<bool>;
    /// Removes every retired key retired at or before `retired_before`, and every retired key
    /// that never signed; returns how many.
    async fn remove_retired(&self, retired_before: UnixTime, now: UnixTime) -> StorageResult<u64>;
    /// Marks a key removed (unpublished for good); `Ok(false)` if no such key or already removed.
    async fn mark_removed(&self, kid: &KeyId, now: UnixTime) -> StorageResult<bool>;
}

/// Refresh-token families, one row each, holding the hash of the current generation's token
/// (and, inside a refresh grace window, what the last rotation kept of the previous one).
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Creates a family with its first (generation 0) token, unless the revocation log holds
    /// a watermark for the user or the client at or after `family.created_at` (a login that
    /// raced "log out everywhere", a password change, or a client disabled or re-keyed);
    /// `Ok(false)` then.
    async fn start_family(&self, family: &NewFamily) -> StorageResult<bool>;
    /// One atomic step: if `presented` is the current, unexpired token of a live family of
    /// `client_id` whose user is active, replace it by `next` (generation + 1, its expiry capped
    /// at the family's absolute expiry), and keep what `grace` says of the presented token for
    /// its grace window (or nothing: without `grace` the previous window ends). If it is the
    /// previous generation, inside the window the last rotation kept, presented by the same
    /// client and with fewer retries than `grace.uses` admitted, count the retry and answer the
    /// kept successor (`Retried`), changing nothing else. If it is an older generation of the
    /// family (or that retry is not admitted), revoke the family (reuse). Otherwise say why it
    /// was rejected. When `requested_scope` is not within the family's scope nothing changes
    /// and the outcome is `ScopeExceeded`; when `requested_audience` is not the family's
    /// audience, `AudienceMismatch`.
    #[allow(clippy::too_many_arguments)]
    async fn rotate(
        &self,
        presented: &PresentedToken,
        client_id: &ClientId,
        requested_scope: Option<&Scope>,
        requested_audience: Option<&str>,
        next: &NextGeneration,
        grace: Option<&RetryGrace>,
        now: UnixTime,
    ) -> StorageResult<RotateOutcome>;
    /// The family and its user's active flag; `None` if there is no such family.
    async fn find_family(&self, family_id: &FamilyId) -> StorageResult<Option<FamilyRecord>>;
    /// Revokes one family; `Ok(false)` if it does not exist or was already revoked. Revoking
    /// (this and the methods below) also ends a family's grace window.
    async fn revoke_family(
        &self,
        family_id: &FamilyId,
        reason: &str,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// Revokes every live family of a user but `except` (the caller's own session, when it
    /// is kept); returns the ids of the families it revoked, each with its absolute expiry.
    async fn revoke_user_families(
        &self,
        user_id: &UserId,
        except: Option<&FamilyId>,
        reason: &str,
        now: UnixTime,
    ) -> StorageResult<Vec<(FamilyId, UnixTime)>>;
    /// Revokes every live family of a client (disabled, deleted or re-keyed); returns how many.
    async fn revoke_client_families(
        &self,
        client_id: &ClientId,
        reason: &str,
        now: UnixTime,
    ) -> StorageResult<u64>;
    /// Revokes the live families started from an SSO session (its end: logout, expiry, an
    /// operator), except, unless `include_offline`, those granted `offline_access`; returns
    /// the ids of the families it revoked, each with its absolute expiry.
    async fn revoke_session_families(
        &self,
        session_id: &SessionId,
        include_offline: bool,
        reason: &str,
        now: UnixTime,
    ) -> StorageResult<Vec<(FamilyId, UnixTime)>>;
    /// Deletes families past their absolute expiry (returns how many), and clears what a
    /// rotation kept for a grace window that has ended.
    async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64>;
}

/// The revocation log: every revocation, in commit order, until the tokens it covers have
/// expired. It is the source of truth for the denylists and the revocation feed.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Appends entries; their `seq` order is their commit order (a reader that has seen `seq`
    /// n has seen every entry below n), so a cursor never skips one.
    async fn append(&self, entries: &[Revocation], now: UnixTime) -> StorageResult<()>;
    /// Unexpired entries with `seq > after`, oldest first, at most `limit`.
    async fn since(
        &self,
        after: i64,
        now: UnixTime,
        limit: u32,
    ) -> StorageResult<Vec<LoggedRevocation>>;
    /// The highest `seq` ever assigned (0 for none), purged entries included.
    async fn last_seq(&self) -> StorageResult<i64>;
    /// Deletes entries whose tokens have all expired; returns how many.
    async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64>;
}

#[derive(Debug, thiserror::Error)]
pub enum DenylistError {
    /// The denylist cannot answer (Redis unreachable, log not read recently): callers fail
    /// closed.
    #[error("the token denylist is unavailable: {0}")]
    Unavailable(String),
}

/// Answers "is this access token revoked?" on the hot path. Adapters are indexes of the
/// revocation log: an in-process one (embedded default) and Redis (several instances).
#[async_trait]
pub trait TokenDenylist: Send + Sync {
    /// Which adapter this is, for `/readyz` and logs.
    fn name(&self) -> &'static str;
    /// Adds entries at once (they are already in the log).
    async fn add(&self, entries: &[Revocation]) -> Result<(), DenylistError>;
    /// Whether the token is revoked by its jti, its family or its user's watermark.
    async fn is_denied(
        &self,
        token: &TokenIdentity<'_>,
        now: UnixTime,
    ) -> Result<bool, DenylistError>;
    /// Brings the index up to date with the log: entries written by other instances, or while
    /// the index was unreachable or lost (a restarted Redis).
    async fn sync(&self, now: UnixTime) -> Result<(), DenylistError>;
    /// Whether it can answer now.
    async fn ping(&self) -> Result<(), DenylistError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The store cannot answer (Redis unreachable or too slow): the throttle falls back to
    /// its in-process store.
    #[error("the rate-limit store is unavailable: {0}")]
    Unavailable(String),
}

/// A sliding-window counter of a rate-limit store. Keys are opaque (hashed by the caller: a
/// store never sees an email or an address).
#[derive(Debug, Clone, Copy)]
pub struct RateWindow<'a> {
    pub key: &'a str,
    pub window: SlidingWindow,
}

/// A counter with its limit: `cost` more events (usually 1) are allowed while the sliding
/// estimate plus `cost` stays within `limit` (`SlidingWindow::allows_many`); admitted, they
/// are all counted at once.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit<'a> {
    pub key: &'a str,
    pub window: SlidingWindow,
    pub limit: u64,
    pub cost: u64,
}

/// A mark an admitted request sets (a cooldown): while it lies after `now`, requests are
/// refused; when one is admitted, the mark is set to `until`.
#[derive(Debug, Clone, Copy)]
pub struct RateCooldown<'a> {
    pub key: &'a str,
    pub until: UnixTime,
}

/// What a store holds for some counters and marks at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateSnapshot {
    /// One per counter asked for, in order, as seen from the window holding `now`.
    pub counts: Vec<WindowCounts>,
    /// One per mark asked for, in order: the time it lasts until, if set.
    pub marks: Vec<Option<UnixTime>>,
}

/// What became of a request offered to [`RateLimitStore::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Counted in every counter; every cooldown set.
    Admitted,
    /// Nothing was counted; the state that refused it (counters, then cooldown marks).
    Refused(RateSnapshot),
}

/// Counters and marks for throttling, shared by every instance (Redis) or per process
/// (memory). Windows are derived from the `now` the caller passes (its clock), never from the
/// store's own time; expiry in the store is only garbage collection.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Which adapter this is, for logs.
    fn name(&self) -> &'static str;
    /// Reads counters and marks, counting nothing.
    async fn read(
        &self,
        windows: &[RateWindow<'_>],
        marks: &[&str],
        now: UnixTime,
    ) -> Result<RateSnapshot, RateLimitError>;
    /// One atomic step: counts one event in each counter; returns the counts after it.
    async fn hit(
        &self,
        windows: &[RateWindow<'_>],
        now: UnixTime,
    ) -> Result<Vec<WindowCounts>, RateLimitError>;
    /// One atomic step: if every counter allows one more event and no cooldown mark lies
    /// after `now`, counts one in each counter and sets each cooldown; else changes nothing.
    async fn admit(
        &self,
        limits: &[RateLimit<'_>],
        cooldowns: &[RateCooldown<'_>],
        now: UnixTime,
    ) -> Result<Admission, RateLimitError>;
    /// Sets a mark (a lockout, a trusted pair) to last until `until`, or keeps the one already
    /// there if it lasts longer.
    async fn mark(&self, key: &str, until: UnixTime, now: UnixTime) -> Result<(), RateLimitError>;
    /// Forgets counters and marks.
    async fn clear(&self, keys: &[&str]) -> Result<(), RateLimitError>;
    /// One atomic step: takes back one event counted at `counted_at` (a login attempt that
    /// turned out to be a success), from the fixed window that holds `counted_at`, never
    /// below zero; nothing if that window has left the counter.
    async fn refund(
        &self,
        window: RateWindow<'_>,
        counted_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), RateLimitError>;
}

/// Liveness of the database, for `/readyz`.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    async fn ping(&self) -> StorageResult<()>;
}

/// Single-use tokens sent by mail: email verification, password reset, magic links,
/// invitations. Only hashes are stored.
#[async_trait]
pub trait AccountTokenStore: Send + Sync {
    /// Stores a new token and, in the same transaction, deletes the unused tokens of the same
    /// purpose for the same user (or, without a user, the same email): a newer link
    /// supersedes the older ones.
    async fn issue(&self, token: &AccountToken) -> StorageResult<()>;
    /// One atomic step: marks the unused, unexpired token of `purpose` with this hash used and
    /// returns it; `None` if there is no such token (unknown, used, expired or superseded).
    async fn consume(
        &self,
        purpose: AccountTokenPurpose,
        token_hash: &str,
        now: UnixTime,
    ) -> StorageResult<Option<AccountToken>>;
    /// The unused, unexpired token of `purpose` with this hash, without using it.
    async fn find_live(
        &self,
        purpose: AccountTokenPurpose,
        token_hash: &str,
        now: UnixTime,
    ) -> StorageResult<Option<AccountToken>>;
    /// One atomic step for the newest live magic link of `email`: if `matches(code_hash)`
    /// it is consumed; otherwise its wrong attempts grow and at `max_attempts` it is used up.
    async fn consume_code(
        &self,
        email: &Email,
        matches: &(dyn for<'a> Fn(&'a str) -> bool + Send + Sync),
        max_attempts: i64,
        now: UnixTime,
    ) -> StorageResult<CodeOutcome>;
    /// Deletes the unused tokens of `purpose` for a user; returns how many.
    async fn invalidate(
        &self,
        user_id: &UserId,
        purpose: AccountTokenPurpose,
    ) -> StorageResult<u64>;
    /// Deletes tokens past their expiry, and used ones older than a day; returns how many.
    async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64>;
}

/// The append-only audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append(&self, event: &AuditEvent) -> StorageResult<()>;
    /// Several events in one transaction, in order.
    async fn append_all(&self, events: &[AuditEvent]) -> StorageResult<()> {
        for e in events {
            self.append(e).await?;
        }
        Ok(())
    }
    /// Matching events, oldest first: the newest `limit` of them, or, with `after_id`, the
    /// first `limit` after it.
    async fn list(&self, filter: &AuditFilter) -> StorageResult<Vec<LoggedAuditEvent>>;
    /// Removes personal data (IP, user agent) from a deleted user's events; returns how many.
    async fn scrub_user(&self, user_id: &UserId) -> StorageResult<u64>;
}

/// A live session found by its secret, with its user's standing when the store read it too.
#[derive(Debug, Clone)]
pub struct FoundSession {
    pub session: SsoSession,
    /// `Some(true)`: the user exists and is active; `Some(false)`: inactive or gone; `None`:
    /// the store did not read the user.
    pub user_active: Option<bool>,
}

/// Latchkey's SSO sessions (the browser's sign-in cookie): in SQL, or in Redis when Redis is
/// configured. Looked up by the hash of the cookie's secret; a session that has ended or
/// expired is never answered.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Which adapter this is, for logs.
    fn name(&self) -> &'static str;
    async fn create(&self, session: &SsoSession) -> StorageResult<()>;
    /// The live session whose secret hashes to `secret_hash`.
    async fn find_live(
        &self,
        secret_hash: &str,
        now: UnixTime,
    ) -> StorageResult<Option<SsoSession>>;
    /// `find_live`, with whether the session's user exists and is active when the store can
    /// read that in the same step (SQL joins the user); a store that cannot (Redis) answers
    /// `user_active: None`, and the caller reads the user.
    async fn find_live_with_user(
        &self,
        secret_hash: &str,
        now: UnixTime,
    ) -> StorageResult<Option<FoundSession>>;
    /// A live session by its public id.
    async fn get_live(&self, id: &SessionId, now: UnixTime) -> StorageResult<Option<SsoSession>>;
    /// Records a use: `last_seen_at = now` and the idle expiry moved to `idle_expires_at`
    /// (never past the absolute expiry); `Ok(false)` if the session is not live.
    async fn touch(
        &self,
        id: &SessionId,
        idle_expires_at: UnixTime,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// Records a step-up (issue 15): the user proved themselves again in this session, so
    /// its `amr` becomes `amr` and its `auth_time` `auth_time`; `Ok(false)` if the session is
    /// not live.
    async fn step_up(
        &self,
        id: &SessionId,
        amr: &[Amr],
        auth_time: UnixTime,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// Adds a client to the clients the session issued codes to (idempotent); `Ok(false)` if
    /// the session is not live.
    async fn add_client(
        &self,
        id: &SessionId,
        client_id: &ClientId,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// The user's live sessions, newest first.
    async fn list_for_user(
        &self,
        user_id: &UserId,
        now: UnixTime,
    ) -> StorageResult<Vec<SsoSession>>;
    /// Ends one live session; returns it as it was (`None` if it was not live). Ending is
    /// atomic: of two concurrent calls, one gets the session.
    async fn end(&self, id: &SessionId, now: UnixTime) -> StorageResult<Option<SsoSession>>;
    /// Ends every live session of a user but `except`; returns them.
    async fn end_for_user(
        &self,
        user_id: &UserId,
        except: Option<&SessionId>,
        now: UnixTime,
    ) -> StorageResult<Vec<SsoSession>>;
    /// Ends up to `limit` sessions past their absolute or idle expiry, and returns them (for
    /// back-channel logout); ended sessions are forgotten.
    async fn take_expired(&self, now: UnixTime, limit: u32) -> StorageResult<Vec<SsoSession>>;
}

/// Authorization codes (RFC 6749 §4.1.2): stored hashed, single use.
#[async_trait]
pub trait AuthorizationCodeStore: Send + Sync {
    async fn issue(&self, code: &AuthorizationCode) -> StorageResult<()>;
    /// One atomic step: an unused, unexpired code is marked used with `redemption` and
    /// returned; a used one answers what its first use recorded; anything else `Unknown`.
    async fn redeem(
        &self,
        code_hash: &str,
        redemption: &CodeRedemption,
        now: UnixTime,
    ) -> StorageResult<CodeUse>;
    /// Deletes codes that expired before `before` (used ones are kept that long, so a late
    /// second use is still recognised); returns how many.
    async fn purge_expired(&self, before: UnixTime) -> StorageResult<u64>;
}

/// What users approved clients to do (the consent page), per (user, client).
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Adds `scope` to what the user approved for the client (the union with any earlier
    /// consent).
    async fn grant(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        scope: &Scope,
        now: UnixTime,
    ) -> StorageResult<()>;
    async fn find(&self, user_id: &UserId, client_id: &ClientId) -> StorageResult<Option<Consent>>;
    /// The user's consents, oldest first.
    async fn list_for_user(&self, user_id: &UserId) -> StorageResult<Vec<Consent>>;
    /// Forgets the consent; `Ok(false)` if there was none.
    async fn revoke(&self, user_id: &UserId, client_id: &ClientId) -> StorageResult<bool>;
}

/// What removing a link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlink {
    Removed,
    /// No such link for this user.
    NotFound,
    /// It is the user's last way to sign in (no password, no other link): kept.
    LastWayToSignIn,
}

/// Local users' identities at upstream providers (federated sign-in).
#[async_trait]
pub trait SocialLinkStore: Send + Sync {
    async fn find(&self, provider: &ProviderId, subject: &str)
        -> StorageResult<Option<SocialLink>>;
    /// The user's links, oldest first.
    async fn list_for_user(&self, user_id: &UserId) -> StorageResult<Vec<SocialLink>>;
    /// Creates the user (with its roles) and its link in one transaction: neither exists
    /// without the other. `Conflict("users_email_key")` or
    /// `Conflict("social_links_provider_subject_key")` when either is taken.
    async fn create_user_with_link(
        &self,
        new: &NewUserRecord,
        link: &SocialLink,
        tokens_enc: Option<&[u8]>,
    ) -> StorageResult<()>;
    /// Links an identity to an existing user; `Conflict("social_links_provider_subject_key")`
    /// when the identity is linked already.
    async fn link(&self, link: &SocialLink, tokens_enc: Option<&[u8]>) -> StorageResult<()>;
    /// Records a sign-in through the link: the time, and the profile as the provider gave it
    /// this time (tokens replaced when kept).
    async fn record_use(
        &self,
        link: &SocialLink,
        tokens_enc: Option<&[u8]>,
        now: UnixTime,
    ) -> StorageResult<()>;
    /// Removes one of the user's links, unless it is their last way to sign in (no password
    /// and no other link), decided in the same transaction.
    async fn unlink(&self, user_id: &UserId, link_id: &LinkId) -> StorageResult<Unlink>;
}

/// Single-use values, by the SHA-256 of the value (federated sign-in's `state`, exchanged ID
/// tokens).
#[async_trait]
pub trait OneTimeStore: Send + Sync {
    /// Remembers a value until `expires_at`, to be taken once.
    async fn put(&self, purpose: &str, key_hash: &str, expires_at: UnixTime) -> StorageResult<()>;
    /// Takes a value put earlier and not yet expired; `Ok(false)` if there is none (never put,
    /// taken already, or expired). One conditional DELETE: two takers cannot both succeed.
    async fn take(&self, purpose: &str, key_hash: &str, now: UnixTime) -> StorageResult<bool>;
    /// Remembers a value seen for the first time (`Ok(true)`); `Ok(false)` if it was seen
    /// before and has not expired (a replay).
    async fn first_use(
        &self,
        purpose: &str,
        key_hash: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// Deletes expired values; how many.
    async fn purge_expired(&self, now: UnixTime) -> StorageResult<u64>;
}
