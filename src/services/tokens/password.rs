//! The resource-owner password grant (RFC 6749 §4.3).

use secrecy::SecretString;

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
        let issued = self
            .issue_for_user(client, &signed_in, scope, audience)
            .await?;
        self.authn
            .record_sign_in(&signed_in, client.id.as_str(), origin)
            .await;
        Ok(issued)
    }
}
