use std::sync::Arc;

use tracing::info;

use crate::clock::{rfc3339, Clock};
use crate::crypto::{KeyRing, KeyRingSnapshot, MasterKey, SigningKey};
use crate::domain::{KeyState, SigningAlg, StoredKey};
use crate::storage::{SigningKeyStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {kid} cannot be used: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("no active signing key")]
    NoActiveKey,
    #[error("no signing key {0}")]
    NotFound(String),
    #[error("key {0} is the active signing key; pass --force to remove it anyway (a new key is generated on the next start)")]
    ActiveKey(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// A key as shown to operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyView {
    pub kid: String,
    pub alg: &'static str,
    pub state: &'static str,
    pub created_at: String,
    pub activated_at: Option<String>,
    pub retired_at: Option<String>,
}

impl From<&StoredKey> for KeyView {
    fn from(k: &StoredKey) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.as_str(),
            state: k.state.as_str(),
            created_at: rfc3339(k.created_at),
            activated_at: k.activated_at.map(rfc3339),
            retired_at: k.retired_at.map(rfc3339),
        }
    }
}

/// Signing-key management: generation, encryption at rest, loading into the key ring.
pub struct KeyService {
    store: Arc<dyn SigningKeyStore>,
    master: Arc<MasterKey>,
    ring: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
}

impl KeyService {
    pub fn new(
        store: Arc<dyn SigningKeyStore>,
        master: Arc<MasterKey>,
        ring: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            master,
            ring,
            clock,
        }
    }

    pub fn ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }

    /// Makes sure an active key of `alg` exists (creating one on first start, or when the
    /// configured algorithm changed), then loads the ring.
    pub async fn ensure_signing_key(&self, alg: SigningAlg) -> Result<(), KeyError> {
        let keys = self.store.list().await?;
        // Fail closed: a published key we cannot open (wrong master key, corruption) stops
        // start-up instead of silently dropping it from the JWKS and minting a new one.
        for k in keys.iter().filter(|k| k.state.is_published()) {
            self.open(k)?;
        }
        let active = keys.iter().find(|k| k.state == KeyState::Active);
        match active {
            Some(k) if k.alg == alg => {}
            Some(k) => {
                info!(
                    old_kid = k.kid.as_str(),
                    old_alg = k.alg.as_str(),
                    new_alg = alg.as_str(),
                    "configured signing algorithm changed; rotating to a new key"
                );
                self.rotate(alg).await?;
            }
            None => {
                info!(
                    alg = alg.as_str(),
                    "no signing key yet; generating the first one"
                );
                self.rotate(alg).await?;
            }
        }
        self.reload().await.map(|_| ())
    }

    /// Adds a new active key of `alg`; the previous active key is retired but stays published.
    pub async fn rotate(&self, alg: SigningAlg) -> Result<KeyView, KeyError> {
        let (key, der) = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
            .await
            .map_err(|e| KeyError::Generate(e.to_string()))?
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        let sealed = self
            .master
            .encrypt(&der, key.kid().as_bytes())
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        let now = self.clock.now();
        let stored = StoredKey {
            kid: key.kid().to_owned(),
            alg,
            state: KeyState::Active,
            public_jwk: key.public_jwk().to_string(),
            private_key_enc: sealed,
            enc_key_id: self.master.id().to_owned(),
            created_at: now,
            activated_at: Some(now),
            retired_at: None,
            removed_at: None,
        };
        self.store.insert_active(&stored, now).await?;
        info!(
            kid = stored.kid.as_str(),
            alg = alg.as_str(),
            "new signing key is active"
        );
        self.reload().await?;
        Ok(KeyView::from(&stored))
    }

    /// Removes a key for good: it leaves the JWKS, and tokens it signed stop verifying. For a
    /// key that is compromised or can no longer be opened (lost master key). The active key
    /// is only removed with `force`.
    pub async fn remove(&self, kid: &str, force: bool) -> Result<KeyView, KeyError> {
        let keys = self.store.list().await?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid && k.state != KeyState::Removed)
            .ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
        if key.state == KeyState::Active && !force {
            return Err(KeyError::ActiveKey(kid.to_owned()));
        }
        let now = self.clock.now();
        if !self.store.mark_removed(kid, now).await? {
            return Err(KeyError::NotFound(kid.to_owned()));
        }
        tracing::warn!(kid, "signing key removed");
        let mut view = KeyView::from(key);
        view.state = KeyState::Removed.as_str();
        Ok(view)
    }

    pub async fn list(&self) -> Result<Vec<KeyView>, KeyError> {
        Ok(self.store.list().await?.iter().map(KeyView::from).collect())
    }

    /// Re-reads the keys; rebuilds the ring only when something changed. Returns whether it did.
    pub async fn reload(&self) -> Result<bool, KeyError> {
        let stored = self.store.list().await?;
        let fingerprint: String = stored
            .iter()
            .map(|k| format!("{}:{};", k.kid, k.state.as_str()))
            .collect();
        if self.ring.fingerprint().as_deref() == Some(fingerprint.as_str()) {
            return Ok(false);
        }
        let mut active = None;
        let mut published = Vec::new();
        for k in stored.iter().filter(|k| k.state.is_published()) {
            let key = Arc::new(self.open(k)?);
            if k.state == KeyState::Active && active.is_none() {
                active = Some(key.clone());
            }
            published.push(key);
        }
        let active = active.ok_or(KeyError::NoActiveKey)?;
        self.ring
            .replace(KeyRingSnapshot::new(active, published, fingerprint));
        Ok(true)
    }

    fn open(&self, k: &StoredKey) -> Result<SigningKey, KeyError> {
        let unusable = |reason: String| KeyError::Unusable {
            kid: k.kid.clone(),
            reason,
        };
        let der = self
            .master
            .decrypt(&k.enc_key_id, &k.private_key_enc, k.kid.as_bytes())
            .map_err(|e| unusable(e.to_string()))?;
        let key = SigningKey::from_pkcs8(k.alg, &der).map_err(|e| unusable(e.to_string()))?;
        if key.kid() != k.kid {
            return Err(unusable(
                "the stored kid does not match the key's thumbprint".into(),
            ));
        }
        Ok(key)
    }
}
