use std::collections::BTreeSet;

use super::{GrantType, Scope, ValidationError};
use crate::clock::UnixTime;

crate::string_newtype! {
    /// An OAuth client identifier: 1..=128 characters of `[A-Za-z0-9._~-]`.
    pub struct ClientId;
}

impl ClientId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "client_id",
                "must be 1 to 128 characters of letters, digits and . _ ~ -",
            ))
        }
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

crate::string_newtype! {
    /// The API a token is for (`aud`): an RFC 8707 resource URI or an audience name.
    pub struct Audience;
}

impl Audience {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty() && raw.len() <= 512 && raw.chars().all(|c| c.is_ascii_graphic());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "audience",
                "must be 1 to 512 printable ASCII characters without spaces",
            ))
        }
    }

    /// RFC 8707 §2: a `resource` is an absolute URI without a fragment.
    pub fn parse_resource(raw: &str) -> Result<Self, ValidationError> {
        let aud = Self::parse(raw)?;
        let has_scheme = raw.split_once(':').is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
        });
        if !has_scheme || raw.contains('#') {
            return Err(ValidationError::new(
                "resource",
                "must be an absolute URI without a fragment",
            ));
        }
        Ok(aud)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Cannot keep a secret (SPA, mobile app); identified by `client_id` alone.
    Public,
    /// Authenticates with a secret.
    Confidential,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::Confidential => "confidential",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "public" => Ok(ClientKind::Public),
            "confidential" => Ok(ClientKind::Confidential),
            _ => Err(ValidationError::new(
                "kind",
                "must be public or confidential",
            )),
        }
    }
}

/// The longest access-token lifetime a client may be given (a day): revocation entries and
/// retired signing keys are kept this long after the fact.
pub const MAX_ACCESS_TOKEN_TTL: i64 = 86_400;

/// Per-client token lifetimes in seconds; `None` uses the server default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientTokenSettings {
    pub access_token_ttl: Option<i64>,
    pub refresh_idle_ttl: Option<i64>,
    pub refresh_absolute_ttl: Option<i64>,
}

impl ClientTokenSettings {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self
            .access_token_ttl
            .is_some_and(|v| !(1..=MAX_ACCESS_TOKEN_TTL).contains(&v))
        {
            return Err(ValidationError::new(
                "access_token_ttl",
                "must be between 1 second and 1 day",
            ));
        }
        for (field, v) in [
            ("access_token_ttl", self.access_token_ttl),
            ("refresh_idle_ttl", self.refresh_idle_ttl),
            ("refresh_absolute_ttl", self.refresh_absolute_ttl),
        ] {
            if let Some(v) = v {
                if !(1..=10 * 365 * 86_400).contains(&v) {
                    return Err(ValidationError::new(
                        field,
                        "must be between 1 second and 10 years",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A registered OAuth client.
#[derive(Clone)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub kind: ClientKind,
    /// Hex SHA-256 of the secret (confidential clients only). Client secrets are 256-bit random
    /// values, so a fast hash is enough; comparison is constant-time.
    pub secret_hash: Option<String>,
    pub enabled: bool,
    pub grant_types: BTreeSet<GrantType>,
    pub scopes: Scope,
    pub redirect_uris: Vec<String>,
    pub audiences: Vec<Audience>,
    pub default_audience: Option<Audience>,
    pub token_settings: ClientTokenSettings,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field(
                "secret_hash",
                &self.secret_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("enabled", &self.enabled)
            .field("grant_types", &self.grant_types)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Rules every stored client satisfies.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(ValidationError::new("name", "must be 1 to 200 characters"));
        }
        if self.grant_types.is_empty() {
            return Err(ValidationError::new(
                "grant_types",
                "at least one grant type is required",
            ));
        }
        if self.kind == ClientKind::Public
            && self.grant_types.contains(&GrantType::ClientCredentials)
        {
            return Err(ValidationError::new(
                "grant_types",
                "a public client cannot use client_credentials (it has no secret)",
            ));
        }
        if self.kind == ClientKind::Confidential && self.secret_hash.is_none() {
            return Err(ValidationError::new(
                "secret",
                "a confidential client needs a secret",
            ));
        }
        if self.kind == ClientKind::Public && self.secret_hash.is_some() {
            return Err(ValidationError::new(
                "secret",
                "a public client has no secret",
            ));
        }
        if let Some(d) = &self.default_audience {
            if !self.audiences.is_empty() && !self.audiences.contains(d) {
                return Err(ValidationError::new(
                    "default_audience",
                    "must be one of the client's audiences",
                ));
            }
        }
        for uri in &self.redirect_uris {
            if uri.is_empty() || uri.len() > 2000 || uri.contains('#') || !uri.contains("://") {
                return Err(ValidationError::new(
                    "redirect_uris",
                    format!("{uri:?} must be an absolute URI without a fragment"),
                ));
            }
        }
        self.token_settings.validate()
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_client_access_token_lifetime_is_capped_at_one_day() {
        let ttl = |v| ClientTokenSettings {
            access_token_ttl: Some(v),
            ..Default::default()
        };
        assert!(ttl(MAX_ACCESS_TOKEN_TTL).validate().is_ok());
        let err = ttl(MAX_ACCESS_TOKEN_TTL + 1).validate().err();
        assert!(err.is_some_and(|e| e.to_string().contains("access_token_ttl")));
        let long_refresh = ClientTokenSettings {
            refresh_absolute_ttl: Some(90 * 86_400),
            ..Default::default()
        };
        assert!(
            long_refresh.validate().is_ok(),
            "only access tokens are capped"
        );
    }
}
