//! The backend matrix (database x Redis) and the one macro that runs scenarios on it.

/// Runs each listed scenario once per cell of the backend matrix (`Backend`), in a module
/// named after the cell, so the cell is part of the test name:
/// - `scenarios!(a, b)`: every cell, `sqlite_embedded`, `sqlite_redis`, `postgres_embedded`,
///   `postgres_redis` (`Backend::MATRIX`);
/// - `scenarios!(databases: a, b)`: the database axis only, Redis off, `sqlite` and
///   `postgres` (`Backend::DATABASES`), for storage behaviour;
/// - `scenarios!(redis: a, b)`: the Redis axis only, `memory` and `redis` (`Backend::STORES`),
///   for the throttle's store, which uses no database;
/// - `scenarios!(redis_only: a, b)`: one cell, `redis` (`Backend::REDIS_ONLY`), for the Redis
///   adapter of a store whose other adapters are checked with `databases:` (the SSO sessions);
/// - `scenarios!(cells [sqlite_embedded, postgres_redis]: a, b)`: the named cells of the
///   matrix only, for scenarios too slow to run on every cell (the browser tests).
///
/// A scenario is an `async fn(Backend)` beside the macro call.
#[macro_export]
macro_rules! scenarios {
    (databases: $($name:ident),* $(,)?) => {
        $crate::scenarios!(@cells DATABASES [sqlite, postgres] [$($name),*]);
    };
    (redis: $($name:ident),* $(,)?) => {
        $crate::scenarios!(@cells STORES [memory, redis] [$($name),*]);
    };
    (redis_only: $($name:ident),* $(,)?) => {
        $crate::scenarios!(@cells REDIS_ONLY [redis] [$($name),*]);
    };
    (cells [$($cell:ident),+ $(,)?]: $($name:ident),* $(,)?) => {
        $crate::scenarios!(@cells MATRIX [$($cell),+] [$($name),*]);
    };
    (@cells $axis:ident [] [$($name:ident),*]) => {};
    (@cells $axis:ident [$cell:ident $(, $rest:ident)*] [$($name:ident),*]) => {
        mod $cell {
            /// Looked up by the module's name at compile time: a name missing from the table
            /// does not compile.
            const BACKEND: $crate::helpers::Backend = $crate::helpers::Backend::named(
                &$crate::helpers::Backend::$axis,
                stringify!($cell),
            );
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(BACKEND).await
                }
            )*
        }
        $crate::scenarios!(@cells $axis [$($rest),*] [$($name),*]);
    };
    ($($name:ident),* $(,)?) => {
        $crate::scenarios!(
            @cells MATRIX
            [sqlite_embedded, sqlite_redis, postgres_embedded, postgres_redis]
            [$($name),*]
        );
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
}

/// One cell of the backend matrix: the database, and whether Redis holds the state instances
/// share (the token denylist and the throttle's counters) instead of each process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    pub database: Database,
    pub redis: bool,
}

impl Backend {
    pub const SQLITE: Self = Self {
        database: Database::Sqlite,
        redis: false,
    };
    pub const SQLITE_REDIS: Self = Self {
        database: Database::Sqlite,
        redis: true,
    };
    pub const POSTGRES: Self = Self {
        database: Database::Postgres,
        redis: false,
    };
    pub const POSTGRES_REDIS: Self = Self {
        database: Database::Postgres,
        redis: true,
    };

    /// The four cells, by the name their tests carry.
    pub const MATRIX: [(&'static str, Self); 4] = [
        ("sqlite_embedded", Self::SQLITE),
        ("sqlite_redis", Self::SQLITE_REDIS),
        ("postgres_embedded", Self::POSTGRES),
        ("postgres_redis", Self::POSTGRES_REDIS),
    ];
    /// The database axis, Redis off.
    pub const DATABASES: [(&'static str, Self); 2] =
        [("sqlite", Self::SQLITE), ("postgres", Self::POSTGRES)];
    /// The Redis axis, for what uses no database (the throttle's store).
    pub const STORES: [(&'static str, Self); 2] =
        [("memory", Self::SQLITE), ("redis", Self::SQLITE_REDIS)];

    /// Redis alone (on SQLite, which the Redis adapters do not use), for the Redis adapter of
    /// a store whose database adapters run on `DATABASES`.
    pub const REDIS_ONLY: [(&'static str, Self); 1] = [("redis", Self::SQLITE_REDIS)];

    /// The cell of `axis` called `name`; fails to compile when used in a constant and there
    /// is none.
    pub const fn named(axis: &[(&str, Self)], name: &str) -> Self {
        let mut i = 0;
        while i < axis.len() {
            if const_str_eq(axis[i].0, name) {
                return axis[i].1;
            }
            i += 1;
        }
        panic!("no backend of that name in the matrix");
    }
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
