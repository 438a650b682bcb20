use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair,
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::domain::SigningAlg;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("key generation failed")]
    Generate,
    #[error("the private key is not a valid {0} key")]
    InvalidKey(SigningAlg),
    #[error("signing failed")]
    Sign,
    #[error("could not serialise claims: {0}")]
    Claims(#[from] serde_json::Error),
}

enum KeyPairInner {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A parsed, ready-to-sign key. Parsing happens once, when the key ring loads; signing a JWT
/// is then one JSON serialisation, two base64 encodings and one signature.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    inner: KeyPairInner,
    /// base64url of the JOSE header `{"alg","typ":"at+jwt","kid"}`.
    header_b64: String,
    /// base64url of the JOSE headers of ID tokens (`typ: JWT`) and logout tokens
    /// (`typ: logout+jwt`).
    id_header_b64: String,
    logout_header_b64: String,
    public_jwk: Value,
    /// The public key, parsed once, for verifying tokens (introspection, revocation).
    verifier: ParsedPublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private", &"[redacted]")
            .finish()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638 thumbprint (SHA-256, base64url) of a public JWK: a hash over the required members
/// in lexicographic order, without whitespace.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    let canonical = match s("kty")? {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv")?,
            s("x")?,
            s("y")?
        ),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv")?, s("x")?),
        _ => return None,
    };
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    Some(b64(d.as_ref()))
}

impl SigningKey {
    /// Generates a key; returns it with its PKCS#8 DER (to be encrypted and stored).
    /// RSA generation takes a noticeable time: call it from a blocking context.
    pub fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>), SigningError> {
        let der = match alg {
            SigningAlg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map(|d| d.as_ref().to_vec()),
            SigningAlg::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map(|d| d.as_ref().to_vec()),
            SigningAlg::RS256 => {
                use aws_lc_rs::encoding::AsDer;
                RsaKeyPair::generate(KeySize::Rsa2048)
                    .and_then(|k| k.as_der())
                    .map(|d| d.as_ref().to_vec())
            }
        }
        .map_err(|_| SigningError::Generate)?;
        let key = Self::from_pkcs8(alg, &der)?;
        Ok((key, der))
    }

    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, SigningError> {
        let bad = |_| SigningError::InvalidKey(alg);
        let (inner, mut jwk) = match alg {
            SigningAlg::ES256 => {
                let k =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(bad)?;
                let point = k.public_key().as_ref().to_vec();
                if point.len() != 65 || point[0] != 4 {
                    return Err(SigningError::InvalidKey(alg));
                }
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])});
                (KeyPairInner::Ec(k), jwk)
            }
            SigningAlg::EdDSA => {
                let k = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(bad)?;
                let jwk =
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())});
                (KeyPairInner::Ed(k), jwk)
            }
            SigningAlg::RS256 => {
                let k = RsaKeyPair::from_pkcs8(der).map_err(bad)?;
                if k.public_modulus_len() < 256 {
                    return Err(SigningError::InvalidKey(alg));
                }
                let public = k.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                });
                (KeyPairInner::Rsa(k), jwk)
            }
        };
        let verifier = match &inner {
            KeyPairInner::Ec(k) => ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, k.public_key()),
            KeyPairInner::Ed(k) => ParsedPublicKey::new(&ED25519, k.public_key()),
            KeyPairInner::Rsa(k) => {
                ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, k.public_key())
            }
        }
        .map_err(|_| SigningError::InvalidKey(alg))?;
        let kid = jwk_thumbprint(&jwk).ok_or(SigningError::InvalidKey(alg))?;
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::String(kid.clone()));
            m.insert("use".into(), Value::String("sig".into()));
            m.insert("alg".into(), Value::String(alg.as_str().into()));
        }
        let header = |typ: &str| {
            let h = json!({"alg": alg.as_str(), "typ": typ, "kid": kid});
            b64(h.to_string().as_bytes())
        };
        Ok(Self {
            header_b64: header("at+jwt"),
            id_header_b64: header("JWT"),
            logout_header_b64: header("logout+jwt"),
            kid,
            alg,
            inner,
            public_jwk: jwk,
            verifier,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public JWK, with `kid`, `use` and `alg`.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// Verifies a JWS signature made with this key over `signing_input` (`header.payload`).
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify_sig(signing_input, signature).is_ok()
    }

    /// Signs `claims` as a compact JWS with header `typ: at+jwt` (RFC 9068).
    pub fn sign_jwt<T: serde::Serialize>(&self, claims: &T) -> Result<String, SigningError> {
        self.sign_with_header(&self.header_b64, claims)
    }

    /// Signs an ID token (OIDC Core §2; header `typ: JWT`).
    pub fn sign_id_token<T: serde::Serialize>(&self, claims: &T) -> Result<String, SigningError> {
        self.sign_with_header(&self.id_header_b64, claims)
    }

    /// Signs a logout token (OIDC Back-Channel Logout §2.4; header `typ: logout+jwt`).
    pub fn sign_logout_token<T: serde::Serialize>(
        &self,
        claims: &T,
    ) -> Result<String, SigningError> {
        self.sign_with_header(&self.logout_header_b64, claims)
    }

    fn sign_with_header<T: serde::Serialize>(
        &self,
        header_b64: &str,
        claims: &T,
    ) -> Result<String, SigningError> {
        let payload = serde_json::to_vec(claims)?;
        let mut jwt = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 400);
        jwt.push_str(header_b64);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
        let rng = SystemRandom::new();
        let signature: Vec<u8> = match &self.inner {
            KeyPairInner::Ec(k) => k
                .sign(&rng, jwt.as_bytes())
                .map_err(|_| SigningError::Sign)?
                .as_ref()
                .to_vec(),
            KeyPairInner::Ed(k) => k.sign(jwt.as_bytes()).as_ref().to_vec(),
            KeyPairInner::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, jwt.as_bytes(), &mut sig)
                    .map_err(|_| SigningError::Sign)?;
                sig
            }
        };
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        Ok(jwt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7638_example_thumbprint_is_reproduced() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
        });
        assert_eq!(
            jwk_thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn every_algorithm_round_trips_through_pkcs8_with_a_stable_kid() {
        for alg in SigningAlg::ALL {
            let (key, der) = SigningKey::generate(alg).unwrap_or_else(|e| panic!("{alg}: {e}"));
            let again = SigningKey::from_pkcs8(alg, &der).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(key.kid(), again.kid());
            let jwt = key.sign_jwt(&json!({"sub": "x"})).unwrap_or_default();
            assert_eq!(jwt.split('.').count(), 3);
            let (input, sig) = jwt.rsplit_once('.').unwrap_or_default();
            let sig = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
            assert!(key.verify(input.as_bytes(), &sig), "{alg}");
            assert!(!key.verify(b"other", &sig), "{alg}");
        }
    }
}
