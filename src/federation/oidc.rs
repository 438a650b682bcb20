//! Google and generic OpenID Connect providers, with the `openidconnect` crate: discovery
//! (cached, refreshed in the background, the last good copy kept when a refresh fails), the
//! authorization code flow with PKCE and `nonce`, and full ID token validation (signature
//! against the provider's JWKS, refetched once on an unknown key; `iss`, `aud`, `azp`, `exp`,
//! `iat`, `nonce`; asymmetric algorithms only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError,
    TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::RwLock;

use super::http::Http;
use crate::domain::{ClaimNames, Email, ExternalIdentity, ProviderConfig, UpstreamTokens};
use crate::services::{UpstreamError, UpstreamStart};

/// How long a discovery document is used before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// How long a stale copy is still used while the provider cannot be reached.
const DISCOVERY_STALE_MAX: Duration = Duration::from_secs(24 * 3600);
/// The JWKS is refetched for an unknown key at most this often.
const JWKS_REFETCH_MIN: Duration = Duration::from_secs(30);
/// How far in the future an ID token's `iat` may be (clock skew).
const IAT_SKEW_SECS: i64 = 300;
/// Google's issuer, and the other form of it Google's ID tokens may carry.
const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const GOOGLE_ISSUER_ALIAS: &str = "accounts.google.com";

const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// A client made from a discovery document: authorization endpoint set, token and userinfo
/// endpoints as the document says.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Discovered {
    metadata: CoreProviderMetadata,
    fetched_at: Instant,
    jwks_fetched_at: Instant,
}

/// One OpenID Connect provider.
pub struct OidcProvider {
    pub config: ProviderConfig,
    issuer: String,
    scopes: Vec<String>,
    claims: ClaimNames,
    extra_audiences: Vec<String>,
    http: Http,
    cache: RwLock<Option<Arc<Discovered>>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Unavailable(format!("{what}: {e}"))
}

fn invalid(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::InvalidToken(e.to_string())
}

impl OidcProvider {
    pub fn new(config: ProviderConfig, http: Http) -> Option<Self> {
        let crate::domain::Upstream::Oidc {
            issuer,
            scopes,
            claims,
            extra_audiences,
        } = config.upstream.clone()
        else {
            return None;
        };
        Some(Self {
            config,
            issuer,
            scopes,
            claims,
            extra_audiences,
            http,
            cache: RwLock::new(None),
        })
    }

    /// Whether an ID token's `iss` names this provider: its issuer, or, for Google, the
    /// scheme-less form Google also puts in ID tokens (`accounts.google.com`).
    pub fn is_issuer(&self, iss: &str) -> bool {
        iss == self.issuer || (self.issuer == GOOGLE_ISSUER && iss == GOOGLE_ISSUER_ALIAS)
    }

    /// The discovery document (with its key set), fetched when there is none or it is old.
    async fn discovered(&self) -> Result<Arc<Discovered>, UpstreamError> {
        if let Some(d) = self.cache.read().await.as_ref() {
            if d.fetched_at.elapsed() < DISCOVERY_TTL {
                return Ok(d.clone());
            }
        }
        self.rediscover().await
    }

    /// Fetches the discovery document and the key set; on failure, the last good copy while
    /// it is not too old.
    /// Refreshes the discovery document and key set now (the background loop).
    pub async fn refresh(&self) {
        let _ = self.rediscover().await;
    }

    async fn rediscover(&self) -> Result<Arc<Discovered>, UpstreamError> {
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| unavailable("issuer", e))?;
        match CoreProviderMetadata::discover_async(issuer, &self.http).await {
            Ok(metadata) => {
                let now = Instant::now();
                let d = Arc::new(Discovered {
                    metadata,
                    fetched_at: now,
                    jwks_fetched_at: now,
                });
                *self.cache.write().await = Some(d.clone());
                Ok(d)
            }
            Err(e) => {
                tracing::warn!(provider = %self.config.id, error = %e, "discovery failed");
                match self.cache.read().await.as_ref() {
                    Some(d) if d.fetched_at.elapsed() < DISCOVERY_STALE_MAX => Ok(d.clone()),
                    _ => Err(unavailable("discovery", e)),
                }
            }
        }
    }

    /// The key set again, for a token signed with a key it does not hold (rotation).
    async fn refetch_jwks(&self, current: &Discovered) -> Option<Arc<Discovered>> {
        if current.jwks_fetched_at.elapsed() < JWKS_REFETCH_MIN {
            return None;
        }
        let jwks = CoreJsonWebKeySet::fetch_async(current.metadata.jwks_uri(), &self.http)
            .await
            .map_err(
                |e| tracing::warn!(provider = %self.config.id, error = %e, "JWKS refetch failed"),
            )
            .ok()?;
        let d = Arc::new(Discovered {
            metadata: current.metadata.clone().set_jwks(jwks),
            fetched_at: current.fetched_at,
            jwks_fetched_at: Instant::now(),
        });
        *self.cache.write().await = Some(d.clone());
        Some(d)
    }

    fn client(&self, d: &Discovered) -> DiscoveredClient {
        CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(
                self.config.client_secret.expose_secret().to_owned(),
            )),
        )
    }

    pub async fn authorization_url(
        &self,
        start: &UpstreamStart<'_>,
    ) -> Result<String, UpstreamError> {
        let d = self.discovered().await?;
        let redirect = RedirectUrl::new(start.redirect_uri.to_owned())
            .map_err(|e| unavailable("redirect URI", e))?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            start.pkce_verifier.expose_secret().to_owned(),
        ));
        let client = self.client(&d).set_redirect_uri(redirect);
        let state = start.state.to_owned();
        let nonce = start.nonce.to_owned();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        );
        for scope in self.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, _) = request.set_pkce_challenge(challenge).url();
        Ok(url.to_string())
    }

    pub async fn complete(
        &self,
        code: &str,
        start: &UpstreamStart<'_>,
    ) -> Result<ExternalIdentity, UpstreamError> {
        let d = self.discovered().await?;
        let redirect = RedirectUrl::new(start.redirect_uri.to_owned())
            .map_err(|e| unavailable("redirect URI", e))?;
        let client = self.client(&d).set_redirect_uri(redirect);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| unavailable("token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(
                start.pkce_verifier.expose_secret().to_owned(),
            ))
            .request_async(&self.http)
            .await
            .map_err(super::http::token_error)?;
        let id_token = token
            .id_token()
            .ok_or_else(|| UpstreamError::InvalidToken("no ID token in the answer".into()))?;
        let audiences = vec![self.config.client_id.clone()];
        let nonce = Nonce::new(start.nonce.to_owned());
        let (payload, _) = self.verify(&d, id_token, &audiences, Some(&nonce)).await?;
        let tokens = self.config.store_tokens.then(|| UpstreamTokens {
            access_token: SecretString::from(token.access_token().secret().to_owned()),
            refresh_token: token
                .refresh_token()
                .map(|t| SecretString::from(t.secret().to_owned())),
        });
        let mut profile = payload;
        if profile.get(&self.claims.email).is_none() {
            if let Some(extra) = self
                .userinfo(&d, token.access_token().secret(), &profile)
                .await
            {
                merge(&mut profile, extra);
            }
        }
        Ok(self.identity(profile, tokens))
    }

    /// A native app's ID token (its audience may be one of the extra audiences).
    pub async fn verify_native(
        &self,
        raw: &str,
        nonce: Option<&str>,
    ) -> Result<(ExternalIdentity, i64), UpstreamError> {
        let d = self.discovered().await?;
        let id_token: CoreIdToken = raw.parse().map_err(invalid)?;
        let mut audiences = vec![self.config.client_id.clone()];
        audiences.extend(self.extra_audiences.iter().cloned());
        let nonce = nonce.map(|n| Nonce::new(n.to_owned()));
        let (payload, exp) = self
            .verify(&d, &id_token, &audiences, nonce.as_ref())
            .await?;
        Ok((self.identity(payload, None), exp))
    }

    /// Checks an ID token; its claims as JSON and its `exp`.
    async fn verify(
        &self,
        d: &Arc<Discovered>,
        id_token: &CoreIdToken,
        audiences: &[String],
        nonce: Option<&Nonce>,
    ) -> Result<(Value, i64), UpstreamError> {
        // The claims as JSON (read before the checks to find the audience the token names,
        // trusted only once they pass).
        let payload = payload_of(&id_token.to_string())?;
        let claims = match self.check(d, id_token, &payload, audiences, nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => match self.refetch_jwks(d).await {
                Some(fresh) => self.check(&fresh, id_token, &payload, audiences, nonce),
                None => Err(ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                )),
            },
            other => other,
        }
        .map_err(invalid)?;
        let now = chrono::Utc::now().timestamp();
        if claims.1 > now + IAT_SKEW_SECS {
            return Err(UpstreamError::InvalidToken("issued in the future".into()));
        }
        // azp (OIDC Core §3.1.3.7, 4-5): required with several audiences, and one of ours.
        let aud_count = match payload.get("aud") {
            Some(Value::Array(a)) => a.len(),
            _ => 1,
        };
        match payload.get("azp").and_then(Value::as_str) {
            Some(azp) if !audiences.iter().any(|a| a == azp) => {
                return Err(UpstreamError::InvalidToken(format!(
                    "azp {azp} is not ours"
                )))
            }
            None if aud_count > 1 => {
                return Err(UpstreamError::InvalidToken(
                    "several audiences but no azp".into(),
                ))
            }
            _ => {}
        }
        Ok((payload, claims.0))
    }

    /// The crate's checks; `(exp, iat)`.
    fn check(
        &self,
        d: &Discovered,
        id_token: &CoreIdToken,
        payload: &Value,
        audiences: &[String],
        nonce: Option<&Nonce>,
    ) -> Result<(i64, i64), ClaimsVerificationError> {
        // The audience the token names among ours; the others may appear beside it.
        let named: Vec<String> = match payload.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let primary = audiences
            .iter()
            .find(|a| named.contains(a))
            .cloned()
            .unwrap_or_else(|| self.config.client_id.clone());
        let others: Vec<String> = audiences.to_vec();
        let issuer = d.metadata.issuer().clone();
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(primary),
            issuer,
            d.metadata.jwks().clone(),
        )
        .set_allowed_algs(ALLOWED_ALGS)
        .set_other_audience_verifier_fn(move |aud| others.iter().any(|o| o == aud.as_str()));
        // Google's scheme-less issuer is not a URL the verifier can compare: it is checked
        // here instead (and only for Google's own issuer).
        let aliased = self.is_issuer(GOOGLE_ISSUER_ALIAS)
            && payload.get("iss").and_then(Value::as_str) == Some(GOOGLE_ISSUER_ALIAS);
        let verifier = verifier.require_issuer_match(!aliased);
        let claims = match nonce {
            Some(n) => id_token.claims(&verifier, n)?,
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(()))?,
        };
        Ok((
            claims.expiration().timestamp(),
            claims.issue_time().timestamp(),
        ))
    }

    /// Claims the ID token lacks, from the userinfo endpoint (same `sub` only).
    async fn userinfo(
        &self,
        d: &Discovered,
        access_token: &str,
        id_claims: &Value,
    ) -> Option<Value> {
        let url = d.metadata.userinfo_endpoint()?.as_str().to_owned();
        let (status, body) = self.http.get_json(&url, access_token).await.ok()?;
        if status != 200 {
            return None;
        }
        let info: Value = serde_json::from_slice(&body).ok()?;
        (info.get("sub").is_some() && info.get("sub") == id_claims.get("sub")).then_some(info)
    }

    fn identity(&self, profile: Value, tokens: Option<UpstreamTokens>) -> ExternalIdentity {
        let text = |key: &str| {
            profile
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let email = text(&self.claims.email).and_then(|e| Email::parse(&e).ok());
        let email_verified = email.is_some()
            && match profile.get(&self.claims.email_verified) {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s == "true",
                _ => false,
            };
        ExternalIdentity {
            provider: self.config.id.clone(),
            subject: text("sub").unwrap_or_default(),
            email,
            email_verified,
            display_name: text(&self.claims.name).map(|n| n.chars().take(200).collect()),
            avatar_url: text(&self.claims.picture).filter(|u| u.starts_with("https://")),
            profile,
            tokens,
        }
    }
}

fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, extra) {
        for (k, v) in b {
            a.entry(k).or_insert(v);
        }
    }
}

/// The claims of a compact JWS as JSON (already verified by the caller, or for reading `iss`).
pub fn payload_of(jwt: &str) -> Result<Value, UpstreamError> {
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| UpstreamError::InvalidToken("not a JWT".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| UpstreamError::InvalidToken("not a JWT".into()))?;
    match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(UpstreamError::InvalidToken("not a JWT".into())),
    }
}
