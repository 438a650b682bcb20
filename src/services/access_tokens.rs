use std::sync::Arc;

use crate::clock::Clock;
use crate::crypto::{verify_access_token, AccessTokenClaims, AccessTokenError, KeyRing};
use crate::domain::TokenIdentity;
use crate::storage::{DenylistError, TokenDenylist};

/// Why a presented access token is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AccessTokenRejection {
    /// Malformed, foreign, wrongly signed, expired or not yet valid.
    #[error("{0}")]
    Invalid(AccessTokenError),
    /// Signed by us and unexpired, but revoked (jti, session or user watermark).
    #[error("the token has been revoked")]
    Revoked,
    /// Valid, but for another audience than Latchkey itself.
    #[error("the token was not issued for this server (aud)")]
    WrongAudience,
    /// The denylist cannot answer: fail closed.
    #[error(transparent)]
    Unavailable(#[from] DenylistError),
}

/// Verifies Latchkey's own access tokens: signature against the published keys, issuer,
/// validity window, then the denylist.
pub struct AccessTokenVerifier {
    keys: Arc<KeyRing>,
    denylist: Arc<dyn TokenDenylist>,
    clock: Arc<dyn Clock>,
    issuer: String,
}

impl AccessTokenVerifier {
    pub fn new(
        keys: Arc<KeyRing>,
        denylist: Arc<dyn TokenDenylist>,
        clock: Arc<dyn Clock>,
        issuer: String,
    ) -> Self {
        Self {
            keys,
            denylist,
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

    pub async fn is_revoked(&self, claims: &AccessTokenClaims) -> Result<bool, DenylistError> {
        self.denylist
            .is_denied(
                &TokenIdentity {
                    jti: &claims.jti,
                    sid: claims.sid.as_deref(),
                    sub: &claims.sub,
                    iat: claims.iat,
                },
                self.clock.now(),
            )
            .await
    }
}
