//! The `*_secs` and `*_ms` keys as `Duration`s.
//!
//! In a section read straight into its settings, an unsigned key is read by serde into a
//! `Duration` (`#[serde(rename = "..._secs", deserialize_with = "secs")]`): it reads a `u64`
//! first, so the accepted values and the messages for the others are those of the integer.
//! A section with signed keys (lifetimes whose rules also name negative values) or with rules
//! that need another section is read as written (`...Toml`), and its `validate()` converts
//! the values once their rules are checked.

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
