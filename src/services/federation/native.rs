//! Native apps: an ID token a platform SDK obtained from a provider (Google on Android and
//! iOS, or a generic OpenID Connect provider), exchanged at the token endpoint (RFC 8693).
//! The token is checked like the browser flow's, and each token is accepted once.

use secrecy::{ExposeSecret, SecretString};

use super::{detail, events, key_hash, FederationError, FederationService};
use crate::domain::{ExternalIdentity, RequestOrigin};

/// The one-time store's purpose for exchanged ID tokens.
const EXCHANGED: &str = "federation_id_token";

impl FederationService {
    /// Checks a native app's ID token (signature, issuer, audience among the provider's
    /// client id and extra audiences, lifetime, the nonce when given) and remembers it until
    /// it expires, so that it cannot be exchanged twice. Failures are audited.
    pub async fn verify_native(
        &self,
        id_token: &SecretString,
        nonce: Option<&str>,
        client_id: &str,
        origin: &RequestOrigin,
    ) -> Result<ExternalIdentity, FederationError> {
        let result = self.check_native(id_token, nonce).await;
        if let Err(e) = &result {
            self.audit
                .record(
                    events::FEDERATION_FAILED,
                    super::AuditContext {
                        user_id: None,
                        client_id: Some(client_id),
                        origin: Some(origin),
                    },
                    detail([
                        ("grant", serde_json::json!("token_exchange")),
                        ("reason", serde_json::json!(e.to_string())),
                    ]),
                )
                .await;
        }
        result
    }

    async fn check_native(
        &self,
        id_token: &SecretString,
        nonce: Option<&str>,
    ) -> Result<ExternalIdentity, FederationError> {
        let raw = id_token.expose_secret();
        if raw.is_empty() || raw.len() > 16 * 1024 {
            return Err(FederationError::Upstream(
                super::UpstreamError::InvalidToken("not an ID token".into()),
            ));
        }
        let verified = self.upstream.verify_id_token(raw, nonce).await?;
        let now = self.clock.now();
        // Remembered until it expires (it is refused after that anyway), by its hash.
        let first = self
            .one_time
            .first_use(
                EXCHANGED,
                &key_hash(EXCHANGED, raw),
                verified.expires_at.max(now + 1),
                now,
            )
            .await?;
        if !first {
            return Err(FederationError::TokenReplayed);
        }
        Ok(verified.identity)
    }
}
