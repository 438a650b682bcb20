//! `[federation]`: the upstream identity providers (`[federation.google]`,
//! `[federation.github]`, any number of `[[federation.oidc]]`). A provider is enabled when its
//! section is present; a section that cannot work stops start-up.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{invalid, is_loopback_host, ConfigError};
use crate::domain::{
    ClaimNames, LinkPolicy, ProviderConfig, ProviderId, ProviderKind, Upstream, RFC_8176_VALUES,
};

const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const GITHUB_AUTHORIZE_URL: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
const GITHUB_API_URL: &str = "https://api.github.com";

/// The providers, in the order the sign-in page shows them (Google, GitHub, then the
/// generic ones as written).
#[derive(Debug, Clone)]
pub struct FederationSettings {
    pub providers: Vec<ProviderConfig>,
    /// The longest any one request to a provider may take (connect, send, answer).
    pub timeout: Duration,
}

/// The default of `federation.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for FederationSettings {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FederationToml {
    #[serde(deserialize_with = "super::sessions::human_duration")]
    timeout: Duration,
    google: Option<OidcToml>,
    github: Option<GithubToml>,
    oidc: Vec<OidcToml>,
}

impl Default for FederationToml {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            google: None,
            github: None,
            oidc: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OidcToml {
    id: Option<String>,
    display_name: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    scopes: Option<Vec<String>>,
    claims: BTreeMap<String, String>,
    extra_audiences: Vec<String>,
    link_existing: Option<String>,
    store_tokens: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GithubToml {
    display_name: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    api_url: Option<String>,
    scopes: Option<Vec<String>>,
    link_existing: Option<String>,
    store_tokens: bool,
}

/// An upstream URL: https, or http on a loopback address (development and tests). No
/// trailing slash.
fn upstream_url(section: &str, key: &str, raw: &str) -> Result<String, ConfigError> {
    let url =
        url::Url::parse(raw).map_err(|e| invalid(format!("{section}.{key}: not a URL ({e})")))?;
    let host = url.host_str().unwrap_or("");
    let ok = match url.scheme() {
        "https" => !host.is_empty(),
        "http" => is_loopback_host(host),
        _ => false,
    };
    if !ok || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{section}.{key}: must be an https URL without query or fragment \
             (http only on a loopback address: 127.0.0.1, [::1], localhost), got {raw}"
        )));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

fn required(section: &str, key: &str, value: Option<String>) -> Result<String, ConfigError> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(invalid(format!("{section}.{key} is required"))),
    }
}

fn secret(section: &str, value: Option<SecretString>) -> Result<SecretString, ConfigError> {
    match value {
        Some(s) if !s.expose_secret().trim().is_empty() => Ok(s),
        _ => Err(invalid(format!("{section}.client_secret is required"))),
    }
}

fn link_policy(section: &str, raw: Option<String>) -> Result<LinkPolicy, ConfigError> {
    match raw {
        None => Ok(LinkPolicy::VerifiedEmail),
        Some(r) => LinkPolicy::parse(&r).ok_or_else(|| {
            invalid(format!(
                "{section}.link_existing must be \"verified_email\" or \"never\", got {r:?}"
            ))
        }),
    }
}

fn scopes(
    section: &str,
    raw: Option<Vec<String>>,
    default: &[&str],
) -> Result<Vec<String>, ConfigError> {
    let scopes = raw.unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect());
    if scopes.iter().any(|s| {
        s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    }) {
        return Err(invalid(format!("{section}.scopes: each scope is one word")));
    }
    Ok(scopes)
}

impl OidcToml {
    fn validate(self, section: &str, kind: ProviderKind) -> Result<ProviderConfig, ConfigError> {
        let id = match kind {
            ProviderKind::Google => {
                if self.id.is_some() {
                    return Err(invalid(format!("{section}.id: the id is \"google\"")));
                }
                ProviderId::from_trusted("google".into())
            }
            _ => {
                let raw = required(section, "id", self.id)?;
                let id = ProviderId::parse(&raw)
                    .map_err(|e| invalid(format!("{section}.id: {}", e.message)))?;
                if matches!(id.as_str(), "google" | "github") {
                    return Err(invalid(format!(
                        "{section}.id: \"{id}\" is reserved for [federation.{id}]"
                    )));
                }
                // The id joins `fed` in ID tokens' `amr`: it must not read as a method.
                if RFC_8176_VALUES.contains(&id.as_str()) {
                    return Err(invalid(format!(
                        "{section}.id: \"{id}\" is an authentication method value (RFC 8176); choose another id"
                    )));
                }
                id
            }
        };
        let issuer = match (kind, self.issuer) {
            (ProviderKind::Google, None) => GOOGLE_ISSUER.to_owned(),
            (_, issuer) => upstream_url(section, "issuer", &required(section, "issuer", issuer)?)?,
        };
        let client_id = required(section, "client_id", self.client_id)?;
        let client_secret = secret(section, self.client_secret)?;
        let scopes = scopes(section, self.scopes, &["openid", "email", "profile"])?;
        if !scopes.iter().any(|s| s == "openid") {
            return Err(invalid(format!("{section}.scopes must include \"openid\"")));
        }
        let mut claims = ClaimNames::default();
        for (key, value) in self.claims {
            let slot = match key.as_str() {
                "email" => &mut claims.email,
                "email_verified" => &mut claims.email_verified,
                "name" => &mut claims.name,
                "picture" => &mut claims.picture,
                other => {
                    return Err(invalid(format!(
                        "{section}.claims: unknown key {other:?} (email, email_verified, name, picture)"
                    )))
                }
            };
            if value.trim().is_empty() {
                return Err(invalid(format!("{section}.claims.{key} is empty")));
            }
            *slot = value;
        }
        let display_name = self.display_name.unwrap_or_else(|| match kind {
            ProviderKind::Google => "Google".into(),
            _ => id.as_str().to_owned(),
        });
        Ok(ProviderConfig {
            id,
            kind,
            display_name,
            client_id,
            client_secret,
            upstream: Upstream::Oidc {
                issuer,
                scopes,
                claims,
                extra_audiences: self.extra_audiences,
            },
            link_existing: link_policy(section, self.link_existing)?,
            store_tokens: self.store_tokens,
        })
    }
}

impl GithubToml {
    fn validate(self) -> Result<ProviderConfig, ConfigError> {
        let section = "federation.github";
        let url = |key: &str, value: Option<String>, default: &str| {
            upstream_url(section, key, value.as_deref().unwrap_or(default))
        };
        Ok(ProviderConfig {
            id: ProviderId::from_trusted("github".into()),
            kind: ProviderKind::GitHub,
            display_name: self.display_name.unwrap_or_else(|| "GitHub".into()),
            client_id: required(section, "client_id", self.client_id)?,
            client_secret: secret(section, self.client_secret)?,
            upstream: Upstream::GitHub {
                authorize_url: url("authorize_url", self.authorize_url, GITHUB_AUTHORIZE_URL)?,
                token_url: url("token_url", self.token_url, GITHUB_TOKEN_URL)?,
                api_url: url("api_url", self.api_url, GITHUB_API_URL)?,
                scopes: scopes(section, self.scopes, &["read:user", "user:email"])?,
            },
            link_existing: link_policy(section, self.link_existing)?,
            store_tokens: self.store_tokens,
        })
    }
}

impl FederationToml {
    pub(super) fn validate(self) -> Result<FederationSettings, ConfigError> {
        if self.timeout < Duration::from_secs(1) || self.timeout > Duration::from_secs(60) {
            return Err(invalid(format!(
                "federation.timeout must be between 1s and 60s, got {}s",
                self.timeout.as_secs_f64()
            )));
        }
        let mut providers = Vec::new();
        if let Some(google) = self.google {
            providers.push(google.validate("federation.google", ProviderKind::Google)?);
        }
        if let Some(github) = self.github {
            providers.push(github.validate()?);
        }
        for (i, oidc) in self.oidc.into_iter().enumerate() {
            providers.push(oidc.validate(&format!("federation.oidc[{i}]"), ProviderKind::Oidc)?);
        }
        let mut ids = HashSet::new();
        for p in &providers {
            if !ids.insert(p.id.as_str().to_owned()) {
                return Err(invalid(format!(
                    "federation: the provider id \"{}\" is used twice",
                    p.id
                )));
            }
        }
        Ok(FederationSettings {
            providers,
            timeout: self.timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::super::Settings;

    fn load(toml: &str) -> Result<Settings, String> {
        let dir = std::env::temp_dir().join(format!("latchkey-fed-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let file = dir.join("latchkey.toml");
        std::fs::write(&file, toml).map_err(|e| e.to_string())?;
        let s = Settings::load(Some(&file), env(&[])).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(dir);
        s
    }

    #[test]
    fn providers_are_enabled_by_their_sections() {
        let s = load(
            "[federation.google]\nclient_id = \"g\"\nclient_secret = \"gs\"\n\
             [federation.github]\nclient_id = \"h\"\nclient_secret = \"hs\"\n\
             [[federation.oidc]]\nid = \"corp\"\ndisplay_name = \"Corp SSO\"\n\
             issuer = \"http://127.0.0.1:9000/\"\nclient_id = \"c\"\nclient_secret = \"cs\"\n\
             link_existing = \"never\"\nclaims = { email = \"mail\" }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = s
            .federation
            .providers
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(ids, ["google", "github", "corp"]);
        assert_eq!(
            s.federation.providers[0].issuer(),
            Some("https://accounts.google.com")
        );
        assert_eq!(
            s.federation.providers[2].issuer(),
            Some("http://127.0.0.1:9000")
        );
        assert!(!format!("{s:?}").contains("gs\""));
    }

    #[test]
    fn a_section_that_cannot_work_stops_start_up() {
        for (toml, says) in [
            ("[federation.google]\nclient_id = \"g\"\n", "client_secret"),
            (
                "[federation.github]\nclient_id = \"h\"\nclient_secret = \"s\"\napi_url = \"http://api.example.com\"\n",
                "api_url",
            ),
            (
                "[[federation.oidc]]\nid = \"corp\"\nissuer = \"ftp://x\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
                "issuer",
            ),
            (
                "[[federation.oidc]]\nid = \"a\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
                 [[federation.oidc]]\nid = \"a\"\nissuer = \"https://b.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
                "used twice",
            ),
            (
                "[[federation.oidc]]\nid = \"google\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
                "reserved",
            ),
            (
                "[federation.google]\nclient_id = \"g\"\nclient_secret = \"s\"\nlink_existing = \"always\"\n",
                "link_existing",
            ),
            (
                "[[federation.oidc]]\nid = \"mfa\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
                "RFC 8176",
            ),
            ("[federation]\ntimeout = \"0s\"\n", "federation.timeout"),
            ("[federation]\ntimeout = \"2m\"\n", "federation.timeout"),
        ] {
            let e = load(toml).err().unwrap_or_default();
            assert!(e.contains(says), "{toml}: {e}");
        }
    }

    #[test]
    fn environment_variables_configure_google_and_github() {
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_FEDERATION_GOOGLE_CLIENT_ID", "g"),
                ("LATCHKEY_FEDERATION_GOOGLE_CLIENT_SECRET", "gs"),
                ("LATCHKEY_FEDERATION_GITHUB_CLIENT_ID", "h"),
                ("LATCHKEY_FEDERATION_GITHUB_CLIENT_SECRET", "hs"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.federation.providers.len(), 2);
    }
}
