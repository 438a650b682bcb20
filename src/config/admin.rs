//! `[admin]`: the admin HTTP API.

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{invalid, ConfigError};

/// The admin HTTP API (`/admin/v1/...`): disabled (404) unless a token is configured.
#[derive(Debug, Clone, Default)]
pub struct AdminSettings {
    /// The bearer token for the admin API; a high-entropy secret of at least 32 characters.
    pub token: Option<SecretString>,
    /// A listener of its own for the admin API (e.g. on an operator network); the public
    /// listener then answers 404 on admin paths.
    pub bind: Option<SocketAddr>,
}

/// `[admin]` as written; `validate()` makes it an `AdminSettings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct AdminToml {
    token: Option<SecretString>,
    /// `host:port`.
    bind: Option<String>,
}

impl AdminToml {
    /// The admin credential and the admin listener (which must not be the public one).
    pub(super) fn validate(self, server_bind: SocketAddr) -> Result<AdminSettings, ConfigError> {
        if let Some(token) = &self.token {
            if token.expose_secret().chars().count() < 32 {
                return Err(invalid(
                    "admin.token (LATCHKEY_ADMIN_TOKEN) must be at least 32 characters; generate one with `openssl rand -base64 32`",
                ));
            }
        }
        let bind = match &self.bind {
            None => None,
            Some(bind) => {
                let Ok(addr) = bind.parse::<SocketAddr>() else {
                    return Err(invalid(format!(
                        "admin.bind (LATCHKEY_ADMIN_BIND) must be host:port (an IP address and a \
                         port), got {bind:?}"
                    )));
                };
                if self.token.is_none() {
                    return Err(invalid(
                        "admin.bind (LATCHKEY_ADMIN_BIND) needs admin.token (LATCHKEY_ADMIN_TOKEN): \
                         without a token the admin API is off",
                    ));
                }
                if addr.port() != 0 && server_bind == addr {
                    return Err(invalid(
                        "admin.bind must differ from server.bind: the admin API gets a listener \
                         of its own",
                    ));
                }
                Some(addr)
            }
        };
        Ok(AdminSettings {
            token: self.token,
            bind,
        })
    }
}
