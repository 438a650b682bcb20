//! Password credentials: signing in with one, confirming a signed-in user's, and checking
//! one for the forced password change.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Map;
use tracing::info;

use super::super::audit::events;
use super::outcome::unexpected;
use super::{ctx, AuthMethod, Authenticator, AuthnError, Confirmation, SignedIn, VerifiedPassword};
use crate::crypto::Verification;
use crate::domain::{ClientId, Email, LoginName, RequestOrigin, User};

impl Authenticator {
    /// Signs in with a name and a password for `client_id` (the password grant). Unknown
    /// names are verified against a dummy hash: the same work, the same answer. Right
    /// credentials for an account that may not sign in now are `Refused` (and recorded).
    /// Once tokens are issued, `record_sign_in`.
    pub async fn sign_in_with_password(
        &self,
        name: &LoginName,
        password: SecretString,
        client_id: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<SignedIn, AuthnError> {
        let client_id = client_id.as_str();
        if password.expose_secret().len() > self.settings.password_max_length {
            return Err(AuthnError::InvalidCredentials);
        }
        // Throttled by the name as typed (normalised), whether or not it names a user.
        let Some(account) = name.throttle_key() else {
            return Err(AuthnError::InvalidCredentials);
        };
        // Admitted (and counted against the IP) before the hash is checked; held until the
        // outcome is counted: guesses for one account and one network are bounded in flight.
        let attempt = self.admit(account, origin).await?;
        let user = match name.email() {
            Some(email) => self.users.find_by_email(email).await?,
            None => None,
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let verification = self
            .hasher
            .verify(stored, password)
            .await
            .map_err(unexpected)?;
        let (user, rehashed) = match (user, verification) {
            (Some(user), Verification::Valid { rehashed }) => (user, rehashed),
            (user, _) => {
                info!(client_id, "login failed");
                self.failed(
                    attempt,
                    account,
                    user.as_ref().map(|u| &u.id),
                    Some(client_id),
                    origin,
                    AuthMethod::Password.as_str(),
                )
                .await;
                return Err(AuthnError::InvalidCredentials);
            }
        };
        // The password was right: the pair's failures are forgiven whatever follows.
        self.accepted(attempt, account, origin).await;
        if let Some(refusal) = self.refusal_of(&user) {
            self.refused(&user.id, client_id, origin, refusal).await;
            return Err(AuthnError::Refused(refusal));
        }
        let password = user
            .password_hash
            .clone()
            .map(|hash| VerifiedPassword { hash, rehashed });
        Ok(SignedIn {
            user,
            methods: vec![AuthMethod::Password],
            password,
            provider: None,
            session: None,
            claims: None,
        })
    }

    /// Confirms a signed-in user's current password (before a sensitive change), throttled
    /// like a sign-in.
    pub async fn confirm_password(
        &self,
        user: &User,
        password: SecretString,
        client_id: Option<&str>,
        origin: &RequestOrigin,
        purpose: Confirmation,
    ) -> Result<(), AuthnError> {
        // Throttled per account: by its address, or by its id when it has none.
        let account = user.email.as_ref().map_or(user.id.as_str(), Email::as_str);
        let attempt = self.admit(account, origin).await?;
        let method = purpose.as_str();
        if password.expose_secret().len() > self.settings.password_max_length {
            self.failed(attempt, account, Some(&user.id), client_id, origin, method)
                .await;
            return Err(AuthnError::InvalidCredentials);
        }
        let verification = self
            .hasher
            .verify(user.password_hash.clone(), password)
            .await
            .map_err(unexpected)?;
        match verification {
            Verification::Valid { .. } => {
                self.accepted(attempt, account, origin).await;
                Ok(())
            }
            Verification::Invalid => {
                self.failed(attempt, account, Some(&user.id), client_id, origin, method)
                    .await;
                if purpose == Confirmation::PasswordChange {
                    self.audit
                        .record(
                            events::PASSWORD_CHANGE_FAILED,
                            ctx(Some(&user.id), client_id, origin),
                            Map::new(),
                        )
                        .await;
                }
                Err(AuthnError::InvalidCredentials)
            }
        }
    }

    /// Checks an address and password outside a sign-in (the forced password change): an
    /// inactive account fails like a wrong password. Throttled like a sign-in.
    pub async fn check_credentials(
        &self,
        email: &Email,
        password: SecretString,
        origin: &RequestOrigin,
    ) -> Result<User, AuthnError> {
        if password.expose_secret().len() > self.settings.password_max_length {
            return Err(AuthnError::InvalidCredentials);
        }
        let account = email.as_str();
        let attempt = self.admit(account, origin).await?;
        let user = self.users.find_by_email(email).await?;
        let verification = self
            .hasher
            .verify(
                user.as_ref().and_then(|u| u.password_hash.clone()),
                password,
            )
            .await
            .map_err(unexpected)?;
        match (user, verification) {
            (Some(u), Verification::Valid { .. }) if u.is_active => {
                self.accepted(attempt, account, origin).await;
                Ok(u)
            }
            (user, _) => {
                self.failed(
                    attempt,
                    account,
                    user.as_ref().map(|u| &u.id),
                    None,
                    origin,
                    AuthMethod::Password.as_str(),
                )
                .await;
                Err(AuthnError::InvalidCredentials)
            }
        }
    }
}
