//! The composition root: the only module that names concrete adapters.

mod background;
mod passkeys;
mod services;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tracing::{info, warn};
use tracing_actix_web::TracingLogger;

use crate::clock::Clock;
use crate::config::Settings;
use crate::http::{self, AdminApi, AppState};
use crate::services::{AdminCredential, AdminGate};
use background::{
    spawn_client_cache_refresh, spawn_client_origins_refresh, spawn_denylist_sync,
    spawn_federation_refresh, spawn_housekeeping, spawn_key_lifecycle, spawn_key_reload,
    spawn_session_expiry,
};

pub use services::{
    build_denylist, build_mailer, build_services, build_session_store, build_throttle,
    connect_stores, load_master_key, Services,
};

/// A bound, not yet running HTTP server.
pub struct Application {
    port: u16,
    /// The admin API's own listener, with `admin.bind`.
    admin_port: Option<u16>,
    server: Server,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Drained before the process exits.
    mailer: Arc<crate::services::Mailer>,
    /// Its work deferred past the answers is waited for before the mail is drained.
    accounts: Arc<crate::services::AccountService>,
    settings: Settings,
}

impl Application {
    pub async fn build(
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<(Self, Services)> {
        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let settings = &settings.with_bound_port(port);
        let services = build_services(settings, clock, true).await?;
        // The Redis denylist is brought up to date with the log before serving; if Redis
        // cannot be reached yet the service starts not ready and every check fails closed
        // until it can. The embedded denylist reads the log in the background (the first
        // tick of the sync task): health, discovery and JWKS answer at once, and a token
        // check waits for the first read (bounded), then fails closed.
        if settings.redis.url.is_some() {
            if let Err(e) = services.revocations.sync().await {
                warn!(error = %e, "denylist not synchronised at start; token checks fail closed until it is");
            }
        }
        let admin_listener = match &settings.admin.bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .with_context(|| format!("cannot listen on {bind} (admin.bind)"))?,
            ),
            None => None,
        };
        let admin_port = match &admin_listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        let admin_api = settings.admin.token.as_ref().map(|token| {
            AdminApi::new(
                AdminGate::new(
                    AdminCredential::new(token),
                    services.throttle.clone(),
                    services.audit.clone(),
                ),
                services.keys.clone(),
                services.admin.clone(),
            )
        });
        let branding = services::branding(&settings.branding)?;
        let new_state = || {
            AppState::new(
                services.tokens.clone(),
                services.accounts.clone(),
                services.authorize.clone(),
                services.sign_in.clone(),
                services.logout.clone(),
                services.mfa.clone(),
                services.revocations.clone(),
                services.introspection.clone(),
                services.keys.ring().clone(),
                services.stores.health.clone(),
                settings.issuer(),
                services::secs(settings.keys.jwks_max_age()),
                settings.server.max_body_bytes,
            )
            .with_trusted_proxies(settings.trusted_proxies())
            .with_branding(&branding)
            .with_federation(services.federation.clone())
        };
        let mut state = new_state();
        let mut admin_state = None;
        match (admin_api, &admin_listener) {
            // The admin API on a listener of its own; the public one answers 404 there.
            (Some(api), Some(_)) => admin_state = Some(web::Data::new(new_state().with_admin(api))),
            (Some(api), None) => state = state.with_admin(api),
            (None, _) => {}
        }
        let state = web::Data::new(state);
        let cors = http::CorsPolicy::new(
            settings.server.cors_allowed_origins.clone(),
            services.clients.clone(),
        );
        if let Err(e) = services.clients.refresh_origins().await {
            tracing::warn!(error = %e, "reading the clients' allowed origins failed");
        }
        let mut server = HttpServer::new(move || {
            let cors = cors.clone();
            App::new()
                .wrap(TracingLogger::<http::RedactedRootSpan>::new())
                .app_data(state.clone())
                .configure(move |cfg| http::routes(cfg, &cors))
        })
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        // SIGTERM and SIGINT stop accepting at once and give the requests in flight this
        // long (actix-web's graceful shutdown); `run_until_stopped` then drains the mail.
        server = server.shutdown_timeout(settings.server.shutdown_timeout.as_secs());
        let admin_server = match (admin_state, admin_listener) {
            (Some(admin_state), Some(l)) => Some(
                HttpServer::new(move || {
                    App::new()
                        .wrap(TracingLogger::<http::RedactedRootSpan>::new())
                        .app_data(admin_state.clone())
                        .configure(http::admin_routes)
                })
                .workers(1)
                .listen(l)?
                .run(),
            ),
            _ => None,
        };
        let server = server.run();
        let mut background = vec![
            spawn_housekeeping(
                services.stores.refresh_tokens.clone(),
                services.stores.authorization_codes.clone(),
                services.revocations.clone(),
                services.accounts.clone(),
                services.federation.clone(),
                services.mfa.clone(),
                services.clock.clone(),
            ),
            spawn_denylist_sync(
                services.revocations.clone(),
                settings.denylist.sync_interval,
            ),
            spawn_key_reload(services.keys.clone(), settings.keys.reload_interval),
            spawn_key_lifecycle(services.keys.clone(), settings.keys.reload_interval),
        ];
        if !services.clients.ttl().is_zero() {
            background.push(spawn_client_cache_refresh(services.clients.clone()));
        }
        background.push(spawn_client_origins_refresh(services.clients.clone()));
        background.push(spawn_session_expiry(services.sessions.clone()));
        if !settings.federation.providers.is_empty() {
            background.push(spawn_federation_refresh(services.federation.clone()));
        }
        if let Some(admin_server) = admin_server {
            info!(address = ?settings.admin.bind, port = ?admin_port, "admin API listening");
            background.push(tokio::spawn(async move {
                if let Err(e) = admin_server.await {
                    tracing::error!(error = %e, "the admin listener stopped");
                }
            }));
        }
        info!(address = %settings.server.bind, port, issuer = settings.issuer(), "Latchkey is listening");
        Ok((
            Self {
                port,
                admin_port,
                server,
                background,
                mailer: services.mailer.clone(),
                accounts: services.accounts.clone(),
                settings: settings.clone(),
            },
            services,
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the admin API's own listener, when `admin.bind` is set.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// The settings in force (the issuer names the bound port when it was derived).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Serves until SIGTERM or SIGINT: the listener closes, requests in flight finish
    /// (within `server.shutdown_timeout`), the account work they deferred past their answers
    /// finishes, then the mail queued is delivered (each within the same time again) before
    /// the background tasks stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let timeout = self.settings.server.shutdown_timeout;
        info!("stopping: requests finished; delivering the queued mail");
        if !self.accounts.settle(timeout).await {
            tracing::warn!(
                timeout_secs = timeout.as_secs(),
                "stopping with account work still running after server.shutdown_timeout"
            );
        }
        if !self.mailer.drain(timeout).await {
            tracing::warn!(
                timeout_secs = timeout.as_secs(),
                "stopping with mail still undelivered after server.shutdown_timeout"
            );
        }
        for task in self.background {
            task.abort();
        }
        info!("stopped");
        result
    }
}
