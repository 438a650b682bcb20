//! Exchanges credentials for tokens: the service, its settings, and what every grant
//! shares (the client's scope and audience, issuing to a user, signing).

mod authorization_code;
mod client_credentials;
mod error;
mod id_token;
mod magic_link;
mod password;
mod refresh;
mod request;
mod token_exchange;

use std::sync::Arc;

use tracing::{info, instrument};

use super::access_tokens::AccessTokenClaims;
use super::audit::AuditLog;
use super::authn::{Authenticator, SignedIn};
use super::client_registry::{ClientCredentials, ClientRegistry};
use super::federation::FederationService;
use super::revocation::RevocationService;
use super::throttle::{client_key, RequestLimit, Throttle};
use crate::clock::{Clock, UnixTime};
use crate::crypto::{KeyRing, RefreshTokenCodec};
use crate::domain::{
    AccessTokenText, Audience, Client, ClientId, ClientKind, FamilyId, GrantType, RequestOrigin,
    Scope, UserClaims,
};
use crate::storage::{AuthorizationCodeStore, RefreshTokenStore, SessionStore, UserStore};
pub use error::TokenError;
pub use request::{GrantRequest, IssuedTokens, TokenRequest};
pub use token_exchange::{ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE};

/// Token lifetimes and defaults the service applies.
#[derive(Debug, Clone)]
pub struct TokenServiceSettings {
    pub issuer: String,
    pub default_audience: String,
    pub access_token_ttl: i64,
    pub refresh_idle_ttl: i64,
    pub refresh_absolute_ttl: i64,
    /// The refresh grace window of clients that set none (0: none) and its retries.
    pub refresh_grace_secs: i64,
    pub refresh_grace_uses: i64,
}

/// Whom an access token is about: the user (with their claims and session) or the client.
struct Subject<'a> {
    sub: &'a str,
    user: Option<&'a UserClaims>,
    sid: Option<&'a str>,
}

/// Exchanges credentials for tokens: the password, refresh-token, client-credentials and
/// magic-link grants.
pub struct TokenService {
    users: Arc<dyn UserStore>,
    refresh_tokens: Arc<dyn RefreshTokenStore>,
    codes: Arc<dyn AuthorizationCodeStore>,
    /// The SSO sessions codes were issued in (a code of an ended session is refused).
    sessions: Arc<dyn SessionStore>,
    clients: Arc<ClientRegistry>,
    keys: Arc<KeyRing>,
    refresh_codec: Arc<RefreshTokenCodec>,
    revocations: Arc<RevocationService>,
    authn: Arc<Authenticator>,
    throttle: Arc<Throttle>,
    /// Records retries inside a refresh grace window.
    audit: Arc<AuditLog>,
    /// Native apps' ID tokens (token exchange), when providers are configured.
    federation: Option<Arc<FederationService>>,
    clock: Arc<dyn Clock>,
    settings: TokenServiceSettings,
}

impl TokenService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        users: Arc<dyn UserStore>,
        refresh_tokens: Arc<dyn RefreshTokenStore>,
        codes: Arc<dyn AuthorizationCodeStore>,
        sessions: Arc<dyn SessionStore>,
        clients: Arc<ClientRegistry>,
        keys: Arc<KeyRing>,
        refresh_codec: Arc<RefreshTokenCodec>,
        revocations: Arc<RevocationService>,
        authn: Arc<Authenticator>,
        throttle: Arc<Throttle>,
        audit: Arc<AuditLog>,
        clock: Arc<dyn Clock>,
        settings: TokenServiceSettings,
    ) -> Self {
        Self {
            users,
            refresh_tokens,
            codes,
            sessions,
            clients,
            keys,
            refresh_codec,
            revocations,
            authn,
            throttle,
            audit,
            federation: None,
            clock,
            settings,
        }
    }

    /// Serves the token-exchange grant with the federation service's providers.
    pub fn with_federation(mut self, federation: Arc<FederationService>) -> Self {
        self.federation = Some(federation);
        self
    }

    #[instrument(name = "token.exchange", skip_all, fields(grant_type, client_id))]
    pub async fn exchange(&self, req: TokenRequest) -> Result<IssuedTokens, TokenError> {
        let client = self
            .admit_client(&req.client, req.grant.grant_type(), &req.origin)
            .await?;
        let requested_scope = req.scope;
        let requested_audience = req.audience;
        match req.grant {
            GrantRequest::Password { username, password } => {
                let scope = self.client_scope(&client, requested_scope)?;
                let audience = self.audience_for(&client, requested_audience)?;
                self.password_grant(&client, &username, password, scope, audience, &req.origin)
                    .await
            }
            GrantRequest::Mfa { mfa_token, factor } => {
                let scope = self.client_scope(&client, requested_scope)?;
                let audience = self.audience_for(&client, requested_audience)?;
                self.mfa_grant(&client, mfa_token, factor, scope, audience, &req.origin)
                    .await
            }
            GrantRequest::MagicLink(credential) => {
                let scope = self.client_scope(&client, requested_scope)?;
                let audience = self.audience_for(&client, requested_audience)?;
                self.magic_link_grant(&client, credential, scope, audience, &req.origin)
                    .await
            }
            GrantRequest::RefreshToken { refresh_token } => {
                self.refresh_grant(
                    &client,
                    refresh_token,
                    requested_scope,
                    requested_audience,
                    &req.origin,
                )
                .await
            }
            GrantRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                // The scope and audience were fixed by the authorization request.
                if requested_scope.is_some() {
                    return Err(TokenError::InvalidRequest(
                        "scope is fixed by the authorization request".into(),
                    ));
                }
                let _ = requested_audience;
                self.authorization_code_grant(&client, code, redirect_uri, code_verifier)
                    .await
            }
            GrantRequest::TokenExchange {
                subject_token,
                subject_token_type,
                requested_token_type,
                nonce,
            } => {
                let scope = self.client_scope(&client, requested_scope)?;
                let audience = self.audience_for(&client, requested_audience)?;
                self.token_exchange_grant(
                    &client,
                    token_exchange::Exchange {
                        subject_token,
                        subject_token_type,
                        requested_token_type,
                        nonce,
                    },
                    scope,
                    audience,
                    &req.origin,
                )
                .await
            }
            GrantRequest::ClientCredentials => {
                self.client_credentials_grant(&client, requested_scope, requested_audience)
            }
        }
    }

    /// The first step of every exchange: authenticates the client, counts the request
    /// against the client's limit and checks that the client may use `grant_type`. A request
    /// refused before it could be exchanged (a malformed scope or audience) goes through it
    /// too: who asks first, then what.
    pub async fn admit_client(
        &self,
        credentials: &ClientCredentials,
        grant_type: GrantType,
        origin: &RequestOrigin,
    ) -> Result<Arc<Client>, TokenError> {
        let span = tracing::Span::current();
        span.record("grant_type", grant_type.as_str());
        let client = self.clients.authenticate(credentials).await?;
        span.record("client_id", client.id.as_str());
        let caller = client_key(
            client.id.as_str(),
            client.kind == ClientKind::Confidential,
            origin.ip,
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
        Ok(client)
    }

    /// The client a magic link is requested for: it must exist, be enabled and be allowed
    /// the magic-link grant.
    pub async fn client_for_magic_link(&self, id: &ClientId) -> Result<ClientId, TokenError> {
        match self.clients.find(id).await? {
            Some(c) if c.enabled && c.allows_grant(GrantType::MagicLink) => Ok(c.id.clone()),
            Some(c) if c.enabled => Err(TokenError::UnauthorizedClient(
                "this client may not use magic links".into(),
            )),
            _ => Err(TokenError::InvalidRequest("unknown client_id".into())),
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

    /// Tokens for a signed-in user: records the login, starts a session (when the client
    /// may refresh) and signs the access token.
    async fn issue_for_user(
        &self,
        client: &Client,
        signed_in: &SignedIn,
        scope: Scope,
        audience: String,
    ) -> Result<IssuedTokens, TokenError> {
        let user = &signed_in.user;
        let now = self.clock.now();
        // For a password login, the hash the password was checked against must still be the
        // stored one (not replaced by a change or reset while the login was in flight).
        let (verified, rehashed) = match &signed_in.password {
            Some(p) => (Some(p.hash.as_str()), p.rehashed.as_deref()),
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
        // Read with the user when the sign-in did (the MFA grant), else here.
        let read;
        let claims = match &signed_in.claims {
            Some(claims) => claims,
            None => {
                read = self.users.claims(&user.id).await?.unwrap_or_default();
                &read
            }
        };
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
                user: Some(claims),
                sid: sid.as_ref().map(FamilyId::as_str),
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
            id_token: None,
            scope: scope.to_wire(),
            issued_token_type: None,
        })
    }

    fn access_token_ttl(&self, client: &Client) -> i64 {
        client
            .token_settings
            .access_token_ttl
            .unwrap_or(self.settings.access_token_ttl)
    }

    fn sign_access_token(
        &self,
        client: &Client,
        subject: Subject<'_>,
        scope: &Scope,
        audience: &str,
        now: UnixTime,
    ) -> Result<(AccessTokenText, i64), TokenError> {
        let jti = uuid::Uuid::new_v4().to_string();
        self.sign_access_token_with(client, subject, scope, audience, now, jti)
    }

    fn sign_access_token_with(
        &self,
        client: &Client,
        subject: Subject<'_>,
        scope: &Scope,
        audience: &str,
        now: UnixTime,
        jti: String,
    ) -> Result<(AccessTokenText, i64), TokenError> {
        let Subject { sub, user, sid } = subject;
        let ttl = self.access_token_ttl(client);
        let ring = self
            .keys
            .current()
            .ok_or_else(|| TokenError::Unexpected(anyhow::anyhow!("no signing key loaded")))?;
        let claims = AccessTokenClaims {
            iss: self.settings.issuer.clone(),
            sub: sub.to_owned(),
            aud: audience.to_owned(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti,
            client_id: client.id.as_str().to_owned(),
            sid: sid.map(str::to_owned),
            scope: Some(scope.to_wire()).filter(|s| !s.is_empty()),
            roles: user.map(|c| c.roles.clone()),
            permissions: user.map(|c| c.permissions.clone()),
        };
        let jwt = ring
            .active
            .sign_jwt(&claims)
            .map_err(|e| TokenError::Unexpected(e.into()))?;
        Ok((AccessTokenText::new(jwt), ttl))
    }
}
