//! A token request as parsed from the wire, and the response to a successful one.

use secrecy::SecretString;

use super::super::authn::MagicCredential;
use super::super::client_registry::ClientCredentials;
use crate::domain::{Audience, GrantType, LoginName, RequestOrigin, Scope};

pub enum GrantRequest {
    Password {
        username: LoginName,
        password: SecretString,
    },
    RefreshToken {
        refresh_token: SecretString,
    },
    ClientCredentials,
    /// `urn:latchkey:params:oauth:grant-type:magic-link`: `token`, or `email` + `code`.
    MagicLink(MagicCredential),
}

impl GrantRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            GrantRequest::Password { .. } => GrantType::Password,
            GrantRequest::RefreshToken { .. } => GrantType::RefreshToken,
            GrantRequest::ClientCredentials => GrantType::ClientCredentials,
            GrantRequest::MagicLink(_) => GrantType::MagicLink,
        }
    }
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
    /// The scope asked for, if any.
    pub scope: Option<Scope>,
    /// The API the token is asked for, if any: RFC 8707 `resource`, or `audience` as several
    /// providers accept it.
    pub audience: Option<Audience>,
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
