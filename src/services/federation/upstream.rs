//! What the federation service needs of the upstream providers: the adapter in
//! `src/federation/` implements it over HTTP (the `openidconnect` and `oauth2` crates).

use async_trait::async_trait;
use secrecy::SecretString;

use crate::clock::UnixTime;
use crate::domain::{ExternalIdentity, ProviderId};

/// One upstream sign-in's bindings: where the provider answers, and the values the answer
/// must carry back.
pub struct UpstreamStart<'a> {
    /// Latchkey's callback for the provider.
    pub redirect_uri: &'a str,
    pub state: &'a str,
    /// OpenID Connect's `nonce` (GitHub has none).
    pub nonce: &'a str,
    /// The PKCE verifier; the provider sees its S256 challenge.
    pub pkce_verifier: &'a SecretString,
}

/// A native app's ID token, checked.
#[derive(Debug)]
pub struct VerifiedIdToken {
    pub identity: ExternalIdentity,
    /// Its `exp`: a replay is refused until then.
    pub expires_at: UnixTime,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no such provider")]
    UnknownProvider,
    /// Down, slow, an unexpected status or a malformed answer.
    #[error("the provider could not be used: {0}")]
    Unavailable(String),
    /// The provider refused the code (e.g. `invalid_grant`).
    #[error("the provider refused: {0}")]
    Refused(String),
    /// An ID token that fails a check (signature, issuer, audience, lifetime, nonce, alg).
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
}

#[async_trait]
pub trait UpstreamProviders: Send + Sync {
    /// Where to send the browser to sign in at the provider.
    async fn authorization_url(
        &self,
        provider: &ProviderId,
        start: &UpstreamStart<'_>,
    ) -> Result<String, UpstreamError>;

    /// Exchanges the code the provider returned and says who signed in (ID token checked,
    /// or GitHub's profile and primary verified email read).
    async fn complete(
        &self,
        provider: &ProviderId,
        code: &str,
        start: &UpstreamStart<'_>,
    ) -> Result<ExternalIdentity, UpstreamError>;

    /// An ID token a native app obtained from a provider's SDK: the provider is found by its
    /// `iss`; the audience may be the provider's client id or one of its extra audiences; the
    /// nonce is checked when given.
    async fn verify_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<VerifiedIdToken, UpstreamError>;

    /// Refreshes the discovery documents and key sets (the background loop calls it).
    async fn refresh(&self);
}
