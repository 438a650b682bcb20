//! What the admin use cases take (inputs) and return (views, serialised as the admin API's
//! JSON and printed by the CLI).

use secrecy::SecretString;

use crate::clock::rfc3339;
use crate::domain::{Client, ClientKind, ClientTokenSettings, Role, User};

#[derive(Debug, Clone, serde::Serialize)]
pub struct UserView {
    pub id: String,
    /// `None` (JSON `null`) for a user who signed up through a provider that gave no
    /// verified address.
    pub email: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub is_active: bool,
    pub email_verified: bool,
    pub has_password: bool,
    pub must_change_password: bool,
    pub roles: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
}

impl UserView {
    pub(super) fn new(u: User, roles: Vec<String>) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.map(|e| e.into_string()),
            username: u.username,
            display_name: u.display_name,
            is_active: u.is_active,
            email_verified: u.email_verified,
            has_password: u.password_hash.is_some(),
            must_change_password: u.must_change_password,
            roles,
            attributes: u.attributes,
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            last_login_at: u.last_login_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    /// Its holders must sign in with a second factor (issue 15).
    pub require_mfa: bool,
    pub created_at: String,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        Self {
            id: r.id.into_string(),
            name: r.name.to_string(),
            description: r.description,
            permissions: r.permissions.iter().map(ToString::to_string).collect(),
            require_mfa: r.require_mfa,
            created_at: rfc3339(r.created_at),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub kind: &'static str,
    pub enabled: bool,
    pub grant_types: Vec<&'static str>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_idle_ttl: Option<i64>,
    pub refresh_absolute_ttl: Option<i64>,
    /// The refresh grace window (seconds; `null`: the server default, 0: none) and the
    /// retries it admits (`null`: the server default).
    pub refresh_grace_secs: Option<i64>,
    pub refresh_grace_uses: Option<i64>,
    /// Where RP-initiated logout may send the user back (OIDC Dynamic Registration's name).
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins allowed to call the client-facing endpoints for this client (CORS).
    pub allowed_origins: Vec<String>,
    /// The operator's own app: no consent page.
    pub first_party: bool,
    /// Users signing in for it must use a second factor (issue 15).
    pub require_mfa: bool,
    pub backchannel_logout_uri: Option<String>,
    /// The ID token's signing algorithm (OIDC Dynamic Registration's name).
    pub id_token_signed_response_alg: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.id.to_string(),
            name: c.name.clone(),
            kind: c.kind.as_str(),
            enabled: c.enabled,
            grant_types: c.grant_types.iter().map(|g| g.as_str()).collect(),
            scopes: c.scopes.iter().map(str::to_owned).collect(),
            redirect_uris: c.redirect_uris.clone(),
            audiences: c.audiences.iter().map(|a| a.as_str().to_owned()).collect(),
            default_audience: c.default_audience.as_ref().map(|a| a.as_str().to_owned()),
            access_token_ttl: c.token_settings.access_token_ttl,
            refresh_idle_ttl: c.token_settings.refresh_idle_ttl,
            refresh_absolute_ttl: c.token_settings.refresh_absolute_ttl,
            refresh_grace_secs: c.token_settings.refresh_grace_secs,
            refresh_grace_uses: c.token_settings.refresh_grace_uses,
            post_logout_redirect_uris: c.oidc.post_logout_redirect_uris.clone(),
            allowed_origins: c.oidc.allowed_origins.clone(),
            first_party: c.oidc.first_party,
            require_mfa: c.oidc.require_mfa,
            backchannel_logout_uri: c.oidc.backchannel_logout_uri.clone(),
            id_token_signed_response_alg: c.oidc.id_token_alg.as_str(),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// A client as created: the secret is shown this once and never stored in clear.
#[derive(serde::Serialize)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

pub struct NewUserInput {
    pub email: String,
    pub password: Option<SecretString>,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    pub active: bool,
    pub email_verified: bool,
    pub attributes: Option<serde_json::Value>,
}

#[derive(Default)]
pub struct UserUpdate {
    pub active: Option<bool>,
    pub email_verified: Option<bool>,
    pub display_name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub attributes: Option<serde_json::Value>,
    /// The user may sign in only to change the password (`password_change_required`).
    pub must_change_password: Option<bool>,
    /// A new address; unless `email_verified` is given too, it counts as not verified.
    pub email: Option<String>,
}

pub struct NewClientInput {
    pub client_id: Option<String>,
    pub name: String,
    pub kind: ClientKind,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub token_settings: ClientTokenSettings,
}

/// A client's browser sign-in settings as the operator gives them at registration (CLI flags,
/// the admin API's body); checked by the service. `Default`: none of them (RS256 ID tokens).
#[derive(Debug, Clone, Default)]
pub struct ClientOidcInput {
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub first_party: bool,
    /// Users signing in for it must use a second factor.
    pub require_mfa: bool,
    pub backchannel_logout_uri: Option<String>,
    /// RS256, ES256 or EdDSA; `None`: RS256.
    pub id_token_alg: Option<String>,
}

/// A change to a registered client: `None` leaves a setting alone, a list replaces the whole
/// list, `Some(None)` clears an optional setting (a lifetime then follows the server default).
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    pub name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub default_audience: Option<Option<String>>,
    pub access_token_ttl: Option<Option<i64>>,
    pub refresh_idle_ttl: Option<Option<i64>>,
    pub refresh_absolute_ttl: Option<Option<i64>>,
    pub refresh_grace_secs: Option<Option<i64>>,
    pub refresh_grace_uses: Option<Option<i64>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub require_mfa: Option<bool>,
    pub backchannel_logout_uri: Option<Option<String>>,
    pub id_token_alg: Option<String>,
}

impl ClientUpdate {
    /// The names of the settings this update touches (the admin API's names), for the audit
    /// trail.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("grant_types", self.grant_types.is_some()),
            ("scopes", self.scopes.is_some()),
            ("redirect_uris", self.redirect_uris.is_some()),
            ("audiences", self.audiences.is_some()),
            ("default_audience", self.default_audience.is_some()),
            ("access_token_ttl", self.access_token_ttl.is_some()),
            ("refresh_idle_ttl", self.refresh_idle_ttl.is_some()),
            ("refresh_absolute_ttl", self.refresh_absolute_ttl.is_some()),
            ("refresh_grace_secs", self.refresh_grace_secs.is_some()),
            ("refresh_grace_uses", self.refresh_grace_uses.is_some()),
            (
                "post_logout_redirect_uris",
                self.post_logout_redirect_uris.is_some(),
            ),
            ("allowed_origins", self.allowed_origins.is_some()),
            ("first_party", self.first_party.is_some()),
            ("require_mfa", self.require_mfa.is_some()),
            (
                "backchannel_logout_uri",
                self.backchannel_logout_uri.is_some(),
            ),
            ("id_token_signed_response_alg", self.id_token_alg.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}
