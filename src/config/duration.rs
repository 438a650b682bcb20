//! The `*_secs` and `*_ms` keys as `Duration`s.
//!
//! A key whose value is an unsigned integer is read by serde straight into a `Duration`
//! (`#[serde(rename = "..._secs", deserialize_with = "secs")]`): it reads a `u64` first, so
//! the accepted values and the messages for the others are those of the integer. A key that
//! takes a signed integer (a lifetime whose rule also names negative values) is read as it is
//! written, and its section's `validate()` converts it once its range is checked.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A whole number of seconds.
pub(super) fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// A whole number of milliseconds.
pub(super) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// Seconds already checked not to be negative.
pub(super) fn checked_secs(secs: i64) -> Duration {
    Duration::from_secs(secs.unsigned_abs())
}
