use std::sync::Arc;

use tracing::{info, warn};

use crate::clock::{rfc3339, Clock, UnixTime};
use crate::crypto::{private_key_from_pem, KeyRing, KeyRingSnapshot, MasterKey, SigningKey};
use crate::domain::{KeyId, KeyState, SigningAlg, StoredKey, MAX_ACCESS_TOKEN_TTL};
use crate::storage::{PendingInsert, SigningKeyStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {kid} cannot be used: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("no active signing key")]
    NoActiveKey,
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

/// A key as shown to operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyView {
    pub kid: String,
    pub alg: &'static str,
    pub state: &'static str,
    pub created_at: String,
    /// For a pending key: when it becomes active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activate_at: Option<String>,
    pub activated_at: Option<String>,
    pub retired_at: Option<String>,
}

impl From<&StoredKey> for KeyView {
    fn from(k: &StoredKey) -> Self {
        Self {
            kid: k.kid.to_string(),
            alg: k.alg.as_str(),
            state: k.state.as_str(),
            created_at: rfc3339(k.created_at),
            activate_at: k
                .activate_at
                .filter(|_| k.state == KeyState::Pending)
                .map(rfc3339),
            activated_at: k.activated_at.map(rfc3339),
            retired_at: k.retired_at.map(rfc3339),
        }
    }
}

/// When keys change state. See README, "Signing-key rotation".
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// The algorithm of keys created by scheduled rotation.
    pub signing_alg: SigningAlg,
    /// Age of the active key at which it is replaced; 0 disables scheduled rotation.
    pub rotation_interval_secs: i64,
    /// How long a new key is published before it signs.
    pub publish_ahead_secs: i64,
    /// How long a retired key stays published: the longest access-token lifetime, plus the
    /// time other instances may still sign with it (reload interval), plus a margin.
    pub retired_grace_secs: i64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            signing_alg: SigningAlg::ES256,
            rotation_interval_secs: 0,
            publish_ahead_secs: 7200,
            retired_grace_secs: MAX_ACCESS_TOKEN_TTL + 3600 + 10,
        }
    }
}

/// What one lifecycle step did on this instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    /// The kid of the pending key this instance created.
    pub created: Option<String>,
    /// The kid of the pending key this instance made active.
    pub promoted: Option<String>,
    /// How many retired keys this instance removed.
    pub removed: u64,
}

impl TickReport {
    pub fn changed(&self) -> bool {
        self.created.is_some() || self.promoted.is_some() || self.removed > 0
    }
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
            "another key became active at the same time (another instance or operator); list the keys and try again"
                .into(),
        ),
        other => KeyError::Storage(other),
    }
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

    /// Sets when keys are rotated, promoted and removed.
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
        let result = match active {
            Some(k) if k.alg == alg => Ok(()),
            Some(k) => {
                info!(
                    old_kid = k.kid.as_str(),
                    old_alg = k.alg.as_str(),
                    new_alg = alg.as_str(),
                    "configured signing algorithm changed; rotating to a new key"
                );
                self.rotate(alg).await.map(|_| ())
            }
            None => {
                info!(
                    alg = alg.as_str(),
                    "no signing key yet; generating the first one"
                );
                self.rotate(alg).await.map(|_| ())
            }
        };
        match result {
            // Several instances starting together: another one made its key active first.
            Err(KeyError::Conflict(reason)) => {
                info!(reason, "another instance created the signing key; using it")
            }
            other => other?,
        }
        self.reload().await.map(|_| ())
    }

    /// Adds a new key of `alg` that is active at once; the previous active key is retired
    /// but stays published, and a pending key is withdrawn. An emergency measure: resource
    /// servers with a cached JWKS meet the new `kid` before their cache expires.
    pub async fn rotate(&self, alg: SigningAlg) -> Result<KeyView, KeyError> {
        self.rotate_with(alg, true).await
    }

    /// Adds a new key of `alg`: pending, active after `publish_ahead_secs`, or with `now`
    /// (or when no key is active) active at once.
    pub async fn rotate_with(&self, alg: SigningAlg, now: bool) -> Result<KeyView, KeyError> {
        let (key, der) = generate(alg).await?;
        self.add(key, der, now).await
    }

    /// Imports an operator's private key (PKCS#8, SEC1 or PKCS#1 PEM); its algorithm follows
    /// from the key type. Pending unless `now` (or no key is active).
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

    async fn add(&self, key: SigningKey, der: Vec<u8>, at_once: bool) -> Result<KeyView, KeyError> {
        let now = self.clock.now();
        let keys = self.store.list().await?;
        if let Some(k) = keys.iter().find(|k| k.kid.as_str() == key.kid()) {
            return Err(KeyError::Conflict(format!(
                "key {} is already stored ({})",
                k.kid,
                k.state.as_str()
            )));
        }
        let active = keys.iter().find(|k| k.state == KeyState::Active);
        // A key sealed under another master key than the running instances' could never be
        // opened by them: refuse while the active key cannot be opened with this one.
        if let Some(active) = active {
            self.open(active)?;
        }
        let stored = match active {
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
                        let other = self
                            .store
                            .list()
                            .await?
                            .into_iter()
                            .find(|k| k.state == KeyState::Pending);
                        let detail = other
                            .map(|k| {
                                format!(
                                    "key {} is already pending (active from {})",
                                    k.kid,
                                    k.activate_at.map(rfc3339).unwrap_or_default()
                                )
                            })
                            .unwrap_or_else(|| "another key is already pending".into());
                        return Err(KeyError::Conflict(format!(
                            "{detail}; retire it first, or activate the new key at once with --now"
                        )));
                    }
                    PendingInsert::ActiveChanged => {
                        return Err(KeyError::Conflict(
                            "the active key changed meanwhile; list the keys and try again".into(),
                        ))
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
        Ok(KeyView::from(&stored))
    }

    /// Retires a key. The active key is retired only if a pending key can take over at once
    /// (it is promoted in the same step); otherwise the request is refused, so the service
    /// never lacks an active key. A pending key is withdrawn (it never signed). Retiring a
    /// retired key changes nothing.
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
                let successor = keys
                    .iter()
                    .find(|k| k.state == KeyState::Pending)
                    .ok_or_else(|| {
                        KeyError::Conflict(format!(
                            "key {kid} is the active key and no pending key can take over; \
                             run `keys rotate` (then retire it once the new key is published) \
                             or `keys rotate --now`"
                        ))
                    })?;
                let promoted = self.store.promote(&successor.kid, now).await?;
                if promoted {
                    warn!(
                        retired = kid,
                        active = successor.kid.as_str(),
                        "active key retired; the pending key is active ahead of its schedule"
                    );
                }
                promoted
            }
            KeyState::Retired | KeyState::Removed => return Ok(KeyView::from(key)),
        };
        if !changed {
            return Err(KeyError::Conflict(format!(
                "key {kid} changed state meanwhile; list the keys and try again"
            )));
        }
        self.refresh_ring().await;
        self.view(kid).await
    }

    async fn view(&self, kid: &str) -> Result<KeyView, KeyError> {
        self.store
            .list()
            .await?
            .iter()
            .find(|k| k.kid.as_str() == kid)
            .map(KeyView::from)
            .ok_or_else(|| KeyError::NotFound(kid.to_owned()))
    }

    /// Removes a key for good: it leaves the JWKS, and tokens it signed stop verifying. For a
    /// key that is compromised or can no longer be opened (lost master key). The active key
    /// is only removed with `force`.
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
            match self.rotate(self.policy.signing_alg).await {
                Ok(new) => info!(
                    removed = kid,
                    kid = new.kid.as_str(),
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
        // an active key (a forced removal) the ring keeps its keys until one exists again.
        self.refresh_ring().await;
        let mut view = KeyView::from(key);
        view.state = KeyState::Removed.as_str();
        view.activate_at = None;
        Ok(view)
    }

    pub async fn list(&self) -> Result<Vec<KeyView>, KeyError> {
        Ok(self.store.list().await?.iter().map(KeyView::from).collect())
    }

    /// One lifecycle step, run periodically on every instance (and by tests with a mock
    /// clock): promotes the pending key when its time has come, creates the next pending key
    /// `publish_ahead_secs` before the active key reaches `rotation_interval_secs`, and
    /// removes retired keys whose tokens have all expired. Every transition is a
    /// compare-and-set in storage, so with several instances exactly one performs each.
    pub async fn tick(&self) -> Result<TickReport, KeyError> {
        let now = self.clock.now();
        let keys = self.store.list().await?;
        let active = keys.iter().find(|k| k.state == KeyState::Active);
        let pending = keys.iter().find(|k| k.state == KeyState::Pending);
        let mut report = TickReport::default();
        match (pending, active) {
            (Some(p), _) if p.activate_at.unwrap_or(p.created_at) <= now => {
                // Never promote a key that this instance cannot open (say, imported under
                // another master key); keep signing with the current one, and say so.
                if let Err(e) = self.open(p) {
                    warn!(error = %e, "the pending signing key cannot be opened; not promoting it");
                } else if self.store.promote(&p.kid, now).await? {
                    info!(
                        kid = p.kid.as_str(),
                        retired = active.map(|a| a.kid.as_str()).unwrap_or_default(),
                        "pending signing key is now active"
                    );
                    report.promoted = Some(p.kid.to_string());
                }
            }
            (None, Some(a)) if self.policy.rotation_interval_secs > 0 => {
                let since = a.activated_at.or(a.activate_at).unwrap_or(a.created_at);
                let due = since + self.policy.rotation_interval_secs;
                if now >= due - self.policy.publish_ahead_secs {
                    let (key, der) = generate(self.policy.signing_alg).await?;
                    let activate_at = due.max(now + self.policy.publish_ahead_secs);
                    let stored = self.seal(&key, &der, KeyState::Pending, activate_at)?;
                    if self.store.insert_pending(&stored, &a.kid).await? == PendingInsert::Inserted
                    {
                        info!(
                            kid = stored.kid.as_str(),
                            alg = stored.alg.as_str(),
                            activate_at,
                            "scheduled rotation: new signing key published, pending"
                        );
                        report.created = Some(stored.kid.into_string());
                    }
                }
            }
            _ => {}
        }
        report.removed = self
            .store
            .remove_retired(now - self.policy.retired_grace_secs, now)
            .await?;
        if report.removed > 0 {
            info!(
                count = report.removed,
                "retired signing keys removed from the JWKS"
            );
        }
        if report.changed() {
            self.refresh_ring().await;
        }
        Ok(report)
    }

    /// After a change that is already stored: reloads this instance's ring at once. A
    /// failure (a key that cannot be opened, no active key) keeps the current ring, like
    /// the periodic reload, and does not undo or fail the change.
    async fn refresh_ring(&self) {
        if let Err(e) = self.reload().await {
            warn!(error = %e, "signing keys changed, but the key ring was not reloaded; keeping the current keys");
        }
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
