//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6, OIDC Core §3.1.3): a code
//! issued by the authorization endpoint, used once, by the client it was issued to, with the
//! same redirect URI and the PKCE verifier of its challenge, while the session it was issued
//! in lasts. A second use revokes what the first issued.

use secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

use super::id_token::SignInFacts;
use super::{IssuedTokens, Subject, TokenError, TokenService};
use crate::crypto::{lookup_hash, pkce_s256_matches};
use crate::domain::{Audience, Client, CodeRedemption, CodeUse, FamilyId, FamilySignIn, GrantType};

impl TokenService {
    pub(super) async fn authorization_code_grant(
        &self,
        client: &Client,
        code: SecretString,
        redirect_uri: Option<String>,
        code_verifier: Option<SecretString>,
    ) -> Result<IssuedTokens, TokenError> {
        let bad = || {
            TokenError::InvalidGrant(
                "the authorization code is invalid, expired or already used".into(),
            )
        };
        let Some(hash) = lookup_hash(code.expose_secret()) else {
            return Err(bad());
        };
        let now = self.clock.now();
        let ttl = self.access_token_ttl(client);
        let redemption = CodeRedemption {
            family_id: client
                .allows_grant(GrantType::RefreshToken)
                .then(FamilyId::generate),
            access_jti: uuid::Uuid::new_v4().to_string(),
            access_expires_at: now + ttl,
        };
        let code = match self.codes.redeem(&hash, &redemption, now).await? {
            CodeUse::Redeemed(code) => code,
            CodeUse::Unknown => return Err(bad()),
            CodeUse::Replayed { client_id, first } => {
                // A code used twice has leaked, whoever presents it the second time (RFC 6749
                // §4.1.2, §10.5): what its first use issued is revoked.
                warn!(
                    client_id = client_id.as_str(),
                    presented_by = client.id.as_str(),
                    "authorization code used twice: revoking what its first use issued"
                );
                self.revocations
                    .revoke_code_redemption(&first)
                    .await
                    .map_err(|e| TokenError::Unexpected(e.into()))?;
                return Err(bad());
            }
        };
        if code.client_id != client.id {
            return Err(bad());
        }
        let redirect_ok = match redirect_uri.as_deref() {
            Some(uri) => uri == code.redirect_uri,
            // OAuth 2.0 lets a client leave it out when it had left it out of the request,
            // which is only possible with a single registered URI.
            None => client.redirect_uris == [code.redirect_uri.clone()],
        };
        if !redirect_ok {
            return Err(TokenError::InvalidGrant(
                "redirect_uri is not the one the code was issued for".into(),
            ));
        }
        match (&code.code_challenge, &code_verifier) {
            (Some(challenge), Some(verifier)) => {
                if !pkce_s256_matches(verifier.expose_secret(), challenge) {
                    return Err(TokenError::InvalidGrant(
                        "code_verifier does not match the code_challenge".into(),
                    ));
                }
            }
            (Some(_), None) => {
                return Err(TokenError::InvalidGrant("code_verifier is missing".into()))
            }
            (None, Some(_)) => {
                return Err(TokenError::InvalidGrant(
                    "the authorization request had no code_challenge".into(),
                ))
            }
            (None, None) => {}
        }
        let (user, claims) = self
            .users
            .find_with_claims(&code.user_id)
            .await?
            .filter(|(u, _)| u.is_active)
            .ok_or_else(bad)?;
        let audience = self.audience_for(
            client,
            code.resource
                .as_deref()
                .and_then(|r| Audience::parse(r).ok()),
        )?;
        let scope = code.scope.clone();
        let refresh_token = match &redemption.family_id {
            Some(family_id) => Some(
                self.start_family_with(
                    family_id.clone(),
                    client,
                    &user.id,
                    &scope,
                    &audience,
                    Some(FamilySignIn {
                        session_id: code.session_id.clone(),
                        auth_time: code.auth_time,
                        amr: code.amr.clone(),
                        offline_access: scope.contains("offline_access"),
                    }),
                    now,
                )
                .await?,
            ),
            None => None,
        };
        // Checked once the family exists: a session that ends from now on revokes it; one
        // that ended before (logout, sign-in again, an operator) is seen here, and nothing is
        // handed out (the family's only token is dropped).
        if self
            .sessions
            .get_live(&code.session_id, now)
            .await?
            .is_none()
        {
            warn!(
                client_id = client.id.as_str(),
                "authorization code of an ended session refused"
            );
            return Err(bad());
        }
        let (access_token, expires_in) = self.sign_access_token_with(
            client,
            Subject {
                sub: user.id.as_str(),
                user: Some(&claims),
                sid: redemption.family_id.as_ref().map(FamilyId::as_str),
            },
            &scope,
            &audience,
            now,
            redemption.access_jti.clone(),
        )?;
        let id_token = if scope.contains("openid") {
            Some(self.sign_id_token(
                client,
                &user,
                &scope,
                SignInFacts {
                    auth_time: code.auth_time,
                    session_id: Some(&code.session_id),
                    amr: &code.amr,
                    nonce: code.nonce.as_deref(),
                },
                access_token.expose_secret(),
                now,
            )?)
        } else {
            None
        };
        info!(
            client_id = client.id.as_str(),
            user_id = user.id.as_str(),
            "authorization code exchanged"
        );
        Ok(IssuedTokens {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token,
            id_token,
            scope: scope.to_wire(),
            issued_token_type: None,
        })
    }
}
