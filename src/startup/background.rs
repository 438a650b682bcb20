//! The periodic loops every instance runs beside the HTTP server.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::clock::Clock;
use crate::services::{
    AccountService, ClientRegistry, FederationService, KeyService, RevocationService,
    SessionService,
};

/// Each instance re-reads the keys periodically, so a rotation made elsewhere (CLI, another
/// instance) is picked up within the interval.
pub(super) fn spawn_key_reload(
    keys: Arc<KeyService>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match keys.reload().await {
                Ok(true) => info!("signing keys reloaded"),
                Ok(false) => {}
                Err(e) => warn!(error = %e, "signing key reload failed; keeping the current keys"),
            }
        }
    })
}

/// Each instance runs the key lifecycle step (scheduled rotation, promotion of the pending
/// key, removal of expired retired keys); storage compare-and-set lets exactly one instance
/// perform each transition, and the others pick it up on their next reload.
pub(super) fn spawn_key_lifecycle(
    keys: Arc<KeyService>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = keys.tick().await {
                warn!(error = %e, "signing key lifecycle step failed; retrying on the next tick");
            }
        }
    })
}

/// Authorization codes are kept this long past their expiry, so that a late second use of a
/// used code is still recognised (and what its first use issued revoked).
const KEEP_EXPIRED_CODES_SECS: i64 = 86_400;

/// Deletes refresh-token families past their absolute expiry, authorization codes expired for
/// a day, revocation-log entries whose tokens have all expired, expired or used account
/// tokens, and second-factor enrolments never confirmed, hourly.
pub(super) fn spawn_housekeeping(
    refresh_tokens: Arc<dyn crate::storage::RefreshTokenStore>,
    authorization_codes: Arc<dyn crate::storage::AuthorizationCodeStore>,
    revocations: Arc<RevocationService>,
    accounts: Arc<AccountService>,
    federation: Arc<FederationService>,
    mfa: Arc<crate::services::MfaService>,
    clock: Arc<dyn Clock>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match refresh_tokens.purge_expired(clock.now()).await {
                Ok(0) => {}
                Ok(n) => info!(families = n, "purged expired refresh-token families"),
                Err(e) => warn!(error = %e, "refresh-token housekeeping failed"),
            }
            match authorization_codes
                .purge_expired(clock.now() - KEEP_EXPIRED_CODES_SECS)
                .await
            {
                Ok(0) => {}
                Ok(n) => info!(codes = n, "purged expired authorization codes"),
                Err(e) => warn!(error = %e, "authorization-code housekeeping failed"),
            }
            match revocations.purge_expired().await {
                Ok(0) => {}
                Ok(n) => info!(entries = n, "purged expired revocation-log entries"),
                Err(e) => warn!(error = %e, "revocation-log housekeeping failed"),
            }
            match accounts.purge_expired().await {
                Ok(0) => {}
                Ok(n) => info!(tokens = n, "purged expired account tokens"),
                Err(e) => warn!(error = %e, "account-token housekeeping failed"),
            }
            match federation.purge_expired().await {
                Ok(0) => {}
                Ok(n) => info!(values = n, "purged expired federation states"),
                Err(e) => warn!(error = %e, "federation housekeeping failed"),
            }
            match mfa.purge_pending().await {
                Ok(0) => {}
                Ok(n) => info!(enrolments = n, "purged abandoned second-factor enrolments"),
                Err(e) => warn!(error = %e, "second-factor housekeeping failed"),
            }
        }
    })
}

/// Refreshes the upstream providers' discovery documents and key sets every 30 minutes
/// (federated sign-in), so that sign-ins rarely wait for them.
pub(super) fn spawn_federation_refresh(
    federation: Arc<FederationService>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1800));
        loop {
            tick.tick().await;
            federation.refresh_providers().await;
        }
    })
}

/// Replays new revocation-log entries into the denylist: other instances' revocations, and
/// whatever a Redis that was down or restarted missed. Logs state changes only.
pub(super) fn spawn_denylist_sync(
    revocations: Arc<RevocationService>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut healthy = true;
        loop {
            tick.tick().await;
            match revocations.sync().await {
                Ok(()) if !healthy => {
                    healthy = true;
                    info!("denylist synchronised again");
                }
                Ok(()) => {}
                Err(e) if healthy => {
                    healthy = false;
                    warn!(error = %e, "denylist synchronisation failing; token checks fail closed");
                }
                Err(_) => {}
            }
        }
    })
}

/// Keeps the client cache fresh off the request path (see `ClientRegistry::refresh_cached`).
pub(super) fn spawn_client_cache_refresh(
    clients: Arc<ClientRegistry>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = (clients.ttl() / 2).max(Duration::from_millis(50));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            clients.refresh_cached().await;
        }
    })
}

/// Re-reads the browser origins clients registered (CORS) every few seconds, so a change made
/// elsewhere (the CLI, another instance) is honoured here soon.
pub(super) fn spawn_client_origins_refresh(
    clients: Arc<ClientRegistry>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = clients.refresh_origins().await {
                warn!(error = %e, "reading the clients' allowed origins failed");
            }
        }
    })
}

/// Ends SSO sessions past their expiry every minute, in batches: their refresh-token families
/// are revoked and back-channel logout tokens sent (OIDC Back-Channel Logout: a session that
/// ends by expiry is a logout too). With several instances, each session is taken by one.
pub(super) fn spawn_session_expiry(sessions: Arc<SessionService>) -> tokio::task::JoinHandle<()> {
    const BATCH: u32 = 500;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                match sessions.end_expired(BATCH).await {
                    Ok(n) if n > 0 => {
                        info!(sessions = n, "expired sessions ended");
                        if n < BATCH as usize {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                    Ok(_) => break,
                    Err(e) => {
                        warn!(error = %e, "ending expired sessions failed");
                        break;
                    }
                }
            }
        }
    })
}
