//! The `LATCHKEY_*` environment variables: which config key each overrides, and how.

use super::{invalid, ConfigError};

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    List,
}

/// Every environment variable, the config key it overrides, and how its value is read.
const ENV_KEYS: &[(&str, &str, Kind)] = &[
    ("LATCHKEY_BIND", "server.bind", Kind::Str),
    ("LATCHKEY_ISSUER", "server.issuer", Kind::Str),
    ("LATCHKEY_PROFILE", "server.profile", Kind::Str),
    (
        "LATCHKEY_MAX_BODY_BYTES",
        "server.max_body_bytes",
        Kind::Int,
    ),
    ("LATCHKEY_WORKERS", "server.workers", Kind::Int),
    (
        "LATCHKEY_SHUTDOWN_TIMEOUT",
        "server.shutdown_timeout",
        Kind::Str,
    ),
    (
        "LATCHKEY_CORS_ALLOWED_ORIGINS",
        "server.cors_allowed_origins",
        Kind::List,
    ),
    (
        "LATCHKEY_TRUSTED_PROXIES",
        "server.trusted_proxies",
        Kind::List,
    ),
    ("LATCHKEY_DATABASE_URL", "database.url", Kind::Str),
    (
        "LATCHKEY_DATABASE_MAX_CONNECTIONS",
        "database.max_connections",
        Kind::Int,
    ),
    ("LATCHKEY_REDIS_URL", "redis.url", Kind::Str),
    ("LATCHKEY_REDIS_KEY_PREFIX", "redis.key_prefix", Kind::Str),
    ("LATCHKEY_REDIS_TIMEOUT_MS", "redis.timeout_ms", Kind::Int),
    (
        "LATCHKEY_DENYLIST_SYNC_INTERVAL_MS",
        "denylist.sync_interval_ms",
        Kind::Int,
    ),
    (
        "LATCHKEY_DENYLIST_MAX_STALENESS_MS",
        "denylist.max_staleness_ms",
        Kind::Int,
    ),
    (
        "LATCHKEY_INTROSPECTION_SCOPE",
        "tokens.introspection_scope",
        Kind::Str,
    ),
    ("LATCHKEY_MFA_REAUTH_WITHIN", "mfa.reauth_within", Kind::Str),
    ("LATCHKEY_MFA_REQUIRED", "mfa.required", Kind::Str),
    (
        "LATCHKEY_MFA_ENROLMENT_GRACE",
        "mfa.enrolment_grace",
        Kind::Str,
    ),
    (
        "LATCHKEY_MFA_AFTER_FEDERATION",
        "mfa.after_federation",
        Kind::Bool,
    ),
    ("LATCHKEY_MFA_PASSKEYS", "mfa.passkeys", Kind::Bool),
    ("LATCHKEY_MFA_RP_ID", "mfa.rp_id", Kind::Str),
    ("LATCHKEY_MFA_RP_NAME", "mfa.rp_name", Kind::Str),
    (
        "LATCHKEY_SESSIONS_IDLE_TIMEOUT",
        "sessions.idle_timeout",
        Kind::Str,
    ),
    (
        "LATCHKEY_SESSIONS_ABSOLUTE_TIMEOUT",
        "sessions.absolute_timeout",
        Kind::Str,
    ),
    (
        "LATCHKEY_SESSIONS_REMEMBER_FOR",
        "sessions.remember_for",
        Kind::Str,
    ),
    (
        "LATCHKEY_AUTHORIZATION_CODE_TTL",
        "sessions.authorization_code_ttl",
        Kind::Str,
    ),
    (
        "LATCHKEY_BRANDING_PRODUCT_NAME",
        "branding.product_name",
        Kind::Str,
    ),
    ("LATCHKEY_BRANDING_LOGO_URL", "branding.logo_url", Kind::Str),
    (
        "LATCHKEY_BRANDING_PRIMARY_COLOR",
        "branding.primary_color",
        Kind::Str,
    ),
    (
        "LATCHKEY_BRANDING_BACKGROUND_COLOR",
        "branding.background_color",
        Kind::Str,
    ),
    (
        "LATCHKEY_BRANDING_TEXT_COLOR",
        "branding.text_color",
        Kind::Str,
    ),
    (
        "LATCHKEY_BRANDING_STYLESHEET_URL",
        "branding.stylesheet_url",
        Kind::Str,
    ),
    (
        "LATCHKEY_BRANDING_TEMPLATES_DIR",
        "branding.templates_dir",
        Kind::Str,
    ),
    ("LATCHKEY_MASTER_KEY", "keys.master_key", Kind::Str),
    (
        "LATCHKEY_MASTER_KEY_FILE",
        "keys.master_key_file",
        Kind::Str,
    ),
    ("LATCHKEY_SIGNING_ALG", "keys.signing_alg", Kind::Str),
    (
        "LATCHKEY_KEYS_ID_TOKEN_ALGS",
        "keys.id_token_algs",
        Kind::List,
    ),
    (
        "LATCHKEY_KEY_PUBLISH_AHEAD_SECS",
        "keys.publish_ahead_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_KEY_RELOAD_INTERVAL_SECS",
        "keys.reload_interval_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_KEY_ROTATION_INTERVAL_SECS",
        "keys.rotation_interval_secs",
        Kind::Int,
    ),
    ("LATCHKEY_ADMIN_TOKEN", "admin.token", Kind::Str),
    ("LATCHKEY_ADMIN_BIND", "admin.bind", Kind::Str),
    (
        "LATCHKEY_ACCESS_TOKEN_TTL_SECS",
        "tokens.access_token_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_REFRESH_IDLE_TTL_SECS",
        "tokens.refresh_idle_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_REFRESH_ABSOLUTE_TTL_SECS",
        "tokens.refresh_absolute_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_TOKENS_REFRESH_GRACE_SECS",
        "tokens.refresh_grace_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_TOKENS_REFRESH_GRACE_USES",
        "tokens.refresh_grace_uses",
        Kind::Int,
    ),
    (
        "LATCHKEY_DEFAULT_AUDIENCE",
        "tokens.default_audience",
        Kind::Str,
    ),
    (
        "LATCHKEY_CLIENT_CACHE_TTL_MS",
        "tokens.client_cache_ttl_ms",
        Kind::Int,
    ),
    (
        "LATCHKEY_ARGON2_MEMORY_KIB",
        "passwords.argon2.memory_kib",
        Kind::Int,
    ),
    (
        "LATCHKEY_ARGON2_ITERATIONS",
        "passwords.argon2.iterations",
        Kind::Int,
    ),
    (
        "LATCHKEY_ARGON2_PARALLELISM",
        "passwords.argon2.parallelism",
        Kind::Int,
    ),
    (
        "LATCHKEY_HASHING_THREADS",
        "passwords.hashing_threads",
        Kind::Int,
    ),
    (
        "LATCHKEY_PASSWORD_MAX_LENGTH",
        "passwords.max_length",
        Kind::Int,
    ),
    (
        "LATCHKEY_PASSWORD_MIN_LENGTH",
        "passwords.min_length",
        Kind::Int,
    ),
    (
        "LATCHKEY_PASSWORD_REJECT_SIMILAR",
        "passwords.reject_similar",
        Kind::Bool,
    ),
    (
        "LATCHKEY_PASSWORD_REJECT_NUMERIC",
        "passwords.reject_numeric",
        Kind::Bool,
    ),
    (
        "LATCHKEY_PASSWORD_REJECT_COMMON",
        "passwords.reject_common",
        Kind::Bool,
    ),
    (
        "LATCHKEY_PASSWORD_BREACH_CORPUS_FILE",
        "passwords.breach_corpus_file",
        Kind::Str,
    ),
    // accounts.*
    ("LATCHKEY_SIGNUP", "accounts.signup", Kind::Str),
    (
        "LATCHKEY_EMAIL_VERIFICATION",
        "accounts.email_verification",
        Kind::Str,
    ),
    (
        "LATCHKEY_VERIFICATION_TTL_SECS",
        "accounts.verification_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_RESET_TTL_SECS",
        "accounts.reset_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_MAGIC_LINK_TTL_SECS",
        "accounts.magic_link_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_INVITE_TTL_SECS",
        "accounts.invite_ttl_secs",
        Kind::Int,
    ),
    ("LATCHKEY_MAGIC_LINKS", "accounts.magic_links", Kind::Bool),
    (
        "LATCHKEY_PROFILE_ATTRIBUTES",
        "accounts.profile_attributes",
        Kind::List,
    ),
    ("LATCHKEY_VERIFY_URL", "accounts.verify_url", Kind::Str),
    ("LATCHKEY_RESET_URL", "accounts.reset_url", Kind::Str),
    (
        "LATCHKEY_MAGIC_LINK_URL",
        "accounts.magic_link_url",
        Kind::Str,
    ),
    ("LATCHKEY_INVITE_URL", "accounts.invite_url", Kind::Str),
    // mail.* (the mail work adds its variables here)
    ("LATCHKEY_MAIL_TRANSPORT", "mail.transport", Kind::Str),
    ("LATCHKEY_MAIL_FROM", "mail.from", Kind::Str),
    ("LATCHKEY_MAIL_PRODUCT_NAME", "mail.product_name", Kind::Str),
    ("LATCHKEY_MAIL_OUTBOX_DIR", "mail.outbox_dir", Kind::Str),
    (
        "LATCHKEY_MAIL_TEMPLATES_DIR",
        "mail.templates_dir",
        Kind::Str,
    ),
    (
        "LATCHKEY_MAIL_QUEUE_CAPACITY",
        "mail.queue_capacity",
        Kind::Int,
    ),
    ("LATCHKEY_SMTP_HOST", "mail.smtp_host", Kind::Str),
    ("LATCHKEY_SMTP_PORT", "mail.smtp_port", Kind::Int),
    ("LATCHKEY_SMTP_SECURITY", "mail.smtp_security", Kind::Str),
    ("LATCHKEY_SMTP_USERNAME", "mail.smtp_username", Kind::Str),
    ("LATCHKEY_SMTP_PASSWORD", "mail.smtp_password", Kind::Str),
    (
        "LATCHKEY_SMTP_TIMEOUT_MS",
        "mail.smtp_timeout_ms",
        Kind::Int,
    ),
    ("LATCHKEY_SMTP_CA_FILE", "mail.smtp_ca_file", Kind::Str),
    ("LATCHKEY_LOG_FORMAT", "log.format", Kind::Str),
    // throttle.*
    ("LATCHKEY_THROTTLE_ENABLED", "throttle.enabled", Kind::Bool),
    (
        "LATCHKEY_THROTTLE_LOGIN_FREE_FAILURES",
        "throttle.login_free_failures",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_WINDOW_SECS",
        "throttle.login_window_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_BACKOFF_BASE_SECS",
        "throttle.login_backoff_base_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_LOCKOUT_SECS",
        "throttle.login_lockout_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_ACCOUNT_MAX_FAILURES",
        "throttle.account_max_failures",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_ACCOUNT_WINDOW_SECS",
        "throttle.account_window_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_TRUSTED_IP_TTL_SECS",
        "throttle.trusted_ip_ttl_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_IP_MAX_FAILURES",
        "throttle.ip_max_failures",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_IP_WINDOW_SECS",
        "throttle.ip_window_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_EMAIL_COOLDOWN_SECS",
        "throttle.email_cooldown_secs",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_EMAIL_DAILY_CAP",
        "throttle.email_daily_cap",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_IP_DAILY_CAP",
        "throttle.ip_daily_cap",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_SIGNUP_PER_IP_PER_HOUR",
        "throttle.signup_per_ip_per_hour",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_MEMORY_MAX_ENTRIES",
        "throttle.memory_max_entries",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_CONCURRENCY_PER_ACCOUNT",
        "throttle.login_concurrency_per_account",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_LOGIN_CONCURRENCY_PER_NETWORK",
        "throttle.login_concurrency_per_network",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_ADMIN_MAX_FAILURES",
        "throttle.admin_max_failures",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_USER_REQUESTS_PER_MINUTE",
        "throttle.user_requests_per_minute",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_CLIENT_REQUESTS_PER_MINUTE",
        "throttle.client_requests_per_minute",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_REVOCATIONS_PER_CLIENT_PER_MINUTE",
        "throttle.revocations_per_client_per_minute",
        Kind::Int,
    ),
    (
        "LATCHKEY_THROTTLE_INTROSPECTIONS_PER_CLIENT_PER_MINUTE",
        "throttle.introspections_per_client_per_minute",
        Kind::Int,
    ),
    ("LATCHKEY_LOG_LEVEL", "log.level", Kind::Str),
    (
        "LATCHKEY_FEDERATION_TIMEOUT",
        "federation.timeout",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GOOGLE_STORE_TOKENS",
        "federation.google.store_tokens",
        Kind::Bool,
    ),
    (
        "LATCHKEY_FEDERATION_GITHUB_STORE_TOKENS",
        "federation.github.store_tokens",
        Kind::Bool,
    ),
    (
        "LATCHKEY_FEDERATION_GOOGLE_CLIENT_ID",
        "federation.google.client_id",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GOOGLE_CLIENT_SECRET",
        "federation.google.client_secret",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GOOGLE_ISSUER",
        "federation.google.issuer",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GOOGLE_EXTRA_AUDIENCES",
        "federation.google.extra_audiences",
        Kind::List,
    ),
    (
        "LATCHKEY_FEDERATION_GOOGLE_LINK_EXISTING",
        "federation.google.link_existing",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GITHUB_CLIENT_ID",
        "federation.github.client_id",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GITHUB_CLIENT_SECRET",
        "federation.github.client_secret",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GITHUB_AUTHORIZE_URL",
        "federation.github.authorize_url",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GITHUB_TOKEN_URL",
        "federation.github.token_url",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GITHUB_API_URL",
        "federation.github.api_url",
        Kind::Str,
    ),
    (
        "LATCHKEY_FEDERATION_GITHUB_LINK_EXISTING",
        "federation.github.link_existing",
        Kind::Str,
    ),
];

/// Variables read before the others (not config keys).
const META_ENV: &[&str] = &["LATCHKEY_CONFIG"];

fn set_path(root: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), ConfigError> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().ok_or_else(|| invalid("empty key"))?;
    let mut table = root;
    for p in parts {
        let entry = table
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| invalid(format!("{p} must be a table")))?;
    }
    table.insert(last.to_owned(), value);
    Ok(())
}

/// Sets the config key of every `LATCHKEY_*` variable in `env`, read as its kind; an unknown
/// `LATCHKEY_*` variable is an error.
pub(super) fn apply(
    root: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in env {
        if !name.starts_with("LATCHKEY_") || META_ENV.contains(&name.as_str()) {
            continue;
        }
        let Some((_, path, kind)) = ENV_KEYS.iter().find(|(n, _, _)| *n == name) else {
            return Err(invalid(format!(
                "unknown environment variable {name} (see README, Configuration)"
            )));
        };
        let v = match kind {
            Kind::Str => toml::Value::String(value),
            Kind::Int => toml::Value::Integer(
                value
                    .trim()
                    .parse()
                    .map_err(|_| invalid(format!("{name} must be an integer, got {value:?}")))?,
            ),
            Kind::Bool => toml::Value::Boolean(match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(invalid(format!(
                        "{name} must be true or false, got {value:?}"
                    )))
                }
            }),
            Kind::List => toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            ),
        };
        set_path(root, path, v)?;
    }
    Ok(())
}
