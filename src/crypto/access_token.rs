//! Verifying Latchkey's own access tokens (RFC 9068) against the published keys, for
//! introspection, revocation and the bearer-authenticated endpoints.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::KeyRingSnapshot;

/// Tokens longer than this are not ours (ours are well under 4 KiB even with many roles).
pub const MAX_ACCESS_TOKEN_LEN: usize = 16 * 1024;

/// What verification checks of an access token's claims: the issuer and the validity
/// window. The claims type itself belongs to whoever issues the tokens.
pub trait RegisteredClaims: serde::de::DeserializeOwned {
    fn issuer(&self) -> &str;
    fn expires_at(&self) -> i64;
    fn not_before(&self) -> i64;
    fn issued_at(&self) -> i64;
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
pub fn verify_access_token<C: RegisteredClaims>(
    ring: &KeyRingSnapshot,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<C, AccessTokenError> {
    let payload = verify_signature(ring, token, |typ| {
        typ.is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        })
    })?;
    let claims: C = serde_json::from_slice(&payload).map_err(|_| AccessTokenError::Malformed)?;
    if claims.issuer() != issuer {
        return Err(AccessTokenError::WrongIssuer);
    }
    if claims.expires_at() <= now {
        return Err(AccessTokenError::Expired);
    }
    if claims.not_before() > now + LEEWAY_SECS || claims.issued_at() > now + LEEWAY_SECS {
        return Err(AccessTokenError::NotYetValid);
    }
    Ok(claims)
}

/// Verifies a compact JWS signed by one of the published keys (named by `kid`, its algorithm
/// matching), whose `typ` header `typ_ok` accepts; returns the payload.
pub fn verify_signature(
    ring: &KeyRingSnapshot,
    token: &str,
    typ_ok: impl Fn(Option<&str>) -> bool,
) -> Result<Vec<u8>, AccessTokenError> {
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
    if !typ_ok(header.typ.as_deref()) {
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
    decode(payload)
}

/// What an `id_token_hint` (OIDC RP-Initiated Logout §2) tells: one of our ID tokens, signed
/// by a published key, perhaps expired.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct IdTokenHint {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    #[serde(default)]
    pub sid: Option<String>,
}

/// Verifies an ID token we issued, as a hint: signature and issuer; its expiry is not
/// checked (a logout may come long after sign-in).
pub fn verify_id_token_hint(
    ring: &KeyRingSnapshot,
    token: &str,
    issuer: &str,
) -> Result<IdTokenHint, AccessTokenError> {
    let payload = verify_signature(ring, token, |typ| {
        typ.is_none_or(|t| t.eq_ignore_ascii_case("JWT"))
    })?;
    let hint: IdTokenHint =
        serde_json::from_slice(&payload).map_err(|_| AccessTokenError::Malformed)?;
    if hint.iss != issuer {
        return Err(AccessTokenError::WrongIssuer);
    }
    Ok(hint)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::SigningKey;
    use crate::domain::SigningAlg;

    #[derive(serde::Deserialize)]
    struct Claims {
        iss: String,
        sub: String,
        exp: i64,
        iat: i64,
        nbf: i64,
        sid: Option<String>,
    }

    impl RegisteredClaims for Claims {
        fn issuer(&self) -> &str {
            &self.iss
        }
        fn expires_at(&self) -> i64 {
            self.exp
        }
        fn not_before(&self) -> i64 {
            self.nbf
        }
        fn issued_at(&self) -> i64 {
            self.iat
        }
    }

    fn verify(
        ring: &KeyRingSnapshot,
        token: &str,
        issuer: &str,
        now: i64,
    ) -> Result<Claims, AccessTokenError> {
        verify_access_token(ring, token, issuer, now)
    }

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
            let c = verify(&ring, &jwt, "https://id", 150).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!((c.sub.as_str(), c.sid.as_deref()), ("u1", Some("s1")));
        }
    }

    #[test]
    fn foreign_expired_tampered_and_malformed_tokens_fail() {
        let (ring, key) = ring(SigningAlg::ES256);
        let (_, other) = self::ring(SigningAlg::ES256);
        let jwt = key.sign_jwt(&claims("https://id", 200)).unwrap_or_default();
        let check = |t: &str, now| verify(&ring, t, "https://id", now);
        assert_eq!(check(&jwt, 200).err(), Some(AccessTokenError::Expired));
        assert_eq!(check(&jwt, 50).err(), Some(AccessTokenError::NotYetValid));
        assert_eq!(
            verify(&ring, &jwt, "https://other", 150).err(),
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
