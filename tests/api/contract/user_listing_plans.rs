//! The user listing's query plans (issue 16): every filter of `UserStore::list`, first page and
//! keyset page, walks an index in the listing's order. `EXPLAIN` (PostgreSQL, with sequential
//! scans disabled so that a missing index shows as one) and `EXPLAIN QUERY PLAN` (SQLite, with
//! and without statistics) on the exact statements the store runs
//! (`latchkey::storage::sql::user_listing`); a full scan of the users fails the test, and so
//! does a sort for a single filter (its index gives the order), so an index cannot silently
//! disappear. Two filters together may be served by either one's index, the other checked per
//! row, or by the more selective one's rows sorted: the planners choose by their statistics,
//! and either way nothing reads the whole table.

use latchkey::domain::{RoleName, UserCursor, UserFilter, UserId};
use latchkey::storage::sql::user_listing::{users_page, Bind, ListingQuery};
use sqlx::Row;

use super::stores;
use crate::helpers::{Backend, Database};

/// Each filter the listing has, with the index SQLite must walk for it (`None`: a combination,
/// see above, or an email substring, which no b-tree index serves: when the planner expects few
/// matches it may collect them and sort, which reads no more than the walk would).
fn filters() -> Vec<(&'static str, UserFilter, Option<&'static str>)> {
    let role = |r: &str| Some(RoleName::parse(r).unwrap());
    let f = |active, verified, r: Option<RoleName>, email: Option<&str>| UserFilter {
        active,
        verified,
        role: r,
        email_contains: email.map(str::to_owned),
        limit: 100,
        offset: 0,
        after: None,
    };
    vec![
        ("none", f(None, None, None, None), Some("users_created_idx")),
        (
            "active",
            f(Some(true), None, None, None),
            Some("users_active_created_idx"),
        ),
        (
            "inactive",
            f(Some(false), None, None, None),
            Some("users_active_created_idx"),
        ),
        (
            "unverified",
            f(None, Some(false), None, None),
            Some("users_verified_created_idx"),
        ),
        (
            "active and verified",
            f(Some(true), Some(true), None, None),
            Some("users_active_verified_created_idx"),
        ),
        (
            "role",
            f(None, None, role("staff"), None),
            Some("user_roles_role_created_idx"),
        ),
        (
            "common role",
            f(None, None, role("member"), None),
            Some("user_roles_role_created_idx"),
        ),
        (
            "role and inactive",
            f(Some(false), None, role("member"), None),
            None,
        ),
        (
            "email substring",
            f(None, None, None, Some("seed-0001")),
            None,
        ),
    ]
}

fn with_cursor(f: &UserFilter) -> UserFilter {
    UserFilter {
        after: Some(UserCursor {
            created_at: 1_700_000_500,
            id: UserId::generate(),
        }),
        ..f.clone()
    }
}

const SEED_SQLITE: &[&str] = &[
    "INSERT INTO roles (id, name, created_at) VALUES \
     ('00000000-0000-4000-8000-000000000001', 'member', 1), \
     ('00000000-0000-4000-8000-000000000002', 'staff', 1)",
    "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 3000) \
     INSERT INTO users (id, email, is_active, email_verified, attributes, created_at, updated_at) \
     SELECT printf('%08x-0000-4000-8000-%012x', i, i), printf('seed-%06d@example.com', i), \
     i % 50 <> 0, i % 10 <> 0, '{}', 1700000000 + i / 4, 1700000000 + i / 4 FROM s",
    "INSERT INTO user_roles (user_id, role_id, user_created_at) \
     SELECT id, '00000000-0000-4000-8000-000000000001', created_at FROM users",
    "INSERT INTO user_roles (user_id, role_id, user_created_at) \
     SELECT id, '00000000-0000-4000-8000-000000000002', created_at FROM users \
     WHERE created_at % 25 = 0",
];

const SEED_POSTGRES: &[&str] = &[
    "INSERT INTO roles (id, name, created_at) VALUES \
     ('00000000-0000-4000-8000-000000000001', 'member', 1), \
     ('00000000-0000-4000-8000-000000000002', 'staff', 1)",
    "INSERT INTO users (id, email, is_active, email_verified, attributes, created_at, updated_at) \
     SELECT md5('u' || i)::uuid::text, 'seed-' || lpad(i::text, 6, '0') || '@example.com', \
     i % 50 <> 0, i % 10 <> 0, '{}', 1700000000 + i / 4, 1700000000 + i / 4 \
     FROM generate_series(1, 50000) i",
    "INSERT INTO user_roles (user_id, role_id, user_created_at) \
     SELECT id, '00000000-0000-4000-8000-000000000001', created_at FROM users",
    "INSERT INTO user_roles (user_id, role_id, user_created_at) \
     SELECT id, '00000000-0000-4000-8000-000000000002', created_at FROM users \
     WHERE created_at % 25 = 0",
    "ANALYZE users",
    "ANALYZE user_roles",
];

/// A full scan of a users table, or (`single`: one filter, whose index gives the order) a sort.
fn full_scan_or_sort(plan: &[String], db: Database, single: bool) -> Option<String> {
    plan.iter()
        .find(|line| match db {
            Database::Sqlite => {
                (line.contains("SCAN users") && !line.contains("INDEX"))
                    || line.contains("SCAN ur")
                    || line.contains("SCAN user_roles")
                    || (single && line.contains("TEMP B-TREE"))
            }
            Database::Postgres => {
                line.contains("Seq Scan on users")
                    || line.contains("Seq Scan on user_roles")
                    || (single && line.contains("Sort"))
            }
        })
        .cloned()
}

pub(super) async fn sqlite_plan(pool: &sqlx::SqlitePool, q: &ListingQuery) -> Vec<String> {
    let sql = format!("EXPLAIN QUERY PLAN {}", q.sql);
    let mut query = sqlx::query(&sql);
    for b in &q.binds {
        query = match b {
            Bind::Bool(v) => query.bind(*v),
            Bind::Int(v) => query.bind(*v),
            Bind::Text(v) => query.bind(v.clone()),
        };
    }
    query
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(3))
        .collect()
}

pub(super) async fn postgres_plan(pool: &sqlx::PgPool, q: &ListingQuery) -> Vec<String> {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let sql = format!("EXPLAIN {}", q.sql);
    let mut query = sqlx::query(&sql);
    for b in &q.binds {
        query = match b {
            Bind::Bool(v) => query.bind(*v),
            Bind::Int(v) => query.bind(*v),
            Bind::Text(v) => query.bind(v.clone()),
        };
    }
    query
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

pub(super) async fn user_listing_walks_an_index_for_every_filter(backend: Backend) {
    let (_stores, db, _) = stores(backend).await;
    match backend.database {
        Database::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            for s in SEED_SQLITE {
                sqlx::query(s).execute(&pool).await.unwrap();
            }
            // Without statistics (what a server has: it never runs ANALYZE), then with.
            for analyzed in [false, true] {
                if analyzed {
                    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
                }
                for (name, f, index) in filters() {
                    for (page, f) in [("first page", f.clone()), ("after", with_cursor(&f))] {
                        let plan = sqlite_plan(&pool, &users_page(&f)).await;
                        let what = format!("{name}, {page}, analyzed {analyzed}: {plan:#?}");
                        if let Some(bad) =
                            full_scan_or_sort(&plan, Database::Sqlite, index.is_some())
                        {
                            panic!("full scan or sort ({bad}) in {what}");
                        }
                        let Some(index) = index else { continue };
                        assert!(
                            plan.iter().any(|l| l.contains(index)),
                            "{index} not walked in {what}"
                        );
                        if page == "after" {
                            assert!(
                                plan.iter()
                                    .any(|l| l.contains("SEARCH") && l.contains(index)),
                                "the cursor is not an index range in {what}"
                            );
                        }
                    }
                }
            }
            pool.close().await;
        }
        Database::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            for s in SEED_POSTGRES {
                sqlx::query(s).execute(&pool).await.unwrap();
            }
            for (name, f, index) in filters() {
                for (page, f) in [("first page", f.clone()), ("after", with_cursor(&f))] {
                    let plan = postgres_plan(&pool, &users_page(&f)).await;
                    if let Some(bad) = full_scan_or_sort(&plan, Database::Postgres, index.is_some())
                    {
                        panic!("full scan or sort ({bad}) in {name}, {page}: {plan:#?}");
                    }
                    assert!(
                        plan.iter().any(|l| l.contains("Index")),
                        "no index in {name}, {page}: {plan:#?}"
                    );
                }
            }
            pool.close().await;
        }
    }
}
