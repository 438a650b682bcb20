//! The refresh-token grant (RFC 6749 §6) and the refresh-token families it rotates.

use secrecy::{ExposeSecret, SecretString};
use tracing::warn;

use super::super::throttle::RequestLimit;
use super::id_token::SignInFacts;
use super::{IssuedTokens, Subject, TokenError, TokenService};
use crate::clock::UnixTime;
use crate::domain::{
    Audience, Client, FamilyId, FamilySignIn, NewFamily, NextGeneration, RefreshRejection,
    RefreshTokenText, RotateOutcome, Scope, UserClaims, UserId,
};

impl TokenService {
    pub(super) async fn refresh_grant(
        &self,
        client: &Client,
        presented: SecretString,
        requested_scope: Option<Scope>,
        requested_audience: Option<Audience>,
    ) -> Result<IssuedTokens, TokenError> {
        // A value that is not a token Latchkey issued (bad format or tag) is refused before any
        // database work.
        let Some(presented) = self.refresh_codec.parse(presented.expose_secret()) else {
            return Err(TokenError::InvalidGrant("invalid refresh token".into()));
        };
        // Per session (one user's), before any database work: a refused refresh leaves the
        // token unused.
        self.throttle
            .limit_request(RequestLimit::Session, presented.family_id.as_str())
            .await
            .map_err(|t| TokenError::RateLimited(t.retry_after_secs))?;
        // Everything that can be checked without the family is checked before the token is used;
        // the rest (scope, audience) is checked by the rotation step, which then leaves the
        // token unused.
        let requested_audience = requested_audience
            .map(|a| self.audience_for(client, Some(a)))
            .transpose()?;
        let now = self.clock.now();
        let minted = self.refresh_codec.mint(
            presented.family_id.as_str(),
            presented.generation.saturating_add(1),
        );
        let next = NextGeneration {
            token_hash: minted.secret_hash,
            expires_at: now + self.refresh_idle_ttl(client),
        };
        let outcome = self
            .refresh_tokens
            .rotate(
                &presented,
                &client.id,
                requested_scope.as_ref(),
                requested_audience.as_deref(),
                &next,
                now,
            )
            .await?;
        let mut family = match outcome {
            RotateOutcome::Rotated(f) => f,
            RotateOutcome::Reused { family_id, .. } => {
                warn!(
                    client_id = client.id.as_str(),
                    family_id = family_id.as_str(),
                    "refresh token reuse detected; token family revoked"
                );
                // The family's access tokens die too (RFC 9700 §4.14.2: the attacker may
                // hold one).
                self.revocations
                    .family_revoked(&family_id)
                    .await
                    .map_err(|e| TokenError::Unexpected(e.into()))?;
                return Err(TokenError::InvalidGrant("invalid refresh token".into()));
            }
            RotateOutcome::Rejected(why) => {
                if why == RefreshRejection::Revoked {
                    // Repairs a family whose revocation never reached the log.
                    if let Err(e) = self.revocations.family_revoked(&presented.family_id).await {
                        warn!(error = %e, "could not confirm a revoked family in the log");
                    }
                }
                let msg = match why {
                    RefreshRejection::Expired => "the refresh token has expired",
                    RefreshRejection::UserInactive => "the account is disabled",
                    RefreshRejection::Revoked => "the refresh token has been revoked",
                    RefreshRejection::Unknown | RefreshRejection::WrongClient => {
                        "invalid refresh token"
                    }
                    RefreshRejection::ScopeExceeded => {
                        return Err(TokenError::InvalidScope(
                            "the requested scope exceeds the scope originally granted".into(),
                        ))
                    }
                    // RFC 8707 §2.2: a family is bound to the audience granted at sign-in.
                    RefreshRejection::AudienceMismatch => {
                        return Err(TokenError::InvalidTarget(
                            "a refresh token is bound to the audience granted at sign-in; \
                             sign in again for another one"
                                .into(),
                        ))
                    }
                };
                return Err(TokenError::InvalidGrant(msg.into()));
            }
        };
        // The access token may narrow the family's scope (RFC 6749 §6); scopes the client may
        // no longer request are dropped.
        let scope = requested_scope.unwrap_or_else(|| family.scope.clone());
        let scope = scope.intersection(&client.requestable_scope());
        // The rotation step checked that a requested audience is the family's own.
        let audience = family.audience.clone();
        // The rotation step checked that the user is active and read the roles in the same
        // statement, so the claims are as current as the rotation itself.
        let claims = UserClaims {
            is_active: true,
            roles: std::mem::take(&mut family.roles),
            permissions: std::mem::take(&mut family.permissions),
        };
        let (access_token, expires_in) = self.sign_access_token(
            client,
            Subject {
                sub: family.user_id.as_str(),
                user: Some(&claims),
                sid: Some(family.family_id.as_str()),
            },
            &scope,
            &audience,
            now,
        )?;
        // OIDC Core §12.2: a refresh of a browser sign-in with `openid` returns a new ID
        // token about the same sign-in (same `sub`, `auth_time`, `sid`; no `nonce`).
        let id_token = match &family.sign_in {
            Some(sign_in) if scope.contains("openid") => {
                let user = self
                    .users
                    .find_by_id(&family.user_id)
                    .await?
                    .ok_or_else(|| TokenError::InvalidGrant("invalid refresh token".into()))?;
                Some(self.sign_id_token(
                    client,
                    &user,
                    &scope,
                    SignInFacts {
                        auth_time: sign_in.auth_time,
                        session_id: Some(&sign_in.session_id),
                        amr: &sign_in.amr,
                        nonce: None,
                    },
                    access_token.expose_secret(),
                    now,
                )?)
            }
            _ => None,
        };
        Ok(IssuedTokens {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: Some(minted.value),
            id_token,
            scope: scope.to_wire(),
        })
    }

    pub(super) fn refresh_idle_ttl(&self, client: &Client) -> i64 {
        client
            .token_settings
            .refresh_idle_ttl
            .unwrap_or(self.settings.refresh_idle_ttl)
    }

    /// Starts a refresh-token family; returns the first token and the family id.
    pub(super) async fn start_family(
        &self,
        client: &Client,
        user_id: &UserId,
        scope: &Scope,
        audience: &str,
        now: UnixTime,
    ) -> Result<(RefreshTokenText, FamilyId), TokenError> {
        let id = FamilyId::generate();
        let token = self
            .start_family_with(id.clone(), client, user_id, scope, audience, None, now)
            .await?;
        Ok((token, id))
    }

    /// Starts the refresh-token family `id` (from a browser sign-in: `sign_in`); returns its
    /// first token.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn start_family_with(
        &self,
        id: FamilyId,
        client: &Client,
        user_id: &UserId,
        scope: &Scope,
        audience: &str,
        sign_in: Option<FamilySignIn>,
        now: UnixTime,
    ) -> Result<RefreshTokenText, TokenError> {
        let absolute = client
            .token_settings
            .refresh_absolute_ttl
            .unwrap_or(self.settings.refresh_absolute_ttl);
        let minted = self.refresh_codec.mint(id.as_str(), 0);
        let family = NewFamily {
            id,
            client_id: client.id.clone(),
            user_id: user_id.clone(),
            scope: scope.clone(),
            audience: audience.to_owned(),
            created_at: now,
            absolute_expires_at: now + absolute,
            first: NextGeneration {
                token_hash: minted.secret_hash,
                expires_at: now + self.refresh_idle_ttl(client),
            },
            sign_in,
        };
        if !self.refresh_tokens.start_family(&family).await? {
            return Err(TokenError::InvalidGrant(
                "the sessions of this account or client were just revoked; sign in again".into(),
            ));
        }
        Ok(minted.value)
    }
}
