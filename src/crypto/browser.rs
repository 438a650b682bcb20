//! Secrets of browser sign-in: the session cookie's secret, CSRF tokens bound to a browser,
//! authorization requests sealed while the user signs in, PKCE and `at_hash`.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{constant_time_eq, random_token, sha256_hex, MasterKey};
use crate::domain::SigningAlg;

/// The longest cookie or form secret we accept (ours are 43 characters).
const MAX_SECRET_LEN: usize = 128;
/// The longest sealed request we open.
pub const MAX_SEALED_LEN: usize = 8192;

/// A new 256-bit secret (URL-safe base64) and its SHA-256 (hex), for a value that is looked
/// up by hash: the session cookie, an authorization code.
pub fn mint_lookup_secret() -> (String, String) {
    let value = random_token(32);
    let hash = sha256_hex(value.as_bytes());
    (value, hash)
}

/// The stored hash of a presented lookup secret; `None` for a value that cannot be one.
pub fn lookup_hash(presented: &str) -> Option<String> {
    let ok = !presented.is_empty()
        && presented.len() <= MAX_SECRET_LEN
        && presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| sha256_hex(presented.as_bytes()))
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(code_verifier)) == code_challenge`, compared in constant
/// time. A verifier outside 43..=128 characters of the unreserved set never matches.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

/// OIDC Core §3.1.3.6 `at_hash` (and `c_hash`): the left half of the hash of the token's
/// ASCII, with the hash of the JWS algorithm (SHA-256 for RS256 and ES256; SHA-512 for
/// EdDSA with Ed25519), base64url.
pub fn left_half_hash(alg: SigningAlg, token: &str) -> String {
    let algorithm = match alg {
        SigningAlg::RS256 | SigningAlg::ES256 => &digest::SHA256,
        SigningAlg::EdDSA => &digest::SHA512,
    };
    let d = digest::digest(algorithm, token.as_bytes());
    let bytes = d.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// Seals values the browser carries for us (an authorization request while the user signs
/// in) with AES-256-GCM under a key derived from the master key, and MACs CSRF tokens.
pub struct BrowserSeal {
    aead: LessSafeKey,
    csrf: hmac::Key,
}

impl std::fmt::Debug for BrowserSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserSeal([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not seal the value")]
pub struct SealError;

impl BrowserSeal {
    pub fn new(master: &MasterKey) -> Self {
        let seal_key = master.derive_key("latchkey browser seal v1");
        let csrf_key = master.derive_key("latchkey csrf v1");
        let aead = match UnboundKey::new(&AES_256_GCM, &seal_key) {
            Ok(k) => LessSafeKey::new(k),
            // A 32-byte key is always accepted by AES-256-GCM.
            Err(_) => std::process::abort(),
        };
        Self {
            aead,
            csrf: hmac::Key::new(hmac::HMAC_SHA256, &csrf_key),
        }
    }

    /// `plaintext` sealed for `purpose` (bound as associated data), URL-safe base64.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError)?;
        let mut in_out = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SealError)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&in_out);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// What [`Self::seal`] sealed for `purpose`; `None` if it was not sealed by us for it, or
    /// was changed.
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > MAX_SEALED_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut in_out)
            .ok()?;
        Some(plain.to_vec())
    }

    /// The CSRF token of the forms shown to the browser that holds `binding` (its CSRF
    /// cookie's secret): a MAC of it, so a page of one browser is no use to another.
    pub fn csrf_token(&self, binding: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf, binding.as_bytes()))
    }

    /// Whether `token` is the CSRF token of `binding`, in constant time.
    pub fn csrf_matches(&self, binding: &str, token: &str) -> bool {
        !binding.is_empty()
            && constant_time_eq(self.csrf_token(binding).as_bytes(), token.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal() -> BrowserSeal {
        BrowserSeal::new(&MasterKey::from_bytes(&[7u8; 32]).unwrap())
    }

    #[test]
    fn pkce_follows_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_s256_matches("short", challenge));
        assert!(!pkce_s256_matches(&format!("{verifier}!"), challenge));
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OIDC Core §A.3's access token and at_hash (RS256).
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(
            left_half_hash(SigningAlg::RS256, token),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(left_half_hash(SigningAlg::EdDSA, token).len(), 43);
    }

    #[test]
    fn sealed_values_open_only_for_their_purpose_and_unchanged() {
        let s = seal();
        let sealed = s.seal("authorize", b"hello").unwrap();
        assert_eq!(s.open("authorize", &sealed).as_deref(), Some(&b"hello"[..]));
        assert!(s.open("consent", &sealed).is_none());
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(s
            .open("authorize", std::str::from_utf8(&bytes).unwrap())
            .is_none());
        assert!(s.open("authorize", "").is_none());
        assert!(s.open("authorize", "%%%").is_none());
    }

    #[test]
    fn csrf_tokens_belong_to_one_browser() {
        let s = seal();
        let t = s.csrf_token("browser-a");
        assert!(s.csrf_matches("browser-a", &t));
        assert!(!s.csrf_matches("browser-b", &t));
        assert!(!s.csrf_matches("", &s.csrf_token("")));
        assert!(!s.csrf_matches("browser-a", ""));
    }

    #[test]
    fn lookup_secrets_hash_and_refuse_what_cannot_be_ours() {
        let (value, hash) = mint_lookup_secret();
        assert_eq!(value.len(), 43);
        assert_eq!(lookup_hash(&value), Some(hash));
        assert!(lookup_hash("").is_none());
        assert!(lookup_hash("a b").is_none());
        assert!(lookup_hash(&"a".repeat(129)).is_none());
    }
}
