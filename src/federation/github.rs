//! GitHub (and GitHub Enterprise): the authorization code flow with PKCE through the `oauth2`
//! crate, then `GET /user` and `GET /user/emails`. The email used is the primary one, and only
//! when GitHub says it is verified.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::http::Http;
use crate::domain::{Email, ExternalIdentity, ProviderConfig, Upstream, UpstreamTokens};
use crate::services::{UpstreamError, UpstreamStart};

/// The `oauth2` client with the authorization and token endpoints set.
type GithubClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

pub struct GithubProvider {
    pub config: ProviderConfig,
    authorize_url: String,
    token_url: String,
    api_url: String,
    scopes: Vec<String>,
    http: Http,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Unavailable(format!("{what}: {e}"))
}

impl GithubProvider {
    pub fn new(config: ProviderConfig, http: Http) -> Option<Self> {
        let Upstream::GitHub {
            authorize_url,
            token_url,
            api_url,
            scopes,
        } = config.upstream.clone()
        else {
            return None;
        };
        Some(Self {
            config,
            authorize_url,
            token_url,
            api_url,
            scopes,
            http,
        })
    }

    fn client(&self, redirect_uri: &str) -> Result<GithubClient, UpstreamError> {
        Ok(
            BasicClient::new(ClientId::new(self.config.client_id.clone()))
                .set_client_secret(ClientSecret::new(
                    self.config.client_secret.expose_secret().to_owned(),
                ))
                .set_auth_type(AuthType::RequestBody)
                .set_auth_uri(
                    AuthUrl::new(self.authorize_url.clone())
                        .map_err(|e| unavailable("authorize_url", e))?,
                )
                .set_token_uri(
                    TokenUrl::new(self.token_url.clone())
                        .map_err(|e| unavailable("token_url", e))?,
                )
                .set_redirect_uri(
                    RedirectUrl::new(redirect_uri.to_owned())
                        .map_err(|e| unavailable("redirect URI", e))?,
                ),
        )
    }

    pub fn authorization_url(&self, start: &UpstreamStart<'_>) -> Result<String, UpstreamError> {
        let client = self.client(start.redirect_uri)?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            start.pkce_verifier.expose_secret().to_owned(),
        ));
        let state = start.state.to_owned();
        let (url, _) = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        Ok(url.to_string())
    }

    pub async fn complete(
        &self,
        code: &str,
        start: &UpstreamStart<'_>,
    ) -> Result<ExternalIdentity, UpstreamError> {
        let client = self.client(start.redirect_uri)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                start.pkce_verifier.expose_secret().to_owned(),
            ))
            .request_async(&self.http)
            .await
            .map_err(super::http::token_error)?;
        let access = token.access_token().secret();
        let user = self.api(&format!("{}/user", self.api_url), access).await?;
        let emails = self
            .api(&format!("{}/user/emails", self.api_url), access)
            .await?;
        let subject = match user.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(unavailable("/user", "no id")),
        };
        let primary_verified = emails.as_array().and_then(|list| {
            list.iter().find(|e| {
                e.get("primary").and_then(Value::as_bool) == Some(true)
                    && e.get("verified").and_then(Value::as_bool) == Some(true)
            })
        });
        let email = primary_verified
            .and_then(|e| e.get("email"))
            .and_then(Value::as_str)
            .and_then(|e| Email::parse(e).ok());
        let text = |key: &str| {
            user.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let tokens = self.config.store_tokens.then(|| UpstreamTokens {
            access_token: SecretString::from(access.to_owned()),
            refresh_token: token
                .refresh_token()
                .map(|t| SecretString::from(t.secret().to_owned())),
        });
        Ok(ExternalIdentity {
            provider: self.config.id.clone(),
            subject,
            email_verified: email.is_some(),
            email,
            display_name: text("name")
                .or_else(|| text("login"))
                .map(|n| n.chars().take(200).collect()),
            avatar_url: text("avatar_url").filter(|u| u.starts_with("https://")),
            profile: user,
            tokens,
        })
    }

    async fn api(&self, url: &str, access_token: &str) -> Result<Value, UpstreamError> {
        let (status, body) = self
            .http
            .get_json(url, access_token)
            .await
            .map_err(|e| unavailable(url, e))?;
        if status != 200 {
            return Err(unavailable(url, format!("status {status}")));
        }
        serde_json::from_slice(&body).map_err(|_| unavailable(url, "malformed JSON"))
    }
}
