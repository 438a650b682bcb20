//! `[passwords]`: hashing and the policy for new passwords.

use std::path::PathBuf;

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::crypto::Argon2Settings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    pub argon2: Argon2Settings,
    /// Concurrent argon2 computations; 0 means one per core.
    pub hashing_threads: usize,
    /// Longer passwords are rejected before hashing.
    pub max_length: usize,
    /// Password policy for new passwords (the password grant is not affected).
    pub min_length: usize,
    /// Refuse passwords too similar to the email, username or display name.
    pub reject_similar: bool,
    /// Refuse passwords made only of digits.
    pub reject_numeric: bool,
    /// Refuse the 30,000 most common passwords.
    pub reject_common: bool,
    /// A file of breached passwords (SHA-1 hex, `HASH[:COUNT]`, or plain), refused too.
    pub breach_corpus_file: Option<PathBuf>,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            argon2: Argon2Settings::default(),
            hashing_threads: 0,
            max_length: 1024,
            // OWASP ASVS 4.0 V2.1.1: at least 12 characters.
            min_length: 12,
            reject_similar: true,
            reject_numeric: true,
            reject_common: true,
            breach_corpus_file: None,
        }
    }
}

impl PasswordSettings {
    /// The argon2 parameters and the length limits.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let a = &self.argon2;
        if a.memory_kib < 8 * a.parallelism || a.iterations == 0 || a.parallelism == 0 {
            return Err(invalid("passwords.argon2 parameters are out of range"));
        }
        if self.max_length < 8 {
            return Err(invalid("passwords.max_length must be at least 8"));
        }
        if self.min_length == 0 || self.min_length > self.max_length {
            return Err(invalid(
                "passwords.min_length must be between 1 and passwords.max_length",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env;
    use crate::config::Settings;

    #[test]
    fn boolean_variables_and_the_password_policy_are_validated() {
        let s = Settings::load(
            None,
            env(&[
                ("LATCHKEY_PASSWORD_REJECT_COMMON", "false"),
                ("LATCHKEY_PASSWORD_MIN_LENGTH", "12"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let policy = s.password_policy();
        assert!(!policy.reject_common && policy.reject_similar);
        assert_eq!(policy.min_length, 12);
        for bad in [
            ("LATCHKEY_PASSWORD_REJECT_COMMON", "maybe"),
            ("LATCHKEY_PASSWORD_MIN_LENGTH", "0"),
            ("LATCHKEY_PASSWORD_MIN_LENGTH", "5000"),
        ] {
            assert!(Settings::load(None, env(&[bad])).is_err(), "{bad:?}");
        }
    }
}
