//! `[admin]`: the admin HTTP API.

use secrecy::SecretString;
use serde::Deserialize;

/// The admin HTTP API (`/admin/v1/...`): disabled (404) unless a token is configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// The bearer token for the admin API; a high-entropy secret of at least 32 characters.
    pub token: Option<SecretString>,
    /// A listener of its own for the admin API (`host:port`, e.g. on an operator network);
    /// the public listener then answers 404 on admin paths.
    pub bind: Option<String>,
}
