//! Users without an email address (issue 13: a GitHub account with no verified one), and
//! migration 0014, which lets `users.email` be empty (on SQLite by rebuilding the table that
//! eight others reference).

use std::borrow::Cow;

use latchkey::domain::*;
use latchkey::storage::{NewUserRecord, StorageError, UserPatch};

use super::*;
use crate::helpers::Database;

/// Any number of users may have no address; an address given is still unique; a patch gives
/// one and takes it away again.
pub(super) async fn user_store_keeps_users_without_an_email(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let mut ids = Vec::new();
    for n in 0..2 {
        let mut u = user("placeholder@example.com", 100 + n);
        u.email = None;
        u.password_hash = None;
        s.users
            .create(&NewUserRecord {
                user: u.clone(),
                role_ids: vec![],
            })
            .await
            .unwrap();
        let found = s.users.find_by_id(&u.id).await.unwrap().unwrap();
        assert_eq!(found.email, None);
        ids.push(u.id);
    }
    let taken = user("taken@example.com", 200);
    s.users
        .create(&NewUserRecord {
            user: taken.clone(),
            role_ids: vec![],
        })
        .await
        .unwrap();
    let give = |e: Option<&str>| UserPatch {
        email: Some(e.map(|e| Email::parse(e).unwrap())),
        ..Default::default()
    };
    let r = s
        .users
        .update(&ids[0], &give(Some("taken@example.com")), 300)
        .await;
    assert!(
        matches!(r, Err(StorageError::Conflict(ref c)) if c == "users_email_key"),
        "{r:?}"
    );
    assert!(s
        .users
        .update(&ids[0], &give(Some("mine@example.com")), 300)
        .await
        .unwrap());
    let found = s
        .users
        .find_by_email(&Email::parse("mine@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, ids[0]);
    // A patch that does not name the address leaves it alone.
    s.users
        .update(
            &ids[0],
            &UserPatch {
                display_name: Some(Some("Mine".into())),
                ..Default::default()
            },
            301,
        )
        .await
        .unwrap();
    let found = s.users.find_by_id(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        found.email.as_ref().map(Email::as_str),
        Some("mine@example.com")
    );
    assert!(s.users.update(&ids[0], &give(None), 302).await.unwrap());
    assert_eq!(
        s.users.find_by_id(&ids[0]).await.unwrap().unwrap().email,
        None
    );
    // Listing with an address filter skips users without one.
    let listed = s
        .users
        .list(&UserFilter {
            email_contains: Some("example".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![taken.id]
    );
}

/// Rows stored before migration 0014 survive it unchanged, with every reference to them:
/// roles, links, refresh families and sessions still belong to their users, deleting a user
/// still cascades, foreign keys are enforced again afterwards, and the listing indexes exist.
pub(super) async fn users_and_their_references_survive_the_email_migration(backend: Backend) {
    let db = fresh_database(backend).await;
    let dir = |name: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(name)
    };
    let before_0014 = |mut m: sqlx::migrate::Migrator| {
        m.migrations = Cow::Owned(
            m.migrations
                .iter()
                .filter(|m| m.version < 14)
                .cloned()
                .collect(),
        );
        m
    };
    let rows = [
        "INSERT INTO users (id, email, username, display_name, is_active, email_verified, \
         password_hash, attributes, created_at, updated_at, last_login_at, \
         must_change_password, password_changed_at) VALUES \
         ('00000000-0000-4000-8000-000000000001', 'ann@example.com', 'ann', 'Ann', TRUE, TRUE, \
          '$argon2id$x', '{\"tenant\":\"acme\"}', 10, 11, 12, FALSE, 13), \
         ('00000000-0000-4000-8000-000000000002', 'bob@example.com', NULL, NULL, FALSE, FALSE, \
          NULL, '{}', 20, 21, NULL, TRUE, NULL)",
        "INSERT INTO roles (id, name, description, created_at) VALUES ('r1', 'staff', NULL, 1)",
        "INSERT INTO user_roles (user_id, role_id, user_created_at) VALUES \
         ('00000000-0000-4000-8000-000000000001', 'r1', 10), \
         ('00000000-0000-4000-8000-000000000002', 'r1', 20)",
        "INSERT INTO social_links (id, provider, subject, user_id, email, email_verified, \
         created_at) VALUES ('l1', 'github', '42', '00000000-0000-4000-8000-000000000002', \
         NULL, FALSE, 30)",
    ];
    match backend.database {
        Database::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", db.url))
                .await
                .unwrap();
            let m = before_0014(sqlx::migrate::Migrator::new(dir("sqlite")).await.unwrap());
            m.run(&pool).await.unwrap();
            for q in rows {
                sqlx::query(q).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Database::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let m = before_0014(sqlx::migrate::Migrator::new(dir("postgres")).await.unwrap());
            m.run(&pool).await.unwrap();
            for q in rows {
                sqlx::query(q).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
    let settings = test_settings(&db, &[]);
    let s = latchkey::startup::connect_stores(&settings).await.unwrap();
    let ann_id = UserId::from_trusted("00000000-0000-4000-8000-000000000001".into());
    let bob_id = UserId::from_trusted("00000000-0000-4000-8000-000000000002".into());
    let ann = s.users.find_by_id(&ann_id).await.unwrap().unwrap();
    assert_eq!(
        ann.email.as_ref().map(Email::as_str),
        Some("ann@example.com")
    );
    assert_eq!(
        (
            ann.username.as_deref(),
            ann.display_name.as_deref(),
            ann.is_active,
            ann.email_verified,
            ann.password_hash.as_deref(),
            ann.attributes.get("tenant").and_then(|v| v.as_str()),
            ann.created_at,
            ann.updated_at,
            ann.last_login_at,
            ann.must_change_password,
            ann.password_changed_at,
        ),
        (
            Some("ann"),
            Some("Ann"),
            true,
            true,
            Some("$argon2id$x"),
            Some("acme"),
            10,
            11,
            Some(12),
            false,
            Some(13),
        )
    );
    let bob = s
        .users
        .find_by_email(&Email::parse("bob@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (bob.id.clone(), bob.is_active, bob.must_change_password),
        (bob_id.clone(), false, true)
    );
    assert_eq!(s.users.role_names(&ann_id).await.unwrap(), vec!["staff"]);
    let link = s
        .social_links
        .find(&ProviderId::parse("github").unwrap(), "42")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.user_id, bob_id);
    // Listing still walks its index, in creation order.
    let listed = s
        .users
        .list(&UserFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![ann_id.clone(), bob_id.clone()]
    );
    // Deleting a user still takes its roles and links with it (the migration's connection
    // went back to the pool with foreign keys on: every delete here goes through the pool).
    assert!(s.users.delete(&bob_id).await.unwrap());
    assert!(s
        .social_links
        .find(&ProviderId::parse("github").unwrap(), "42")
        .await
        .unwrap()
        .is_none());
    if backend.database == Database::Sqlite {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let dangling: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(dangling.is_empty(), "{dangling:?}");
        let orphans: (i64,) = sqlx::query_as(
            "SELECT count(*) FROM user_roles WHERE user_id NOT IN (SELECT id FROM users)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(orphans.0, 0, "user_roles followed the delete");
        let indexes: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' \
             AND name LIKE 'users_%_idx' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            indexes.into_iter().map(|(n,)| n).collect::<Vec<_>>(),
            vec![
                "users_active_created_idx",
                "users_active_verified_created_idx",
                "users_created_idx",
                "users_verified_created_idx"
            ]
        );
        pool.close().await;
    }
}
