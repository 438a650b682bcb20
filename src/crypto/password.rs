use std::sync::Arc;

use std::sync::{mpsc, Mutex};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{oneshot, Semaphore};

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

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// A hashing thread frees its memory after this long without work.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// argon2id on a fixed pool of `threads` dedicated OS threads. Each thread owns one
/// `memory_kib` buffer that every hash it computes reuses, so memory is bounded by
/// `threads x memory_kib` however many logins arrive, no page is faulted in per hash, and
/// the async workers never run argon2. Callers beyond `threads` wait on a semaphore (cheap,
/// asynchronous) for their turn.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    jobs: Arc<Mutex<mpsc::Sender<Job>>>,
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
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let blocks = params.block_count();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    // The buffer is allocated on first use and released after a quiet
                    // minute, so an idle server holds no argon2 memory.
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv_timeout(IDLE_RELEASE),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => {
                                if memory.len() < blocks {
                                    memory = vec![Block::default(); blocks];
                                }
                                job(&mut memory)
                            }
                            Err(mpsc::RecvTimeoutError::Timeout) => memory = Vec::new(),
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })
                .map_err(|e| {
                    PasswordHashingError::Hash(format!("cannot start a hashing thread: {e}"))
                })?;
        }
        let mut hasher = Self {
            params,
            permits: Arc::new(Semaphore::new(threads)),
            jobs: Arc::new(Mutex::new(tx)),
            dummy_hash: Arc::from(""),
        };
        // Start-up is not a login: the thread that computes the dummy hash lets its buffer go
        // at once instead of after a quiet minute, so a server that just started holds no
        // argon2 memory either.
        let (params, secret) = (
            hasher.params.clone(),
            SecretString::from(super::random_token(24)),
        );
        let dummy = hasher
            .run(move |memory| {
                let phc = hash_with(params, secret.expose_secret(), memory);
                *memory = Vec::new();
                phc
            })
            .await??;
        hasher.dummy_hash = Arc::from(dummy.as_str());
        Ok(hasher)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, PasswordHashingError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordHashingError::Pool)?;
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = done.send(job(memory));
        });
        self.jobs
            .lock()
            .map_err(|_| PasswordHashingError::Pool)?
            .send(job)
            .map_err(|_| PasswordHashingError::Pool)?;
        result.await.map_err(|_| PasswordHashingError::Pool)
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordHashingError> {
        let params = self.params.clone();
        self.run(move |memory| hash_with(params, password.expose_secret(), memory))
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
        self.run(move |memory| {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Ok(Verification::Invalid);
            };
            let ok = verify_with(&parsed, password.expose_secret().as_bytes(), memory);
            if !(ok && real) {
                return Ok(Verification::Invalid);
            }
            let rehashed = if needs_rehash(&parsed, &params) {
                Some(hash_with(params, password.expose_secret(), memory)?)
            } else {
                None
            };
            Ok(Verification::Valid { rehashed })
        })
        .await?
    }
}

/// Computes argon2id into the thread's buffer (grown only for hashes with more memory).
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut [Block],
) -> Result<(), argon2::Error> {
    let needed = params.block_count();
    if memory.len() < needed {
        let mut bigger = vec![Block::default(); needed];
        return argon2.hash_password_into_with_memory(password, salt, out, &mut bigger[..]);
    }
    argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
}

fn hash_with(
    params: Params,
    password: &str,
    memory: &mut [Block],
) -> Result<String, PasswordHashingError> {
    let mut salt_bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt_bytes).map_err(|_| PasswordHashingError::Hash("rng".into()))?;
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| PasswordHashingError::Hash(e.to_string()))?;
    let argon2 = PasswordHasher::argon2(params.clone());
    let mut out = [0u8; 32];
    compute(
        &argon2,
        &params,
        password.as_bytes(),
        &salt_bytes,
        &mut out,
        memory,
    )
    .map_err(|e| PasswordHashingError::Hash(e.to_string()))?;
    let output = argon2::password_hash::Output::new(&out)
        .map_err(|e| PasswordHashingError::Hash(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e: argon2::password_hash::Error| PasswordHashingError::Hash(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Recomputes the stored hash with its own parameters and compares in constant time.
fn verify_with(hash: &PasswordHash<'_>, password: &[u8], memory: &mut [Block]) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = hash
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if compute(&argon2, &params, password, salt, &mut out, memory).is_err() {
        return false;
    }
    super::constant_time_eq(&out, expected.as_bytes())
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
    async fn hashes_interoperate_with_the_reference_phc_implementation() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(cheap(), 1).await.unwrap();
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(256, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = reference.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(matches!(
            hasher.verify(Some(theirs), SecretString::from("pw")).await,
            Ok(Verification::Valid { rehashed: None })
        ));
        let ours = hasher.hash(SecretString::from("pw")).await.unwrap();
        assert!(reference
            .verify_password(b"pw", &PasswordHash::new(&ours).unwrap())
            .is_ok());
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(256, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        match hasher.verify(Some(argon2i), SecretString::from("pw")).await {
            Ok(Verification::Valid { rehashed: Some(h) }) => assert!(h.starts_with("$argon2id$")),
            other => panic!("an argon2i hash verifies and is upgraded: {other:?}"),
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
