//! Signing keys: one active key per algorithm in use, each with its own lifecycle (pending,
//! active, retired, removed). Access tokens are signed with the active key of
//! `KeyPolicy::signing_alg`; ID tokens with the active key of the algorithm a client asks for.
//! Here: the service, adding keys (rotation, import), retiring and removing them, and loading
//! them into the key ring; `lifecycle.rs`: start-up, `ensure_alg`, rotating every algorithm
//! and the periodic step; `view.rs`: what the service answers with.

use std::sync::Arc;

use tracing::{info, warn};

use crate::clock::{rfc3339, Clock, UnixTime};
use crate::crypto::{private_key_from_pem, KeyRing, KeyRingSnapshot, MasterKey, SigningKey};
use crate::domain::{KeyId, KeyState, SigningAlg, StoredKey};
use crate::storage::{PendingInsert, SigningKeyStore, StorageError};

mod lifecycle;
mod view;

pub use view::{KeyPolicy, KeyView, RotationView, TickReport};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {kid} cannot be used: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("no active {0} signing key (the algorithm access tokens are signed with)")]
    NoActiveKey(SigningAlg),
    #[error("no signing key {0}")]
    NotFound(String),
    #[error("key {0} is the active signing key; removing it needs force (--force, or ?force=true), which activates a new key in its place at once (resource servers with a cached JWKS may meet its kid before their cache expires); prefer retiring it")]
    ActiveKey(String),
    /// The request cannot be carried out in the keys' current state.
    #[error("{0}")]
    Conflict(String),
    /// Invalid input: an unknown algorithm, an unreadable or unsupported key.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// Signing-key management: generation, import, encryption at rest, the lifecycle, and
/// loading into the key ring.
pub struct KeyService {
    store: Arc<dyn SigningKeyStore>,
    master: Arc<MasterKey>,
    ring: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    policy: KeyPolicy,
}

fn storage_conflict(e: StorageError, kid: &str) -> KeyError {
    match e {
        StorageError::Conflict(c) if c == "signing_keys_pkey" => {
            KeyError::Conflict(format!("key {kid} is already stored"))
        }
        StorageError::Conflict(_) => KeyError::Conflict(
            "another key of the same algorithm became active at the same time (another instance or operator); list the keys and try again"
                .into(),
        ),
        other => KeyError::Storage(other),
    }
}

/// The key of `alg` in `state`, if any (there is at most one active and one pending).
fn find(keys: &[StoredKey], alg: SigningAlg, state: KeyState) -> Option<&StoredKey> {
    keys.iter().find(|k| k.alg == alg && k.state == state)
}

/// The refusal of a second pending key of the same algorithm.
fn already_pending(pending: Option<&StoredKey>) -> KeyError {
    let detail = pending
        .map(|k| {
            format!(
                "key {} ({}) is already pending (active from {})",
                k.kid,
                k.alg,
                k.activate_at.map(rfc3339).unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "another key is already pending".into());
    KeyError::Conflict(format!(
        "{detail}; retire it first, or activate the new key at once with --now"
    ))
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
            policy: KeyPolicy::default(),
        }
    }

    /// Sets when keys are rotated, promoted and removed, and which algorithms are in use.
    pub fn with_policy(mut self, policy: KeyPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    pub fn ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }

    fn view_of(&self, k: &StoredKey) -> KeyView {
        KeyView::of(k, self.policy.signing_alg)
    }

    /// Adds a new key of `alg` that is active at once; the previous active key of `alg` is
    /// retired but stays published, and a pending key of `alg` is withdrawn. An emergency
    /// measure: resource servers with a cached JWKS meet the new `kid` before their cache
    /// expires.
    pub async fn rotate(&self, alg: SigningAlg) -> Result<KeyView, KeyError> {
        self.rotate_with(alg, true).await
    }

    /// Adds a new key of `alg`: pending, active after `publish_ahead_secs`, or with `now`
    /// (or when no key of `alg` is active) active at once. Keys of other algorithms are left
    /// alone.
    pub async fn rotate_with(&self, alg: SigningAlg, now: bool) -> Result<KeyView, KeyError> {
        let (key, der) = generate(alg).await?;
        self.add(key, der, now).await
    }

    /// Imports an operator's private key (PKCS#8, SEC1 or PKCS#1 PEM); its algorithm follows
    /// from the key type, and it takes the place of that algorithm's key: pending unless
    /// `now` (or no key of the algorithm is active).
    pub async fn import_pem(&self, pem: &str, now: bool) -> Result<KeyView, KeyError> {
        let (alg, der) =
            private_key_from_pem(pem).map_err(|e| KeyError::Invalid(format!("import: {e}")))?;
        let key = SigningKey::from_pkcs8(alg, &der)
            .map_err(|e| KeyError::Invalid(format!("import: {e}")))?;
        self.add(key, der, now).await
    }

    fn seal(
        &self,
        key: &SigningKey,
        der: &[u8],
        state: KeyState,
        at: UnixTime,
    ) -> Result<StoredKey, KeyError> {
        let sealed = self
            .master
            .encrypt(der, key.kid().as_bytes())
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Ok(StoredKey {
            kid: KeyId::from_trusted(key.kid().to_owned()),
            alg: key.alg(),
            state,
            public_jwk: key.public_jwk().to_string(),
            private_key_enc: sealed,
            enc_key_id: self.master.id().to_owned(),
            created_at: self.clock.now(),
            activate_at: Some(at),
            activated_at: None,
            retired_at: None,
            removed_at: None,
        })
    }

    /// A key sealed under another master key than the running instances' could never be
    /// opened by them: refuses while an active key cannot be opened with this one.
    fn check_master_key(&self, keys: &[StoredKey]) -> Result<(), KeyError> {
        for active in keys.iter().filter(|k| k.state == KeyState::Active) {
            self.open(active)?;
        }
        Ok(())
    }

    async fn add(&self, key: SigningKey, der: Vec<u8>, at_once: bool) -> Result<KeyView, KeyError> {
        let now = self.clock.now();
        let alg = key.alg();
        let keys = self.store.list().await?;
        if let Some(k) = keys.iter().find(|k| k.kid.as_str() == key.kid()) {
            return Err(KeyError::Conflict(format!(
                "key {} is already stored ({})",
                k.kid,
                k.state.as_str()
            )));
        }
        self.check_master_key(&keys)?;
        let stored = match find(&keys, alg, KeyState::Active) {
            Some(active) if !at_once => {
                let activate_at = now + self.policy.publish_ahead_secs;
                let stored = self.seal(&key, &der, KeyState::Pending, activate_at)?;
                match self
                    .store
                    .insert_pending(&stored, &active.kid)
                    .await
                    .map_err(|e| storage_conflict(e, key.kid()))?
                {
                    PendingInsert::Inserted => {}
                    PendingInsert::AnotherPending => {
                        let keys = self.store.list().await?;
                        return Err(already_pending(find(&keys, alg, KeyState::Pending)));
                    }
                    PendingInsert::ActiveChanged => {
                        return Err(KeyError::Conflict(format!(
                            "the active {alg} key changed meanwhile; list the keys and try again"
                        )))
                    }
                }
                info!(
                    kid = stored.kid.as_str(),
                    alg = stored.alg.as_str(),
                    activate_at = activate_at,
                    "new signing key is pending (published, not yet signing)"
                );
                stored
            }
            _ => {
                let mut stored = self.seal(&key, &der, KeyState::Active, now)?;
                self.store
                    .insert_active(&stored, now)
                    .await
                    .map_err(|e| storage_conflict(e, key.kid()))?;
                stored.activated_at = Some(now);
                info!(
                    kid = stored.kid.as_str(),
                    alg = stored.alg.as_str(),
                    "new signing key is active"
                );
                stored
            }
        };
        self.refresh_ring().await;
        Ok(self.view_of(&stored))
    }

    /// Retires a key. An active key is retired only if a pending key of its algorithm can
    /// take over at once (it is promoted in the same step); otherwise the request is refused,
    /// so an algorithm in use never lacks an active key. A pending key is withdrawn (it never
    /// signed). Retiring a retired key changes nothing.
    pub async fn retire(&self, kid: &str) -> Result<KeyView, KeyError> {
        let keys = self.store.list().await?;
        let key = keys
            .iter()
            .find(|k| k.kid.as_str() == kid && k.state != KeyState::Removed)
            .ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
        let now = self.clock.now();
        let changed = match key.state {
            KeyState::Pending => self.store.retire_pending(&key.kid, now).await?,
            KeyState::Active => {
                let alg = key.alg;
                let successor = find(&keys, alg, KeyState::Pending).ok_or_else(|| {
                    KeyError::Conflict(format!(
                        "key {kid} is the active {alg} key and no pending key of {alg} can take \
                         over; run `keys rotate --alg {alg}` (then retire it once the new key is \
                         published) or `keys rotate --alg {alg} --now`"
                    ))
                })?;
                let promoted = self.store.promote(&successor.kid, now).await?;
                if promoted {
                    warn!(
                        retired = kid,
                        active = successor.kid.as_str(),
                        alg = alg.as_str(),
                        "active key retired; the pending key is active ahead of its schedule"
                    );
                }
                promoted
            }
            KeyState::Retired | KeyState::Removed => return Ok(self.view_of(key)),
        };
        if !changed {
            return Err(KeyError::Conflict(format!(
                "key {kid} changed state meanwhile; list the keys and try again"
            )));
        }
        self.refresh_ring().await;
        self.view_by_kid(kid).await
    }

    async fn view_by_kid(&self, kid: &str) -> Result<KeyView, KeyError> {
        self.store
            .list()
            .await?
            .iter()
            .find(|k| k.kid.as_str() == kid)
            .map(|k| self.view_of(k))
            .ok_or_else(|| KeyError::NotFound(kid.to_owned()))
    }

    /// Removes a key for good: it leaves the JWKS, and tokens it signed stop verifying. For a
    /// key that is compromised or can no longer be opened (lost master key). An active key
    /// is only removed with `force`, and a new key of its algorithm is activated first.
    pub async fn remove(&self, kid: &str, force: bool) -> Result<KeyView, KeyError> {
        let keys = self.store.list().await?;
        let key = keys
            .iter()
            .find(|k| k.kid.as_str() == kid && k.state != KeyState::Removed)
            .ok_or_else(|| KeyError::NotFound(kid.to_owned()))?;
        if key.state == KeyState::Active {
            if !force {
                return Err(KeyError::ActiveKey(kid.to_owned()));
            }
            // A compromised active key: activate a replacement first, so that no instance
            // keeps signing with the removed key. When none can be made (the lost-master-key
            // recovery, where the active key cannot be opened), the removal goes on and the
            // instances restarted with the new master key generate one.
            match self.rotate(key.alg).await {
                Ok(new) => info!(
                    removed = kid,
                    kid = new.kid.as_str(),
                    alg = new.alg,
                    "a new signing key replaces the removed active key"
                ),
                Err(e) => warn!(
                    error = %e,
                    "no replacement for the removed active key could be activated; running \
                     instances keep signing with their current key until one is active"
                ),
            }
        }
        let now = self.clock.now();
        if !self.store.mark_removed(&key.kid, now).await? {
            return Err(KeyError::NotFound(kid.to_owned()));
        }
        tracing::warn!(kid, "signing key removed");
        // This instance stops publishing it at once (others at their next reload). Without
        // an active access-token key (a forced removal) the ring keeps its keys until one
        // exists again.
        self.refresh_ring().await;
        let mut view = self.view_of(key);
        view.state = KeyState::Removed.as_str();
        view.activate_at = None;
        view.signs_access_tokens = false;
        Ok(view)
    }

    pub async fn list(&self) -> Result<Vec<KeyView>, KeyError> {
        Ok(self
            .store
            .list()
            .await?
            .iter()
            .map(|k| self.view_of(k))
            .collect())
    }

    /// After a change that is already stored: reloads this instance's ring at once. A
    /// failure (a key that cannot be opened, no active access-token key) keeps the current
    /// ring, like the periodic reload, and does not undo or fail the change.
    async fn refresh_ring(&self) {
        if let Err(e) = self.reload().await {
            warn!(error = %e, "signing keys changed, but the key ring was not reloaded; keeping the current keys");
        }
    }

    /// Re-reads the keys; rebuilds the ring only when something changed. Returns whether it
    /// did. The ring signs access tokens with the active key of `signing_alg` (an error if
    /// there is none) and ID tokens with the active key of each algorithm.
    pub async fn reload(&self) -> Result<bool, KeyError> {
        let stored = self.store.list().await?;
        let fingerprint: String = stored
            .iter()
            .map(|k| format!("{}:{};", k.kid, k.state.as_str()))
            .collect();
        if self.ring.fingerprint().as_deref() == Some(fingerprint.as_str()) {
            return Ok(false);
        }
        let access_alg = self.policy.signing_alg;
        let mut active = None;
        let mut signers = Vec::new();
        let mut published = Vec::new();
        for k in stored.iter().filter(|k| k.state.is_published()) {
            let key = Arc::new(self.open(k)?);
            if k.state == KeyState::Active {
                if k.alg == access_alg && active.is_none() {
                    active = Some(key.clone());
                } else {
                    signers.push(key.clone());
                }
            }
            published.push(key);
        }
        let active = active.ok_or(KeyError::NoActiveKey(access_alg))?;
        self.ring
            .replace(KeyRingSnapshot::new(active, published, fingerprint).with_signers(signers));
        Ok(true)
    }

    fn open(&self, k: &StoredKey) -> Result<SigningKey, KeyError> {
        let unusable = |reason: String| KeyError::Unusable {
            kid: k.kid.to_string(),
            reason,
        };
        let der = self
            .master
            .decrypt(&k.enc_key_id, &k.private_key_enc, k.kid.as_str().as_bytes())
            .map_err(|e| unusable(e.to_string()))?;
        let key = SigningKey::from_pkcs8(k.alg, &der).map_err(|e| unusable(e.to_string()))?;
        if key.kid() != k.kid.as_str() {
            return Err(unusable(
                "the stored kid does not match the key's thumbprint".into(),
            ));
        }
        Ok(key)
    }
}

/// Key generation off the async workers (RSA takes a noticeable time).
async fn generate(alg: SigningAlg) -> Result<(SigningKey, Vec<u8>), KeyError> {
    tokio::task::spawn_blocking(move || SigningKey::generate(alg))
        .await
        .map_err(|e| KeyError::Generate(e.to_string()))?
        .map_err(|e| KeyError::Generate(e.to_string()))
}
