//! The SQL adapters, for SQLite and PostgreSQL.
//!
//! The two backends run the same SQL (sqlx binds `$N` parameters on both), so each store is
//! written once as a macro body and instantiated per backend: `SqlStore<Sqlite>` and
//! `SqlStore<Postgres>`. What really differs (opening a write transaction, connecting,
//! migrations, reading constraint names out of errors) is below, in one place per backend.

mod account_tokens;
mod audit;
mod authorization_codes;
mod clients;
mod consents;
mod keys;
mod mfa;
mod refresh_tokens;
mod revocations;
mod roles;
mod sessions;
mod social_links;
pub mod user_listing;
mod users;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Database, Pool, Postgres, Sqlite, Transaction};

use super::{HealthCheck, StorageError, StorageResult};
use crate::domain::Amr;

/// A store over one sqlx pool; implements every storage trait for both backends.
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

pub type SqliteStore = SqlStore<Sqlite>;
pub type PgStore = SqlStore<Postgres>;

impl<DB: Database> SqlStore<DB> {
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

impl SqlStore<Sqlite> {
    /// Opens (creating if needed) an SQLite database in WAL mode.
    pub async fn connect(url: &str, max_connections: u32) -> StorageResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = options.get_filename();
        if file != std::path::Path::new(":memory:") {
            private_sqlite_files(file).map_err(backend)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(backend)?;
        Ok(Self { pool })
    }

    /// Applies the pending migrations on one connection with foreign keys off, as SQLite's
    /// table rebuild needs (migration 0014: with them on, dropping the old `users` table
    /// would cascade to every row that references it, and a transaction cannot switch them).
    /// When any migration ran, `PRAGMA foreign_key_check` must then find nothing, else
    /// start-up stops. The connection is closed afterwards, never reused with them off.
    pub async fn migrate(&self) -> StorageResult<()> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        conn.close_on_drop();
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        let tracked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE name = '_sqlx_migrations'",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
        let before = match tracked {
            0 => 0,
            _ => sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations")
                .fetch_one(&mut *conn)
                .await
                .map_err(backend)?,
        };
        sqlx::migrate!("migrations/sqlite")
            .run(&mut *conn)
            .await
            .map_err(backend)?;
        let after: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
        if after != before {
            let dangling: Vec<(String,)> =
                sqlx::query_as("SELECT DISTINCT \"table\" FROM pragma_foreign_key_check")
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(backend)?;
            if !dangling.is_empty() {
                let tables: Vec<String> = dangling.into_iter().map(|(t,)| t).collect();
                return Err(StorageError::Backend(
                    format!(
                        "after the migrations, rows of {} reference rows that do not exist",
                        tables.join(", ")
                    )
                    .into(),
                ));
            }
        }
        Ok(())
    }

    /// SQLite has one writer: take the write lock up front so that a read-then-write
    /// transaction never fails half-way with SQLITE_BUSY.
    async fn begin_write(&self) -> StorageResult<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
    }
}

impl SqlStore<Postgres> {
    pub async fn connect(url: &str, max_connections: u32) -> StorageResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        // No ping before each checkout: it doubled the round trips of every request. A
        // connection broken by a server restart fails its next query and is discarded;
        // `max_lifetime` and `idle_timeout` recycle connections regardless.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
            .idle_timeout(Duration::from_secs(300))
            .max_lifetime(Duration::from_secs(1800))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(backend)?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> StorageResult<()> {
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(backend)
    }

    async fn begin_write(&self) -> StorageResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(map_err)
    }
}

/// The SQLite database holds password hashes, secret hashes, encrypted keys and audit
/// addresses: its folder is created `0700` and the database file `0600` before SQLite opens
/// it (SQLite gives its `-wal`, `-shm` and `-journal` files the database file's mode). Files
/// of an earlier version with a wider mode are narrowed to `0600`; an existing folder that
/// others can read is left as it is, with a warning (it may be shared, such as the working
/// directory).
fn private_sqlite_files(file: &std::path::Path) -> std::io::Result<()> {
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent {
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder.create(dir)?;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Some(dir) = parent {
            let mode = std::fs::metadata(dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    folder = %dir.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the SQLite database's folder can be listed by other users; \
                     consider chmod 700 (the database files themselves are 0600)"
                );
            }
        }
        if !file.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(file)?;
        }
        let mut names = vec![file.to_path_buf()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            names.push(name.into());
        }
        for name in names {
            match std::fs::metadata(&name) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Housekeeping deletes at most this many rows per statement: each batch is a short
/// transaction of its own (a few milliseconds on SQLite), so a write that arrives during a
/// purge waits for one batch at most, never for the whole purge.
pub(super) const PURGE_BATCH: u32 = 1000;

/// The least pause between two batches. SQLite's busy handler polls a waiting writer every
/// 1-25 ms in its first 100 ms: a pause longer than the last of those gaps lets every writer
/// that queued behind a batch in before the next one.
const PURGE_PAUSE: Duration = Duration::from_millis(30);

/// Runs `batch` (which deletes or updates at most `PURGE_BATCH` rows and answers how many it
/// did) until a batch does less than a full one, pausing between batches at least
/// `PURGE_PAUSE` and at least as long as the batch took (housekeeping never holds the
/// database more than half the time). Answers the rows done in all.
async fn in_batches<F, Fut>(mut batch: F) -> StorageResult<u64>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = StorageResult<u64>>,
{
    let mut total = 0u64;
    loop {
        let started = std::time::Instant::now();
        let done = batch(PURGE_BATCH).await?;
        total += done;
        if done < u64::from(PURGE_BATCH) {
            return Ok(total);
        }
        pause_after(started).await;
    }
}

/// The pause after a batch that began at `started`.
async fn pause_after(started: std::time::Instant) {
    tokio::time::sleep(PURGE_PAUSE.max(started.elapsed())).await;
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StorageError {
    StorageError::Backend(Box::new(e))
}

/// Maps a sqlx error; unique and foreign-key violations become `Conflict(constraint)`, with
/// SQLite's "UNIQUE constraint failed: users.email" named like PostgreSQL's `users_email_key`;
/// a database that could not be had in time or could not be reached becomes `Unavailable`.
pub(super) fn map_err(e: sqlx::Error) -> StorageError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() || db.is_foreign_key_violation() {
            let name = match db.constraint() {
                Some(c) => c.to_owned(),
                None => sqlite_constraint_name(db.message()),
            };
            return StorageError::Conflict(name);
        }
    }
    if is_unavailable(&e) {
        return StorageError::Unavailable(Box::new(e));
    }
    backend(e)
}

/// Errors that say "not now" rather than "not this": the pool's acquire timeout, a closed
/// pool or a broken connection, SQLite's busy timeout (`SQLITE_BUSY`, `SQLITE_LOCKED` and
/// their extended codes), and PostgreSQL's connection exceptions (class 08), shutdowns and
/// refused connections (57P01-57P03) and too many connections (53300).
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                let code = sqlx::error::DatabaseError::code(sqlite)
                    .and_then(|c| c.parse::<i32>().ok())
                    .unwrap_or_default();
                // The primary result code is the low byte of the extended one.
                return matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED);
            }
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = pg.code();
                return code.starts_with("08")
                    || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
            }
            false
        }
        _ => false,
    }
}

const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

fn sqlite_constraint_name(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("UNIQUE constraint failed: ") {
        let first = rest.split(',').next().unwrap_or(rest).trim();
        if let Some((table, column)) = first.split_once('.') {
            return if column == "id" {
                format!("{table}_pkey")
            } else {
                format!("{table}_{column}_key")
            };
        }
    }
    message.to_owned()
}

fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(what.to_string())
}

/// `amr` values as stored (refresh-token families, SSO sessions, authorization codes):
/// space-joined.
fn amr_to_column(amr: &[Amr]) -> String {
    amr.iter().map(|a| a.stored()).collect::<Vec<_>>().join(" ")
}

fn amr_from_column(raw: &str) -> StorageResult<Vec<Amr>> {
    raw.split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| Amr::from_stored(s).ok_or_else(|| corrupt("amr")))
        .collect()
}

macro_rules! impl_health {
    ($db:ty) => {
        #[async_trait]
        impl HealthCheck for SqlStore<$db> {
            async fn ping(&self) -> StorageResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(map_err)
            }
        }
    };
}
impl_health!(Sqlite);
impl_health!(Postgres);

#[cfg(test)]
mod tests {
    use super::sqlite_constraint_name;

    #[test]
    fn sqlite_constraint_messages_are_named_like_postgres() {
        assert_eq!(
            sqlite_constraint_name("UNIQUE constraint failed: users.email"),
            "users_email_key"
        );
        assert_eq!(
            sqlite_constraint_name("UNIQUE constraint failed: clients.id"),
            "clients_pkey"
        );
    }
}
