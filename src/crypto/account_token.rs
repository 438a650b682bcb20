//! Secrets of emailed single-use tokens: a 256-bit link secret (stored as SHA-256) and, for
//! magic links, an 8-digit code (stored as an HMAC under a key derived from the master key,
//! so that a database dump does not give the codes away to a brute force).

use aws_lc_rs::hmac;

use super::{random_token, sha256_hex, MasterKey};
use crate::domain::MailedSecret;

/// Link secrets are longer than this are not ours: refused before any lookup.
pub const MAX_ACCOUNT_TOKEN_LEN: usize = 128;
/// Digits of a magic-link code.
pub const MAGIC_CODE_DIGITS: usize = 8;

/// A new secret: the value for the mail, and its hash for the database (of 256 random bits,
/// or keyed by the code key: it gives nothing away, the value is the secret).
#[derive(Debug)]
pub struct MintedSecret {
    pub value: MailedSecret,
    pub hash: String,
}

pub struct AccountTokenCodec {
    code_key: hmac::Key,
}

impl std::fmt::Debug for AccountTokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountTokenCodec([redacted])")
    }
}

impl AccountTokenCodec {
    pub fn new(master: &MasterKey) -> Self {
        let k = master.derive_key("latchkey magic-link code v1");
        Self {
            code_key: hmac::Key::new(hmac::HMAC_SHA256, &k),
        }
    }

    /// A new link secret (256 bits).
    pub fn mint(&self) -> MintedSecret {
        let value = random_token(32);
        MintedSecret {
            hash: sha256_hex(value.as_bytes()),
            value: MailedSecret::new(value),
        }
    }

    /// The stored form of a presented link secret; `None` for a value that cannot be one.
    pub fn hash(&self, presented: &str) -> Option<String> {
        let ok = !presented.is_empty()
            && presented.len() <= MAX_ACCOUNT_TOKEN_LEN
            && presented
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| sha256_hex(presented.as_bytes()))
    }

    /// A new code for `email`: its digits and their stored form.
    pub fn mint_code(&self, email: &str) -> MintedSecret {
        let mut buf = [0u8; 8];
        if aws_lc_rs::rand::fill(&mut buf).is_err() {
            std::process::abort();
        }
        // 2^64 is about 1.8e11 times 10^8: the modulo bias is negligible.
        let n = u64::from_le_bytes(buf) % 10u64.pow(MAGIC_CODE_DIGITS as u32);
        let value = format!("{n:0width$}", width = MAGIC_CODE_DIGITS);
        MintedSecret {
            hash: self.code_hash(email, &value),
            value: MailedSecret::new(value),
        }
    }

    /// The stored form of a code presented for `email`.
    pub fn code_hash(&self, email: &str, code: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.code_key);
        ctx.update(email.as_bytes());
        ctx.update(b":");
        ctx.update(code.as_bytes());
        let tag = ctx.sign();
        sha256_hex(tag.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> AccountTokenCodec {
        let key = MasterKey::generate_base64();
        AccountTokenCodec::new(&MasterKey::from_base64(&key).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn link_secrets_hash_to_what_is_stored_and_junk_is_refused() {
        let c = codec();
        let m = c.mint();
        assert_eq!(
            c.hash(m.value.expose_secret()).as_deref(),
            Some(m.hash.as_str())
        );
        assert!(!format!("{m:?}").contains(m.value.expose_secret()));
        assert_eq!(c.hash(""), None);
        assert_eq!(c.hash("a b"), None);
        assert_eq!(c.hash(&"a".repeat(200)), None);
    }

    #[test]
    fn codes_have_eight_digits_and_are_bound_to_the_address() {
        let c = codec();
        let m = c.mint_code("alice@example.com");
        let code = m.value.expose_secret();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(c.code_hash("alice@example.com", code), m.hash);
        assert_ne!(c.code_hash("bob@example.com", code), m.hash);
        assert_ne!(codec().code_hash("alice@example.com", code), m.hash);
    }
}
