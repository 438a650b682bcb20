//! Access tokens: the one claims type Latchkey signs and reads (`claims.rs`), and the verifier
//! that checks a presented token's signature, lifetime, denylist entry and client.

mod claims;

use std::sync::Arc;

use super::client_registry::ClientRegistry;
use crate::clock::Clock;
use crate::crypto::{verify_access_token, AccessTokenError, KeyRing};
use crate::domain::{ClientId, TokenIdentity};
use crate::storage::{DenylistError, StorageError, TokenDenylist};
pub use claims::AccessTokenClaims;

/// Why a presented access token is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AccessTokenRejection {
    /// Malformed, foreign, wrongly signed, expired or not yet valid.
    #[error("{0}")]
    Invalid(AccessTokenError),
    /// Signed by us and unexpired, but revoked (jti, session, user or client watermark), or
    /// its client no longer exists or is disabled.
    #[error("the token has been revoked")]
    Revoked,
    /// Valid, but for another audience than Latchkey itself.
    #[error("the token was not issued for this server (aud)")]
    WrongAudience,
    /// The denylist cannot answer: fail closed.
    #[error(transparent)]
    Unavailable(#[from] DenylistError),
    /// The token's client could not be looked up: fail closed.
    #[error("looking the token's client up")]
    Storage(#[from] StorageError),
}

/// Verifies Latchkey's own access tokens: signature against the published keys, issuer,
/// validity window, then the denylist and the token's client.
pub struct AccessTokenVerifier {
    keys: Arc<KeyRing>,
    denylist: Arc<dyn TokenDenylist>,
    clients: Arc<ClientRegistry>,
    clock: Arc<dyn Clock>,
    issuer: String,
}

impl AccessTokenVerifier {
    pub fn new(
        keys: Arc<KeyRing>,
        denylist: Arc<dyn TokenDenylist>,
        clients: Arc<ClientRegistry>,
        clock: Arc<dyn Clock>,
        issuer: String,
    ) -> Self {
        Self {
            keys,
            denylist,
            clients,
            clock,
            issuer,
        }
    }

    /// Signature, issuer and lifetime only (no denylist).
    pub fn verify_signed(&self, token: &str) -> Result<AccessTokenClaims, AccessTokenRejection> {
        let ring = self
            .keys
            .current()
            .ok_or(AccessTokenRejection::Invalid(AccessTokenError::UnknownKey))?;
        verify_access_token(&ring, token, &self.issuer, self.clock.now())
            .map_err(AccessTokenRejection::Invalid)
    }

    /// A token valid now and issued for Latchkey itself (`aud` = the issuer), as its own
    /// endpoints require: a token minted for another API must not work here (RFC 9068 §4).
    pub async fn verify_for_issuer(
        &self,
        token: &str,
    ) -> Result<AccessTokenClaims, AccessTokenRejection> {
        let claims = self.verify_signed(token)?;
        if claims.aud != self.issuer {
            return Err(AccessTokenRejection::WrongAudience);
        }
        if self.is_revoked(&claims).await? {
            return Err(AccessTokenRejection::Revoked);
        }
        Ok(claims)
    }

    /// A token valid now that was issued with the `openid` scope, for the userinfo endpoint
    /// (OIDC Core §5.3): whatever API the token is also for (its `aud`), the client asked
    /// for OpenID Connect, and userinfo is part of it. Without `openid`, the same rule as
    /// [`Self::verify_for_issuer`].
    pub async fn verify_for_userinfo(
        &self,
        token: &str,
    ) -> Result<AccessTokenClaims, AccessTokenRejection> {
        let claims = self.verify_signed(token)?;
        let openid = claims
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|t| t == "openid"));
        if !openid && claims.aud != self.issuer {
            return Err(AccessTokenRejection::WrongAudience);
        }
        if self.is_revoked(&claims).await? {
            return Err(AccessTokenRejection::Revoked);
        }
        Ok(claims)
    }

    /// Whether a signed, unexpired token no longer counts: the denylist has it (by jti,
    /// session, user or client watermark), or its client no longer exists or is disabled.
    /// The client is read through the registry's cache, which changes made through this
    /// process invalidate at once and changes made elsewhere within its TTL; the client
    /// watermark a change writes reaches every instance's denylist sooner.
    pub async fn is_revoked(
        &self,
        claims: &AccessTokenClaims,
    ) -> Result<bool, AccessTokenRejection> {
        let denied = self
            .denylist
            .is_denied(
                &TokenIdentity {
                    jti: &claims.jti,
                    sid: claims.sid.as_deref(),
                    sub: &claims.sub,
                    client_id: &claims.client_id,
                    iat: claims.iat,
                },
                self.clock.now(),
            )
            .await?;
        Ok(denied || !self.client_is_live(&claims.client_id).await?)
    }

    /// Whether the client exists and is enabled.
    pub async fn client_is_live(&self, client_id: &str) -> Result<bool, StorageError> {
        let Ok(id) = ClientId::parse(client_id) else {
            return Ok(false);
        };
        Ok(self.clients.find(&id).await?.is_some_and(|c| c.enabled))
    }
}
