//! The client-credentials grant (RFC 6749 §4.4).

use super::{IssuedTokens, Subject, TokenError, TokenService};
use crate::domain::{Audience, Client, ClientKind, Scope};

impl TokenService {
    /// The client-credentials grant: a token for a confidential client itself.
    pub(super) fn client_credentials_grant(
        &self,
        client: &Client,
        requested_scope: Option<Scope>,
        requested_audience: Option<Audience>,
    ) -> Result<IssuedTokens, TokenError> {
        if client.kind != ClientKind::Confidential {
            return Err(TokenError::UnauthorizedClient(
                "client_credentials needs a confidential client".into(),
            ));
        }
        let scope = self.client_scope(client, requested_scope)?;
        let audience = self.audience_for(client, requested_audience)?;
        let now = self.clock.now();
        let (access_token, expires_in) = self.sign_access_token(
            client,
            Subject {
                sub: client.id.as_str(),
                user: None,
                sid: None,
            },
            &scope,
            &audience,
            now,
        )?;
        Ok(IssuedTokens {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: None,
            id_token: None,
            scope: scope.to_wire(),
            issued_token_type: None,
        })
    }
}
