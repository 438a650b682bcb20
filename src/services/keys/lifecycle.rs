//! The key service over every algorithm at once: making sure the algorithms in use have an
//! active key (start-up, `ensure_alg`), rotating all of them, and the periodic lifecycle step.

use tracing::info;

use super::{already_pending, find, generate, storage_conflict, KeyError, KeyService};
use super::{KeyView, RotationView, TickReport};
use crate::domain::{KeyState, SigningAlg};
use crate::storage::PendingInsert;

impl KeyService {
    /// At start-up: makes sure every algorithm in use (the access-token algorithm, RS256 and
    /// the ID-token algorithms, see `KeyPolicy::required_algs`) has an active key, creating
    /// the missing ones (all of them on first start), then loads the ring. Several instances
    /// starting together create each key once. Keys of other algorithms that are active (an
    /// earlier access-token algorithm, one added by an operator) stay in use.
    pub async fn ensure_signing_keys(&self) -> Result<(), KeyError> {
        let keys = self.store.list().await?;
        // Fail closed: a published key we cannot open (wrong master key, corruption) stops
        // start-up instead of silently dropping it from the JWKS and minting a new one.
        for k in keys.iter().filter(|k| k.state.is_published()) {
            self.open(k)?;
        }
        for alg in self.policy.required_algs() {
            if find(&keys, alg, KeyState::Active).is_none() {
                info!(
                    alg = alg.as_str(),
                    "no active signing key of this algorithm yet; generating one"
                );
                self.activate_first(alg).await?;
            }
        }
        self.reload().await.map(|_| ())
    }

    /// Makes sure `alg` has an active key, creating and activating one at once if it has
    /// none (say, for a client asking for ID tokens of an algorithm no key has yet), and that
    /// this instance's ring signs with it; answers the active key of `alg`. Idempotent, and
    /// safe when several instances ask together: one creates the key, the others use it.
    pub async fn ensure_alg(&self, alg: SigningAlg) -> Result<KeyView, KeyError> {
        let keys = self.store.list().await?;
        let view = match find(&keys, alg, KeyState::Active) {
            Some(active) => self.view_of(active),
            None => {
                self.check_master_key(&keys)?;
                match self.activate_first(alg).await? {
                    Some(created) => created,
                    None => {
                        let keys = self.store.list().await?;
                        let active = find(&keys, alg, KeyState::Active).ok_or_else(|| {
                            KeyError::Conflict(format!(
                                "the active {alg} key changed meanwhile; try again"
                            ))
                        })?;
                        self.view_of(active)
                    }
                }
            }
        };
        self.reload().await?;
        Ok(view)
    }

    /// Creates a key of `alg` and makes it active at once, unless `alg` has an active key by
    /// then (another instance or operator made one first: `None`).
    async fn activate_first(&self, alg: SigningAlg) -> Result<Option<KeyView>, KeyError> {
        let (key, der) = generate(alg).await?;
        let now = self.clock.now();
        let mut stored = self.seal(&key, &der, KeyState::Active, now)?;
        let inserted = self
            .store
            .insert_active_if_none(&stored, now)
            .await
            .map_err(|e| storage_conflict(e, key.kid()))?;
        if !inserted {
            info!(
                alg = alg.as_str(),
                "another instance activated a signing key of this algorithm first; using it"
            );
            return Ok(None);
        }
        stored.activated_at = Some(now);
        info!(
            kid = stored.kid.as_str(),
            alg = alg.as_str(),
            "new signing key is active"
        );
        Ok(Some(self.view_of(&stored)))
    }

    /// What `keys rotate` and the admin API's rotation do: with an algorithm, one new key of
    /// it (`rotate_with`); without, one for every algorithm in use (`rotate_all`).
    pub async fn rotate_keys(
        &self,
        alg: Option<SigningAlg>,
        now: bool,
    ) -> Result<RotationView, KeyError> {
        let rotated = match alg {
            Some(alg) => vec![self.rotate_with(alg, now).await?],
            None => self.rotate_all(now).await?,
        };
        RotationView::of(rotated)
            .ok_or_else(|| KeyError::Conflict("no signing key was rotated".into()))
    }

    /// Rotates every algorithm that has an active key, and the access-token algorithm in any
    /// case (a fresh database has no key yet): one new key each, as `rotate_with` makes it.
    /// Answers the new keys, the access-token algorithm's first. Without `now`, a pending key
    /// of any of these algorithms refuses the whole rotation before anything changed.
    pub async fn rotate_all(&self, now: bool) -> Result<Vec<KeyView>, KeyError> {
        let keys = self.store.list().await?;
        let first = self.policy.signing_alg;
        let algs: Vec<SigningAlg> = std::iter::once(first)
            .chain(
                SigningAlg::ALL
                    .into_iter()
                    .filter(|a| *a != first && find(&keys, *a, KeyState::Active).is_some()),
            )
            .collect();
        if !now {
            if let Some(pending) = keys
                .iter()
                .find(|k| k.state == KeyState::Pending && algs.contains(&k.alg))
            {
                return Err(already_pending(Some(pending)));
            }
        }
        let mut rotated = Vec::with_capacity(algs.len());
        for alg in algs {
            rotated.push(self.rotate_with(alg, now).await?);
        }
        Ok(rotated)
    }

    /// One lifecycle step, run periodically on every instance (and by tests with a mock
    /// clock), for each algorithm on its own: promotes its pending key when its time has
    /// come, creates its next pending key `publish_ahead_secs` before its active key reaches
    /// `rotation_interval_secs`; then removes retired keys whose tokens have all expired.
    /// Every transition is a compare-and-set in storage, so with several instances exactly
    /// one performs each.
    pub async fn tick(&self) -> Result<TickReport, KeyError> {
        let now = self.clock.now();
        let keys = self.store.list().await?;
        let mut report = TickReport::default();
        for alg in SigningAlg::ALL {
            let active = find(&keys, alg, KeyState::Active);
            match (find(&keys, alg, KeyState::Pending), active) {
                (Some(p), _) if p.activate_at.unwrap_or(p.created_at) <= now => {
                    // Never promote a key that this instance cannot open (say, imported under
                    // another master key); keep signing with the current one, and say so.
                    if let Err(e) = self.open(p) {
                        tracing::warn!(error = %e, "the pending signing key cannot be opened; not promoting it");
                    } else if self.store.promote(&p.kid, now).await? {
                        info!(
                            kid = p.kid.as_str(),
                            alg = alg.as_str(),
                            retired = active.map(|a| a.kid.as_str()).unwrap_or_default(),
                            "pending signing key is now active"
                        );
                        report.promoted.push(p.kid.to_string());
                    }
                }
                (None, Some(a)) if self.policy.rotation_interval_secs > 0 => {
                    let since = a.activated_at.or(a.activate_at).unwrap_or(a.created_at);
                    let due = since + self.policy.rotation_interval_secs;
                    if now >= due - self.policy.publish_ahead_secs {
                        let (key, der) = generate(alg).await?;
                        let activate_at = due.max(now + self.policy.publish_ahead_secs);
                        let stored = self.seal(&key, &der, KeyState::Pending, activate_at)?;
                        if self.store.insert_pending(&stored, &a.kid).await?
                            == PendingInsert::Inserted
                        {
                            info!(
                                kid = stored.kid.as_str(),
                                alg = alg.as_str(),
                                activate_at,
                                "scheduled rotation: new signing key published, pending"
                            );
                            report.created.push(stored.kid.into_string());
                        }
                    }
                }
                _ => {}
            }
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
}
