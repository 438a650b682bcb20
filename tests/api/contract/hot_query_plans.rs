//! The query plans of the hot paths and of housekeeping (issue 16, "Cost at scale, kept
//! measured"): every lookup a request makes, and every bounded purge batch, walks an index on
//! both databases. `EXPLAIN QUERY PLAN` on SQLite (a `SCAN` of a table without an index is a
//! full scan) and `EXPLAIN` on PostgreSQL with sequential scans disabled (a `Seq Scan` that
//! remains has no index to use), on a migrated, empty schema: what is checked is that an
//! index exists for the shape of each statement, so that one cannot silently disappear.
//!
//! The statements are those of `src/storage/sql/*.rs` with their parameters written in; the
//! audit trail's are built by `latchkey::storage::sql::user_listing::audit_page`, exactly as
//! the store runs them (the user listing has its own test, `user_listing_plans.rs`).

use latchkey::domain::AuditFilter;
use latchkey::storage::sql::user_listing::{audit_page, ListingQuery};

use super::stores;
use super::user_listing_plans::{postgres_plan, sqlite_plan};
use crate::helpers::{Backend, Database};

/// `(what, statement)`: each must be served by an index.
const HOT: &[(&str, &str)] = &[
    ("user by id", "SELECT id FROM users WHERE id = 'u'"),
    ("user by email", "SELECT id FROM users WHERE email = 'a@example.com'"),
    ("user by username", "SELECT id FROM users WHERE username = 'ann'"),
    (
        "a user's roles",
        "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = 'u'",
    ),
    (
        "a user's permissions",
        "SELECT rp.permission FROM user_roles ur JOIN role_permissions rp ON rp.role_id = ur.role_id \
         WHERE ur.user_id = 'u'",
    ),
    (
        "a user with their claims (the MFA grant)",
        "SELECT users.id, c.role_name, c.permission FROM users \
         LEFT JOIN (SELECT ur.user_id, r.name AS role_name, rp.permission \
           FROM user_roles ur \
           LEFT JOIN roles r ON r.id = ur.role_id \
           LEFT JOIN role_permissions rp ON rp.role_id = r.id \
           WHERE ur.user_id = 'u') c ON c.user_id = users.id \
         WHERE users.id = 'u'",
    ),
    ("role by name", "SELECT id FROM roles WHERE name = 'admin'"),
    ("client by id", "SELECT id FROM clients WHERE id = 'web'"),
    (
        "refresh family by id",
        "SELECT f.id FROM refresh_token_families f JOIN users u ON u.id = f.user_id WHERE f.id = 'f'",
    ),
    (
        "a user's live families",
        "SELECT id FROM refresh_token_families WHERE user_id = 'u' AND revoked_at IS NULL \
         AND absolute_expires_at > 0",
    ),
    (
        "a client's live families",
        "SELECT id FROM refresh_token_families WHERE client_id = 'c' AND revoked_at IS NULL \
         AND absolute_expires_at > 0",
    ),
    (
        "a session's families",
        "SELECT id FROM refresh_token_families WHERE sso_session_id = 's' AND revoked_at IS NULL \
         AND absolute_expires_at > 0",
    ),
    (
        "purge: expired families",
        "SELECT id FROM refresh_token_families WHERE absolute_expires_at <= 0 LIMIT 500",
    ),
    (
        "purge: ended grace windows",
        "SELECT id FROM refresh_token_families WHERE id > '' AND grace_until <= 0 ORDER BY id LIMIT 500",
    ),
    (
        "revocation feed page",
        "SELECT seq FROM revocations WHERE seq > 0 AND expires_at > 0 ORDER BY seq LIMIT 500",
    ),
    (
        "revocations of a subject",
        "SELECT seq FROM revocations WHERE kind = 'user' AND subject = 'u'",
    ),
    (
        "purge: expired revocations",
        "SELECT seq FROM revocations WHERE expires_at <= 0 LIMIT 500",
    ),
    (
        "session by cookie",
        "SELECT id FROM sso_sessions WHERE secret_hash = 'h'",
    ),
    ("session by id", "SELECT id FROM sso_sessions WHERE id = 's'"),
    ("a user's sessions", "SELECT id FROM sso_sessions WHERE user_id = 'u'"),
    (
        "purge: ended sessions",
        "SELECT id FROM sso_sessions WHERE idle_expires_at <= 0 OR absolute_expires_at <= 0 LIMIT 500",
    ),
    (
        "authorization code",
        "SELECT code_hash FROM authorization_codes WHERE code_hash = 'h' AND used_at IS NULL \
         AND expires_at > 0",
    ),
    (
        "purge: expired codes",
        "SELECT code_hash FROM authorization_codes WHERE expires_at < 0 LIMIT 500",
    ),
    (
        "account token by hash",
        "SELECT id FROM account_tokens WHERE token_hash = 'h' AND purpose = 'password_reset'",
    ),
    (
        "magic links of an address",
        "SELECT id FROM account_tokens WHERE email = 'a@example.com' AND purpose = 'magic_link'",
    ),
    (
        "a user's tokens of a purpose",
        "SELECT id FROM account_tokens WHERE user_id = 'u' AND purpose = 'email_verification'",
    ),
    (
        "purge: spent account tokens",
        "SELECT id FROM account_tokens WHERE expires_at <= 0 OR used_at <= 0 LIMIT 500",
    ),
    (
        "consent",
        "SELECT scope FROM consents WHERE user_id = 'u' AND client_id = 'c'",
    ),
    (
        "a user's consents",
        "SELECT client_id FROM consents WHERE user_id = 'u' ORDER BY granted_at, client_id",
    ),
    (
        "a user's factors",
        "SELECT id FROM mfa_factors WHERE user_id = 'u' ORDER BY created_at, id",
    ),
    (
        "passkey by credential id",
        "SELECT id FROM mfa_factors WHERE credential_id = 'c'",
    ),
    (
        "purge: abandoned enrolments",
        "SELECT id FROM mfa_factors WHERE confirmed_at IS NULL AND created_at < 0 LIMIT 500",
    ),
    (
        "recovery code",
        "SELECT used_at FROM mfa_recovery_codes WHERE user_id = 'u' AND code_hash = 'h' \
         AND used_at IS NULL",
    ),
    (
        "recovery codes left",
        "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = 'u' AND used_at IS NULL",
    ),
    (
        "linked identity",
        "SELECT id FROM social_links WHERE provider = 'google' AND subject = 's'",
    ),
    (
        "a user's links",
        "SELECT id FROM social_links WHERE user_id = 'u' ORDER BY created_at, id",
    ),
    (
        "one-time value",
        "SELECT key_hash FROM federation_one_time WHERE key_hash = 'h' AND purpose = 'p' \
         AND expires_at > 0",
    ),
    (
        "purge: one-time values",
        "SELECT key_hash FROM federation_one_time WHERE expires_at <= 0 LIMIT 500",
    ),
];

/// The audit trail's listings: newest first, following it, by user, by event.
fn audit_queries() -> Vec<(String, ListingQuery)> {
    let f = |after_id: Option<i64>, user: Option<&str>, event: Option<&str>| AuditFilter {
        after_id,
        user_id: user.map(str::to_owned),
        event: event.map(str::to_owned),
        limit: 100,
    };
    [
        ("audit: newest", f(None, None, None)),
        ("audit: following", f(Some(10), None, None)),
        ("audit: a user's newest", f(None, Some("u"), None)),
        ("audit: a user's, following", f(Some(10), Some("u"), None)),
        (
            "audit: an event's newest",
            f(None, None, Some("login_failed")),
        ),
        (
            "audit: an event's, following",
            f(Some(10), None, Some("lockout")),
        ),
    ]
    .into_iter()
    .map(|(name, f)| (name.to_owned(), audit_page(&f)))
    .collect()
}

fn plain(sql: &str) -> ListingQuery {
    ListingQuery {
        sql: sql.to_owned(),
        binds: Vec::new(),
    }
}

/// A full scan in `plan` of `sql`. On SQLite, `SCAN t` without an index is one, except the
/// walk of a rowid table in its key's order that a `LIMIT` stops (the audit trail's newest
/// events: `ORDER BY id DESC LIMIT n`, no sort), which reads `n` rows, and the scan of a
/// derived table the plan materialized from index searches.
fn full_scan(sql: &str, plan: &[String], db: Database) -> Option<String> {
    let rowid_walk = sql.contains("ORDER BY id")
        && sql.contains("LIMIT")
        && !plan.iter().any(|l| l.contains("TEMP B-TREE"));
    plan.iter()
        .find(|line| match db {
            Database::Sqlite => {
                // A scan of a derived table the plan materialized (from index searches) reads
                // only what they found.
                let scanned = line
                    .strip_prefix("SCAN ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .unwrap_or("");
                let materialized = plan.iter().any(|l| *l == format!("MATERIALIZE {scanned}"));
                line.starts_with("SCAN ") && !line.contains("INDEX") && !rowid_walk && !materialized
            }
            Database::Postgres => line.contains("Seq Scan"),
        })
        .cloned()
}

pub(super) async fn hot_queries_and_purges_walk_an_index(backend: Backend) {
    let (_stores, db, _) = stores(backend).await;
    let mut all: Vec<(String, ListingQuery)> = HOT
        .iter()
        .map(|(name, sql)| ((*name).to_owned(), plain(sql)))
        .collect();
    all.extend(audit_queries());
    let mut offences = Vec::new();
    match backend.database {
        Database::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            for (name, q) in &all {
                let plan = sqlite_plan(&pool, q).await;
                if let Some(bad) = full_scan(&q.sql, &plan, Database::Sqlite) {
                    offences.push(format!("{name}: {bad}\n  {}\n  {plan:?}", q.sql));
                }
            }
            pool.close().await;
        }
        Database::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            for (name, q) in &all {
                let plan = postgres_plan(&pool, q).await;
                if let Some(bad) = full_scan(&q.sql, &plan, Database::Postgres) {
                    offences.push(format!("{name}: {bad}\n  {}\n  {plan:?}", q.sql));
                }
            }
            pool.close().await;
        }
    }
    assert!(
        offences.is_empty(),
        "full scans on {:?}:\n{}",
        backend.database,
        offences.join("\n")
    );
}
