use std::sync::{Arc, RwLock};

use super::SigningKey;

/// An immutable view of the keys in use: the one signing key and the published JWKS.
#[derive(Debug)]
pub struct KeyRingSnapshot {
    pub active: Arc<SigningKey>,
    /// The published keys (pending, active, retired), for verification.
    pub published: Vec<Arc<SigningKey>>,
    /// The serialised JWKS document, built once per change.
    pub jwks_json: Arc<[u8]>,
    /// `kid:state` of every stored key, to tell whether a reload changed anything.
    pub fingerprint: String,
}

impl KeyRingSnapshot {
    pub fn new(
        active: Arc<SigningKey>,
        published: Vec<Arc<SigningKey>>,
        fingerprint: String,
    ) -> Self {
        let keys: Vec<&serde_json::Value> = published.iter().map(|k| k.public_jwk()).collect();
        let jwks = serde_json::json!({ "keys": keys }).to_string();
        Self {
            active,
            published,
            jwks_json: Arc::from(jwks.into_bytes()),
            fingerprint,
        }
    }
}

/// The current key ring, swapped atomically when keys change. Readers take a cheap `Arc`.
#[derive(Debug, Default)]
pub struct KeyRing {
    current: RwLock<Option<Arc<KeyRingSnapshot>>>,
}

impl KeyRing {
    pub fn current(&self) -> Option<Arc<KeyRingSnapshot>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    pub fn replace(&self, snapshot: KeyRingSnapshot) {
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(snapshot));
        }
    }

    pub fn fingerprint(&self) -> Option<String> {
        self.current().map(|s| s.fingerprint.clone())
    }
}
