use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{constant_time_eq, sha256_hex};
use crate::domain::{Client, ClientId, ClientKind};
use crate::storage::{ClientStore, StorageError};

/// How the client presented itself at the token endpoint. `Debug` shows no secret: they
/// are `SecretString`s.
#[derive(Debug, Default)]
pub struct ClientCredentials {
    /// From `Authorization: Basic` (client_secret_basic).
    pub basic: Option<(String, SecretString)>,
    /// `client_id` from the body.
    pub body_client_id: Option<String>,
    /// `client_secret` from the body (client_secret_post).
    pub body_secret: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// Unknown, disabled or wrongly authenticated client (always the same answer).
    #[error("client authentication failed")]
    InvalidClient,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Looks clients up by id through a short-lived in-process cache and authenticates them.
///
/// The cache holds a client for `ttl` at most, so a client disabled or re-keyed by another
/// process (the CLI, another instance) stops working within that delay; changes made through
/// this process invalidate the entry at once.
pub struct ClientRegistry {
    store: Arc<dyn ClientStore>,
    ttl: Duration,
    cache: RwLock<HashMap<String, (Instant, Arc<Client>)>>,
    /// The browser origins enabled clients registered (CORS), refreshed in the background.
    origins: RwLock<Arc<HashSet<String>>>,
}

const MAX_CACHED: usize = 10_000;

impl ClientRegistry {
    pub fn new(store: Arc<dyn ClientStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            cache: RwLock::new(HashMap::new()),
            origins: RwLock::new(Arc::new(HashSet::new())),
        }
    }

    /// Whether an enabled client registered the browser origin `origin` (`allowed_origins`).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.origins
            .read()
            .map(|set| set.contains(origin))
            .unwrap_or(false)
    }

    /// Re-reads the origins every enabled client registered. Run at start-up, in the
    /// background, and after a client is changed through this process.
    pub async fn refresh_origins(&self) -> Result<(), StorageError> {
        let clients = self.store.list().await?;
        let set: HashSet<String> = clients
            .iter()
            .filter(|c| c.enabled)
            .flat_map(|c| c.oidc.allowed_origins.iter().cloned())
            .collect();
        if let Ok(mut origins) = self.origins.write() {
            *origins = Arc::new(set);
        }
        Ok(())
    }

    pub async fn find(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StorageError> {
        if !self.ttl.is_zero() {
            if let Ok(cache) = self.cache.read() {
                if let Some((at, client)) = cache.get(id.as_str()) {
                    if at.elapsed() < self.ttl {
                        return Ok(Some(client.clone()));
                    }
                }
            }
        }
        let found = self.store.find(id).await?.map(Arc::new);
        if let (Some(client), false) = (&found, self.ttl.is_zero()) {
            if let Ok(mut cache) = self.cache.write() {
                if cache.len() >= MAX_CACHED {
                    cache.retain(|_, (at, _)| at.elapsed() < self.ttl);
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                }
                cache.insert(id.as_str().to_owned(), (Instant::now(), client.clone()));
            }
        }
        Ok(found)
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Re-reads every cached client. Run every `ttl / 2` in the background, it keeps hot
    /// entries fresh so that requests never wait on the database for a known client, while a
    /// change made elsewhere still shows within `ttl`. On a storage error the entries simply
    /// age out, and requests fall back to reading the store.
    pub async fn refresh_cached(&self) {
        let ids: Vec<String> = match self.cache.read() {
            Ok(cache) => cache.keys().cloned().collect(),
            Err(_) => return,
        };
        for id in ids {
            let Ok(client_id) = ClientId::parse(&id) else {
                continue;
            };
            match self.store.find(&client_id).await {
                Ok(Some(client)) => {
                    if let Ok(mut cache) = self.cache.write() {
                        cache.insert(id, (Instant::now(), Arc::new(client)));
                    }
                }
                Ok(None) => self.invalidate(&client_id),
                Err(e) => {
                    tracing::warn!(error = %e, "client cache refresh failed");
                    return;
                }
            }
        }
    }

    pub fn invalidate(&self, id: &ClientId) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(id.as_str());
        }
    }

    /// Authenticates per RFC 6749 §2.3: exactly one method; confidential clients prove their
    /// secret, public clients present none. Every failure is the same `InvalidClient`.
    pub async fn authenticate(
        &self,
        creds: &ClientCredentials,
    ) -> Result<Arc<Client>, ClientAuthError> {
        let fail = || ClientAuthError::InvalidClient;
        let (client_id, secret) = match (&creds.basic, &creds.body_secret) {
            (Some(_), Some(_)) => {
                return Err(ClientAuthError::InvalidRequest(
                    "use only one client authentication method",
                ))
            }
            (Some((id, secret)), None) => {
                if creds.body_client_id.as_deref().is_some_and(|b| b != id) {
                    return Err(ClientAuthError::InvalidRequest(
                        "client_id in the body does not match the Authorization header",
                    ));
                }
                (id.as_str(), Some(secret))
            }
            (None, secret) => match creds.body_client_id.as_deref() {
                Some(id) => (id, secret.as_ref()),
                None => return Err(fail()),
            },
        };
        let id = ClientId::parse(client_id).map_err(|_| fail())?;
        let Some(client) = self.find(&id).await? else {
            return Err(fail());
        };
        if !client.enabled {
            return Err(fail());
        }
        match (client.kind, secret, &client.secret_hash) {
            (ClientKind::Confidential, Some(secret), Some(stored)) => {
                let presented = sha256_hex(secret.expose_secret().as_bytes());
                if constant_time_eq(presented.as_bytes(), stored.as_bytes()) {
                    Ok(client)
                } else {
                    Err(fail())
                }
            }
            (ClientKind::Public, None, _) => Ok(client),
            _ => Err(fail()),
        }
    }
}
