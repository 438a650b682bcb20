//! Signing in with an identity an upstream provider asserted (the federation service found
//! or created its local user): the same refusals as a password sign-in, audited with the
//! provider.

use serde_json::json;

use super::super::audit::{detail, events};
use super::{ctx, AuthMethod, Authenticator, AuthnError, Refusal, SignedIn};
use crate::domain::{ProviderId, RequestOrigin, User};

impl Authenticator {
    /// The user a provider's identity belongs to signs in, unless the account may not sign in
    /// now (disabled; unverified while verification is required). No throttle: the provider
    /// proved the credential, and nothing here can be guessed.
    pub async fn sign_in_federated(
        &self,
        user: User,
        provider: &ProviderId,
        client_id: &str,
        origin: &RequestOrigin,
    ) -> Result<SignedIn, AuthnError> {
        let refused = if !user.is_active {
            Some(Refusal::Disabled)
        } else if self.settings.require_verified_email && !user.email_verified {
            Some(Refusal::EmailNotVerified)
        } else {
            None
        };
        if let Some(refusal) = refused {
            self.audit
                .record(
                    events::LOGIN_FAILED,
                    ctx(Some(&user.id), Some(client_id), origin),
                    detail([
                        ("method", json!("federated")),
                        ("provider", json!(provider.as_str())),
                        ("reason", json!(refusal.as_str())),
                    ]),
                )
                .await;
            return Err(AuthnError::Refused(refusal));
        }
        Ok(SignedIn {
            user,
            methods: vec![AuthMethod::Federated],
            password: None,
            provider: Some(provider.clone()),
            session: None,
            claims: None,
        })
    }
}
