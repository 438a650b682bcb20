use crate::crypto::{constant_time_eq, sha256_hex};
use secrecy::{ExposeSecret, SecretString};

/// The operator's admin API credential, kept only as its SHA-256 digest. Presented tokens
/// are hashed and compared in constant time, so neither timing nor length leaks.
pub struct AdminCredential {
    digest: String,
}

impl std::fmt::Debug for AdminCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminCredential([redacted])")
    }
}

impl AdminCredential {
    pub fn new(token: &SecretString) -> Self {
        Self {
            digest: sha256_hex(token.expose_secret().as_bytes()),
        }
    }

    pub fn verify(&self, presented: &str) -> bool {
        constant_time_eq(
            sha256_hex(presented.as_bytes()).as_bytes(),
            self.digest.as_bytes(),
        )
    }
}
