//! The second-factor store trait (`MfaStore`), re-exported by `storage`. It has a file of its
//! own only to keep `storage/mod.rs` under the 700-line limit; it is a store trait like the
//! others there.

use async_trait::async_trait;

use super::StorageResult;
use crate::clock::UnixTime;
use crate::domain::{FactorId, MfaFactor, UserId};

/// Users' second factors (TOTP authenticators, passkeys) and their recovery codes (only
/// hashes are stored).
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// Stores a pending (unconfirmed) factor. A pending TOTP factor replaces, in the same
    /// transaction, the user's older unconfirmed TOTP factors (never a confirmed one).
    /// `Conflict("mfa_factors_credential_id_key")` when a passkey's credential id is taken.
    async fn create(&self, factor: &MfaFactor) -> StorageResult<()>;
    /// One of the user's factors, confirmed or pending.
    async fn find(&self, user: &UserId, id: &FactorId) -> StorageResult<Option<MfaFactor>>;
    /// The user's factors, confirmed and pending, by `created_at` then id.
    async fn list(&self, user: &UserId) -> StorageResult<Vec<MfaFactor>>;
    /// Confirms a pending factor: `confirmed_at` = `last_used_at` = `now`, `last_step` =
    /// `step`; with `recovery_hashes`, the user's recovery codes are replaced by these in the
    /// same transaction. `Ok(false)` (nothing changed) if the user has no such pending factor
    /// (already confirmed, unknown, another user's).
    async fn confirm(
        &self,
        user: &UserId,
        id: &FactorId,
        step: i64,
        recovery_hashes: Option<&[String]>,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// Compare-and-set against replay: only if the factor is a confirmed TOTP factor of the
    /// user whose `last_step` is below `step`, sets `last_step` = `step` and `last_used_at` =
    /// `now`. Of concurrent callers with the same step, exactly one gets `Ok(true)`.
    async fn use_totp_step(
        &self,
        user: &UserId,
        id: &FactorId,
        step: i64,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// After a passkey was used: stores its `updated` credential (sign counter, backup
    /// state) and `last_used_at` = `now`, only if it is a confirmed passkey of the user whose
    /// credential is still `seen` (compare-and-set: of concurrent uses that read the same
    /// credential, exactly one gets `Ok(true)`).
    async fn use_passkey(
        &self,
        user: &UserId,
        id: &FactorId,
        seen: &str,
        updated: &str,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// Removes one of the user's factors; `Ok(false)` if the user has no such factor.
    async fn delete(&self, user: &UserId, id: &FactorId) -> StorageResult<bool>;
    /// Removes every factor and recovery code of the user (an operator's reset); returns the
    /// number of factors removed.
    async fn delete_all(&self, user: &UserId) -> StorageResult<u64>;
    /// Replaces the user's recovery codes (used or not) by `hashes`, in one transaction.
    /// A hash given twice is stored once.
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: &[String],
        now: UnixTime,
    ) -> StorageResult<()>;
    /// Spends one of the user's unused recovery codes (sets `used_at`): `Ok(true)` once per
    /// code; of concurrent callers with the same code, exactly one wins.
    async fn use_recovery_code(
        &self,
        user: &UserId,
        hash: &str,
        now: UnixTime,
    ) -> StorageResult<bool>;
    /// How many of the user's recovery codes are unused.
    async fn recovery_codes_left(&self, user: &UserId) -> StorageResult<i64>;
    /// Whether one of the user's roles requires a second factor (`roles.require_mfa`).
    async fn required_by_role(&self, user: &UserId) -> StorageResult<bool>;
    /// When the user was first asked to set up a second factor a policy requires: `now` at
    /// the first call (recorded), the recorded time after. The grace period counts from it.
    async fn enrolment_first_asked(&self, user: &UserId, now: UnixTime) -> StorageResult<UnixTime>;
    /// Deletes unconfirmed factors created before `before` (abandoned enrolments), in bounded
    /// batches; returns how many.
    async fn purge_pending(&self, before: UnixTime) -> StorageResult<u64>;
}
