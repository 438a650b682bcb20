//! The refresh-token grant (RFC 6749 §6) and the refresh-token families it rotates.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tracing::warn;

use super::super::audit::{detail, events, AuditContext};
use super::super::throttle::RequestLimit;
use super::id_token::SignInFacts;
use super::{IssuedTokens, Subject, TokenError, TokenService};
use crate::clock::UnixTime;
use crate::domain::{
    Audience, Client, FamilyId, FamilySignIn, NewFamily, NextGeneration, RefreshRejection,
    RefreshTokenText, RequestOrigin, RetriedFamily, RetryGrace, RotateOutcome, Scope, UserClaims,
    UserId,
};

impl TokenService {
    pub(super) async fn refresh_grant(
        &self,
        client: &Client,
        presented: SecretString,
        requested_scope: Option<Scope>,
        requested_audience: Option<Audience>,
        origin: &RequestOrigin,
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
        // A client with a grace window keeps the successor (sealed) for retries of `presented`.
        let grace = match self.refresh_grace(client) {
            Some((secs, uses)) => Some(RetryGrace {
                until: now + secs,
                uses,
                sealed_successor: self
                    .refresh_codec
                    .seal_successor(
                        &presented.family_id,
                        presented.generation.saturating_add(1),
                        &minted.value,
                    )
                    .ok_or_else(|| {
                        TokenError::Unexpected(anyhow::anyhow!(
                            "could not seal the successor refresh token"
                        ))
                    })?,
            }),
            None => None,
        };
        let outcome = self
            .refresh_tokens
            .rotate(
                &presented,
                &client.id,
                requested_scope.as_ref(),
                requested_audience.as_deref(),
                &next,
                grace.as_ref(),
                now,
            )
            .await?;
        let (mut family, refresh_token) = match outcome {
            RotateOutcome::Rotated(f) => (f, minted.value),
            RotateOutcome::Retried(retried) => {
                // The same successor the first use issued: the app ends up with one chain.
                let Some(successor) = self.refresh_codec.open_successor(
                    &retried.info.family_id,
                    retried.info.generation,
                    &retried.sealed_successor,
                ) else {
                    warn!(
                        client_id = client.id.as_str(),
                        family_id = retried.info.family_id.as_str(),
                        "a kept refresh-token successor does not open (another master key?)"
                    );
                    return Err(TokenError::InvalidGrant("invalid refresh token".into()));
                };
                self.record_retry(client, &retried, grace.as_ref(), origin);
                (retried.info, successor)
            }
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
            refresh_token: Some(refresh_token),
            id_token,
            scope: scope.to_wire(),
            issued_token_type: None,
        })
    }

    /// The client's refresh grace window now, `(seconds, retries)`; `None`: strict rotation.
    fn refresh_grace(&self, client: &Client) -> Option<(i64, i64)> {
        let settings = &client.token_settings;
        let secs = settings
            .refresh_grace_secs
            .unwrap_or(self.settings.refresh_grace_secs);
        let uses = settings
            .refresh_grace_uses
            .unwrap_or(self.settings.refresh_grace_uses);
        (secs > 0 && uses > 0).then_some((secs, uses))
    }

    /// A retry inside a grace window is its own audit event (not reuse), written after the
    /// answer so that a retry costs no more than a refresh.
    fn record_retry(
        &self,
        client: &Client,
        retried: &RetriedFamily,
        grace: Option<&RetryGrace>,
        origin: &RequestOrigin,
    ) {
        let audit = self.audit.clone();
        let user_id = retried.info.user_id.clone();
        let client_id = client.id.as_str().to_owned();
        let origin = origin.clone();
        let uses = grace.map_or(0, |g| g.uses);
        let event = detail([
            ("family_id", json!(retried.info.family_id.as_str())),
            ("retry", json!(retried.retries)),
            (
                "retries_left",
                json!(uses.saturating_sub(retried.retries).max(0)),
            ),
        ]);
        tokio::spawn(async move {
            audit
                .record(
                    events::REFRESH_TOKEN_RETRY,
                    AuditContext {
                        user_id: Some(&user_id),
                        client_id: Some(&client_id),
                        origin: Some(&origin),
                    },
                    event,
                )
                .await;
        });
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
