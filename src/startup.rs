//! The composition root: the only module that names concrete adapters.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use secrecy::ExposeSecret;
use tracing::{info, warn};
use tracing_actix_web::TracingLogger;

use crate::clock::Clock;
use crate::config::{Profile, Settings, VerificationPolicy};
use crate::crypto::{
    AccountTokenCodec, BreachCorpus, KeyRing, MasterKey, PasswordHasher, RefreshTokenCodec,
};
use crate::http::{self, AdminApi, AppState};
use crate::services::{
    AccessTokenVerifier, AccountPolicy, AccountService, AdminCredential, AdminGate, AdminService,
    AuditLog, Authenticator, AuthnSettings, ClientRegistry, IntrospectionService, KeyPolicy,
    KeyService, Mailer, PasswordRules, RevocationService, Stores, TokenService,
    TokenServiceSettings,
};
use crate::storage::group_commit::GroupCommitLog;
use crate::storage::memory::EmbeddedDenylist;
use crate::storage::redis::{RedisDenylist, RedisSettings};
use crate::storage::sql::{PgStore, SqliteStore};
use crate::storage::TokenDenylist;

/// Connects to the configured database, applies migrations, and returns the stores. Appends
/// to the revocation log go through a group-commit writer (see `storage::group_commit`).
pub async fn connect_stores(settings: &Settings) -> anyhow::Result<Stores> {
    let mut stores = connect_sql_stores(settings).await?;
    stores.revocations = Arc::new(GroupCommitLog::new(stores.revocations, 1000));
    Ok(stores)
}

async fn connect_sql_stores(settings: &Settings) -> anyhow::Result<Stores> {
    let url = settings.database.url.as_str();
    let max = settings.database.max_connections;
    if url.starts_with("sqlite:") {
        let store = SqliteStore::connect(url, max)
            .await
            .with_context(|| format!("cannot open the SQLite database {url}"))?;
        store.migrate().await.context("SQLite migrations failed")?;
        Ok(stores_from(Arc::new(store)))
    } else {
        let store = PgStore::connect(url, max)
            .await
            .context("cannot connect to PostgreSQL (LATCHKEY_DATABASE_URL)")?;
        store
            .migrate()
            .await
            .context("PostgreSQL migrations failed")?;
        Ok(stores_from(Arc::new(store)))
    }
}

fn stores_from<S>(s: Arc<S>) -> Stores
where
    S: crate::storage::UserStore
        + crate::storage::RoleStore
        + crate::storage::ClientStore
        + crate::storage::SigningKeyStore
        + crate::storage::RefreshTokenStore
        + crate::storage::RevocationStore
        + crate::storage::HealthCheck
        + crate::storage::AccountTokenStore
        + crate::storage::AuditStore
        + 'static,
{
    Stores {
        users: s.clone(),
        roles: s.clone(),
        clients: s.clone(),
        keys: s.clone(),
        refresh_tokens: s.clone(),
        revocations: s.clone(),
        account_tokens: s.clone(),
        audit: s.clone(),
        health: s,
    }
}

/// The denylist: Redis when configured (shared by every instance), else the embedded one.
pub fn build_denylist(
    settings: &Settings,
    stores: &Stores,
) -> anyhow::Result<Arc<dyn TokenDenylist>> {
    Ok(match &settings.redis.url {
        Some(url) => Arc::new(
            RedisDenylist::new(
                url.expose_secret(),
                &RedisSettings {
                    key_prefix: settings.redis.key_prefix.clone(),
                    timeout: Duration::from_millis(settings.redis.timeout_ms),
                },
                stores.revocations.clone(),
            )
            .context("LATCHKEY_REDIS_URL")?,
        ),
        None => Arc::new(EmbeddedDenylist::new(
            stores.revocations.clone(),
            Duration::from_millis(settings.denylist.max_staleness_ms),
        )),
    })
}

/// The brute-force throttle: counters in Redis when `redis.url` is set (shared by every
/// instance, keys under `<redis.key_prefix>throttle:`), with this instance's in-process
/// counters as the fallback while Redis is unreachable; in process only otherwise.
pub fn build_throttle(
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<crate::services::Throttle>> {
    use crate::storage::RateLimitStore;
    let t = &settings.throttle;
    let policy = crate::services::ThrottlePolicy {
        enabled: t.enabled,
        login_free_failures: t.login_free_failures,
        login_window_secs: t.login_window_secs,
        login_backoff_base_secs: t.login_backoff_base_secs,
        login_lockout_secs: t.login_lockout_secs,
        account_max_failures: t.account_max_failures,
        account_window_secs: t.account_window_secs,
        trusted_ip_ttl_secs: t.trusted_ip_ttl_secs,
        ip_max_failures: t.ip_max_failures,
        ip_window_secs: t.ip_window_secs,
        email_cooldown_secs: t.email_cooldown_secs,
        email_daily_cap: t.email_daily_cap,
        ip_daily_cap: t.ip_daily_cap,
        signup_per_ip_per_hour: t.signup_per_ip_per_hour,
        login_concurrency: usize::try_from(t.login_concurrency_per_account).unwrap_or(1),
        network_concurrency: usize::try_from(t.login_concurrency_per_network).unwrap_or(1),
        admin_max_failures: t.admin_max_failures,
        user_requests_per_minute: t.user_requests_per_minute,
        client_requests_per_minute: t.client_requests_per_minute,
        revocations_per_client_per_minute: t.revocations_per_client_per_minute,
        introspections_per_client_per_minute: t.introspections_per_client_per_minute,
    };
    let max_entries = usize::try_from(t.memory_max_entries).unwrap_or(usize::MAX);
    let local: Arc<dyn RateLimitStore> = Arc::new(
        crate::storage::memory::MemoryRateLimitStore::new(max_entries),
    );
    let shared: Arc<dyn RateLimitStore> = match &settings.redis.url {
        Some(url) => Arc::new(
            crate::storage::redis::RedisRateLimitStore::new(
                url.expose_secret(),
                &RedisSettings {
                    key_prefix: settings.redis.key_prefix.clone(),
                    timeout: Duration::from_millis(settings.redis.timeout_ms),
                },
            )
            .context("LATCHKEY_REDIS_URL")?,
        ),
        None => local.clone(),
    };
    Ok(Arc::new(crate::services::Throttle::new(
        shared, local, clock, policy,
    )))
}

/// The master key: from configuration, else (development only) from the key file, which is
/// generated with mode 0600 on first start.
pub fn load_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(k) = &settings.keys.master_key {
        return MasterKey::from_base64(k.expose_secret()).context("LATCHKEY_MASTER_KEY is invalid");
    }
    if settings.server.profile == Profile::Production {
        anyhow::bail!("the production profile requires LATCHKEY_MASTER_KEY");
    }
    let path = settings.keys.master_key_file.as_path();
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return MasterKey::from_base64(&text)
            .with_context(|| format!("the master key in {} is invalid", path.display()));
    }
    let encoded = MasterKey::generate_base64();
    write_private_file(path, &encoded)?;
    warn!(
        path = %path.display(),
        "generated a new master key file for development; back it up, and set LATCHKEY_MASTER_KEY in production"
    );
    MasterKey::from_base64(&encoded).context("generated master key is invalid")
}

fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(())
}

/// The mailer: the configured transport (SMTP, or the development outbox), the templates
/// (built in, overridden from `mail.templates_dir`) and the delivery queue, whose worker it
/// starts: call it inside a tokio runtime.
pub fn build_mailer(settings: &Settings) -> anyhow::Result<Arc<crate::services::Mailer>> {
    use crate::config::MailTransportKind;
    use crate::mail::{OutboxTransport, SmtpTransport};
    use crate::services::{MailTransport, Mailer, MailerOptions};
    let mail = &settings.mail;
    let templates =
        crate::mail::load_templates(mail.templates_dir.as_deref()).context("mail.templates_dir")?;
    let options = MailerOptions {
        from: mail.from.clone(),
        product_name: mail.product_name.trim().to_owned(),
        queue_capacity: mail.queue_capacity,
        ..MailerOptions::default()
    };
    let transport: Arc<dyn MailTransport> = match mail.transport {
        MailTransportKind::Smtp => Arc::new(
            SmtpTransport::new(mail, u32::try_from(options.concurrency).unwrap_or(4))
                .context("mail.smtp_*")?,
        ),
        MailTransportKind::Outbox => {
            if settings.server.profile == Profile::Production {
                warn!(
                    dir = %mail.outbox_dir.display(),
                    "mail.transport is outbox in the production profile: no mail leaves this host, and sign-in links are logged; set mail.transport = \"smtp\""
                );
            }
            Arc::new(
                OutboxTransport::new(&mail.outbox_dir, Arc::new(crate::clock::SystemClock))
                    .with_context(|| format!("cannot create {}", mail.outbox_dir.display()))?,
            )
        }
    };
    Ok(Arc::new(Mailer::start(templates, transport, options)))
}

/// Every service, wired to the configured stores.
pub struct Services {
    pub stores: Stores,
    pub accounts: Arc<AccountService>,
    pub mailer: Arc<Mailer>,
    pub clients: Arc<ClientRegistry>,
    pub tokens: Arc<TokenService>,
    pub admin: Arc<AdminService>,
    pub keys: Arc<KeyService>,
    pub revocations: Arc<RevocationService>,
    pub introspection: Arc<IntrospectionService>,
    pub verifier: Arc<AccessTokenVerifier>,
    pub throttle: Arc<crate::services::Throttle>,
    pub audit: Arc<AuditLog>,
    pub clock: Arc<dyn Clock>,
}

/// Builds the services. `with_keys` also makes sure a signing key exists and loads the ring.
pub async fn build_services(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    with_keys: bool,
) -> anyhow::Result<Services> {
    let stores = connect_stores(settings).await?;
    let master = Arc::new(load_master_key(settings)?);
    let hasher = PasswordHasher::new(settings.passwords.argon2, settings.hashing_threads())
        .await
        .context("password hasher")?;
    let registry = Arc::new(ClientRegistry::new(
        stores.clients.clone(),
        Duration::from_millis(settings.tokens.client_cache_ttl_ms),
    ));
    let refresh_codec = Arc::new(RefreshTokenCodec::new(&master));
    let account_codec = Arc::new(AccountTokenCodec::new(&master));
    let ring = Arc::new(KeyRing::default());
    let keys = Arc::new(
        KeyService::new(stores.keys.clone(), master, ring.clone(), clock.clone())
            .with_policy(key_policy(settings)),
    );
    if with_keys {
        keys.ensure_signing_key(settings.keys.signing_alg)
            .await
            .context("loading signing keys")?;
    }
    let denylist = build_denylist(settings, &stores)?;
    let verifier = Arc::new(AccessTokenVerifier::new(
        ring.clone(),
        denylist.clone(),
        registry.clone(),
        clock.clone(),
        settings.issuer().to_owned(),
    ));
    let throttle = build_throttle(settings, clock.clone())?;
    let revocations = Arc::new(RevocationService::new(
        stores.revocations.clone(),
        denylist,
        stores.refresh_tokens.clone(),
        registry.clone(),
        verifier.clone(),
        refresh_codec.clone(),
        clock.clone(),
        settings.access_token_horizon(),
        settings.tokens.introspection_scope.clone(),
        throttle.clone(),
    ));
    let introspection = Arc::new(IntrospectionService::new(
        registry.clone(),
        verifier.clone(),
        stores.refresh_tokens.clone(),
        refresh_codec.clone(),
        clock.clone(),
        settings.issuer().to_owned(),
        settings.tokens.introspection_scope.clone(),
        throttle.clone(),
    ));
    let breach_corpus = Arc::new(match &settings.passwords.breach_corpus_file {
        Some(path) => {
            let corpus = BreachCorpus::load(path).context("passwords.breach_corpus_file")?;
            info!(entries = corpus.len(), "breach corpus loaded");
            corpus
        }
        None => BreachCorpus::default(),
    });
    let password_rules = Arc::new(PasswordRules::new(
        settings.password_policy(),
        breach_corpus,
    ));
    let audit = Arc::new(AuditLog::new(stores.audit.clone(), clock.clone()));
    let mailer = build_mailer(settings)?;
    let authn = Arc::new(Authenticator::new(
        stores.users.clone(),
        stores.account_tokens.clone(),
        hasher.clone(),
        account_codec.clone(),
        throttle.clone(),
        audit.clone(),
        revocations.clone(),
        clock.clone(),
        AuthnSettings {
            password_max_length: settings.passwords.max_length,
            require_verified_email: settings.accounts.email_verification
                == VerificationPolicy::Mandatory,
            magic_links: settings.accounts.magic_links,
        },
    ));
    let accounts = Arc::new(AccountService::new(
        stores.clone(),
        authn.clone(),
        hasher.clone(),
        password_rules.clone(),
        revocations.clone(),
        throttle.clone(),
        mailer.clone(),
        audit.clone(),
        account_codec,
        clock.clone(),
        account_policy(settings),
    ));
    let tokens = Arc::new(TokenService::new(
        stores.users.clone(),
        stores.refresh_tokens.clone(),
        registry.clone(),
        ring,
        refresh_codec,
        revocations.clone(),
        authn,
        throttle.clone(),
        clock.clone(),
        TokenServiceSettings {
            issuer: settings.issuer().to_owned(),
            default_audience: settings.default_audience().to_owned(),
            access_token_ttl: settings.tokens.access_token_ttl_secs,
            refresh_idle_ttl: settings.tokens.refresh_idle_ttl_secs,
            refresh_absolute_ttl: settings.tokens.refresh_absolute_ttl_secs,
        },
    ));
    let admin = Arc::new(AdminService::new(
        stores.clone(),
        hasher,
        registry.clone(),
        revocations.clone(),
        clock.clone(),
        password_rules.clone(),
    ));
    Ok(Services {
        stores,
        accounts,
        mailer,
        clients: registry,
        tokens,
        admin,
        keys,
        revocations,
        introspection,
        verifier,
        throttle,
        audit,
        clock,
    })
}

/// The rules of self-service accounts, from the settings; links default to Latchkey's own
/// pages.
fn account_policy(settings: &Settings) -> AccountPolicy {
    let a = &settings.accounts;
    let issuer = settings.issuer();
    AccountPolicy {
        signup: a.signup,
        verification: a.email_verification,
        verification_ttl: a.verification_ttl_secs,
        reset_ttl: a.reset_ttl_secs,
        magic_link_ttl: a.magic_link_ttl_secs,
        invite_ttl: a.invite_ttl_secs,
        magic_links: a.magic_links,
        profile_attributes: a.profile_attributes.iter().cloned().collect(),
        verify_url: a
            .verify_url
            .clone()
            .unwrap_or_else(|| format!("{issuer}/api/v1/email/verify?token={{token}}")),
        reset_url: a
            .reset_url
            .clone()
            .unwrap_or_else(|| format!("{issuer}/api/v1/password/reset?token={{token}}")),
        invite_url: a
            .invite_url
            .clone()
            .unwrap_or_else(|| format!("{issuer}/api/v1/signup/invitation?token={{token}}")),
        magic_link_url: a.magic_link_url.clone(),
    }
}

/// The key lifecycle rules, from the settings.
fn key_policy(settings: &Settings) -> KeyPolicy {
    KeyPolicy {
        signing_alg: settings.keys.signing_alg,
        rotation_interval_secs: settings.keys.rotation_interval_secs,
        publish_ahead_secs: settings.keys.publish_ahead_secs,
        retired_grace_secs: settings.keys.retired_grace_secs(),
    }
}

/// A bound, not yet running HTTP server.
pub struct Application {
    port: u16,
    /// The admin API's own listener, with `admin.bind`.
    admin_port: Option<u16>,
    server: Server,
    background: Vec<tokio::task::JoinHandle<()>>,
    settings: Settings,
}

impl Application {
    pub async fn build(
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<(Self, Services)> {
        let listener = TcpListener::bind(&settings.server.bind)
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let settings = &settings.with_bound_port(port);
        let services = build_services(settings, clock, true).await?;
        // Read the revocation log before serving; if the denylist cannot be reached yet the
        // service starts not ready and every check fails closed until it can.
        if let Err(e) = services.revocations.sync().await {
            warn!(error = %e, "denylist not synchronised at start; token checks fail closed until it is");
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
            )
        });
        let new_state = || {
            AppState::new(
                services.tokens.clone(),
                services.accounts.clone(),
                services.revocations.clone(),
                services.introspection.clone(),
                services.keys.ring().clone(),
                services.stores.health.clone(),
                settings.issuer(),
                settings.keys.jwks_max_age_secs(),
                settings.server.max_body_bytes,
            )
            .with_trusted_proxies(settings.trusted_proxies())
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
        let cors = settings.server.cors_allowed_origins.clone();
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
                services.revocations.clone(),
                services.accounts.clone(),
                services.clock.clone(),
            ),
            spawn_denylist_sync(
                services.revocations.clone(),
                Duration::from_millis(settings.denylist.sync_interval_ms),
            ),
            spawn_key_reload(
                services.keys.clone(),
                Duration::from_secs(settings.keys.reload_interval_secs),
            ),
            spawn_key_lifecycle(
                services.keys.clone(),
                Duration::from_secs(settings.keys.reload_interval_secs),
            ),
        ];
        if !services.clients.ttl().is_zero() {
            background.push(spawn_client_cache_refresh(services.clients.clone()));
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

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.background {
            task.abort();
        }
        result
    }
}

/// Each instance re-reads the keys periodically, so a rotation made elsewhere (CLI, another
/// instance) is picked up within the interval.
fn spawn_key_reload(keys: Arc<KeyService>, every: Duration) -> tokio::task::JoinHandle<()> {
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
fn spawn_key_lifecycle(keys: Arc<KeyService>, every: Duration) -> tokio::task::JoinHandle<()> {
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

/// Deletes refresh-token families past their absolute expiry, revocation-log entries whose
/// tokens have all expired, and expired or used account tokens, hourly.
fn spawn_housekeeping(
    refresh_tokens: Arc<dyn crate::storage::RefreshTokenStore>,
    revocations: Arc<RevocationService>,
    accounts: Arc<AccountService>,
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
        }
    })
}

/// Replays new revocation-log entries into the denylist: other instances' revocations, and
/// whatever a Redis that was down or restarted missed. Logs state changes only.
fn spawn_denylist_sync(
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
fn spawn_client_cache_refresh(clients: Arc<ClientRegistry>) -> tokio::task::JoinHandle<()> {
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
