//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when an SSO session ends,
//! each client it issued codes to that registered a `backchannel_logout_uri` receives a
//! signed logout token. Delivery runs in the background (a bounded queue, a few at a time,
//! retried with back-off) and never delays the user's logout.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};
use tracing::{info, warn};

use super::client_registry::ClientRegistry;
use super::sessions::{EndReason, SessionEndListener};
use crate::clock::{Clock, UnixTime};
use crate::crypto::KeyRing;
use crate::domain::{ClientId, SsoSession};

/// Posts a logout token to a client (the adapter makes the HTTP call).
#[async_trait]
pub trait LogoutDelivery: Send + Sync {
    /// `POST uri` with the form `logout_token=...`; `Err` with a reason unless the client
    /// answered 2xx.
    async fn deliver(&self, uri: &str, logout_token: &str) -> Result<(), String>;
}

/// How delivery is paced.
#[derive(Debug, Clone, Copy)]
pub struct BackchannelSettings {
    /// Jobs waiting beyond this are dropped (and logged).
    pub queue: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// The wait before the first retry; doubled each time.
    pub first_retry: Duration,
}

impl Default for BackchannelSettings {
    fn default() -> Self {
        Self {
            queue: 10_000,
            concurrency: 8,
            attempts: 4,
            first_retry: Duration::from_secs(1),
        }
    }
}

/// One logout token to deliver.
#[derive(Debug, Clone)]
struct Job {
    session: SsoSession,
    client_id: ClientId,
}

/// The event a logout token carries.
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token is valid for two minutes.
const LOGOUT_TOKEN_TTL: i64 = 120;

#[derive(Serialize)]
struct LogoutTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: UnixTime,
    exp: UnixTime,
    jti: String,
    sid: &'a str,
    events: serde_json::Value,
}

/// Hears of ended sessions and queues their logout tokens.
pub struct BackchannelLogout {
    tx: mpsc::Sender<Job>,
}

impl BackchannelLogout {
    /// Starts the delivery task.
    pub fn start(
        clients: Arc<ClientRegistry>,
        keys: Arc<KeyRing>,
        delivery: Arc<dyn LogoutDelivery>,
        clock: Arc<dyn Clock>,
        issuer: String,
        settings: BackchannelSettings,
    ) -> Self {
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let worker = Worker {
            clients,
            keys,
            delivery,
            clock,
            issuer,
            settings,
        };
        tokio::spawn(worker.run(rx));
        Self { tx }
    }
}

impl SessionEndListener for BackchannelLogout {
    fn sessions_ended(&self, sessions: Vec<SsoSession>, _reason: EndReason) {
        for session in sessions {
            for client_id in session.clients.clone() {
                let job = Job {
                    session: session.clone(),
                    client_id,
                };
                if let Err(e) = self.tx.try_send(job) {
                    warn!(error = %e, "back-channel logout queue full: a logout token was dropped");
                }
            }
        }
    }
}

struct Worker {
    clients: Arc<ClientRegistry>,
    keys: Arc<KeyRing>,
    delivery: Arc<dyn LogoutDelivery>,
    clock: Arc<dyn Clock>,
    issuer: String,
    settings: BackchannelSettings,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.settings.concurrency.max(1)));
        while let Some(job) = rx.recv().await {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let this = this.clone();
            tokio::spawn(async move {
                this.deliver(job).await;
                drop(permit);
            });
        }
    }

    async fn deliver(&self, job: Job) {
        let client = match self.clients.find(&job.client_id).await {
            Ok(Some(c)) if c.enabled => c,
            Ok(_) => return,
            Err(e) => {
                warn!(error = %e, "back-channel logout: the client could not be read");
                return;
            }
        };
        let Some(uri) = client.oidc.backchannel_logout_uri.clone() else {
            return;
        };
        let mut wait = self.settings.first_retry;
        for attempt in 1..=self.settings.attempts {
            // A fresh token per attempt: each has its own `jti` and lifetime.
            let token = match self.logout_token(&job, client.oidc.id_token_alg) {
                Ok(t) => t,
                Err(e) => {
                    warn!(error = %e, "back-channel logout: the logout token could not be signed");
                    return;
                }
            };
            match self.delivery.deliver(&uri, &token).await {
                Ok(()) => {
                    info!(
                        client_id = job.client_id.as_str(),
                        session_id = job.session.id.as_str(),
                        attempt,
                        "back-channel logout delivered"
                    );
                    return;
                }
                Err(why) if attempt < self.settings.attempts => {
                    warn!(
                        client_id = job.client_id.as_str(),
                        attempt,
                        reason = why.as_str(),
                        "back-channel logout failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
                Err(why) => {
                    warn!(
                        client_id = job.client_id.as_str(),
                        attempt,
                        reason = why.as_str(),
                        "back-channel logout failed; giving up"
                    );
                }
            }
        }
    }

    fn logout_token(&self, job: &Job, alg: crate::domain::SigningAlg) -> anyhow::Result<String> {
        let ring = self
            .keys
            .current()
            .ok_or_else(|| anyhow::anyhow!("no signing keys loaded"))?;
        let key = ring
            .signer(alg)
            .ok_or_else(|| anyhow::anyhow!("no active {alg} key"))?;
        let now = self.clock.now();
        let claims = LogoutTokenClaims {
            iss: &self.issuer,
            sub: job.session.user_id.as_str(),
            aud: job.client_id.as_str(),
            iat: now,
            exp: now + LOGOUT_TOKEN_TTL,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: job.session.id.as_str(),
            events: serde_json::json!({ LOGOUT_EVENT: {} }),
        };
        Ok(key.sign_logout_token(&claims)?)
    }
}
