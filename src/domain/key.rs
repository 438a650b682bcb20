use super::ValidationError;
use crate::clock::UnixTime;

crate::string_newtype! {
    /// A signing key id (`kid`): the RFC 7638 thumbprint of the key's public JWK.
    pub struct KeyId;
}

impl KeyId {
    /// For a kid computed from a key we hold, or read back from our own storage.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

/// JWS algorithms Latchkey signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    ES256,
    RS256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::EdDSA];

    /// The position of the algorithm in `ALL`, for tables indexed by algorithm.
    pub const fn index(self) -> usize {
        match self {
            SigningAlg::ES256 => 0,
            SigningAlg::RS256 => 1,
            SigningAlg::EdDSA => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(raw))
            .ok_or_else(|| ValidationError::new("alg", "must be one of ES256, RS256, EdDSA"))
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle of a signing key: pending (published, not signing) -> active (signs) ->
/// retired (published until every token it signed has expired) -> removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    Pending,
    Active,
    Retired,
    Removed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Removed => "removed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "pending" => Ok(KeyState::Pending),
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            "removed" => Ok(KeyState::Removed),
            _ => Err(ValidationError::new(
                "state",
                format!("unknown key state {raw:?}"),
            )),
        }
    }

    /// Whether the key appears in the JWKS.
    pub fn is_published(self) -> bool {
        !matches!(self, KeyState::Removed)
    }
}

/// A signing key as stored: the private part is AEAD-encrypted under the master key.
#[derive(Clone)]
pub struct StoredKey {
    /// RFC 7638 thumbprint of the public JWK.
    pub kid: KeyId,
    pub alg: SigningAlg,
    pub state: KeyState,
    /// The public JWK as JSON (kty, crv/x/y or n/e, kid, use, alg).
    pub public_jwk: String,
    /// nonce || ciphertext || tag of the PKCS#8 private key.
    pub private_key_enc: Vec<u8>,
    /// Identifies the master key that encrypted `private_key_enc`.
    pub enc_key_id: String,
    pub created_at: UnixTime,
    /// When a pending key becomes active (for other states: when it did, or was due to).
    pub activate_at: Option<UnixTime>,
    pub activated_at: Option<UnixTime>,
    pub retired_at: Option<UnixTime>,
    pub removed_at: Option<UnixTime>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("private_key_enc", &"[redacted]")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::SigningAlg;

    #[test]
    fn an_algorithm_sits_at_its_index_in_all() {
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::ALL[alg.index()], alg);
        }
    }
}
