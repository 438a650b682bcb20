use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::sha256_hex;

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be 32 bytes, base64-encoded ({0})")]
    Malformed(String),
    #[error("this data was encrypted under master key {stored}, but the configured master key is {configured}")]
    WrongKey { stored: String, configured: String },
    #[error("decryption failed: the data is corrupt or was encrypted under another key")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
}

/// The operator's 256-bit master key; encrypts signing keys at rest with AES-256-GCM.
pub struct MasterKey {
    key: LessSafeKey,
    /// HMAC key over the master key bytes, for deriving purpose-specific subkeys.
    derive: hmac::Key,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl MasterKey {
    pub fn from_base64(encoded: &str) -> Result<Self, MasterKeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|e| MasterKeyError::Malformed(e.to_string()))?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MasterKeyError> {
        if bytes.len() != 32 {
            return Err(MasterKeyError::Malformed(format!(
                "got {} bytes",
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| MasterKeyError::Malformed("rejected".into()))?;
        // The id names the key without revealing it: a hash under a fixed domain-separation label.
        let mut labelled = b"latchkey master key id v1:".to_vec();
        labelled.extend_from_slice(bytes);
        let id = sha256_hex(&labelled)[..16].to_owned();
        Ok(Self {
            key: LessSafeKey::new(unbound),
            derive: hmac::Key::new(hmac::HMAC_SHA256, bytes),
            id,
        })
    }

    /// A fresh random key, base64-encoded (for the generated development key file).
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        if aws_lc_rs::rand::fill(&mut bytes).is_err() {
            std::process::abort();
        }
        STANDARD.encode(bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A 256-bit subkey for one purpose, `HMAC-SHA256(master, label)`: independent keys for
    /// independent uses, none of which reveals the master key or another subkey.
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.derive, label.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(&tag.as_ref()[..32]);
        out
    }

    /// Returns nonce || ciphertext || tag. `aad` binds the ciphertext to its record.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| MasterKeyError::Encrypt)?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .map_err(|_| MasterKeyError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    pub fn decrypt(
        &self,
        enc_key_id: &str,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, MasterKeyError> {
        if enc_key_id != self.id {
            return Err(MasterKeyError::WrongKey {
                stored: enc_key_id.to_owned(),
                configured: self.id.clone(),
            });
        }
        if sealed.len() < NONCE_LEN {
            return Err(MasterKeyError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| MasterKeyError::Decrypt)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| MasterKeyError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_the_same_key_and_aad() {
        let k =
            MasterKey::from_base64(&MasterKey::generate_base64()).unwrap_or_else(|e| panic!("{e}"));
        let sealed = k.encrypt(b"secret", b"kid-1").unwrap_or_default();
        assert_eq!(
            k.decrypt(k.id(), &sealed, b"kid-1").unwrap_or_default(),
            b"secret"
        );
        assert!(k.decrypt(k.id(), &sealed, b"kid-2").is_err());
        let other =
            MasterKey::from_base64(&MasterKey::generate_base64()).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            other.decrypt(k.id(), &sealed, b"kid-1"),
            Err(MasterKeyError::WrongKey { .. })
        ));
    }

    #[test]
    fn derived_keys_depend_on_the_label_and_the_master_key() {
        let k =
            MasterKey::from_base64(&MasterKey::generate_base64()).unwrap_or_else(|e| panic!("{e}"));
        let other =
            MasterKey::from_base64(&MasterKey::generate_base64()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.derive_key("a"), k.derive_key("a"));
        assert_ne!(k.derive_key("a"), k.derive_key("b"));
        assert_ne!(k.derive_key("a"), other.derive_key("a"));
    }

    #[test]
    fn short_keys_are_rejected() {
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }
}
