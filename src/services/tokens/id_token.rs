//! ID tokens (OIDC Core §2, §3.1.3.6): signed with the client's
//! `id_token_signed_response_alg`, about the user, for the client.

use serde::Serialize;

use super::{TokenError, TokenService};
use crate::clock::UnixTime;
use crate::crypto::left_half_hash;
use crate::domain::{Amr, Client, IdTokenText, Scope, SessionId, User};

/// What an ID token says about the sign-in.
pub(super) struct SignInFacts<'a> {
    pub auth_time: UnixTime,
    pub session_id: Option<&'a SessionId>,
    pub amr: &'a [Amr],
    pub nonce: Option<&'a str>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: UnixTime,
    iat: UnixTime,
    auth_time: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    azp: &'a str,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    amr: Vec<&'a str>,
    acr: &'static str,
    #[serde(flatten)]
    profile: serde_json::Map<String, serde_json::Value>,
}

impl TokenService {
    /// An ID token for `user`, issued with `access_token` to `client`.
    pub(super) fn sign_id_token(
        &self,
        client: &Client,
        user: &User,
        scope: &Scope,
        facts: SignInFacts<'_>,
        access_token: &str,
        now: UnixTime,
    ) -> Result<IdTokenText, TokenError> {
        let alg = client.oidc.id_token_alg;
        let ring = self
            .keys
            .current()
            .ok_or_else(|| TokenError::Unexpected(anyhow::anyhow!("no signing key loaded")))?;
        // A key for a newly used algorithm reaches every instance's ring within its reload
        // interval: until then, "try again".
        let key = ring.signer(alg).ok_or_else(|| {
            TokenError::Unavailable(format!("no {alg} signing key is loaded yet; retry shortly"))
        })?;
        let ttl = client
            .token_settings
            .access_token_ttl
            .unwrap_or(self.settings.access_token_ttl);
        let claims = IdTokenClaims {
            iss: &self.settings.issuer,
            sub: user.id.as_str(),
            aud: client.id.as_str(),
            exp: now + ttl,
            iat: now,
            auth_time: facts.auth_time,
            nonce: facts.nonce,
            azp: client.id.as_str(),
            at_hash: left_half_hash(alg, access_token),
            sid: facts.session_id.map(SessionId::as_str),
            amr: facts.amr.iter().map(|a| a.as_str()).collect(),
            acr: Amr::acr(facts.amr),
            profile: user.standard_claims(scope),
        };
        key.sign_id_token(&claims)
            .map(IdTokenText::new)
            .map_err(|e| TokenError::Unexpected(e.into()))
    }
}
