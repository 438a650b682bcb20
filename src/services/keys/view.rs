//! What the key service answers with and is configured by: the operator's view of a key,
//! of a rotation and of a lifecycle step, and the policy.

use crate::clock::rfc3339;
use crate::domain::{KeyState, SigningAlg, StoredKey, MAX_ACCESS_TOKEN_TTL};

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
    /// Whether access tokens are signed with it: the active key of `keys.signing_alg`. The
    /// active keys of the other algorithms sign ID tokens only.
    pub signs_access_tokens: bool,
}

impl KeyView {
    /// `k` as seen by a service whose access tokens are signed with keys of `access_alg`.
    pub(super) fn of(k: &StoredKey, access_alg: SigningAlg) -> Self {
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
            signs_access_tokens: k.state == KeyState::Active && k.alg == access_alg,
        }
    }
}

/// What a rotation added: `key` is the new key of the access-token algorithm (or of the one
/// algorithm asked for), serialised in place, as a rotation answered when there was one key
/// per deployment; `rotated` lists every key added, `key` first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RotationView {
    #[serde(flatten)]
    pub key: KeyView,
    pub rotated: Vec<KeyView>,
}

impl RotationView {
    /// `None` when nothing was rotated.
    pub(super) fn of(rotated: Vec<KeyView>) -> Option<Self> {
        let key = rotated.first()?.clone();
        Some(Self { key, rotated })
    }
}

/// When keys change state. See README, "Signing-key rotation".
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// The algorithm access tokens are signed with; it always has an active key.
    pub signing_alg: SigningAlg,
    /// The algorithms ID tokens may be asked for (`keys.id_token_algs`); each has an active
    /// key from start-up on, as has RS256 in any case (OpenID Connect's default).
    pub id_token_algs: Vec<SigningAlg>,
    /// Age of an active key at which it is replaced; 0 disables scheduled rotation.
    pub rotation_interval_secs: i64,
    /// How long a new key is published before it signs.
    pub publish_ahead_secs: i64,
    /// How long a retired key stays published: the longest access-token lifetime, plus the
    /// time other instances may still sign with it (reload interval), plus a margin.
    pub retired_grace_secs: i64,
}

impl KeyPolicy {
    /// The algorithms that must have an active key: the access-token algorithm, RS256, and
    /// the ID-token algorithms, in that order, each once.
    pub fn required_algs(&self) -> Vec<SigningAlg> {
        let mut algs = vec![self.signing_alg];
        for alg in std::iter::once(SigningAlg::RS256).chain(self.id_token_algs.iter().copied()) {
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        algs
    }
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            signing_alg: SigningAlg::ES256,
            id_token_algs: vec![SigningAlg::RS256],
            rotation_interval_secs: 0,
            publish_ahead_secs: 7200,
            retired_grace_secs: MAX_ACCESS_TOKEN_TTL + 3600 + 10,
        }
    }
}

/// What one lifecycle step did on this instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    /// The kids of the pending keys this instance created (at most one per algorithm).
    pub created: Vec<String>,
    /// The kids of the pending keys this instance made active (at most one per algorithm).
    pub promoted: Vec<String>,
    /// How many retired keys this instance removed.
    pub removed: u64,
}

impl TickReport {
    pub fn changed(&self) -> bool {
        !self.created.is_empty() || !self.promoted.is_empty() || self.removed > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_required_algorithms_put_the_access_token_one_first_and_always_hold_rs256() {
        let policy = |signing_alg, id_token_algs: &[SigningAlg]| KeyPolicy {
            signing_alg,
            id_token_algs: id_token_algs.to_vec(),
            ..KeyPolicy::default()
        };
        use SigningAlg::*;
        assert_eq!(policy(ES256, &[RS256]).required_algs(), [ES256, RS256]);
        assert_eq!(policy(RS256, &[RS256]).required_algs(), [RS256]);
        assert_eq!(policy(EdDSA, &[]).required_algs(), [EdDSA, RS256]);
        assert_eq!(
            policy(ES256, &[EdDSA, ES256, EdDSA]).required_algs(),
            [ES256, RS256, EdDSA]
        );
    }
}
