//! Settings, from environment variables only.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// `LATCHKEY_ISSUER`: the identity provider's issuer URL (its `iss`), e.g.
    /// `http://127.0.0.1:8080`. Discovery is fetched from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// `RS_BIND`: where this server listens (`127.0.0.1:8081`).
    pub bind: String,
    /// `RS_CLIENT_ID` / `RS_CLIENT_SECRET`: a confidential client of Latchkey allowed the scope
    /// `latchkey.introspect`, used to read the revocation feed (HTTP Basic).
    pub client_id: String,
    pub client_secret: String,
    /// `RS_AUDIENCE`: the `aud` this API requires (default: the issuer, which is what a token
    /// request without `resource`/`audience` gets when neither the client nor Latchkey names a
    /// default audience).
    pub audience: String,
    /// `RS_ALLOWED_ORIGIN`: the browser origin allowed by CORS (`http://127.0.0.1:5173`);
    /// several may be given, separated by commas.
    pub allowed_origins: Vec<String>,
    /// `RS_REVOCATION_POLL_MS`: how often the revocation feed is polled (2000).
    pub poll_interval: Duration,
    /// `RS_REVOCATION_MAX_STALENESS_SECS`: tokens are refused with 503 when the feed has not
    /// been read for this long (30): the server fails closed.
    pub max_staleness: Duration,
    /// `RS_JWKS_MIN_REFETCH_SECS`: an unknown `kid` refetches the JWKS at most once per this
    /// many seconds (10), so forged `kid`s cannot make us hammer the identity provider.
    pub jwks_min_refetch: Duration,
    /// `RS_LEEWAY_SECS`: clock skew allowed on `exp`/`nbf` (30).
    pub leeway_secs: u64,
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let required = |name: &str| var(name).ok_or_else(|| format!("{name} is required"));
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name} must be a whole number, got {v:?}")),
            }
        };
        let issuer = var("LATCHKEY_ISSUER")
            .unwrap_or_else(|| "http://127.0.0.1:8080".into())
            .trim_end_matches('/')
            .to_owned();
        let audience = var("RS_AUDIENCE").unwrap_or_else(|| issuer.clone());
        Ok(Self {
            bind: var("RS_BIND").unwrap_or_else(|| "127.0.0.1:8081".into()),
            client_id: required("RS_CLIENT_ID")?,
            client_secret: required("RS_CLIENT_SECRET")?,
            audience,
            allowed_origins: var("RS_ALLOWED_ORIGIN")
                .unwrap_or_else(|| "http://127.0.0.1:5173".into())
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            poll_interval: Duration::from_millis(number("RS_REVOCATION_POLL_MS", 2000)?.max(100)),
            max_staleness: Duration::from_secs(number("RS_REVOCATION_MAX_STALENESS_SECS", 30)?),
            jwks_min_refetch: Duration::from_secs(number("RS_JWKS_MIN_REFETCH_SECS", 10)?),
            leeway_secs: number("RS_LEEWAY_SECS", 30)?,
            issuer,
        })
    }
}
