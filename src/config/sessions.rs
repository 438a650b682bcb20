//! `[sessions]`: Latchkey's own sign-in session (the browser's cookie) and the authorization
//! codes it hands out.
//!
//! Durations are whole seconds (`remember_for = 1209600`) or a number with a unit
//! (`remember_for = "14d"`; units `s`, `m`, `h`, `d`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{invalid, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however much it is used.
    pub absolute_timeout: Duration,
    /// "Remember me": the cookie persists, and the session lasts (idle and absolute) this long.
    pub remember_for: Duration,
    /// How long an authorization code may be exchanged.
    pub authorization_code_ttl: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(8 * 3600),
            absolute_timeout: Duration::from_secs(24 * 3600),
            remember_for: Duration::from_secs(14 * 86_400),
            authorization_code_ttl: Duration::from_secs(60),
        }
    }
}

/// `[sessions]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SessionsToml {
    #[serde(deserialize_with = "human_duration")]
    idle_timeout: Duration,
    #[serde(deserialize_with = "human_duration")]
    absolute_timeout: Duration,
    #[serde(deserialize_with = "human_duration")]
    remember_for: Duration,
    #[serde(deserialize_with = "human_duration")]
    authorization_code_ttl: Duration,
}

impl Default for SessionsToml {
    fn default() -> Self {
        let d = SessionSettings::default();
        Self {
            idle_timeout: d.idle_timeout,
            absolute_timeout: d.absolute_timeout,
            remember_for: d.remember_for,
            authorization_code_ttl: d.authorization_code_ttl,
        }
    }
}

impl SessionsToml {
    pub(super) fn validate(self) -> Result<SessionSettings, ConfigError> {
        let between = |name: &str, v: Duration, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v.as_secs()) {
                Ok(v)
            } else {
                Err(invalid(format!(
                    "sessions.{name} must be between {lo} and {hi} seconds"
                )))
            }
        };
        const YEAR: u64 = 366 * 86_400;
        let idle_timeout = between("idle_timeout", self.idle_timeout, 60, YEAR)?;
        let absolute_timeout = between("absolute_timeout", self.absolute_timeout, 60, YEAR)?;
        let remember_for = between("remember_for", self.remember_for, 60, YEAR)?;
        let authorization_code_ttl = between(
            "authorization_code_ttl",
            self.authorization_code_ttl,
            5,
            600,
        )?;
        if idle_timeout > absolute_timeout {
            return Err(invalid(
                "sessions.idle_timeout must not exceed sessions.absolute_timeout",
            ));
        }
        Ok(SessionSettings {
            idle_timeout,
            absolute_timeout,
            remember_for,
            authorization_code_ttl,
        })
    }
}

/// Whole seconds, or a string: a number and a unit (`90s`, `30m`, `8h`, `14d`).
pub(super) fn human_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_human(&t).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{t:?} is not a duration (seconds, or a number with s, m, h or d)"
            ))
        }),
    }
}

fn parse_human(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().ok()?;
    let factor = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(factor).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds_or_with_a_unit() {
        assert_eq!(parse_human("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_human("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_human("8h"), Some(Duration::from_secs(28_800)));
        assert_eq!(parse_human("14d"), Some(Duration::from_secs(1_209_600)));
        assert_eq!(parse_human("14 d"), Some(Duration::from_secs(1_209_600)));
        assert_eq!(parse_human("d"), None);
        assert_eq!(parse_human("1w"), None);
        assert_eq!(parse_human("-5s"), None);
    }
}
