use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// argon2id cost parameters (OWASP defaults: 19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordHashingError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing pool is gone")]
    Pool,
}

/// The result of checking a password.
#[derive(Debug)]
pub enum Verification {
    /// The password matched. `rehashed` holds a new PHC string when the stored hash used
    /// other parameters than the current ones.
    Valid {
        rehashed: Option<String>,
    },
    Invalid,
}

/// argon2id hashing on a bounded pool: at most `threads` hashes run at once (each on a
/// blocking thread, holding `memory_kib` of memory); the rest wait their turn without
/// occupying an async worker.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Verified against when the user does not exist, so that unknown accounts cost the same.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub async fn new(
        settings: Argon2Settings,
        threads: usize,
    ) -> Result<Self, PasswordHashingError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| PasswordHashingError::Params(e.to_string()))?;
        let mut hasher = Self {
            params,
            permits: Arc::new(Semaphore::new(threads.max(1))),
            dummy_hash: Arc::from(""),
        };
        let dummy = hasher
            .hash(SecretString::from(super::random_token(24)))
            .await?;
        hasher.dummy_hash = Arc::from(dummy.as_str());
        Ok(hasher)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordHashingError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordHashingError::Pool)?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|_| PasswordHashingError::Pool)
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordHashingError> {
        let params = self.params.clone();
        self.run(move || hash_with(params, password.expose_secret()))
            .await?
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there is no stored
    /// hash (unknown user, federated-only user), so both paths do the same work.
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: SecretString,
    ) -> Result<Verification, PasswordHashingError> {
        let params = self.params.clone();
        let (phc, real) = match stored {
            Some(s) => (s, true),
            None => (self.dummy_hash.to_string(), false),
        };
        self.run(move || {
            let parsed = match PasswordHash::new(&phc) {
                Ok(p) => p,
                Err(_) => return Ok(Verification::Invalid),
            };
            let ok = Self::argon2(params.clone())
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            if !(ok && real) {
                return Ok(Verification::Invalid);
            }
            let rehashed = if needs_rehash(&parsed, &params) {
                Some(hash_with(params, password.expose_secret())?)
            } else {
                None
            };
            Ok(Verification::Valid { rehashed })
        })
        .await?
    }
}

fn hash_with(params: Params, password: &str) -> Result<String, PasswordHashingError> {
    let salt_bytes = {
        let mut b = [0u8; 16];
        aws_lc_rs::rand::fill(&mut b).map_err(|_| PasswordHashingError::Hash("rng".into()))?;
        b
    };
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| PasswordHashingError::Hash(e.to_string()))?;
    PasswordHasher::argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordHashingError::Hash(e.to_string()))
}

fn needs_rehash(hash: &PasswordHash<'_>, current: &Params) -> bool {
    if hash.algorithm != Algorithm::Argon2id.ident() || hash.version != Some(Version::V0x13.into())
    {
        return true;
    }
    match Params::try_from(hash) {
        Ok(p) => {
            p.m_cost() != current.m_cost()
                || p.t_cost() != current.t_cost()
                || p.p_cost() != current.p_cost()
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Settings {
        Argon2Settings {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_password_and_is_rehashed_when_parameters_change() {
        let old = PasswordHasher::new(cheap(), 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let phc = old
            .hash(SecretString::from("correct horse"))
            .await
            .unwrap_or_default();
        assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"));
        assert!(matches!(
            old.verify(Some(phc.clone()), SecretString::from("correct horse"))
                .await,
            Ok(Verification::Valid { rehashed: None })
        ));
        assert!(matches!(
            old.verify(Some(phc.clone()), SecretString::from("wrong"))
                .await,
            Ok(Verification::Invalid)
        ));
        assert!(matches!(
            old.verify(None, SecretString::from("anything")).await,
            Ok(Verification::Invalid)
        ));
        let new = PasswordHasher::new(
            Argon2Settings {
                memory_kib: 512,
                ..cheap()
            },
            1,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        match new
            .verify(Some(phc), SecretString::from("correct horse"))
            .await
        {
            Ok(Verification::Valid { rehashed: Some(h) }) => assert!(h.contains("m=512")),
            other => panic!("expected a rehash, got {other:?}"),
        }
    }
}
