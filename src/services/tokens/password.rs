//! The resource-owner password grant (RFC 6749 §4.3).

use secrecy::SecretString;

use super::super::authn::SecondFactor;
use super::{IssuedTokens, TokenError, TokenService};
use crate::domain::{Client, LoginName, RequestOrigin, Scope};

impl TokenService {
    /// Signs in through the login pipeline, issues tokens, then records the sign-in.
    pub(super) async fn password_grant(
        &self,
        client: &Client,
        username: &LoginName,
        password: SecretString,
        scope: Scope,
        audience: String,
        origin: &RequestOrigin,
    ) -> Result<IssuedTokens, TokenError> {
        let signed_in = self
            .authn
            .sign_in_with_password(username, password, &client.id, origin)
            .await?;
        // A user with a second factor completes the sign-in with the MFA grant. The
        // password was right, so this tells nothing to someone who did not know it.
        if self.authn.has_second_factor(&signed_in.user.id).await? {
            let mfa_token = self.authn.mfa_token(&signed_in, &client.id, origin).await?;
            return Err(TokenError::MfaRequired(mfa_token));
        }
        let issued = self
            .issue_for_user(client, &signed_in, scope, audience)
            .await?;
        self.authn
            .record_sign_in(&signed_in, client.id.as_str(), origin)
            .await;
        Ok(issued)
    }

    /// The MFA grant: the second step of a password sign-in (`mfa_token` and a second
    /// factor), then tokens as the password grant issues them.
    pub(super) async fn mfa_grant(
        &self,
        client: &Client,
        mfa_token: SecretString,
        factor: SecondFactor,
        scope: Scope,
        audience: String,
        origin: &RequestOrigin,
    ) -> Result<IssuedTokens, TokenError> {
        let signed_in = self
            .authn
            .sign_in_with_mfa_token(&mfa_token, factor, &client.id, origin)
            .await?;
        let issued = self
            .issue_for_user(client, &signed_in, scope, audience)
            .await?;
        self.authn
            .record_sign_in(&signed_in, client.id.as_str(), origin)
            .await;
        Ok(issued)
    }
}
