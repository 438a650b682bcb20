use std::collections::BTreeSet;

use super::redirect_uri::{check_redirect_uri, matches_redirect_uri, RedirectUse};
use super::{GrantType, Scope, SigningAlg, ValidationError};
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

/// The longest refresh grace window a client may be given (five minutes): a used refresh
/// token is accepted again that long, and its successor kept (sealed) as long.
pub const MAX_REFRESH_GRACE_SECS: i64 = 300;
/// The most retries a refresh grace window may admit.
pub const MAX_REFRESH_GRACE_USES: i64 = 100;

/// Per-client token lifetimes in seconds, and the refresh grace window; `None` uses the server
/// default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientTokenSettings {
    pub access_token_ttl: Option<i64>,
    pub refresh_idle_ttl: Option<i64>,
    pub refresh_absolute_ttl: Option<i64>,
    /// How long after a refresh token's first use presenting it again (by the same client) is
    /// a retry that answers the same successor, not reuse; 0: never (strict rotation).
    pub refresh_grace_secs: Option<i64>,
    /// How many retries that window admits.
    pub refresh_grace_uses: Option<i64>,
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
        if self
            .refresh_grace_secs
            .is_some_and(|v| !(0..=MAX_REFRESH_GRACE_SECS).contains(&v))
        {
            return Err(ValidationError::new(
                "refresh_grace_secs",
                "must be between 0 (no grace window) and 300 seconds",
            ));
        }
        if self
            .refresh_grace_uses
            .is_some_and(|v| !(1..=MAX_REFRESH_GRACE_USES).contains(&v))
        {
            return Err(ValidationError::new(
                "refresh_grace_uses",
                "must be between 1 and 100",
            ));
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
    /// OpenID Connect settings: where users may be sent after logout, the browser origins
    /// allowed to call the token endpoints, back-channel logout, the ID token's algorithm.
    pub oidc: ClientOidcSettings,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// A client's browser sign-in settings (OpenID Connect Dynamic Registration's names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOidcSettings {
    /// `post_logout_redirect_uris`: where RP-initiated logout may send the user back.
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins (`scheme://host[:port]`) allowed to call the token, userinfo,
    /// revocation and JWKS endpoints (CORS), beside the server-wide list.
    pub allowed_origins: Vec<String>,
    /// A first-party client (the operator's own app) skips the consent page.
    pub first_party: bool,
    /// `backchannel_logout_uri`: where a signed logout token is posted when a session the
    /// client was issued tokens in ends.
    pub backchannel_logout_uri: Option<String>,
    /// `id_token_signed_response_alg` (RS256 unless asked otherwise, as OIDC requires).
    pub id_token_alg: SigningAlg,
    /// Users signing in for this client must use a second factor (issue 15: `--require-mfa`).
    pub require_mfa: bool,
}

impl Default for ClientOidcSettings {
    fn default() -> Self {
        Self {
            post_logout_redirect_uris: Vec::new(),
            allowed_origins: Vec::new(),
            first_party: false,
            backchannel_logout_uri: None,
            id_token_alg: SigningAlg::RS256,
            require_mfa: false,
        }
    }
}

impl ClientOidcSettings {
    pub fn validate(&self, kind: ClientKind) -> Result<(), ValidationError> {
        for uri in &self.post_logout_redirect_uris {
            check_redirect_uri("post_logout_redirect_uris", uri, kind)?;
        }
        for origin in &self.allowed_origins {
            check_origin(origin)?;
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            check_backchannel_uri(uri)?;
        }
        Ok(())
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn check_origin(origin: &str) -> Result<(), ValidationError> {
    let bad = || {
        ValidationError::new(
            "allowed_origins",
            format!("{origin:?} must be an origin such as https://app.example.com"),
        )
    };
    let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
    let ok_scheme = scheme == "https" || scheme == "http";
    let ok_rest = !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && rest.chars().all(|c| c.is_ascii_graphic());
    if ok_scheme && ok_rest && origin.len() <= 300 {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A back-channel logout URI: absolute http(s), no fragment (OIDC Back-Channel Logout §2.2);
/// plain http only on loopback.
fn check_backchannel_uri(uri: &str) -> Result<(), ValidationError> {
    let bad = |why: &str| ValidationError::new("backchannel_logout_uri", format!("{uri:?} {why}"));
    if uri.len() > 2000 || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must be at most 2000 characters, without spaces"));
    }
    let parsed = url::Url::parse(uri).map_err(|_| bad("is not an absolute URI"))?;
    if uri.contains('#') {
        return Err(bad("must not have a fragment"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if super::redirect_uri::is_loopback_host(&parsed) => Ok(()),
        _ => Err(bad("must be https (plain http only on loopback)")),
    }
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
        if self.name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must not contain control characters",
            ));
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
            check_redirect_uri("redirect_uris", uri, self.kind)?;
        }
        if self.grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty()
        {
            return Err(ValidationError::new(
                "redirect_uris",
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
        self.oidc.validate(self.kind)?;
        self.token_settings.validate()
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        match grant {
            // The second step of a sign-in comes with the grants that answer `mfa_required`:
            // the password, magic-link and token-exchange grants.
            GrantType::Mfa => [
                GrantType::Password,
                GrantType::MagicLink,
                GrantType::TokenExchange,
            ]
            .iter()
            .any(|g| self.grant_types.contains(g)),
            _ => self.grant_types.contains(&grant),
        }
    }

    /// Whether `requested` is one of the client's redirect URIs: character for character, or
    /// (a native app, RFC 8252 §7.3) a loopback redirect that differs only in its port.
    pub fn accepts_redirect_uri(&self, requested: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| matches_redirect_uri(r, requested, self.redirect_use()))
    }

    /// Whether `requested` is one of the client's post-logout redirect URIs (same rules).
    pub fn accepts_post_logout_redirect_uri(&self, requested: &str) -> bool {
        self.oidc
            .post_logout_redirect_uris
            .iter()
            .any(|r| matches_redirect_uri(r, requested, self.redirect_use()))
    }

    fn redirect_use(&self) -> RedirectUse {
        match self.kind {
            ClientKind::Public => RedirectUse::Native,
            ClientKind::Confidential => RedirectUse::Web,
        }
    }

    /// What the client may ask for: its API scopes, plus, with the authorization code grant,
    /// the OpenID Connect scopes (`offline_access` only if it may refresh).
    pub fn requestable_scope(&self) -> Scope {
        if !self.allows_grant(GrantType::AuthorizationCode) {
            return self.scopes.clone();
        }
        let oidc = super::OIDC_SCOPES
            .iter()
            .filter(|t| **t != "offline_access" || self.allows_grant(GrantType::RefreshToken));
        match Scope::from_tokens(oidc) {
            Ok(s) => self.scopes.union(&s),
            Err(_) => self.scopes.clone(),
        }
    }

    /// Whether the browser origin `origin` may call the client-facing endpoints for it.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.oidc.allowed_origins.iter().any(|o| o == origin)
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

    #[test]
    fn a_refresh_grace_window_is_at_most_five_minutes_and_a_hundred_retries() {
        let grace = |secs, uses| ClientTokenSettings {
            refresh_grace_secs: secs,
            refresh_grace_uses: uses,
            ..Default::default()
        };
        for ok in [
            grace(Some(0), None),
            grace(Some(30), Some(1)),
            grace(Some(MAX_REFRESH_GRACE_SECS), Some(MAX_REFRESH_GRACE_USES)),
            grace(None, Some(5)),
        ] {
            assert!(ok.validate().is_ok(), "{ok:?}");
        }
        for (bad, field) in [
            (grace(Some(-1), None), "refresh_grace_secs"),
            (grace(Some(301), None), "refresh_grace_secs"),
            (grace(Some(10), Some(0)), "refresh_grace_uses"),
            (grace(Some(10), Some(101)), "refresh_grace_uses"),
        ] {
            let err = bad.validate().err();
            assert!(
                err.is_some_and(|e| e.to_string().contains(field)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn oidc_settings_refuse_what_browsers_and_databases_would_mangle() {
        let backchannel = |uri: &str| ClientOidcSettings {
            backchannel_logout_uri: Some(uri.into()),
            ..Default::default()
        };
        let origin = |o: &str| ClientOidcSettings {
            allowed_origins: vec![o.into()],
            ..Default::default()
        };
        let ok = |s: ClientOidcSettings| s.validate(ClientKind::Public).is_ok();
        assert!(ok(backchannel("https://a.example/bc")));
        assert!(ok(backchannel("http://127.0.0.1:9/bc")));
        for bad in [
            "http://a.example/bc",
            "https://a.example/bc#x",
            "https://a.example/b\u{0}c",
            "https://a.example/b c",
            "/bc",
        ] {
            assert!(!ok(backchannel(bad)), "{bad}");
        }
        assert!(ok(origin("https://a.example:8443")));
        for bad in [
            "https://a.example/",
            "a.example",
            "ftp://a.example",
            "https://",
        ] {
            assert!(!ok(origin(bad)), "{bad}");
        }
    }
}
