//! RFC 8693 token exchange for native apps: an ID token a provider's SDK issued to the app
//! (Google on Android and iOS, or a configured OpenID Connect provider) is traded for
//! Latchkey's own tokens. The token is checked and accepted once by the federation service,
//! the linking rules decide the user, and the login pipeline's refusals apply.

use secrecy::SecretString;

use super::super::federation::{FederationError, Resolution, UpstreamError};
use super::{IssuedTokens, TokenError, TokenService};
use crate::domain::{Client, RequestOrigin, Scope};

/// RFC 8693 §3: the token types this grant knows.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// What one exchange carries besides the client, scope and audience.
pub(super) struct Exchange {
    pub subject_token: SecretString,
    pub subject_token_type: String,
    pub requested_token_type: Option<String>,
    pub nonce: Option<String>,
}

impl From<FederationError> for TokenError {
    fn from(e: FederationError) -> Self {
        use FederationError as E;
        match e {
            E::Upstream(UpstreamError::Unavailable(_)) => {
                TokenError::Unavailable("the identity provider cannot be reached".into())
            }
            E::Upstream(UpstreamError::InvalidToken(why)) => {
                TokenError::InvalidGrant(format!("the subject token is not valid: {why}"))
            }
            E::Upstream(UpstreamError::UnknownProvider | UpstreamError::Refused(_))
            | E::UnknownProvider => TokenError::InvalidGrant(
                "the subject token was not issued by a configured provider".into(),
            ),
            E::TokenReplayed => {
                TokenError::InvalidGrant("the subject token was exchanged already".into())
            }
            E::SignupClosed => TokenError::InvalidGrant(
                "no account is linked to this identity, and sign-up is closed".into(),
            ),
            E::InviteRequired => TokenError::InvalidGrant(
                "no account is linked to this identity, and sign-up needs an invitation".into(),
            ),
            E::InvitationInvalid | E::InvitationMismatch => {
                TokenError::InvalidGrant("the invitation cannot be used".into())
            }
            E::NoVerifiedEmail => TokenError::InvalidGrant(
                "the provider gave no verified email address to create an account with".into(),
            ),
            E::LinkedElsewhere => {
                TokenError::InvalidGrant("this identity is linked to another account".into())
            }
            E::StateMismatch | E::StateReplayed | E::Denied(_) | E::ProofFailed => {
                TokenError::InvalidGrant("the subject token cannot be used".into())
            }
            E::Throttled(t) => TokenError::RateLimited(t.retry_after_secs),
            E::Unavailable(_) => TokenError::Unavailable("storage unavailable".into()),
            E::Unexpected(cause) => TokenError::Unexpected(cause),
        }
    }
}

impl TokenService {
    /// `urn:ietf:params:oauth:grant-type:token-exchange` with an ID token as the subject.
    pub(super) async fn token_exchange_grant(
        &self,
        client: &Client,
        exchange: Exchange,
        scope: Scope,
        audience: String,
        origin: &RequestOrigin,
    ) -> Result<IssuedTokens, TokenError> {
        if exchange.subject_token_type != ID_TOKEN_TYPE {
            return Err(TokenError::InvalidRequest(format!(
                "subject_token_type must be {ID_TOKEN_TYPE}"
            )));
        }
        if let Some(t) = &exchange.requested_token_type {
            if t != ACCESS_TOKEN_TYPE {
                return Err(TokenError::InvalidRequest(format!(
                    "requested_token_type must be {ACCESS_TOKEN_TYPE}"
                )));
            }
        }
        if exchange
            .nonce
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.len() > 512)
        {
            return Err(TokenError::InvalidRequest("nonce is malformed".into()));
        }
        let federation = self.federation.as_ref().ok_or_else(|| {
            TokenError::UnsupportedGrantType("federated sign-in is not configured".into())
        })?;
        let identity = federation
            .verify_native(
                &exchange.subject_token,
                exchange.nonce.as_deref(),
                client.id.as_str(),
                origin,
            )
            .await?;
        let user = match federation.resolve(&identity, None, origin).await? {
            Resolution::SignIn { user, .. } => user,
            Resolution::NeedsProof(_) => {
                return Err(TokenError::InvalidGrant(
                    "an account with this email address exists but is not linked to this identity: sign in to it on the hosted pages and link the identity first".into(),
                ))
            }
        };
        let signed_in = self
            .authn
            .sign_in_federated(user, &identity.provider, client.id.as_str(), origin)
            .await?;
        // As after a password: `mfa_required` for a user with a second factor (unless
        // `mfa.after_federation` is off and no policy covers them), then the MFA grant.
        self.second_step(client, &signed_in, origin).await?;
        let mut issued = self
            .issue_for_user(client, &signed_in, scope, audience)
            .await?;
        issued.issued_token_type = Some(ACCESS_TOKEN_TYPE);
        self.authn
            .record_sign_in(&signed_in, client.id.as_str(), origin)
            .await;
        Ok(issued)
    }
}
