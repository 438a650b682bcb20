//! The magic-link grant (`urn:latchkey:params:oauth:grant-type:magic-link`).

use super::super::authn::MagicCredential;
use super::{IssuedTokens, TokenError, TokenService};
use crate::domain::{Client, RequestOrigin, Scope};

impl TokenService {
    /// The magic-link grant: the link or code is redeemed, then tokens are issued to its user.
    pub(super) async fn magic_link_grant(
        &self,
        client: &Client,
        credential: MagicCredential,
        scope: Scope,
        audience: String,
        origin: &RequestOrigin,
    ) -> Result<IssuedTokens, TokenError> {
        let signed_in = self
            .authn
            .redeem_magic_link(credential, &client.id, origin)
            .await?;
        // A user with a second factor completes the sign-in with the MFA grant.
        self.second_step(client, &signed_in, origin).await?;
        self.issue_for_user(client, &signed_in, scope, audience)
            .await
    }
}
