//! Revocation (RFC 7009), logout, "log out everywhere", the revocation feed, and keeping the
//! denylist in step with the revocation log.

use std::sync::Arc;

use tracing::{info, instrument, warn};

use super::access_tokens::{AccessTokenRejection, AccessTokenVerifier};
use super::client_registry::{ClientAuthError, ClientCredentials, ClientRegistry};
use super::throttle::{client_key, RequestLimit, Throttle};
use crate::clock::{Clock, UnixTime};
use crate::crypto::RefreshTokenCodec;
use crate::domain::{
    Client, ClientId, ClientKind, CodeRedemption, FamilyId, LoggedRevocation, Principal,
    Revocation, SessionId, TokenIdentity, UserId,
};
use crate::storage::{
    DenylistError, RefreshTokenStore, RevocationStore, StorageError, TokenDenylist,
};

/// Failures of the revocation, introspection and session endpoints, named after the
/// RFC 6749 §5.2 / RFC 6750 §3.1 / RFC 7009 error codes.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    UnauthorizedClient(String),
    /// No credentials at all where a bearer token is needed (RFC 6750 §3.1).
    #[error("an access token is required")]
    MissingToken,
    /// The bearer token is invalid, expired, revoked or not meant for Latchkey (RFC 6750).
    #[error("{0}")]
    InvalidToken(String),
    /// The client authenticated but may not use this endpoint.
    #[error("{0}")]
    ClientNotAllowed(String),
    #[error("{0}")]
    InsufficientScope(String),
    /// The denylist cannot answer; the caller should retry (fail closed).
    #[error("{0}")]
    Unavailable(String),
    /// Past a request limit (per client, per subject): `429` with `Retry-After`.
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    #[error("unexpected error")]
    Unexpected(#[source] anyhow::Error),
}

impl From<StorageError> for RevocationError {
    fn from(e: StorageError) -> Self {
        RevocationError::Unexpected(e.into())
    }
}

impl From<DenylistError> for RevocationError {
    fn from(e: DenylistError) -> Self {
        warn!(error = %e, "denylist unavailable; failing closed");
        RevocationError::Unavailable(
            "revocation state is temporarily unavailable; retry shortly".into(),
        )
    }
}

impl From<ClientAuthError> for RevocationError {
    fn from(e: ClientAuthError) -> Self {
        match e {
            ClientAuthError::InvalidRequest(m) => RevocationError::InvalidRequest(m.into()),
            ClientAuthError::InvalidClient => RevocationError::InvalidClient,
            ClientAuthError::Storage(s) => s.into(),
        }
    }
}

impl From<AccessTokenRejection> for RevocationError {
    fn from(e: AccessTokenRejection) -> Self {
        match e {
            AccessTokenRejection::Invalid(why) => {
                RevocationError::InvalidToken(format!("the access token is invalid: {why}"))
            }
            AccessTokenRejection::Revoked => {
                RevocationError::InvalidToken("the access token has been revoked".into())
            }
            AccessTokenRejection::WrongAudience => RevocationError::InvalidToken(
                "the access token was not issued for this server (its aud is not the issuer)"
                    .into(),
            ),
            AccessTokenRejection::Unavailable(d) => d.into(),
            AccessTokenRejection::Storage(e) => {
                // Fail closed, and say it is passing: 503 with Retry-After, not a 500.
                warn!(error = %e, "the token's client could not be looked up; failing closed");
                RevocationError::Unavailable(
                    "the token's client cannot be checked now; retry shortly".into(),
                )
            }
        }
    }
}

/// One page of the revocation feed.
#[derive(Debug, serde::Serialize)]
pub struct RevocationFeedPage {
    pub revocations: Vec<FeedEntry>,
    /// Pass as `since` to get what comes after this page.
    pub next_cursor: String,
    pub has_more: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct FeedEntry {
    pub cursor: String,
    /// `access_token` (by `jti`), `session` (every access token whose `sid` matches), `user`
    /// (every token of `sub` with `iat <= not_after`) or `client` (every token whose
    /// `client_id` matches with `iat <= not_after`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<UnixTime>,
    pub revoked_at: UnixTime,
    /// After this time no token the entry covers is valid; a resource server may forget it.
    pub exp: UnixTime,
}

impl From<LoggedRevocation> for FeedEntry {
    fn from(l: LoggedRevocation) -> Self {
        let mut e = FeedEntry {
            cursor: l.seq.to_string(),
            kind: l.revocation.kind().as_str(),
            jti: None,
            sid: None,
            sub: None,
            client_id: None,
            not_after: None,
            revoked_at: l.revoked_at,
            exp: l.revocation.expires_at(),
        };
        match l.revocation {
            Revocation::AccessToken { jti, .. } => e.jti = Some(jti),
            Revocation::Family { family_id, .. } => e.sid = Some(family_id),
            Revocation::User {
                user_id, not_after, ..
            } => {
                e.sub = Some(user_id);
                e.not_after = Some(not_after);
            }
            Revocation::Client {
                client_id,
                not_after,
                ..
            } => {
                e.client_id = Some(client_id);
                e.not_after = Some(not_after);
            }
        }
        e
    }
}

pub const FEED_MAX_LIMIT: u32 = 1000;

/// Ends a user's SSO sessions when all their tokens are revoked (set at start-up by the
/// session service, which depends on this one).
#[async_trait::async_trait]
pub trait UserSessionEnder: Send + Sync {
    /// Ends every SSO session of the user but `except`.
    async fn end_user_sessions(
        &self,
        user_id: &UserId,
        except: Option<&SessionId>,
        reason: &str,
    ) -> Result<(), RevocationError>;
}

pub struct RevocationService {
    /// Ends SSO sessions with the tokens (set once, at start-up).
    session_ender: std::sync::OnceLock<std::sync::Weak<dyn UserSessionEnder>>,
    log: Arc<dyn RevocationStore>,
    denylist: Arc<dyn TokenDenylist>,
    refresh_tokens: Arc<dyn RefreshTokenStore>,
    clients: Arc<ClientRegistry>,
    verifier: Arc<AccessTokenVerifier>,
    codec: Arc<RefreshTokenCodec>,
    clock: Arc<dyn Clock>,
    /// The longest an access token can live: entries that cover "every access token of a
    /// session or user issued until now" are kept this long.
    access_token_horizon: i64,
    /// The scope that makes a client a resource server (feed, introspection).
    resource_server_scope: String,
    /// Request limits on revocations (per client, per subject).
    throttle: Arc<Throttle>,
}

impl RevocationService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        log: Arc<dyn RevocationStore>,
        denylist: Arc<dyn TokenDenylist>,
        refresh_tokens: Arc<dyn RefreshTokenStore>,
        clients: Arc<ClientRegistry>,
        verifier: Arc<AccessTokenVerifier>,
        codec: Arc<RefreshTokenCodec>,
        clock: Arc<dyn Clock>,
        access_token_horizon: i64,
        resource_server_scope: String,
        throttle: Arc<Throttle>,
    ) -> Self {
        Self {
            session_ender: std::sync::OnceLock::new(),
            throttle,
            log,
            denylist,
            refresh_tokens,
            clients,
            verifier,
            codec,
            clock,
            access_token_horizon,
            resource_server_scope,
        }
    }

    /// Registers who ends SSO sessions when a user's tokens are all revoked.
    pub fn set_session_ender(&self, ender: std::sync::Weak<dyn UserSessionEnder>) {
        let _ = self.session_ender.set(ender);
    }

    /// Ends the user's SSO sessions (but `except`), if a session service is registered.
    pub async fn end_user_sessions(
        &self,
        user_id: &UserId,
        except: Option<&SessionId>,
        reason: &str,
    ) -> Result<(), RevocationError> {
        if let Some(ender) = self.session_ender.get().and_then(std::sync::Weak::upgrade) {
            ender.end_user_sessions(user_id, except, reason).await?;
        }
        Ok(())
    }

    pub fn denylist(&self) -> &Arc<dyn TokenDenylist> {
        &self.denylist
    }

    /// Records revocations: in the log first (durable; the feed and every instance read it),
    /// then in the denylist. If the denylist cannot take them now, they are still revoked:
    /// every check fails closed until the denylist is back and has replayed the log.
    async fn record(&self, entries: Vec<Revocation>) -> Result<(), RevocationError> {
        self.log.append(&entries, self.clock.now()).await?;
        if let Err(e) = self.denylist.add(&entries).await {
            warn!(error = %e, "revocation logged but not yet in the denylist; it will be replayed");
        }
        Ok(())
    }

    /// The entry that revokes every access token of a family (session).
    fn family_entry(&self, family_id: &FamilyId) -> Revocation {
        Revocation::Family {
            family_id: family_id.as_str().to_owned(),
            expires_at: self.clock.now() + self.access_token_horizon,
        }
    }

    async fn revoke_family_and_tokens(
        &self,
        family_id: &FamilyId,
        reason: &str,
    ) -> Result<(), RevocationError> {
        self.refresh_tokens
            .revoke_family(family_id, reason, self.clock.now())
            .await?;
        self.record(vec![self.family_entry(family_id)]).await
    }

    /// The store already revoked the family (refresh-token reuse, or a revoked family seen
    /// again): make sure its access tokens are revoked too. The log entry is written unless
    /// the denylist already has it, so a failed append earlier is repaired by the next
    /// presentation or revocation request, and replaying a revoked token costs no write.
    pub async fn family_revoked(&self, family_id: &FamilyId) -> Result<(), RevocationError> {
        // A token of the family with nothing else to match (no jti, user or client).
        let probe = TokenIdentity {
            jti: "",
            sid: Some(family_id.as_str()),
            sub: "",
            client_id: "",
            iat: i64::MAX,
        };
        if matches!(
            self.denylist.is_denied(&probe, self.clock.now()).await,
            Ok(true)
        ) {
            return Ok(());
        }
        self.record(vec![self.family_entry(family_id)]).await
    }

    /// RFC 7009. Unknown, malformed, expired or foreign tokens are answered with success.
    #[instrument(name = "token.revoke", skip_all, fields(client_id))]
    pub async fn revoke_token(
        &self,
        creds: &ClientCredentials,
        token: &str,
        from: std::net::IpAddr,
    ) -> Result<(), RevocationError> {
        let client = self.clients.authenticate(creds).await?;
        tracing::Span::current().record("client_id", client.id.as_str());
        let caller = client_key(
            client.id.as_str(),
            client.kind == ClientKind::Confidential,
            from,
        );
        self.limit(RequestLimit::Revocations, &caller).await?;
        if let Some(presented) = self.codec.parse(token) {
            // Per session, before the family is read: the log cannot be flooded from one.
            self.limit(RequestLimit::Session, presented.family_id.as_str())
                .await?;
            let Some(family) = self
                .refresh_tokens
                .find_family(&presented.family_id)
                .await?
            else {
                return Ok(());
            };
            ensure_issued_to(&client, &family.client_id)?;
            if family.revoked_at.is_none() {
                self.revoke_family_and_tokens(&family.id, "revoked").await?;
                info!(
                    family_id = family.id.as_str(),
                    "refresh-token family revoked"
                );
            } else {
                self.family_revoked(&family.id).await?;
            }
            return Ok(());
        }
        let Ok(claims) = self.verifier.verify_signed(token) else {
            return Ok(());
        };
        ensure_issued_to(&client, &claims.client_id)?;
        // Per subject: one account refreshing and revoking in a loop meets a limit.
        self.limit(RequestLimit::Subject, &claims.sub).await?;
        if matches!(self.verifier.is_revoked(&claims).await, Ok(true)) {
            return Ok(()); // already revoked: nothing to log twice
        }
        self.record(vec![Revocation::AccessToken {
            jti: claims.jti.clone(),
            expires_at: claims.exp,
        }])
        .await?;
        info!(jti = claims.jti.as_str(), "access token revoked");
        Ok(())
    }

    async fn limit(&self, kind: RequestLimit, id: &str) -> Result<(), RevocationError> {
        self.throttle
            .limit_request(kind, id)
            .await
            .map_err(|t| RevocationError::RateLimited(t.retry_after_secs))
    }

    /// The caller a bearer token authenticates: verified, not revoked, and issued for
    /// Latchkey itself.
    pub async fn authenticate_bearer(&self, bearer: &str) -> Result<Principal, RevocationError> {
        self.verifier
            .verify_for_issuer(bearer)
            .await?
            .principal()
            .ok_or(RevocationError::from(AccessTokenRejection::Revoked))
    }

    /// The caller of the userinfo endpoint: a token with the `openid` scope, for any API.
    pub async fn authenticate_userinfo_bearer(
        &self,
        bearer: &str,
    ) -> Result<Principal, RevocationError> {
        self.verifier
            .verify_for_userinfo(bearer)
            .await?
            .principal()
            .ok_or(RevocationError::from(AccessTokenRejection::Revoked))
    }

    /// Logs the caller out: denylists the presented access token and revokes its session
    /// (the refresh-token family named by `sid`, with every access token issued from it).
    #[instrument(name = "session.logout", skip_all)]
    pub async fn logout(&self, caller: &Principal) -> Result<(), RevocationError> {
        if let Some(sid) = &caller.session {
            self.revoke_family_and_tokens(sid, "logout").await?;
        }
        self.record(vec![Revocation::AccessToken {
            jti: caller.token.jti.clone(),
            expires_at: caller.token.expires_at,
        }])
        .await?;
        let sub = caller
            .user_id()
            .map_or(caller.client_id.as_str(), UserId::as_str);
        info!(sub, "logged out");
        Ok(())
    }

    /// Logs the caller's user out everywhere: every refresh-token family and every token
    /// issued to the user until now.
    #[instrument(name = "session.logout_all", skip_all)]
    pub async fn logout_everywhere(&self, caller: &Principal) -> Result<(), RevocationError> {
        let Some(user_id) = caller.user_id() else {
            return Err(RevocationError::InvalidRequest(
                "this token was issued to a client, not to a user".into(),
            ));
        };
        self.revoke_user(user_id, "logout-all").await?;
        info!(sub = user_id.as_str(), "logged out everywhere");
        Ok(())
    }

    /// Revokes every token of a user issued until now (log out everywhere, password change,
    /// account disabled or deleted).
    pub async fn revoke_user(&self, user_id: &UserId, reason: &str) -> Result<(), RevocationError> {
        let now = self.clock.now();
        // The log first: a family created by a login racing this call is refused by
        // `start_family` once the entry exists, and revoked below if it was created before.
        self.record(vec![Revocation::User {
            user_id: user_id.as_str().to_owned(),
            not_after: now,
            expires_at: now + self.access_token_horizon,
        }])
        .await?;
        let families = self
            .refresh_tokens
            .revoke_user_families(user_id, None, reason, now)
            .await?;
        self.end_user_sessions(user_id, None, reason).await?;
        info!(
            user_id = user_id.as_str(),
            families = families.len(),
            reason,
            "every token of the user revoked"
        );
        Ok(())
    }

    /// Revokes every token a client holds, issued until now: its own access tokens, those of
    /// its users, and its refresh-token families (the client was disabled, deleted or given a
    /// new secret).
    pub async fn revoke_client(
        &self,
        client_id: &ClientId,
        reason: &str,
    ) -> Result<(), RevocationError> {
        let now = self.clock.now();
        // The log first: a family created by a login racing this call is refused by
        // `start_family` once the entry exists, and revoked below if it was created before.
        self.record(vec![Revocation::Client {
            client_id: client_id.as_str().to_owned(),
            not_after: now,
            expires_at: now + self.access_token_horizon,
        }])
        .await?;
        let families = self
            .refresh_tokens
            .revoke_client_families(client_id, reason, now)
            .await?;
        info!(
            client_id = client_id.as_str(),
            families, reason, "every token of the client revoked"
        );
        Ok(())
    }

    /// Revokes the refresh-token families started in an SSO session that ended (all of them
    /// with `include_offline`, else those not granted `offline_access`), with every access
    /// token issued from them.
    pub async fn revoke_session(
        &self,
        session_id: &SessionId,
        include_offline: bool,
        reason: &str,
    ) -> Result<(), RevocationError> {
        let families = self
            .refresh_tokens
            .revoke_session_families(session_id, include_offline, reason, self.clock.now())
            .await?;
        if !families.is_empty() {
            let entries = families
                .iter()
                .map(|(id, _)| self.family_entry(id))
                .collect();
            self.record(entries).await?;
        }
        Ok(())
    }

    /// A used authorization code was presented again (RFC 6749 §4.1.2): revokes the refresh
    /// family and the access token its first use issued.
    pub async fn revoke_code_redemption(
        &self,
        first: &CodeRedemption,
    ) -> Result<(), RevocationError> {
        let mut entries = vec![Revocation::AccessToken {
            jti: first.access_jti.clone(),
            expires_at: first.access_expires_at,
        }];
        if let Some(family) = &first.family_id {
            self.refresh_tokens
                .revoke_family(family, "code-reuse", self.clock.now())
                .await?;
            entries.push(self.family_entry(family));
        }
        self.record(entries).await
    }

    /// Revokes every session of a user but `keep` (the caller's own, if given): the other families and
    /// every access token issued from them. Access tokens without a session (from clients
    /// without refresh tokens) live out their short lifetime.
    pub async fn revoke_other_sessions(
        &self,
        user_id: &UserId,
        keep: Option<&FamilyId>,
        reason: &str,
    ) -> Result<(), RevocationError> {
        let now = self.clock.now();
        let families = self
            .refresh_tokens
            .revoke_user_families(user_id, keep, reason, now)
            .await?;
        if !families.is_empty() {
            let entries = families
                .iter()
                .map(|(id, _)| self.family_entry(id))
                .collect();
            self.record(entries).await?;
        }
        info!(
            user_id = user_id.as_str(),
            families = families.len(),
            reason,
            "the user's other sessions revoked"
        );
        Ok(())
    }

    /// The revocation feed for resource servers that validate JWTs offline.
    pub async fn feed(
        &self,
        creds: &ClientCredentials,
        since: Option<&str>,
        limit: Option<&str>,
    ) -> Result<RevocationFeedPage, RevocationError> {
        let client = self.clients.authenticate(creds).await?;
        ensure_resource_server(&client, &self.resource_server_scope)?;
        let after =
            match since {
                None | Some("") => 0,
                Some(c) => c.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
                    RevocationError::InvalidRequest("since is not a cursor".into())
                })?,
            };
        let limit = match limit {
            None => FEED_MAX_LIMIT,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=FEED_MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    RevocationError::InvalidRequest(format!(
                        "limit must be a number from 1 to {FEED_MAX_LIMIT}"
                    ))
                })?,
        };
        if after > self.log.last_seq().await? {
            return Err(RevocationError::InvalidRequest(
                "the cursor is ahead of the revocation log (was the database restored?); \
                 start again without since"
                    .into(),
            ));
        }
        let mut entries = self.log.since(after, self.clock.now(), limit + 1).await?;
        let has_more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next = entries.last().map_or(after, |e| e.seq);
        Ok(RevocationFeedPage {
            revocations: entries.into_iter().map(FeedEntry::from).collect(),
            next_cursor: next.to_string(),
            has_more,
        })
    }

    /// Replays the log into the denylist (entries from other instances, or missed while the
    /// denylist was unreachable).
    pub async fn sync(&self) -> Result<(), DenylistError> {
        self.denylist.sync(self.clock.now()).await
    }

    /// Deletes log entries whose tokens have all expired.
    pub async fn purge_expired(&self) -> Result<u64, StorageError> {
        self.log.purge_expired(self.clock.now()).await
    }
}

/// Introspection and the feed are for resource servers: confidential clients allowed the
/// introspection scope (RFC 7662 §4: the endpoint must not serve just anyone).
pub(super) fn ensure_resource_server(client: &Client, scope: &str) -> Result<(), RevocationError> {
    if client.kind != ClientKind::Confidential {
        return Err(RevocationError::InvalidClient);
    }
    if !client.scopes.contains(scope) {
        return Err(RevocationError::ClientNotAllowed(format!(
            "this client may not inspect tokens: it needs the {scope} scope"
        )));
    }
    Ok(())
}

/// RFC 7009 §2.1: a client may only revoke tokens issued to it.
fn ensure_issued_to(client: &Client, token_client: &str) -> Result<(), RevocationError> {
    if client.id.as_str() == token_client {
        Ok(())
    } else {
        Err(RevocationError::UnauthorizedClient(
            "the token was not issued to this client".into(),
        ))
    }
}
