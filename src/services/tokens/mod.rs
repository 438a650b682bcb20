use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tracing::{info, instrument, warn};

use super::accounts::{AccountError, AccountService, MagicCredential};
use super::client_registry::{ClientAuthError, ClientCredentials, ClientRegistry};
use super::revocation::RevocationService;
use super::throttle::{client_key, RequestLimit, Throttle};
use crate::clock::{Clock, UnixTime};
use crate::crypto::{KeyRing, PasswordHasher, RefreshTokenCodec, Verification};
use crate::domain::{
    Audience, Client, ClientId, ClientKind, Email, GrantType, NewFamily, NextGeneration,
    RefreshRejection, RequestOrigin, RotateOutcome, Scope, User, UserClaims, UserId,
};
use crate::storage::{RefreshTokenStore, StorageError, UserStore};

/// Token lifetimes and defaults the service applies.
#[derive(Debug, Clone)]
pub struct TokenServiceSettings {
    pub issuer: String,
    pub default_audience: String,
    pub access_token_ttl: i64,
    pub refresh_idle_ttl: i64,
    pub refresh_absolute_ttl: i64,
    pub password_max_length: usize,
    /// Unverified users get no tokens.
    pub require_verified_email: bool,
}

pub enum GrantRequest {
    Password {
        username: String,
        password: SecretString,
    },
    RefreshToken {
        refresh_token: SecretString,
    },
    ClientCredentials,
    /// `urn:latchkey:params:oauth:grant-type:magic-link`: `token`, or `email` + `code`.
    MagicLink(MagicCredential),
}

impl std::fmt::Debug for GrantRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrantRequest::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .finish_non_exhaustive(),
            GrantRequest::RefreshToken { .. } => f.write_str("RefreshToken([redacted])"),
            GrantRequest::ClientCredentials => f.write_str("ClientCredentials"),
            GrantRequest::MagicLink(_) => f.write_str("MagicLink([redacted])"),
        }
    }
}

/// A token request, already parsed from the wire.
#[derive(Debug)]
pub struct TokenRequest {
    pub grant: GrantRequest,
    pub client: ClientCredentials,
    pub scope: Option<String>,
    /// RFC 8707 `resource`.
    pub resource: Option<String>,
    /// `audience`, as several providers accept it.
    pub audience: Option<String>,
    /// Where the request came from (throttling, audit trail).
    pub origin: RequestOrigin,
}

/// A successful token response (RFC 6749 §5.1). `Debug` redacts both tokens.
#[derive(serde::Serialize)]
pub struct IssuedTokens {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

/// Failures, named after the RFC 6749 §5.2 (and RFC 8707) error codes.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidTarget(String),
    /// Too many failed attempts: `invalid_grant` with `Retry-After` (README).
    #[error("too many failed attempts; retry in {0} s")]
    Throttled(u64),
    /// Past a request limit (per client, per session): `429 too_many_requests` with
    /// `Retry-After`.
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    /// The credentials are right, but an operator requires a new password first.
    #[error("the password must be changed before signing in")]
    PasswordChangeRequired,
    /// The credentials are right, but the address is not verified (mandatory policy).
    #[error("the email address must be verified before signing in")]
    EmailNotVerified,
    /// Something the grant needs cannot answer now: `503 temporarily_unavailable`.
    #[error("{0}")]
    Unavailable(String),
    #[error("unexpected error")]
    Unexpected(#[source] anyhow::Error),
}

impl From<StorageError> for TokenError {
    fn from(e: StorageError) -> Self {
        TokenError::Unexpected(e.into())
    }
}

impl From<ClientAuthError> for TokenError {
    fn from(e: ClientAuthError) -> Self {
        match e {
            ClientAuthError::InvalidRequest(m) => TokenError::InvalidRequest(m.into()),
            ClientAuthError::InvalidClient => TokenError::InvalidClient,
            ClientAuthError::Storage(s) => s.into(),
        }
    }
}

/// RFC 9068 access-token claims.
#[derive(serde::Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: UnixTime,
    iat: UnixTime,
    nbf: UnixTime,
    jti: String,
    client_id: &'a str,
    /// The refresh-token family (session) the token belongs to, for revocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<&'a [String]>,
}

const INVALID_CREDENTIALS: &str = "invalid username or password";
/// Longer usernames are refused before any work (an email is at most 254 characters).
const MAX_USERNAME_LEN: usize = 320;

/// The token endpoint's answers to a failed magic-link grant.
fn magic_link_error(e: AccountError) -> TokenError {
    match e {
        AccountError::Throttled(t) => TokenError::Throttled(t.retry_after_secs),
        AccountError::MagicLinksDisabled => {
            TokenError::UnsupportedGrantType("magic-link sign-in is not enabled".into())
        }
        AccountError::Unexpected(cause) => TokenError::Unexpected(cause),
        AccountError::Unavailable(d) => TokenError::Unavailable(d),
        _ => {
            TokenError::InvalidGrant("the link or code is invalid, expired or already used".into())
        }
    }
}

/// A password login: the stored hash the password matched, and its replacement when it was
/// re-hashed with current parameters.
#[derive(Clone, Copy)]
struct PasswordLogin<'a> {
    verified_hash: &'a str,
    rehashed: Option<&'a str>,
}

/// Whom an access token is about: the user (with their claims and session) or the client.
struct Subject<'a> {
    sub: &'a str,
    user: Option<&'a UserClaims>,
    sid: Option<&'a str>,
}

/// Exchanges credentials for tokens: the password, refresh-token and client-credentials grants.
pub struct TokenService {
    users: Arc<dyn UserStore>,
    refresh_tokens: Arc<dyn RefreshTokenStore>,
    clients: Arc<ClientRegistry>,
    keys: Arc<KeyRing>,
    refresh_codec: Arc<RefreshTokenCodec>,
    revocations: Arc<RevocationService>,
    hasher: PasswordHasher,
    accounts: Arc<AccountService>,
    throttle: Arc<Throttle>,
    clock: Arc<dyn Clock>,
    settings: TokenServiceSettings,
}

impl TokenService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        users: Arc<dyn UserStore>,
        refresh_tokens: Arc<dyn RefreshTokenStore>,
        clients: Arc<ClientRegistry>,
        keys: Arc<KeyRing>,
        refresh_codec: Arc<RefreshTokenCodec>,
        revocations: Arc<RevocationService>,
        hasher: PasswordHasher,
        accounts: Arc<AccountService>,
        throttle: Arc<Throttle>,
        clock: Arc<dyn Clock>,
        settings: TokenServiceSettings,
    ) -> Self {
        Self {
            users,
            refresh_tokens,
            clients,
            keys,
            refresh_codec,
            revocations,
            hasher,
            accounts,
            throttle,
            clock,
            settings,
        }
    }

    #[instrument(name = "token.exchange", skip_all, fields(grant_type, client_id))]
    pub async fn exchange(&self, req: TokenRequest) -> Result<IssuedTokens, TokenError> {
        let grant_type = match &req.grant {
            GrantRequest::Password { .. } => GrantType::Password,
            GrantRequest::RefreshToken { .. } => GrantType::RefreshToken,
            GrantRequest::ClientCredentials => GrantType::ClientCredentials,
            GrantRequest::MagicLink(_) => GrantType::MagicLink,
        };
        let span = tracing::Span::current();
        span.record("grant_type", grant_type.as_str());
        let client = self.clients.authenticate(&req.client).await?;
        span.record("client_id", client.id.as_str());
        let caller = client_key(
            client.id.as_str(),
            client.kind == ClientKind::Confidential,
            req.origin.ip,
        );
        self.throttle
            .limit_request(RequestLimit::Client, &caller)
            .await
            .map_err(|t| TokenError::RateLimited(t.retry_after_secs))?;
        if !client.allows_grant(grant_type) {
            return Err(TokenError::UnauthorizedClient(format!(
                "this client may not use the {grant_type} grant"
            )));
        }
        let requested_scope = req
            .scope
            .as_deref()
            .map(Scope::parse)
            .transpose()
            .map_err(|e| TokenError::InvalidScope(e.message))?;
        let requested_audience = self.requested_audience(&req)?;
        match req.grant {
            GrantRequest::Password { username, password } => {
                let scope = self.client_scope(&client, requested_scope)?;
                let audience = self.audience_for(&client, requested_audience)?;
                self.password_grant(&client, &username, password, scope, audience, &req.origin)
                    .await
            }
            GrantRequest::MagicLink(credential) => {
                let scope = self.client_scope(&client, requested_scope)?;
                let audience = self.audience_for(&client, requested_audience)?;
                self.magic_link_grant(&client, credential, scope, audience, &req.origin)
                    .await
            }
            GrantRequest::RefreshToken { refresh_token } => {
                self.refresh_grant(&client, refresh_token, requested_scope, requested_audience)
                    .await
            }
            GrantRequest::ClientCredentials => {
                self.client_credentials_grant(&client, requested_scope, requested_audience)
            }
        }
    }

    /// The magic-link grant: the link or code is redeemed, then tokens are issued to its user.
    async fn magic_link_grant(
        &self,
        client: &Client,
        credential: MagicCredential,
        scope: Scope,
        audience: String,
        origin: &RequestOrigin,
    ) -> Result<IssuedTokens, TokenError> {
        let user = self
            .accounts
            .redeem_magic_link(credential, &client.id, origin)
            .await
            .map_err(magic_link_error)?;
        if user.must_change_password {
            return Err(TokenError::PasswordChangeRequired);
        }
        self.issue_for_user(client, &user, None, scope, audience)
            .await
    }

    /// The client-credentials grant: a token for a confidential client itself.
    fn client_credentials_grant(
        &self,
        client: &Client,
        requested_scope: Option<Scope>,
        requested_audience: Option<Audience>,
    ) -> Result<IssuedTokens, TokenError> {
        if client.kind != ClientKind::Confidential {
            return Err(TokenError::UnauthorizedClient(
                "client_credentials needs a confidential client".into(),
            ));
        }
        let scope = self.client_scope(client, requested_scope)?;
        let audience = self.audience_for(client, requested_audience)?;
        let now = self.clock.now();
        let (access_token, expires_in) = self.sign_access_token(
            client,
            Subject {
                sub: client.id.as_str(),
                user: None,
                sid: None,
            },
            &scope,
            &audience,
            now,
        )?;
        Ok(IssuedTokens {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: None,
            scope: scope.to_wire(),
        })
    }

    /// The client a magic link is requested for: it must exist, be enabled and be allowed
    /// the magic-link grant.
    pub async fn client_for_magic_link(&self, client_id: &str) -> Result<ClientId, TokenError> {
        let id = ClientId::parse(client_id).map_err(|e| TokenError::InvalidRequest(e.message))?;
        match self.clients.find(&id).await? {
            Some(c) if c.enabled && c.allows_grant(GrantType::MagicLink) => Ok(c.id.clone()),
            Some(c) if c.enabled => Err(TokenError::UnauthorizedClient(
                "this client may not use magic links".into(),
            )),
            _ => Err(TokenError::InvalidRequest("unknown client_id".into())),
        }
    }

    fn requested_audience(&self, req: &TokenRequest) -> Result<Option<Audience>, TokenError> {
        let resource = req
            .resource
            .as_deref()
            .map(Audience::parse_resource)
            .transpose()
            .map_err(|e| TokenError::InvalidTarget(e.message))?;
        let audience = req
            .audience
            .as_deref()
            .map(Audience::parse)
            .transpose()
            .map_err(|e| TokenError::InvalidTarget(e.message))?;
        match (resource, audience) {
            (Some(r), Some(a)) if r != a => Err(TokenError::InvalidTarget(
                "resource and audience name different APIs".into(),
            )),
            (r, a) => Ok(r.or(a)),
        }
    }

    /// The audience a token for `client` may carry: the requested one if the client may
    /// request it, else the client's default, else the server default.
    fn audience_for(
        &self,
        client: &Client,
        requested: Option<Audience>,
    ) -> Result<String, TokenError> {
        let fallback = client
            .default_audience
            .as_ref()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| self.settings.default_audience.clone());
        match requested {
            None => Ok(fallback),
            Some(a) if client.audiences.contains(&a) || a.as_str() == fallback => {
                Ok(a.as_str().to_owned())
            }
            Some(a) => Err(TokenError::InvalidTarget(format!(
                "this client may not request tokens for {:?}",
                a.as_str()
            ))),
        }
    }

    fn client_scope(&self, client: &Client, requested: Option<Scope>) -> Result<Scope, TokenError> {
        match requested {
            None => Ok(client.scopes.clone()),
            Some(s) if s.is_subset_of(&client.scopes) => Ok(s),
            Some(_) => Err(TokenError::InvalidScope(
                "the requested scope exceeds what this client may request".into(),
            )),
        }
    }

    async fn password_grant(
        &self,
        client: &Client,
        username: &str,
        password: SecretString,
        scope: Scope,
        audience: String,
        origin: &RequestOrigin,
    ) -> Result<IssuedTokens, TokenError> {
        if password.expose_secret().len() > self.settings.password_max_length
            || username.len() > MAX_USERNAME_LEN
        {
            return Err(TokenError::InvalidGrant(INVALID_CREDENTIALS.into()));
        }
        let email = Email::parse(username).ok();
        // Throttled by the identifier as typed (normalised), whether or not it names a user.
        let account = email
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .unwrap_or_else(|| username.trim().to_lowercase());
        // Admitted (and counted against the IP) before the hash is checked; held until the
        // outcome is counted: guesses for one account and one network are bounded in flight.
        let attempt = self
            .accounts
            .check_login(&account, origin)
            .await
            .map_err(|t| TokenError::Throttled(t.retry_after_secs))?;
        let user = match &email {
            Some(email) => self.users.find_by_email(email.as_str()).await?,
            None => None,
        };
        // Unknown users are verified against a dummy hash: the same work, the same answer.
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let verification = self
            .hasher
            .verify(stored, password)
            .await
            .map_err(|e| TokenError::Unexpected(e.into()))?;
        let (user, rehashed) = match (user, verification) {
            (Some(user), Verification::Valid { rehashed }) => (user, rehashed),
            (user, _) => {
                info!(client_id = client.id.as_str(), "login failed");
                self.accounts
                    .login_failed(
                        attempt,
                        &account,
                        user.as_ref().map(|u| &u.id),
                        client.id.as_str(),
                        origin,
                        "password",
                    )
                    .await;
                return Err(TokenError::InvalidGrant(INVALID_CREDENTIALS.into()));
            }
        };
        // The password was right: the pair's failures are forgiven whatever follows.
        self.accounts
            .credentials_accepted(attempt, &account, origin)
            .await;
        let refused = if !user.is_active {
            Some((
                "disabled",
                TokenError::InvalidGrant("the account is disabled".into()),
            ))
        } else if user.must_change_password {
            Some((
                "password_change_required",
                TokenError::PasswordChangeRequired,
            ))
        } else if self.settings.require_verified_email && !user.email_verified {
            Some(("email_not_verified", TokenError::EmailNotVerified))
        } else {
            None
        };
        if let Some((reason, e)) = refused {
            self.accounts
                .login_refused(&user.id, client.id.as_str(), origin, reason)
                .await;
            return Err(e);
        }
        let issued = self
            .issue_for_user(
                client,
                &user,
                user.password_hash
                    .as_deref()
                    .map(|verified_hash| PasswordLogin {
                        verified_hash,
                        rehashed: rehashed.as_deref(),
                    }),
                scope,
                audience,
            )
            .await?;
        self.accounts
            .login_succeeded(&user.id, client.id.as_str(), origin, "password")
            .await;
        Ok(issued)
    }

    /// Tokens for an authenticated user: records the login, starts a session (when the
    /// client may refresh) and signs the access token.
    async fn issue_for_user(
        &self,
        client: &Client,
        user: &User,
        password: Option<PasswordLogin<'_>>,
        scope: Scope,
        audience: String,
    ) -> Result<IssuedTokens, TokenError> {
        let now = self.clock.now();
        // For a password login, the hash the password was checked against must still be the
        // stored one (not replaced by a change or reset while the login was in flight).
        let (verified, rehashed) = match password {
            Some(p) => (Some(p.verified_hash), p.rehashed),
            None => (None, None),
        };
        if !self
            .users
            .record_login(&user.id, verified, rehashed, now)
            .await?
        {
            return Err(TokenError::InvalidGrant(
                "the password was changed meanwhile; sign in again".into(),
            ));
        }
        let claims = self.users.claims(&user.id).await?.unwrap_or_default();
        let (refresh_token, sid) = if client.allows_grant(GrantType::RefreshToken) {
            let (value, family_id) = self
                .start_family(client, &user.id, &scope, &audience, now)
                .await?;
            (Some(value), Some(family_id))
        } else {
            (None, None)
        };
        let (access_token, expires_in) = self.sign_access_token(
            client,
            Subject {
                sub: user.id.as_str(),
                user: Some(&claims),
                sid: sid.as_deref(),
            },
            &scope,
            &audience,
            now,
        )?;
        info!(
            client_id = client.id.as_str(),
            user_id = user.id.as_str(),
            "login succeeded"
        );
        Ok(IssuedTokens {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token,
            scope: scope.to_wire(),
        })
    }

    async fn refresh_grant(
        &self,
        client: &Client,
        presented: SecretString,
        requested_scope: Option<Scope>,
        requested_audience: Option<Audience>,
    ) -> Result<IssuedTokens, TokenError> {
        // A value that is not a token Latchkey issued (bad format or tag) is refused before any
        // database work.
        let Some(presented) = self.refresh_codec.parse(presented.expose_secret()) else {
            return Err(TokenError::InvalidGrant("invalid refresh token".into()));
        };
        // Per session (one user's), before any database work: a refused refresh leaves the
        // token unused.
        self.throttle
            .limit_request(RequestLimit::Session, &presented.family_id)
            .await
            .map_err(|t| TokenError::RateLimited(t.retry_after_secs))?;
        // Everything that can be checked without the family is checked before the token is used;
        // the rest (scope, audience) is checked by the rotation step, which then leaves the
        // token unused.
        let requested_audience = requested_audience
            .map(|a| self.audience_for(client, Some(a)))
            .transpose()?;
        let now = self.clock.now();
        let minted = self
            .refresh_codec
            .mint(&presented.family_id, presented.generation.saturating_add(1));
        let next = NextGeneration {
            token_hash: minted.secret_hash,
            expires_at: now + self.refresh_idle_ttl(client),
        };
        let outcome = self
            .refresh_tokens
            .rotate(
                &presented,
                &client.id,
                requested_scope.as_ref(),
                requested_audience.as_deref(),
                &next,
                now,
            )
            .await?;
        let mut family = match outcome {
            RotateOutcome::Rotated(f) => f,
            RotateOutcome::Reused { family_id, .. } => {
                warn!(
                    client_id = client.id.as_str(),
                    family_id = family_id.as_str(),
                    "refresh token reuse detected; token family revoked"
                );
                // The family's access tokens die too (RFC 9700 §4.14.2: the attacker may
                // hold one).
                self.revocations
                    .family_revoked(&family_id)
                    .await
                    .map_err(|e| TokenError::Unexpected(e.into()))?;
                return Err(TokenError::InvalidGrant("invalid refresh token".into()));
            }
            RotateOutcome::Rejected(why) => {
                if why == RefreshRejection::Revoked {
                    // Repairs a family whose revocation never reached the log.
                    if let Err(e) = self.revocations.family_revoked(&presented.family_id).await {
                        warn!(error = %e, "could not confirm a revoked family in the log");
                    }
                }
                let msg = match why {
                    RefreshRejection::Expired => "the refresh token has expired",
                    RefreshRejection::UserInactive => "the account is disabled",
                    RefreshRejection::Revoked => "the refresh token has been revoked",
                    RefreshRejection::Unknown | RefreshRejection::WrongClient => {
                        "invalid refresh token"
                    }
                    RefreshRejection::ScopeExceeded => {
                        return Err(TokenError::InvalidScope(
                            "the requested scope exceeds the scope originally granted".into(),
                        ))
                    }
                    // RFC 8707 §2.2: a family is bound to the audience granted at sign-in.
                    RefreshRejection::AudienceMismatch => {
                        return Err(TokenError::InvalidTarget(
                            "a refresh token is bound to the audience granted at sign-in; \
                             sign in again for another one"
                                .into(),
                        ))
                    }
                };
                return Err(TokenError::InvalidGrant(msg.into()));
            }
        };
        // The access token may narrow the family's scope (RFC 6749 §6); scopes the client may
        // no longer request are dropped.
        let scope = requested_scope.unwrap_or_else(|| family.scope.clone());
        let scope = scope.intersection(&client.scopes);
        // The rotation step checked that a requested audience is the family's own.
        let audience = family.audience.clone();
        // The rotation step checked that the user is active and read the roles in the same
        // statement, so the claims are as current as the rotation itself.
        let claims = UserClaims {
            is_active: true,
            roles: std::mem::take(&mut family.roles),
            permissions: std::mem::take(&mut family.permissions),
        };
        let (access_token, expires_in) = self.sign_access_token(
            client,
            Subject {
                sub: family.user_id.as_str(),
                user: Some(&claims),
                sid: Some(&family.family_id),
            },
            &scope,
            &audience,
            now,
        )?;
        Ok(IssuedTokens {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: Some(minted.value),
            scope: scope.to_wire(),
        })
    }

    fn refresh_idle_ttl(&self, client: &Client) -> i64 {
        client
            .token_settings
            .refresh_idle_ttl
            .unwrap_or(self.settings.refresh_idle_ttl)
    }

    /// Starts a refresh-token family; returns the first token and the family id.
    async fn start_family(
        &self,
        client: &Client,
        user_id: &UserId,
        scope: &Scope,
        audience: &str,
        now: UnixTime,
    ) -> Result<(String, String), TokenError> {
        let absolute = client
            .token_settings
            .refresh_absolute_ttl
            .unwrap_or(self.settings.refresh_absolute_ttl);
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        let minted = self.refresh_codec.mint(&id, 0);
        let family = NewFamily {
            id,
            client_id: client.id.clone(),
            user_id: user_id.clone(),
            scope: scope.clone(),
            audience: audience.to_owned(),
            created_at: now,
            absolute_expires_at: now + absolute,
            first: NextGeneration {
                token_hash: minted.secret_hash,
                expires_at: now + self.refresh_idle_ttl(client),
            },
        };
        if !self.refresh_tokens.start_family(&family).await? {
            return Err(TokenError::InvalidGrant(
                "the sessions of this account or client were just revoked; sign in again".into(),
            ));
        }
        Ok((minted.value, family.id))
    }

    fn sign_access_token(
        &self,
        client: &Client,
        subject: Subject<'_>,
        scope: &Scope,
        audience: &str,
        now: UnixTime,
    ) -> Result<(String, i64), TokenError> {
        let Subject { sub, user, sid } = subject;
        let ttl = client
            .token_settings
            .access_token_ttl
            .unwrap_or(self.settings.access_token_ttl);
        let ring = self
            .keys
            .current()
            .ok_or_else(|| TokenError::Unexpected(anyhow::anyhow!("no signing key loaded")))?;
        let scope = scope.to_wire();
        let claims = AccessClaims {
            iss: &self.settings.issuer,
            sub,
            aud: audience,
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: client.id.as_str(),
            sid,
            scope: &scope,
            roles: user.map(|c| c.roles.as_slice()),
            permissions: user.map(|c| c.permissions.as_slice()),
        };
        let jwt = ring
            .active
            .sign_jwt(&claims)
            .map_err(|e| TokenError::Unexpected(e.into()))?;
        Ok((jwt, ttl))
    }
}
