use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::audit::{detail, events, AuditContext, AuditLog};
use super::throttle::{Throttle, Throttled};
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::domain::RequestOrigin;

crate::secret_newtype! {
    /// The SHA-256 (hex) of the admin token: an operator-chosen token may be guessable, so
    /// its digest is kept as secret as the token.
    struct AdminTokenDigest;
}

/// The operator's admin API credential, kept only as its SHA-256 digest. Presented tokens
/// are hashed and compared in constant time, so neither timing nor length leaks.
#[derive(Debug)]
pub struct AdminCredential {
    digest: AdminTokenDigest,
}

impl AdminCredential {
    pub fn new(token: &SecretString) -> Self {
        Self {
            digest: AdminTokenDigest::new(sha256_hex(token.expose_secret().as_bytes())),
        }
    }

    pub fn verify(&self, presented: &str) -> bool {
        constant_time_eq(
            sha256_hex(presented.as_bytes()).as_bytes(),
            self.digest.expose_secret().as_bytes(),
        )
    }
}

/// Why an admin-API request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminAuthError {
    /// No token, or a wrong one: `401`.
    #[error("admin authentication failed")]
    Unauthorized,
    /// Too many failures from this network: `429` with `Retry-After`.
    #[error(transparent)]
    Throttled(#[from] Throttled),
}

/// The door of the admin API: checks the credential with a per-network failure limit, and
/// records failures and every admin write in the audit trail.
pub struct AdminGate {
    credential: AdminCredential,
    throttle: Arc<Throttle>,
    audit: Arc<AuditLog>,
}

impl std::fmt::Debug for AdminGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminGate").finish_non_exhaustive()
    }
}

impl AdminGate {
    pub fn new(credential: AdminCredential, throttle: Arc<Throttle>, audit: Arc<AuditLog>) -> Self {
        Self {
            credential,
            throttle,
            audit,
        }
    }

    /// Admits a request presenting `presented` (the bearer token, if any) from `origin`.
    /// While its network is over the failure limit, even the right token is refused.
    pub async fn authenticate(
        &self,
        presented: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<(), AdminAuthError> {
        let attempt = match self.throttle.check_admin(origin.ip).await {
            Ok(a) => a,
            Err(t) => {
                self.audit
                    .record(
                        events::THROTTLED,
                        AuditContext {
                            origin: Some(origin),
                            ..Default::default()
                        },
                        detail([
                            ("retry_after_secs", json!(t.retry_after_secs)),
                            ("surface", json!("admin")),
                        ]),
                    )
                    .await;
                return Err(t.into());
            }
        };
        match presented {
            Some(p) if self.credential.verify(p) => {
                self.throttle.admin_succeeded(attempt).await;
                Ok(())
            }
            _ => {
                let reason = if presented.is_some() {
                    "wrong_token"
                } else {
                    "missing_token"
                };
                self.audit
                    .record(
                        events::ADMIN_AUTH_FAILED,
                        AuditContext {
                            origin: Some(origin),
                            ..Default::default()
                        },
                        detail([("reason", json!(reason))]),
                    )
                    .await;
                Err(AdminAuthError::Unauthorized)
            }
        }
    }

    /// Records an admin write (`event`) with what it changed.
    pub async fn record_write(
        &self,
        event: &'static str,
        origin: &RequestOrigin,
        changed: serde_json::Map<String, serde_json::Value>,
    ) {
        self.audit
            .record(
                event,
                AuditContext {
                    origin: Some(origin),
                    ..Default::default()
                },
                changed,
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_credential_prints_neither_the_token_nor_its_digest() {
        let credential = AdminCredential::new(&SecretString::from("hunter2-admin".to_owned()));
        assert!(credential.verify("hunter2-admin"));
        assert!(!credential.verify("hunter2"));
        let printed = format!("{credential:?}");
        let digest = sha256_hex(b"hunter2-admin");
        assert!(
            !printed.contains("hunter2") && !printed.contains(&digest),
            "{printed}"
        );
        assert_eq!(
            printed,
            "AdminCredential { digest: AdminTokenDigest([redacted]) }"
        );
    }
}
