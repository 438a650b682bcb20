//! Verifying Latchkey's own access tokens (RFC 9068) against the published keys, for
//! introspection, revocation and the bearer-authenticated endpoints.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::KeyRingSnapshot;

/// Tokens longer than this are not ours (ours are well under 4 KiB even with many roles).
pub const MAX_ACCESS_TOKEN_LEN: usize = 16 * 1024;

/// The claims of a verified access token.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

impl AccessTokenClaims {
    /// Whether the token was issued to a client for itself (client_credentials: no user
    /// claims, and the subject is the client), not to a user.
    pub fn is_client_token(&self) -> bool {
        self.roles.is_none() && self.sub == self.client_id
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    #[error("not a JWT")]
    Malformed,
    #[error("not an access token (typ is not at+jwt)")]
    WrongType,
    #[error("signed with a key this issuer does not publish")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("issued by another issuer")]
    WrongIssuer,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
}

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Clock skew tolerated on `nbf`/`iat` between instances.
const LEEWAY_SECS: i64 = 5;

/// Verifies the signature with the published key named by `kid` (its algorithm must match),
/// then the issuer and the validity window. No `none`, no algorithm from the token alone.
pub fn verify_access_token(
    ring: &KeyRingSnapshot,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<AccessTokenClaims, AccessTokenError> {
    if token.len() > MAX_ACCESS_TOKEN_LEN {
        return Err(AccessTokenError::Malformed);
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(AccessTokenError::Malformed)?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(AccessTokenError::Malformed)?;
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| AccessTokenError::Malformed)
    };
    let header: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| AccessTokenError::Malformed)?;
    if !header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return Err(AccessTokenError::WrongType);
    }
    let kid = header.kid.ok_or(AccessTokenError::UnknownKey)?;
    let key = ring
        .published
        .iter()
        .find(|k| k.kid() == kid)
        .ok_or(AccessTokenError::UnknownKey)?;
    if key.alg().as_str() != header.alg {
        return Err(AccessTokenError::BadSignature);
    }
    if !key.verify(signing_input.as_bytes(), &decode(signature)?) {
        return Err(AccessTokenError::BadSignature);
    }
    let claims: AccessTokenClaims =
        serde_json::from_slice(&decode(payload)?).map_err(|_| AccessTokenError::Malformed)?;
    if claims.iss != issuer {
        return Err(AccessTokenError::WrongIssuer);
    }
    if claims.exp <= now {
        return Err(AccessTokenError::Expired);
    }
    if claims.nbf > now + LEEWAY_SECS || claims.iat > now + LEEWAY_SECS {
        return Err(AccessTokenError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::SigningKey;
    use crate::domain::SigningAlg;

    fn ring(alg: SigningAlg) -> (KeyRingSnapshot, Arc<SigningKey>) {
        let (key, _) = SigningKey::generate(alg).unwrap_or_else(|e| panic!("{e}"));
        let key = Arc::new(key);
        (
            KeyRingSnapshot::new(key.clone(), vec![key.clone()], String::new()),
            key,
        )
    }

    fn claims(iss: &str, exp: i64) -> serde_json::Value {
        serde_json::json!({
            "iss": iss, "sub": "u1", "aud": "api", "exp": exp, "iat": 100, "nbf": 100,
            "jti": "j1", "client_id": "web", "sid": "s1", "scope": "a b",
            "roles": ["r"], "permissions": ["p.q"],
        })
    }

    #[test]
    fn own_tokens_verify_for_every_algorithm() {
        for alg in SigningAlg::ALL {
            let (ring, key) = ring(alg);
            let jwt = key.sign_jwt(&claims("https://id", 200)).unwrap_or_default();
            let c = verify_access_token(&ring, &jwt, "https://id", 150)
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!((c.sub.as_str(), c.sid.as_deref()), ("u1", Some("s1")));
        }
    }

    #[test]
    fn foreign_expired_tampered_and_malformed_tokens_fail() {
        let (ring, key) = ring(SigningAlg::ES256);
        let (_, other) = self::ring(SigningAlg::ES256);
        let jwt = key.sign_jwt(&claims("https://id", 200)).unwrap_or_default();
        let check = |t: &str, now| verify_access_token(&ring, t, "https://id", now);
        assert_eq!(check(&jwt, 200).err(), Some(AccessTokenError::Expired));
        assert_eq!(check(&jwt, 50).err(), Some(AccessTokenError::NotYetValid));
        assert_eq!(
            verify_access_token(&ring, &jwt, "https://other", 150).err(),
            Some(AccessTokenError::WrongIssuer)
        );
        let foreign = other
            .sign_jwt(&claims("https://id", 200))
            .unwrap_or_default();
        assert_eq!(
            check(&foreign, 150).err(),
            Some(AccessTokenError::UnknownKey)
        );
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let forged_payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims("https://id", 10_000)).unwrap_or_default());
        parts[1] = &forged_payload;
        assert_eq!(
            check(&parts.join("."), 150).err(),
            Some(AccessTokenError::BadSignature)
        );
        for bad in ["", "a.b", "a.b.c", "....", &"x".repeat(20_000)] {
            assert!(check(bad, 150).is_err(), "{bad}");
        }
    }
}
