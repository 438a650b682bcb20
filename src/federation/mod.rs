//! The adapter to upstream identity providers (federated sign-in): Google and generic OpenID
//! Connect providers with the `openidconnect` crate, GitHub with the `oauth2` crate, all over
//! one HTTP client with short timeouts and a cap on answers. Services see the
//! `UpstreamProviders` trait.

mod github;
mod http;
mod oidc;

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{ProviderConfig, ProviderId, ProviderKind};
use crate::services::{UpstreamError, UpstreamProviders, UpstreamStart, VerifiedIdToken};
use github::GithubProvider;
use oidc::OidcProvider;

/// The largest answer read from a provider.
const MAX_ANSWER_BYTES: usize = 512 * 1024;

enum Provider {
    Oidc(OidcProvider),
    GitHub(GithubProvider),
}

/// The configured providers.
pub struct Providers {
    providers: Vec<(ProviderId, Provider)>,
}

impl Providers {
    pub fn with_timeout(configs: &[ProviderConfig], timeout: Duration) -> anyhow::Result<Self> {
        let http = http::Http::new(timeout, MAX_ANSWER_BYTES)?;
        let mut providers = Vec::new();
        for c in configs {
            let p = match c.kind {
                ProviderKind::GitHub => {
                    GithubProvider::new(c.clone(), http.clone()).map(Provider::GitHub)
                }
                ProviderKind::Google | ProviderKind::Oidc => {
                    OidcProvider::new(c.clone(), http.clone()).map(Provider::Oidc)
                }
            };
            let Some(p) = p else {
                anyhow::bail!("provider {} is configured inconsistently", c.id);
            };
            providers.push((c.id.clone(), p));
        }
        Ok(Self { providers })
    }

    fn get(&self, id: &ProviderId) -> Result<&Provider, UpstreamError> {
        self.providers
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, p)| p)
            .ok_or(UpstreamError::UnknownProvider)
    }
}

#[async_trait]
impl UpstreamProviders for Providers {
    async fn authorization_url(
        &self,
        provider: &ProviderId,
        start: &UpstreamStart<'_>,
    ) -> Result<String, UpstreamError> {
        match self.get(provider)? {
            Provider::Oidc(p) => p.authorization_url(start).await,
            Provider::GitHub(p) => p.authorization_url(start),
        }
    }

    async fn complete(
        &self,
        provider: &ProviderId,
        code: &str,
        start: &UpstreamStart<'_>,
    ) -> Result<crate::domain::ExternalIdentity, UpstreamError> {
        let identity = match self.get(provider)? {
            Provider::Oidc(p) => p.complete(code, start).await?,
            Provider::GitHub(p) => p.complete(code, start).await?,
        };
        if identity.subject.is_empty() || identity.subject.len() > 255 {
            return Err(UpstreamError::InvalidToken("no usable subject".into()));
        }
        Ok(identity)
    }

    async fn verify_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<VerifiedIdToken, UpstreamError> {
        let claims = oidc::payload_of(id_token)?;
        let iss = claims
            .get("iss")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .trim_end_matches('/');
        let provider = self
            .providers
            .iter()
            .find_map(|(_, p)| match p {
                Provider::Oidc(o) if o.is_issuer(iss) => Some(o),
                _ => None,
            })
            .ok_or_else(|| UpstreamError::InvalidToken("no provider has this issuer".into()))?;
        let (identity, expires_at) = provider.verify_native(id_token, nonce).await?;
        if identity.subject.is_empty() || identity.subject.len() > 255 {
            return Err(UpstreamError::InvalidToken("no usable subject".into()));
        }
        Ok(VerifiedIdToken {
            identity,
            expires_at,
        })
    }

    async fn refresh(&self) {
        for (_, p) in &self.providers {
            if let Provider::Oidc(o) = p {
                o.refresh().await;
            }
        }
    }
}
