//! Federated sign-in: the upstream identity providers an operator configures (Google, GitHub,
//! any OpenID Connect provider), the identity one of them asserts, and the records that link
//! such an identity to a local user.

use secrecy::SecretString;

use super::{Email, UserId, ValidationError};
use crate::clock::UnixTime;

crate::string_newtype! {
    /// A provider's id: `google`, `github`, or the `id` of a generic OpenID Connect provider.
    /// It appears in URLs (`/federation/{id}/callback`) and in the linked records.
    pub struct ProviderId;
}

impl ProviderId {
    /// 1 to 32 of `a-z`, `0-9`, `-` and `_`, starting with a letter.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = (1..=32).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "provider",
                "must be 1 to 32 of a-z, 0-9, '-' and '_', starting with a letter",
            ))
        }
    }

    /// For values read back from our own storage or configuration.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

/// Which protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Google: OpenID Connect, with Google's defaults.
    Google,
    /// GitHub: OAuth 2.0, then its REST API for the profile and the emails.
    GitHub,
    /// Any OpenID Connect provider, found by discovery.
    Oidc,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Google => "google",
            ProviderKind::GitHub => "github",
            ProviderKind::Oidc => "oidc",
        }
    }
}

/// When a federated sign-in may link itself to an existing local user with the same email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPolicy {
    /// Both the provider and Latchkey have verified the address.
    VerifiedEmail,
    /// Never automatically: the user proves they own the local account first.
    Never,
}

impl LinkPolicy {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "verified_email" => Some(LinkPolicy::VerifiedEmail),
            "never" => Some(LinkPolicy::Never),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkPolicy::VerifiedEmail => "verified_email",
            LinkPolicy::Never => "never",
        }
    }
}

/// Which claims of a generic provider's ID token (or userinfo) carry the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub email: String,
    pub email_verified: String,
    pub name: String,
    pub picture: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            email: "email".into(),
            email_verified: "email_verified".into(),
            name: "name".into(),
            picture: "picture".into(),
        }
    }
}

/// Where a provider is reached.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// OpenID Connect: discovery at `{issuer}/.well-known/openid-configuration`.
    Oidc {
        issuer: String,
        scopes: Vec<String>,
        claims: ClaimNames,
        /// Audiences accepted besides the client id, for ID tokens native apps exchange.
        extra_audiences: Vec<String>,
    },
    /// GitHub (or GitHub Enterprise).
    GitHub {
        authorize_url: String,
        token_url: String,
        api_url: String,
        scopes: Vec<String>,
    },
}

/// A configured provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub display_name: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub upstream: Upstream,
    pub link_existing: LinkPolicy,
    /// Keep the upstream access and refresh tokens (encrypted) on the link.
    pub store_tokens: bool,
}

impl ProviderConfig {
    /// The OpenID Connect issuer, for providers that have one.
    pub fn issuer(&self) -> Option<&str> {
        match &self.upstream {
            Upstream::Oidc { issuer, .. } => Some(issuer),
            Upstream::GitHub { .. } => None,
        }
    }
}

/// The most of a provider's raw profile a link keeps (bytes of JSON).
pub const MAX_PROFILE_BYTES: usize = 16 * 1024;

/// Tokens the provider issued, kept only when the provider's `store_tokens` is on.
#[derive(Clone)]
pub struct UpstreamTokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamTokens([redacted])")
    }
}

/// Who a provider says the user is.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    pub provider: ProviderId,
    /// The provider's stable id of the user (`sub`, GitHub's numeric id).
    pub subject: String,
    /// The address as the provider gave it (GitHub: the primary and verified one only).
    pub email: Option<Email>,
    /// Whether the provider asserts it verified `email`.
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    /// The provider's profile as it came (capped to [`MAX_PROFILE_BYTES`]).
    pub profile: serde_json::Value,
    pub tokens: Option<UpstreamTokens>,
}

impl ExternalIdentity {
    /// The profile, or an empty object when its JSON is longer than the cap.
    pub fn capped_profile(&self) -> String {
        let text = self.profile.to_string();
        if text.len() <= MAX_PROFILE_BYTES {
            text
        } else {
            "{}".into()
        }
    }
}

crate::string_newtype! {
    /// A link's id (UUID, text form).
    pub struct LinkId;
}

impl LinkId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        uuid::Uuid::parse_str(raw)
            .map(|u| Self(u.to_string()))
            .map_err(|_| ValidationError::new("link_id", "must be a UUID"))
    }

    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

/// A local user's link to an identity at a provider.
#[derive(Debug, Clone)]
pub struct SocialLink {
    pub id: LinkId,
    pub provider: ProviderId,
    pub subject: String,
    pub user_id: UserId,
    pub email: Option<String>,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub profile: serde_json::Value,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

impl SocialLink {
    /// A new link for an identity.
    pub fn new(identity: &ExternalIdentity, user_id: &UserId, now: UnixTime) -> Self {
        Self {
            id: LinkId::generate(),
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            user_id: user_id.clone(),
            email: identity.email.as_ref().map(|e| e.as_str().to_owned()),
            email_verified: identity.email_verified,
            display_name: identity.display_name.clone(),
            avatar_url: identity.avatar_url.clone(),
            profile: serde_json::from_str(&identity.capped_profile())
                .unwrap_or_else(|_| serde_json::Value::Object(serde_json::Map::new())),
            created_at: now,
            last_used_at: Some(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_are_url_safe_names() {
        for good in ["google", "github", "corp", "corp-sso", "a1_b"] {
            assert!(ProviderId::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Corp", "1corp", "corp sso", "corp/x", &"a".repeat(33)] {
            assert!(ProviderId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_oversized_profile_is_not_kept() {
        let mut identity = ExternalIdentity {
            provider: ProviderId::from_trusted("corp".into()),
            subject: "1".into(),
            email: None,
            email_verified: false,
            display_name: None,
            avatar_url: None,
            profile: serde_json::json!({"name": "x"}),
            tokens: None,
        };
        assert_eq!(identity.capped_profile(), r#"{"name":"x"}"#);
        identity.profile = serde_json::json!({"blob": "x".repeat(MAX_PROFILE_BYTES)});
        assert_eq!(identity.capped_profile(), "{}");
    }
}
