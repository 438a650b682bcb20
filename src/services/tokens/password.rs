//! The resource-owner password grant (RFC 6749 §4.3).

use secrecy::SecretString;

use super::super::authn::{SecondFactor, SecondStep, SignedIn};
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
        self.second_step(client, &signed_in, origin).await?;
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
        if signed_in.session.is_some() {
            // A step-up's token belongs to a browser session, not to this grant.
            return Err(TokenError::InvalidGrant(
                "the mfa_token is invalid, expired, used, or for another client".into(),
            ));
        }
        let issued = self
            .issue_for_user(client, &signed_in, scope, audience)
            .await?;
        self.authn
            .record_sign_in(&signed_in, client.id.as_str(), origin)
            .await;
        Ok(issued)
    }

    /// After the first factor at the token endpoint (issue 15): a user with a second factor
    /// gets `mfa_required` and an `mfa_token` for the MFA grant; a user a policy covers (the
    /// server's, a role's, the client's) who has none gets `mfa_enrollment_required` once the
    /// grace period is over (within it, tokens as before). Tokens never skip either.
    pub(super) async fn second_step(
        &self,
        client: &Client,
        signed_in: &SignedIn,
        origin: &RequestOrigin,
    ) -> Result<(), TokenError> {
        match self
            .authn
            .second_step(signed_in, client.oidc.require_mfa)
            .await?
        {
            SecondStep::Done | SecondStep::Enrol { may_skip: true } => Ok(()),
            SecondStep::Verify => {
                let mfa_token = self.authn.mfa_token(signed_in, &client.id, origin).await?;
                Err(TokenError::MfaRequired(mfa_token))
            }
            SecondStep::Enrol { may_skip: false } => Err(TokenError::MfaEnrollmentRequired),
        }
    }
}
