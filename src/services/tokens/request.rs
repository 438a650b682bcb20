//! A token request as parsed from the wire, and the response to a successful one.

use secrecy::SecretString;

use super::super::authn::{MagicCredential, SecondFactor};
use super::super::client_registry::ClientCredentials;
use crate::domain::{
    AccessTokenText, Audience, GrantType, IdTokenText, LoginName, RefreshTokenText, RequestOrigin,
    Scope,
};

/// The grant and its credential. `Debug` shows no secret: they are `SecretString`s.
#[derive(Debug)]
pub enum GrantRequest {
    Password {
        username: LoginName,
        password: SecretString,
    },
    RefreshToken {
        refresh_token: SecretString,
    },
    ClientCredentials,
    /// `authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5).
    AuthorizationCode {
        code: SecretString,
        redirect_uri: Option<String>,
        code_verifier: Option<SecretString>,
    },
    /// `urn:latchkey:params:oauth:grant-type:magic-link`: `token`, or `email` + `code`.
    MagicLink(MagicCredential),
    /// RFC 8693 token exchange of an upstream provider's ID token (a native app's sign-in).
    TokenExchange {
        subject_token: SecretString,
        /// `subject_token_type`, as sent (only the ID token type is accepted).
        subject_token_type: String,
        /// `requested_token_type`, if sent (only the access token type can be issued).
        requested_token_type: Option<String>,
        /// The nonce the app gave the provider's SDK, checked against the token's.
        nonce: Option<String>,
    },
    /// `urn:latchkey:params:oauth:grant-type:mfa`: the `mfa_token` of a password step and a
    /// second factor (`otp` or `recovery_code`).
    Mfa {
        mfa_token: SecretString,
        factor: SecondFactor,
    },
}

impl GrantRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            GrantRequest::Password { .. } => GrantType::Password,
            GrantRequest::RefreshToken { .. } => GrantType::RefreshToken,
            GrantRequest::ClientCredentials => GrantType::ClientCredentials,
            GrantRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            GrantRequest::MagicLink(_) => GrantType::MagicLink,
            GrantRequest::TokenExchange { .. } => GrantType::TokenExchange,
            GrantRequest::Mfa { .. } => GrantType::Mfa,
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

/// A successful token response (RFC 6749 §5.1). The tokens are secret newtypes: `Debug`
/// redacts them, and the HTTP layer writes the response body.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: AccessTokenText,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: Option<RefreshTokenText>,
    /// With the `openid` scope (OIDC Core §3.1.3.3).
    pub id_token: Option<IdTokenText>,
    /// Empty when no scope was granted.
    pub scope: String,
    /// RFC 8693 `issued_token_type` (token exchange only).
    pub issued_token_type: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_token_request_shows_no_secret() {
        let secret = |s: &str| SecretString::from(s.to_owned());
        let grants = [
            GrantRequest::Password {
                username: LoginName::parse("alice@example.com"),
                password: secret("hunter2-password"),
            },
            GrantRequest::RefreshToken {
                refresh_token: secret("lkrt_hunter2-refresh"),
            },
            GrantRequest::MagicLink(MagicCredential::Token(secret("hunter2-link"))),
            GrantRequest::TokenExchange {
                subject_token: secret("hunter2-id-token"),
                subject_token_type: "urn:ietf:params:oauth:token-type:id_token".into(),
                requested_token_type: None,
                nonce: None,
            },
            GrantRequest::MagicLink(MagicCredential::Code {
                email: LoginName::parse("alice@example.com"),
                code: secret("hunter2-code"),
            }),
        ];
        for grant in grants {
            let request = TokenRequest {
                grant,
                client: ClientCredentials {
                    basic: Some(("web".into(), secret("hunter2-basic"))),
                    body_client_id: None,
                    body_secret: Some(secret("hunter2-body")),
                },
                scope: None,
                audience: None,
                origin: RequestOrigin::local(),
            };
            let printed = format!("{request:?}");
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(printed.contains("REDACTED"), "{printed}");
        }
    }
}
