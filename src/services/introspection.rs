//! Token introspection (RFC 7662) for access and refresh tokens.

use std::sync::Arc;

use tracing::instrument;

use super::access_tokens::AccessTokenClaims;
use super::access_tokens::AccessTokenVerifier;
use super::client_registry::{ClientCredentials, ClientRegistry};
use super::revocation::{ensure_resource_server, RevocationError};
use super::throttle::{RequestLimit, Throttle};
use crate::clock::{Clock, UnixTime};
use crate::crypto::RefreshTokenCodec;
use crate::domain::{PresentedToken, Principal};
use crate::storage::RefreshTokenStore;

/// Who asks: a confidential client, or a caller authenticated by an access token (it needs
/// the introspection scope).
#[derive(Debug)]
pub enum IntrospectionCaller {
    Client(ClientCredentials),
    Bearer(Principal),
}

/// An RFC 7662 response: `{"active": false}` or the token's metadata.
#[derive(Debug, serde::Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Self {
            active: false,
            token_type: None,
            scope: None,
            client_id: None,
            sub: None,
            aud: None,
            iss: None,
            exp: None,
            iat: None,
            nbf: None,
            jti: None,
            sid: None,
            roles: None,
            permissions: None,
        }
    }

    fn access(c: AccessTokenClaims) -> Self {
        Self {
            active: true,
            token_type: Some("Bearer"),
            scope: c.scope,
            client_id: Some(c.client_id),
            sub: Some(c.sub),
            aud: Some(c.aud),
            iss: Some(c.iss),
            exp: Some(c.exp),
            iat: Some(c.iat),
            nbf: Some(c.nbf),
            jti: Some(c.jti),
            sid: c.sid,
            roles: c.roles,
            permissions: c.permissions,
        }
    }
}

pub struct IntrospectionService {
    clients: Arc<ClientRegistry>,
    verifier: Arc<AccessTokenVerifier>,
    refresh_tokens: Arc<dyn RefreshTokenStore>,
    codec: Arc<RefreshTokenCodec>,
    clock: Arc<dyn Clock>,
    issuer: String,
    /// The scope a bearer token needs to call the endpoint.
    introspection_scope: String,
    /// The request limit per calling client.
    throttle: Arc<Throttle>,
}

impl IntrospectionService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        clients: Arc<ClientRegistry>,
        verifier: Arc<AccessTokenVerifier>,
        refresh_tokens: Arc<dyn RefreshTokenStore>,
        codec: Arc<RefreshTokenCodec>,
        clock: Arc<dyn Clock>,
        issuer: String,
        introspection_scope: String,
        throttle: Arc<Throttle>,
    ) -> Self {
        Self {
            throttle,
            clients,
            verifier,
            refresh_tokens,
            codec,
            clock,
            issuer,
            introspection_scope,
        }
    }

    /// The calling client's id, once it proved it may introspect.
    async fn authorize(&self, caller: &IntrospectionCaller) -> Result<String, RevocationError> {
        match caller {
            IntrospectionCaller::Client(creds) => {
                let client = self.clients.authenticate(creds).await?;
                ensure_resource_server(&client, &self.introspection_scope)?;
                Ok(client.id.as_str().to_owned())
            }
            IntrospectionCaller::Bearer(caller) => {
                if caller.scope.contains(&self.introspection_scope) {
                    Ok(caller.client_id.as_str().to_owned())
                } else {
                    Err(RevocationError::InsufficientScope(format!(
                        "introspection needs the {} scope",
                        self.introspection_scope
                    )))
                }
            }
        }
    }

    #[instrument(name = "token.introspect", skip_all)]
    pub async fn introspect(
        &self,
        caller: &IntrospectionCaller,
        token: &str,
    ) -> Result<Introspection, RevocationError> {
        let client_id = self.authorize(caller).await?;
        self.throttle
            .limit_request(RequestLimit::Introspections, &client_id)
            .await
            .map_err(|t| RevocationError::RateLimited(t.retry_after_secs))?;
        if let Some(p) = self.codec.parse(token) {
            return self.refresh_token(p).await;
        }
        let Ok(claims) = self.verifier.verify_signed(token) else {
            return Ok(Introspection::inactive());
        };
        if self.verifier.is_revoked(&claims).await? {
            return Ok(Introspection::inactive());
        }
        Ok(Introspection::access(claims))
    }

    async fn refresh_token(
        &self,
        presented: PresentedToken,
    ) -> Result<Introspection, RevocationError> {
        let Some(f) = self
            .refresh_tokens
            .find_family(&presented.family_id)
            .await?
        else {
            return Ok(Introspection::inactive());
        };
        if !f.is_current(&presented, self.clock.now())
            || !self.verifier.client_is_live(&f.client_id).await?
        {
            return Ok(Introspection::inactive());
        }
        let mut out = Introspection::inactive();
        out.active = true;
        out.token_type = Some("refresh_token");
        out.scope = Some(f.scope).filter(|s| !s.is_empty());
        out.client_id = Some(f.client_id);
        out.sub = Some(f.user_id.as_str().to_owned());
        out.aud = Some(f.audience);
        out.iss = Some(self.issuer.clone());
        out.exp = Some(f.expires_at.min(f.absolute_expires_at));
        out.iat = Some(f.issued_at);
        out.sid = Some(f.id.into_string());
        Ok(out)
    }
}
