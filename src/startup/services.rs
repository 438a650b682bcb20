//! The wiring: the stores, adapters and services the configuration selects.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::{Profile, Settings};
use crate::crypto::{
    AccountTokenCodec, BreachCorpus, BrowserSeal, KeyRing, MasterKey, PasswordHasher,
    RefreshTokenCodec, TotpVault,
};
use crate::domain::{AccountPolicy, VerificationPolicy};
use crate::federation::Providers;
use crate::outbound::HttpLogoutDelivery;
use crate::services::{
    AccessTokenVerifier, AccountService, AdminService, AuditLog, Authenticator, AuthnSettings,
    AuthorizeService, AuthorizeSettings, BackchannelLogout, BackchannelSettings, ClientRegistry,
    FederationService, FederationSettings, IntrospectionService, KeyPolicy, KeyService,
    LogoutService, Mailer, MfaPolicy, MfaService, MfaSettings, PasswordRules, ProviderInfo,
    RevocationService, SecondFactors, SessionPolicy, SessionService, SignInService, Stores,
    TokenService, TokenServiceSettings,
};
use crate::storage::group_commit::{GroupCommitAudit, GroupCommitLog};
use crate::storage::memory::EmbeddedDenylist;
use crate::storage::redis::{RedisDenylist, RedisSessionStore, RedisSettings};
use crate::storage::sql::{PgStore, SqliteStore};
use crate::storage::{SessionStore, TokenDenylist};

/// Connects to the configured database, applies migrations, and returns the stores. Appends
/// to the revocation log go through a group-commit writer (see `storage::group_commit`).
pub async fn connect_stores(settings: &Settings) -> anyhow::Result<Stores> {
    let mut stores = connect_sql_stores(settings).await?;
    stores.revocations = Arc::new(GroupCommitLog::new(stores.revocations, 1000));
    stores.audit = Arc::new(GroupCommitAudit::new(stores.audit, 500));
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
        + crate::storage::SessionStore
        + crate::storage::AuthorizationCodeStore
        + crate::storage::ConsentStore
        + crate::storage::SocialLinkStore
        + crate::storage::OneTimeStore
        + crate::storage::MfaStore
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
        sessions: s.clone(),
        authorization_codes: s.clone(),
        consents: s.clone(),
        social_links: s.clone(),
        one_time: s.clone(),
        mfa: s.clone(),
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
                    timeout: settings.redis.timeout,
                },
                stores.revocations.clone(),
            )
            .context("LATCHKEY_REDIS_URL")?,
        ),
        None => Arc::new(EmbeddedDenylist::new(
            stores.revocations.clone(),
            settings.denylist.max_staleness,
        )),
    })
}

/// The SSO session store: Redis when `redis.url` is set (shared by every instance, keys
/// under `<redis.key_prefix>sso:`), else the database's.
pub fn build_session_store(
    settings: &Settings,
    stores: &Stores,
) -> anyhow::Result<Arc<dyn SessionStore>> {
    Ok(match &settings.redis.url {
        Some(url) => Arc::new(
            RedisSessionStore::new(
                url.expose_secret(),
                &RedisSettings {
                    key_prefix: settings.redis.key_prefix.clone(),
                    timeout: settings.redis.timeout,
                },
            )
            .context("LATCHKEY_REDIS_URL")?,
        ),
        None => stores.sessions.clone(),
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
        login_window_secs: t.login_window.as_secs(),
        login_backoff_base_secs: t.login_backoff_base.as_secs(),
        login_lockout_secs: t.login_lockout.as_secs(),
        account_max_failures: t.account_max_failures,
        account_window_secs: t.account_window.as_secs(),
        trusted_ip_ttl_secs: t.trusted_ip_ttl.as_secs(),
        ip_max_failures: t.ip_max_failures,
        ip_window_secs: t.ip_window.as_secs(),
        email_cooldown_secs: t.email_cooldown.as_secs(),
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
                    timeout: settings.redis.timeout,
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
    use crate::mail_transport::{OutboxTransport, SmtpTransport};
    use crate::services::{MailTransport, Mailer, MailerOptions};
    let mail = &settings.mail;
    let templates = crate::mail_transport::load_templates(mail.templates_dir.as_deref())
        .context("mail.templates_dir")?;
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
    pub sessions: Arc<SessionService>,
    pub authorize: Arc<AuthorizeService>,
    pub sign_in: Arc<SignInService>,
    pub logout: Arc<LogoutService>,
    pub federation: Arc<FederationService>,
    pub mfa: Arc<MfaService>,
    pub clock: Arc<dyn Clock>,
}

/// Builds the services. `with_keys` also makes sure a signing key exists and loads the ring.
pub async fn build_services(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    with_keys: bool,
) -> anyhow::Result<Services> {
    let mut stores = connect_stores(settings).await?;
    let master = Arc::new(load_master_key(settings)?);
    let hasher = PasswordHasher::new(settings.passwords.argon2, settings.hashing_threads())
        .await
        .context("password hasher")?;
    let registry = Arc::new(ClientRegistry::new(
        stores.clients.clone(),
        settings.tokens.client_cache_ttl,
    ));
    let refresh_codec = Arc::new(RefreshTokenCodec::new(&master));
    let seal = Arc::new(BrowserSeal::new(&master));
    let account_codec = Arc::new(AccountTokenCodec::new(&master));
    let totp_vault = Arc::new(TotpVault::new(master.clone()));
    let ring = Arc::new(KeyRing::default());
    let keys = Arc::new(
        KeyService::new(
            stores.keys.clone(),
            master.clone(),
            ring.clone(),
            clock.clone(),
        )
        .with_policy(key_policy(settings)),
    );
    if with_keys {
        keys.ensure_signing_keys()
            .await
            .context("loading signing keys")?;
    }
    let denylist = build_denylist(settings, &stores)?;
    stores.sessions = build_session_store(settings, &stores)?;
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
            mfa_policy: MfaPolicy {
                required: settings.mfa.required,
                enrolment_grace: secs(settings.mfa.enrolment_grace),
                after_federation: settings.mfa.after_federation,
            },
        },
        SecondFactors {
            mfa: stores.mfa.clone(),
            totp: totp_vault.clone(),
            seal: seal.clone(),
            one_time: stores.one_time.clone(),
            mailer: mailer.clone(),
            passkeys: super::passkeys::relying_party(settings)?,
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
    let sessions = Arc::new(SessionService::new(
        stores.sessions.clone(),
        stores.users.clone(),
        revocations.clone(),
        audit.clone(),
        seal.clone(),
        clock.clone(),
        SessionPolicy {
            idle_timeout: secs(settings.sessions.idle_timeout),
            absolute_timeout: secs(settings.sessions.absolute_timeout),
            remember_for: secs(settings.sessions.remember_for),
        },
    ));
    let authorize = Arc::new(AuthorizeService::new(
        registry.clone(),
        authn.clone(),
        sessions.clone(),
        stores.authorization_codes.clone(),
        stores.consents.clone(),
        seal.clone(),
        clock.clone(),
        AuthorizeSettings {
            issuer: settings.issuer().to_owned(),
            default_audience: settings.default_audience().to_owned(),
            code_ttl: secs(settings.sessions.authorization_code_ttl),
            request_ttl: 30 * 60,
        },
    ));
    let backchannel = BackchannelLogout::start(
        registry.clone(),
        ring.clone(),
        Arc::new(
            HttpLogoutDelivery::new(Duration::from_secs(5))
                .context("the back-channel logout HTTP client")?,
        ),
        clock.clone(),
        settings.issuer().to_owned(),
        BackchannelSettings::default(),
    );
    sessions.set_end_listener(Arc::new(backchannel));
    let ender: Arc<dyn crate::services::UserSessionEnder> = sessions.clone();
    revocations.set_session_ender(Arc::downgrade(&ender));
    let federation = Arc::new(FederationService::new(
        Arc::new(
            Providers::with_timeout(&settings.federation.providers, settings.federation.timeout)
                .context("the federation HTTP client")?,
        ),
        stores.social_links.clone(),
        stores.one_time.clone(),
        stores.users.clone(),
        accounts.clone(),
        seal.clone(),
        master,
        audit.clone(),
        throttle.clone(),
        clock.clone(),
        FederationSettings {
            issuer: settings.issuer().to_owned(),
            providers: settings
                .federation
                .providers
                .iter()
                .map(|p| ProviderInfo {
                    id: p.id.clone(),
                    kind: p.kind,
                    display_name: p.display_name.clone(),
                    link_existing: p.link_existing,
                    store_tokens: p.store_tokens,
                })
                .collect(),
            signup: settings.accounts.signup,
            state_ttl: 600,
            email_required: settings.accounts.email_verification == VerificationPolicy::Mandatory,
        },
    ));
    let logout = Arc::new(LogoutService::new(
        registry.clone(),
        sessions.clone(),
        ring.clone(),
        seal,
        clock.clone(),
        settings.issuer().to_owned(),
    ));
    let mfa = Arc::new(MfaService::new(
        stores.users.clone(),
        stores.mfa.clone(),
        stores.refresh_tokens.clone(),
        authn.clone(),
        totp_vault,
        mailer.clone(),
        audit.clone(),
        clock.clone(),
        MfaSettings {
            issuer_label: url::Url::parse(settings.issuer())
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "Latchkey".to_owned()),
            reauth_within: secs(settings.mfa.reauth_within),
        },
    ));
    let sign_in = Arc::new(SignInService::new(
        authn.clone(),
        stores.users.clone(),
        sessions.clone(),
        registry.clone(),
        mfa.clone(),
    ));
    let tokens = Arc::new(
        TokenService::new(
            stores.users.clone(),
            stores.refresh_tokens.clone(),
            stores.authorization_codes.clone(),
            stores.sessions.clone(),
            registry.clone(),
            ring,
            refresh_codec,
            revocations.clone(),
            authn.clone(),
            throttle.clone(),
            audit.clone(),
            clock.clone(),
            TokenServiceSettings {
                issuer: settings.issuer().to_owned(),
                default_audience: settings.default_audience().to_owned(),
                access_token_ttl: secs(settings.tokens.access_token_ttl),
                refresh_idle_ttl: secs(settings.tokens.refresh_idle_ttl),
                refresh_absolute_ttl: secs(settings.tokens.refresh_absolute_ttl),
                refresh_grace_secs: secs(settings.tokens.refresh_grace),
                refresh_grace_uses: settings.tokens.refresh_grace_uses,
            },
        )
        .with_federation(federation.clone()),
    );
    let admin = Arc::new(AdminService::new(
        stores.clone(),
        hasher,
        registry.clone(),
        revocations.clone(),
        clock.clone(),
        password_rules.clone(),
        keys.clone(),
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
        sessions,
        authorize,
        sign_in,
        logout,
        federation,
        mfa,
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
        verification_ttl: secs(a.verification_ttl),
        reset_ttl: secs(a.reset_ttl),
        magic_link_ttl: secs(a.magic_link_ttl),
        invite_ttl: secs(a.invite_ttl),
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
        pages_magic_link_url: format!("{issuer}/login/magic/link?token={{token}}"),
    }
}

/// The key lifecycle rules, from the settings.
fn key_policy(settings: &Settings) -> KeyPolicy {
    KeyPolicy {
        signing_alg: settings.keys.signing_alg,
        id_token_algs: settings.keys.id_token_algs.clone(),
        rotation_interval_secs: settings.keys.rotation_interval.map_or(0, secs),
        publish_ahead_secs: secs(settings.keys.publish_ahead),
        retired_grace_secs: secs(settings.keys.retired_grace()),
    }
}

/// A duration in whole seconds, as the services and the clock count them.
pub(super) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The hosted pages' theme from `[branding]`: the template overrides are read from
/// `branding.templates_dir` (only names of built-in templates; each must parse).
pub fn branding(
    settings: &crate::config::BrandingSettings,
) -> anyhow::Result<crate::http::Branding> {
    let mut overrides = Vec::new();
    if let Some(dir) = &settings.templates_dir {
        let known: Vec<&str> = crate::http::Branding::template_names().collect();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("html") {
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if !known.contains(&name.as_str()) {
                anyhow::bail!(
                    "branding.templates_dir: {name} is not one of Latchkey's templates ({})",
                    known.join(", ")
                );
            }
            let source = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            overrides.push((name, source));
        }
    }
    let branding = crate::http::Branding {
        product_name: settings.product_name.clone(),
        logo_source: settings
            .logo_url
            .as_deref()
            .and_then(crate::config::asset_origin),
        logo_url: settings.logo_url.clone(),
        primary_color: settings.primary_color.clone(),
        background_color: settings.background_color.clone(),
        text_color: settings.text_color.clone(),
        stylesheet_source: settings
            .stylesheet_url
            .as_deref()
            .and_then(crate::config::asset_origin),
        stylesheet_url: settings.stylesheet_url.clone(),
        overrides,
    };
    branding
        .check()
        .map_err(|e| anyhow::anyhow!("branding.templates_dir: a template does not parse: {e}"))?;
    Ok(branding)
}
