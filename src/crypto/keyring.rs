use std::sync::{Arc, RwLock};

use super::SigningKey;
use crate::domain::SigningAlg;

/// An immutable view of the keys in use: the access-token signing key, the active key of
/// every algorithm (for ID tokens), and the published JWKS.
#[derive(Debug)]
pub struct KeyRingSnapshot {
    /// The key access tokens are signed with: the active key of `keys.signing_alg`.
    pub active: Arc<SigningKey>,
    /// The published keys (pending, active, retired), for verification; `active` first.
    pub published: Vec<Arc<SigningKey>>,
    /// The serialised JWKS document, built once per change, in the order of `published`.
    pub jwks_json: Arc<[u8]>,
    /// `kid:state` of every stored key, to tell whether a reload changed anything.
    pub fingerprint: String,
    /// The active key of each algorithm, indexed by `SigningAlg::index`.
    signers: [Option<Arc<SigningKey>>; SigningAlg::ALL.len()],
}

impl KeyRingSnapshot {
    /// A ring whose only signing key is `active`; add the other algorithms' active keys with
    /// `with_signers`.
    pub fn new(
        active: Arc<SigningKey>,
        mut published: Vec<Arc<SigningKey>>,
        fingerprint: String,
    ) -> Self {
        // The access-token key leads the JWKS (and is the first one tried when verifying).
        if let Some(i) = published.iter().position(|k| k.kid() == active.kid()) {
            published[..=i].rotate_right(1);
        } else {
            published.insert(0, active.clone());
        }
        let keys: Vec<&serde_json::Value> = published.iter().map(|k| k.public_jwk()).collect();
        let jwks = serde_json::json!({ "keys": keys }).to_string();
        let mut signers: [Option<Arc<SigningKey>>; SigningAlg::ALL.len()] = Default::default();
        signers[active.alg().index()] = Some(active.clone());
        Self {
            active,
            published,
            jwks_json: Arc::from(jwks.into_bytes()),
            fingerprint,
            signers,
        }
    }

    /// Adds the active key of other algorithms, one per algorithm (a later key of the same
    /// algorithm replaces an earlier one). `active` stays the signer of its own algorithm.
    /// Signers are expected to be among the published keys.
    pub fn with_signers(mut self, signers: impl IntoIterator<Item = Arc<SigningKey>>) -> Self {
        let own = self.active.alg();
        for key in signers.into_iter().filter(|k| k.alg() != own) {
            let at = key.alg().index();
            self.signers[at] = Some(key);
        }
        self
    }

    /// The active key of `alg`, if the ring holds one: what ID tokens of that algorithm are
    /// signed with. For `active.alg()` it is `active`.
    pub fn signer(&self, alg: SigningAlg) -> Option<&SigningKey> {
        self.signers[alg.index()].as_deref()
    }

    /// The algorithms the ring can sign with now, in `SigningAlg::ALL` order.
    pub fn signing_algs(&self) -> impl Iterator<Item = SigningAlg> + '_ {
        SigningAlg::ALL
            .into_iter()
            .filter(|a| self.signers[a.index()].is_some())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(alg: SigningAlg) -> Arc<SigningKey> {
        Arc::new(
            SigningKey::generate(alg)
                .unwrap_or_else(|e| panic!("{alg}: {e}"))
                .0,
        )
    }

    fn jwks_kids(ring: &KeyRingSnapshot) -> Vec<String> {
        let doc: serde_json::Value = serde_json::from_slice(&ring.jwks_json).unwrap_or_default();
        doc["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_ring_holds_one_signer_per_algorithm_and_the_access_token_key_for_its_own() {
        let es = key(SigningAlg::ES256);
        let rs = key(SigningAlg::RS256);
        let other_es = key(SigningAlg::ES256);
        let retired = key(SigningAlg::EdDSA);
        let published = vec![rs.clone(), retired.clone(), other_es.clone(), es.clone()];
        let ring = KeyRingSnapshot::new(es.clone(), published, "fp".into())
            .with_signers([rs.clone(), other_es.clone()]);
        assert_eq!(
            ring.active.kid(),
            es.kid(),
            "the access-token key is unchanged"
        );
        assert_eq!(
            ring.signer(SigningAlg::ES256).map(SigningKey::kid),
            Some(es.kid()),
            "a signer of the access-token algorithm never displaces it"
        );
        assert_eq!(
            ring.signer(SigningAlg::RS256).map(SigningKey::kid),
            Some(rs.kid())
        );
        assert!(
            ring.signer(SigningAlg::EdDSA).is_none(),
            "a retired key never signs"
        );
        assert_eq!(
            ring.signing_algs().collect::<Vec<_>>(),
            [SigningAlg::ES256, SigningAlg::RS256]
        );
        assert_eq!(
            jwks_kids(&ring),
            [es.kid(), rs.kid(), retired.kid(), other_es.kid()],
            "every published key, the access-token key first, the others in their order"
        );
        assert_eq!(ring.published.len(), 4);
    }

    #[test]
    fn a_ring_without_other_signers_signs_with_its_active_key_only() {
        let ed = key(SigningAlg::EdDSA);
        let ring = KeyRingSnapshot::new(ed.clone(), vec![], String::new());
        assert_eq!(
            ring.signer(SigningAlg::EdDSA).map(SigningKey::kid),
            Some(ed.kid())
        );
        assert!(ring.signer(SigningAlg::RS256).is_none());
        assert_eq!(
            jwks_kids(&ring),
            [ed.kid()],
            "the active key is always published"
        );
    }

    #[test]
    fn the_ring_is_swapped_whole() {
        let ring = KeyRing::default();
        assert!(ring.current().is_none() && ring.fingerprint().is_none());
        let es = key(SigningAlg::ES256);
        ring.replace(KeyRingSnapshot::new(es.clone(), vec![es], "a".into()));
        let before = ring.current();
        let ed = key(SigningAlg::EdDSA);
        ring.replace(KeyRingSnapshot::new(ed.clone(), vec![ed], "b".into()));
        assert_eq!(ring.fingerprint().as_deref(), Some("b"));
        assert_eq!(
            before.map(|s| s.fingerprint.clone()).as_deref(),
            Some("a"),
            "a reader keeps the snapshot it took"
        );
    }
}
