//! The resource-owner password grant (RFC 6749 §4.3).

use secrecy::{ExposeSecret, SecretString};
use tracing::info;

use super::{IssuedTokens, PasswordLogin, TokenError, TokenService};
use crate::crypto::Verification;
use crate::domain::{Client, Email, RequestOrigin, Scope};

const INVALID_CREDENTIALS: &str = "invalid username or password";
/// Longer usernames are refused before any work (an email is at most 254 characters).
const MAX_USERNAME_LEN: usize = 320;

impl TokenService {
    pub(super) async fn password_grant(
        &self,
        client: &Client,
        username: &str,
        password: SecretString,
        scope: Scope,
        audience: String,
        origin: &RequestOrigin,
    ) -> Result<IssuedTokens, TokenError> {
        if password.expose_secret().len() > self.settings.password_max_length
            || username.len() > MAX_USERNAME_LEN
        {
            return Err(TokenError::InvalidGrant(INVALID_CREDENTIALS.into()));
        }
        let email = Email::parse(username).ok();
        // Throttled by the identifier as typed (normalised), whether or not it names a user.
        let account = email
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .unwrap_or_else(|| username.trim().to_lowercase());
        // Admitted (and counted against the IP) before the hash is checked; held until the
        // outcome is counted: guesses for one account and one network are bounded in flight.
        let attempt = self
            .accounts
            .check_login(&account, origin)
            .await
            .map_err(|t| TokenError::Throttled(t.retry_after_secs))?;
        let user = match &email {
            Some(email) => self.users.find_by_email(email.as_str()).await?,
            None => None,
        };
        // Unknown users are verified against a dummy hash: the same work, the same answer.
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let verification = self
            .hasher
            .verify(stored, password)
            .await
            .map_err(|e| TokenError::Unexpected(e.into()))?;
        let (user, rehashed) = match (user, verification) {
            (Some(user), Verification::Valid { rehashed }) => (user, rehashed),
            (user, _) => {
                info!(client_id = client.id.as_str(), "login failed");
                self.accounts
                    .login_failed(
                        attempt,
                        &account,
                        user.as_ref().map(|u| &u.id),
                        client.id.as_str(),
                        origin,
                        "password",
                    )
                    .await;
                return Err(TokenError::InvalidGrant(INVALID_CREDENTIALS.into()));
            }
        };
        // The password was right: the pair's failures are forgiven whatever follows.
        self.accounts
            .credentials_accepted(attempt, &account, origin)
            .await;
        let refused = if !user.is_active {
            Some((
                "disabled",
                TokenError::InvalidGrant("the account is disabled".into()),
            ))
        } else if user.must_change_password {
            Some((
                "password_change_required",
                TokenError::PasswordChangeRequired,
            ))
        } else if self.settings.require_verified_email && !user.email_verified {
            Some(("email_not_verified", TokenError::EmailNotVerified))
        } else {
            None
        };
        if let Some((reason, e)) = refused {
            self.accounts
                .login_refused(&user.id, client.id.as_str(), origin, reason)
                .await;
            return Err(e);
        }
        let issued = self
            .issue_for_user(
                client,
                &user,
                user.password_hash
                    .as_deref()
                    .map(|verified_hash| PasswordLogin {
                        verified_hash,
                        rehashed: rehashed.as_deref(),
                    }),
                scope,
                audience,
            )
            .await?;
        self.accounts
            .login_succeeded(&user.id, client.id.as_str(), origin, "password")
            .await;
        Ok(issued)
    }
}
