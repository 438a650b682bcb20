//! TOTP secrets at rest: sealed under the master key (AES-256-GCM, as signing keys are), each
//! bound to its factor by the associated data, so that a sealed secret copied onto another
//! factor's row does not open.

use std::sync::Arc;

use super::{MasterKey, TotpSecret};
use crate::domain::{FactorId, MfaFactor};

/// Seals and opens TOTP secrets. Cheap to share.
pub struct TotpVault {
    master: Arc<MasterKey>,
}

impl std::fmt::Debug for TotpVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpVault([redacted])")
    }
}

fn aad(factor: &FactorId) -> Vec<u8> {
    format!("latchkey totp secret v1:{}", factor.as_str()).into_bytes()
}

impl TotpVault {
    pub fn new(master: Arc<MasterKey>) -> Self {
        Self { master }
    }

    /// The sealed secret and the id of the key it is sealed under; `None` if sealing failed.
    pub fn seal(&self, factor: &FactorId, secret: &TotpSecret) -> Option<(Vec<u8>, String)> {
        let sealed = self.master.encrypt(secret.as_bytes(), &aad(factor)).ok()?;
        Some((sealed, self.master.id().to_owned()))
    }

    /// A factor's secret; `None` if it has none or it does not open (corrupt, another key).
    pub fn open(&self, factor: &MfaFactor) -> Option<TotpSecret> {
        let (sealed, key_id) = (factor.secret_enc.as_ref()?, factor.enc_key_id.as_ref()?);
        let plain = self.master.decrypt(key_id, sealed, &aad(&factor.id)).ok()?;
        Some(TotpSecret::from_bytes(plain))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{FactorKind, UserId};

    fn factor(id: FactorId) -> MfaFactor {
        MfaFactor {
            id,
            user_id: UserId::generate(),
            kind: FactorKind::Totp,
            name: "app".into(),
            secret_enc: None,
            enc_key_id: None,
            credential: None,
            credential_id: None,
            confirmed_at: None,
            last_step: 0,
            created_at: 0,
            last_used_at: None,
        }
    }

    #[test]
    fn a_sealed_secret_opens_for_its_own_factor_only() {
        let master = Arc::new(MasterKey::from_bytes(&[7u8; 32]).unwrap());
        let vault = TotpVault::new(master);
        let secret = TotpSecret::generate().unwrap();
        let mut mine = factor(FactorId::generate());
        let (sealed, key) = vault.seal(&mine.id, &secret).unwrap();
        assert_ne!(sealed, secret.as_bytes());
        mine.secret_enc = Some(sealed.clone());
        mine.enc_key_id = Some(key.clone());
        assert_eq!(vault.open(&mine).unwrap().as_bytes(), secret.as_bytes());
        let mut other = factor(FactorId::generate());
        other.secret_enc = Some(sealed);
        other.enc_key_id = Some(key);
        assert!(vault.open(&other).is_none(), "bound to its factor");
        let elsewhere = TotpVault::new(Arc::new(MasterKey::from_bytes(&[8u8; 32]).unwrap()));
        assert!(elsewhere.open(&mine).is_none(), "another master key");
    }
}
