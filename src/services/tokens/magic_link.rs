//! The magic-link grant (`urn:latchkey:params:oauth:grant-type:magic-link`).

use super::super::accounts::{AccountError, MagicCredential};
use super::{IssuedTokens, TokenError, TokenService};
use crate::domain::{Client, RequestOrigin, Scope};

/// The token endpoint's answers to a failed magic-link grant.
fn magic_link_error(e: AccountError) -> TokenError {
    match e {
        AccountError::Throttled(t) => TokenError::Throttled(t.retry_after_secs),
        AccountError::MagicLinksDisabled => {
            TokenError::UnsupportedGrantType("magic-link sign-in is not enabled".into())
        }
        AccountError::Unexpected(cause) => TokenError::Unexpected(cause),
        AccountError::Unavailable(d) => TokenError::Unavailable(d),
        _ => {
            TokenError::InvalidGrant("the link or code is invalid, expired or already used".into())
        }
    }
}

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
        let user = self
            .accounts
            .redeem_magic_link(credential, &client.id, origin)
            .await
            .map_err(magic_link_error)?;
        if user.must_change_password {
            return Err(TokenError::PasswordChangeRequired);
        }
        self.issue_for_user(client, &user, None, scope, audience)
            .await
    }
}
