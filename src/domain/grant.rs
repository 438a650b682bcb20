use super::ValidationError;

/// An OAuth 2.0 grant type this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    Password,
    RefreshToken,
    ClientCredentials,
    AuthorizationCode,
    /// Passwordless sign-in with an emailed link or code (Latchkey's extension grant).
    MagicLink,
    /// RFC 8693 token exchange: a native app trades an upstream provider's ID token for
    /// Latchkey's tokens.
    TokenExchange,
    /// The second step of a password sign-in for a user with a second factor (Latchkey's
    /// extension grant): the `mfa_token` and a TOTP or recovery code. Not registered on its
    /// own: a client allowed the password grant may use it.
    Mfa,
}

impl GrantType {
    pub const ALL: [GrantType; 7] = [
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::AuthorizationCode,
        GrantType::MagicLink,
        GrantType::TokenExchange,
        GrantType::Mfa,
    ];

    /// Grants the token endpoint serves today.
    pub const SERVED: [GrantType; 7] = [
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::AuthorizationCode,
        GrantType::MagicLink,
        GrantType::TokenExchange,
        GrantType::Mfa,
    ];

    /// Whether a client may be registered for this grant (every grant the token endpoint
    /// serves but the MFA grant, which comes with the password grant).
    pub fn is_registrable(self) -> bool {
        Self::SERVED.contains(&self) && self != GrantType::Mfa
    }

    /// The `grant_type` value of the MFA grant at the token endpoint.
    pub const MFA_URN: &'static str = "urn:latchkey:params:oauth:grant-type:mfa";

    /// The `grant_type` value of the magic-link grant at the token endpoint.
    pub const MAGIC_LINK_URN: &'static str = "urn:latchkey:params:oauth:grant-type:magic-link";

    /// The `grant_type` value of RFC 8693 token exchange.
    pub const TOKEN_EXCHANGE_URN: &'static str = "urn:ietf:params:oauth:grant-type:token-exchange";

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::MagicLink => Self::MAGIC_LINK_URN,
            GrantType::TokenExchange => Self::TOKEN_EXCHANGE_URN,
            GrantType::Mfa => Self::MFA_URN,
        }
    }

    /// A grant type by its wire name (`magic_link` and `token_exchange` are accepted for
    /// the URNs, so that operators can type them).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "magic_link" => return Ok(GrantType::MagicLink),
            "token_exchange" => return Ok(GrantType::TokenExchange),
            _ => {}
        }
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == raw)
            .ok_or_else(|| {
                ValidationError::new("grant_type", format!("unknown grant type {raw:?}"))
            })
    }
}

impl std::fmt::Display for GrantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
