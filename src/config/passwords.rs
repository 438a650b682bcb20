//! `[passwords]`: hashing and the policy for new passwords.

use std::path::PathBuf;

use serde::Deserialize;

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
