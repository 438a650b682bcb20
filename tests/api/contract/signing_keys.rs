//! The `SigningKeyStore` contract: the key ring and its lifecycle steps.

use latchkey::domain::*;
use latchkey::storage::StorageError;

use super::stores;
use crate::helpers::{fresh_database, test_settings, Backend, Database};

/// A kid as the store takes it.
fn key_id(raw: &str) -> KeyId {
    KeyId::from_trusted(raw.to_owned())
}

fn stored_key(kid: &str) -> StoredKey {
    StoredKey {
        kid: key_id(kid),
        alg: SigningAlg::ES256,
        state: KeyState::Active,
        public_jwk: "{}".into(),
        private_key_enc: vec![1, 2, 3],
        enc_key_id: "m1".into(),
        created_at: 0,
        activate_at: None,
        activated_at: None,
        retired_at: None,
        removed_at: None,
    }
}

pub(super) async fn signing_key_store_contract(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    s.keys.insert_active(&stored_key("k1"), 10).await.unwrap();
    s.keys.insert_active(&stored_key("k2"), 20).await.unwrap();
    let keys = s.keys.list().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[0].kid.as_str(), keys[0].state, keys[0].activated_at),
        ("k2", KeyState::Active, Some(20))
    );
    assert_eq!(
        (keys[1].kid.as_str(), keys[1].state, keys[1].retired_at),
        ("k1", KeyState::Retired, Some(20))
    );
    assert_eq!(keys[1].private_key_enc, vec![1, 2, 3]);
    assert!(
        s.keys.insert_active(&stored_key("k2"), 30).await.is_err(),
        "kid is unique"
    );
    assert_eq!(
        s.keys
            .list()
            .await
            .unwrap()
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .count(),
        1,
        "failed insert rolled back"
    );
    assert!(s.keys.mark_removed(&key_id("k1"), 40).await.unwrap());
    assert!(!s.keys.mark_removed(&key_id("k1"), 41).await.unwrap());
    assert!(!s.keys.mark_removed(&key_id("nope"), 41).await.unwrap());
    let k1 = s
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid.as_str() == "k1")
        .unwrap();
    assert_eq!((k1.state, k1.removed_at), (KeyState::Removed, Some(40)));
}

fn pending_key(kid: &str, created: i64, activate_at: i64) -> StoredKey {
    StoredKey {
        state: KeyState::Pending,
        created_at: created,
        activate_at: Some(activate_at),
        ..stored_key(kid)
    }
}

fn key_states(keys: &[StoredKey]) -> Vec<(String, KeyState)> {
    let mut v: Vec<(String, KeyState)> =
        keys.iter().map(|k| (k.kid.to_string(), k.state)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

pub(super) async fn signing_key_store_lifecycle_steps_are_compare_and_set(backend: Backend) {
    use latchkey::storage::PendingInsert;
    let (s, _db, _) = stores(backend).await;
    s.keys.insert_active(&stored_key("a"), 10).await.unwrap();
    assert_eq!(
        s.keys
            .insert_pending(&pending_key("p", 11, 100), &key_id("not-active"))
            .await
            .unwrap(),
        PendingInsert::ActiveChanged
    );
    assert_eq!(
        s.keys
            .insert_pending(&pending_key("p", 11, 100), &key_id("a"))
            .await
            .unwrap(),
        PendingInsert::Inserted
    );
    assert_eq!(
        s.keys
            .insert_pending(&pending_key("q", 12, 100), &key_id("a"))
            .await
            .unwrap(),
        PendingInsert::AnotherPending
    );
    let p = s
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid.as_str() == "p")
        .unwrap();
    assert_eq!(
        (p.state, p.created_at, p.activate_at, p.activated_at),
        (KeyState::Pending, 11, Some(100), None)
    );
    let dup = s.keys.insert_active(&stored_key("a"), 13).await;
    assert!(
        matches!(&dup, Err(StorageError::Conflict(c)) if c == "signing_keys_pkey"),
        "{dup:?}"
    );
    assert!(!s.keys.promote(&key_id("nope"), 50).await.unwrap());
    assert!(
        !s.keys.promote(&key_id("a"), 50).await.unwrap(),
        "only a pending key is promoted"
    );
    assert!(s.keys.promote(&key_id("p"), 50).await.unwrap());
    assert!(!s.keys.promote(&key_id("p"), 51).await.unwrap(), "once");
    let keys = s.keys.list().await.unwrap();
    assert_eq!(
        key_states(&keys),
        [
            ("a".into(), KeyState::Retired),
            ("p".into(), KeyState::Active)
        ]
    );
    let a = keys.iter().find(|k| k.kid.as_str() == "a").unwrap();
    let p = keys.iter().find(|k| k.kid.as_str() == "p").unwrap();
    assert_eq!((a.retired_at, p.activated_at), (Some(50), Some(50)));

    assert_eq!(
        s.keys
            .insert_pending(&pending_key("q", 60, 200), &key_id("p"))
            .await
            .unwrap(),
        PendingInsert::Inserted
    );
    assert!(
        !s.keys.retire_pending(&key_id("p"), 61).await.unwrap(),
        "the active key is not pending"
    );
    assert!(s.keys.retire_pending(&key_id("q"), 61).await.unwrap());
    assert!(!s.keys.retire_pending(&key_id("q"), 62).await.unwrap());
    // q never signed: removable at once; a only once retired at or before the cut-off.
    assert_eq!(s.keys.remove_retired(49, 70).await.unwrap(), 1);
    assert_eq!(s.keys.remove_retired(49, 71).await.unwrap(), 0);
    assert_eq!(s.keys.remove_retired(50, 72).await.unwrap(), 1);
    let keys = s.keys.list().await.unwrap();
    assert_eq!(
        key_states(&keys),
        [
            ("a".into(), KeyState::Removed),
            ("p".into(), KeyState::Active),
            ("q".into(), KeyState::Removed)
        ]
    );
    assert_eq!(
        keys.iter()
            .find(|k| k.kid.as_str() == "a")
            .unwrap()
            .removed_at,
        Some(72)
    );

    // insert_active withdraws the pending key and retires the active one.
    s.keys
        .insert_pending(&pending_key("r", 80, 300), &key_id("p"))
        .await
        .unwrap();
    s.keys.insert_active(&stored_key("z"), 90).await.unwrap();
    let keys = s.keys.list().await.unwrap();
    let states = key_states(&keys);
    assert!(states.contains(&("p".into(), KeyState::Retired)));
    assert!(states.contains(&("r".into(), KeyState::Retired)));
    assert!(states.contains(&("z".into(), KeyState::Active)));
}

pub(super) async fn signing_key_store_concurrent_transitions_have_one_winner(backend: Backend) {
    use latchkey::storage::PendingInsert;
    let (s, _db, _) = stores(backend).await;
    s.keys.insert_active(&stored_key("a0"), 1).await.unwrap();
    let mut active = key_id("a0");
    for round in 1..=3 {
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let store = s.keys.clone();
                let active = active.clone();
                tokio::spawn(async move {
                    let key = pending_key(&format!("r{round}-{i}"), round * 10, round * 10 + 5);
                    (
                        key.kid.clone(),
                        store.insert_pending(&key, &active).await.unwrap(),
                    )
                })
            })
            .collect();
        let outcomes: Vec<(KeyId, PendingInsert)> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let winners: Vec<&KeyId> = outcomes
            .iter()
            .filter(|(_, o)| *o == PendingInsert::Inserted)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        assert!(outcomes
            .iter()
            .all(|(_, o)| matches!(o, PendingInsert::Inserted | PendingInsert::AnotherPending)));
        let pending = winners[0].clone();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let store = s.keys.clone();
                let pending = pending.clone();
                tokio::spawn(async move { store.promote(&pending, round * 10 + 5).await.unwrap() })
            })
            .collect();
        let promoted = futures::future::join_all(tasks)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(promoted, 1, "round {round}");
        let keys = s.keys.list().await.unwrap();
        let actives: Vec<&str> = keys
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .map(|k| k.kid.as_str())
            .collect();
        assert_eq!(actives, [pending.as_str()]);
        assert_eq!(
            keys.iter().filter(|k| k.state == KeyState::Pending).count(),
            0
        );
        active = pending;
    }
    // Instances creating the first key together: one active key at the end, and every
    // loser is told of the conflict on the active-key index.
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let store = s.keys.clone();
            tokio::spawn(async move {
                store
                    .insert_active(&stored_key(&format!("n{i}")), 100)
                    .await
            })
        })
        .collect();
    for r in futures::future::join_all(tasks).await {
        match r.unwrap() {
            Ok(()) => {}
            Err(StorageError::Conflict(c)) => assert_eq!(c, "signing_keys_one_active_idx"),
            Err(e) => panic!("{e:?}"),
        }
    }
    let keys = s.keys.list().await.unwrap();
    assert_eq!(
        keys.iter().filter(|k| k.state == KeyState::Active).count(),
        1
    );
}

/// Keys stored before migration 0004 survive it: their history is kept, their activation
/// time filled in, and of two active keys (an old start-up race) the newer stays active.
/// Longer per-client access-token lifetimes are clamped to the new one-day cap.
pub(super) async fn existing_keys_survive_the_lifecycle_migration(backend: Backend) {
    use std::borrow::Cow;
    let db = fresh_database(backend).await;
    let dir = |name: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(name)
    };
    let before_0004 = |mut m: sqlx::migrate::Migrator| {
        m.migrations = Cow::Owned(
            m.migrations
                .iter()
                .filter(|m| m.version < 4)
                .cloned()
                .collect(),
        );
        m
    };
    let insert = "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_enc, \
                  enc_key_id, created_at, activated_at, retired_at) VALUES \
                  ('old', 'ES256', 'retired', '{}', $1, 'm', 10, 10, 20), \
                  ('mid', 'ES256', 'active', '{}', $1, 'm', 20, 20, NULL), \
                  ('new', 'EdDSA', 'active', '{}', $1, 'm', 30, 30, NULL)";
    let long_client = "INSERT INTO clients (id, name, kind, grant_types, scopes, \
                       access_token_ttl, created_at, updated_at) VALUES \
                       ('long', 'long', 'public', '[\"password\"]', '[]', 172800, 1, 1)";
    match backend.database {
        Database::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", db.url))
                .await
                .unwrap();
            let m = before_0004(sqlx::migrate::Migrator::new(dir("sqlite")).await.unwrap());
            m.run(&pool).await.unwrap();
            sqlx::query(insert)
                .bind(vec![1u8, 2, 3])
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(long_client).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Database::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let m = before_0004(sqlx::migrate::Migrator::new(dir("postgres")).await.unwrap());
            m.run(&pool).await.unwrap();
            sqlx::query(insert)
                .bind(vec![1u8, 2, 3])
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(long_client).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let settings = test_settings(&db, &[]);
    let s = latchkey::startup::connect_stores(&settings).await.unwrap();
    let keys = s.keys.list().await.unwrap();
    let get = |kid: &str| keys.iter().find(|k| k.kid.as_str() == kid).unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(
        (get("new").state, get("new").activate_at),
        (KeyState::Active, Some(30))
    );
    assert_eq!(
        (get("mid").state, get("mid").activated_at),
        (KeyState::Retired, Some(20))
    );
    assert!(get("mid").retired_at.is_some());
    assert_eq!(
        (
            get("old").state,
            get("old").retired_at,
            get("old").activate_at
        ),
        (KeyState::Retired, Some(20), Some(10))
    );
    assert_eq!(get("old").private_key_enc, vec![1, 2, 3]);
    let long = s
        .clients
        .find(&ClientId::parse("long").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        long.token_settings.access_token_ttl,
        Some(86_400),
        "per-client access-token lifetimes are capped at one day"
    );
    // After 0009, a key of another algorithm joins the surviving active key.
    s.keys
        .insert_active(&key_of("rs", SigningAlg::RS256), 40)
        .await
        .unwrap();
    assert_eq!(
        active_kids(&s.keys.list().await.unwrap()),
        [
            (SigningAlg::RS256, "rs".into()),
            (SigningAlg::EdDSA, "new".into())
        ]
    );
}

fn key_of(kid: &str, alg: SigningAlg) -> StoredKey {
    StoredKey {
        alg,
        ..stored_key(kid)
    }
}

fn active_kids(keys: &[StoredKey]) -> Vec<(SigningAlg, String)> {
    let mut v: Vec<(SigningAlg, String)> = keys
        .iter()
        .filter(|k| k.state == KeyState::Active)
        .map(|k| (k.alg, k.kid.to_string()))
        .collect();
    v.sort_by_key(|(alg, _)| alg.index());
    v
}

/// Two algorithms live side by side: each has its own active and pending key, and every
/// transition of one leaves the other alone.
pub(super) async fn signing_key_store_keeps_one_active_and_one_pending_key_per_algorithm(
    backend: Backend,
) {
    use latchkey::storage::PendingInsert;
    use SigningAlg::{EdDSA, ES256, RS256};
    let (s, _db, _) = stores(backend).await;
    s.keys
        .insert_active(&key_of("e1", ES256), 10)
        .await
        .unwrap();
    s.keys
        .insert_active(&key_of("r1", RS256), 11)
        .await
        .unwrap();
    assert_eq!(
        active_kids(&s.keys.list().await.unwrap()),
        [(ES256, "e1".into()), (RS256, "r1".into())],
        "an active key of another algorithm is not retired"
    );
    s.keys
        .insert_active(&key_of("e2", ES256), 20)
        .await
        .unwrap();
    let keys = s.keys.list().await.unwrap();
    assert_eq!(
        active_kids(&keys),
        [(ES256, "e2".into()), (RS256, "r1".into())]
    );
    let e1 = keys.iter().find(|k| k.kid.as_str() == "e1").unwrap();
    assert_eq!((e1.state, e1.retired_at), (KeyState::Retired, Some(20)));

    // A pending key replaces the active key of its own algorithm only.
    let pending = |kid: &str, alg| StoredKey {
        alg,
        ..pending_key(kid, 30, 100)
    };
    assert_eq!(
        s.keys
            .insert_pending(&pending("p-es", ES256), &key_id("r1"))
            .await
            .unwrap(),
        PendingInsert::ActiveChanged,
        "r1 is active, but not the ES256 key"
    );
    assert_eq!(
        s.keys
            .insert_pending(&pending("p-es", ES256), &key_id("e2"))
            .await
            .unwrap(),
        PendingInsert::Inserted
    );
    assert_eq!(
        s.keys
            .insert_pending(&pending("p-rs", RS256), &key_id("r1"))
            .await
            .unwrap(),
        PendingInsert::Inserted,
        "one pending key per algorithm"
    );
    assert_eq!(
        s.keys
            .insert_pending(&pending("p-rs2", RS256), &key_id("r1"))
            .await
            .unwrap(),
        PendingInsert::AnotherPending
    );
    assert_eq!(
        s.keys
            .insert_pending(&pending("p-ed", EdDSA), &key_id("e2"))
            .await
            .unwrap(),
        PendingInsert::ActiveChanged,
        "EdDSA has no active key to replace"
    );

    // Promoting retires the active key of the promoted key's algorithm only.
    assert!(s.keys.promote(&key_id("p-es"), 50).await.unwrap());
    let keys = s.keys.list().await.unwrap();
    assert_eq!(
        active_kids(&keys),
        [(ES256, "p-es".into()), (RS256, "r1".into())]
    );
    let states = key_states(&keys);
    assert!(states.contains(&("e2".into(), KeyState::Retired)));
    assert!(states.contains(&("p-rs".into(), KeyState::Pending)));

    // insert_active withdraws the pending key of its algorithm only.
    s.keys
        .insert_active(&key_of("e3", ES256), 60)
        .await
        .unwrap();
    let states = key_states(&s.keys.list().await.unwrap());
    assert!(states.contains(&("p-rs".into(), KeyState::Pending)));
    assert!(states.contains(&("p-es".into(), KeyState::Retired)));
    s.keys
        .insert_active(&key_of("r2", RS256), 61)
        .await
        .unwrap();
    let keys = s.keys.list().await.unwrap();
    let states = key_states(&keys);
    assert!(states.contains(&("p-rs".into(), KeyState::Retired)));
    assert!(states.contains(&("r1".into(), KeyState::Retired)));
    assert_eq!(
        active_kids(&keys),
        [(ES256, "e3".into()), (RS256, "r2".into())]
    );
    assert_eq!(
        keys.iter().filter(|k| k.state == KeyState::Pending).count(),
        0
    );
}

/// `insert_active_if_none`: the first key of an algorithm, once, however many ask together.
pub(super) async fn signing_key_store_activates_the_first_key_of_an_algorithm_once(
    backend: Backend,
) {
    use SigningAlg::{EdDSA, ES256};
    let (s, _db, _) = stores(backend).await;
    s.keys
        .insert_active(&key_of("e1", ES256), 10)
        .await
        .unwrap();
    assert!(
        !s.keys
            .insert_active_if_none(&key_of("e2", ES256), 11)
            .await
            .unwrap(),
        "ES256 has an active key"
    );
    assert!(s
        .keys
        .insert_active_if_none(&key_of("d1", EdDSA), 12)
        .await
        .unwrap());
    let keys = s.keys.list().await.unwrap();
    assert_eq!(keys.len(), 2, "e2 was not stored");
    let d1 = keys.iter().find(|k| k.kid.as_str() == "d1").unwrap();
    assert_eq!(
        (d1.state, d1.created_at, d1.activate_at, d1.activated_at),
        (KeyState::Active, 12, Some(12), Some(12))
    );
    let dup = s
        .keys
        .insert_active_if_none(&key_of("e1", SigningAlg::RS256), 13)
        .await;
    assert!(
        matches!(&dup, Err(StorageError::Conflict(c)) if c == "signing_keys_pkey"),
        "{dup:?}"
    );
    // Instances asking for the first RS256 key together: exactly one makes it.
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = s.keys.clone();
            tokio::spawn(async move {
                store
                    .insert_active_if_none(&key_of(&format!("r{i}"), SigningAlg::RS256), 20)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let won = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(won, 1);
    let keys = s.keys.list().await.unwrap();
    assert_eq!(
        active_kids(&keys)
            .iter()
            .map(|(alg, _)| *alg)
            .collect::<Vec<_>>(),
        [ES256, SigningAlg::RS256, EdDSA]
    );
    assert_eq!(keys.len(), 3, "the losers stored nothing");
}

/// Concurrent transitions of different algorithms do not get in each other's way.
pub(super) async fn signing_key_store_transitions_of_two_algorithms_run_side_by_side(
    backend: Backend,
) {
    use latchkey::storage::PendingInsert;
    use SigningAlg::{ES256, RS256};
    let (s, _db, _) = stores(backend).await;
    s.keys.insert_active(&key_of("e0", ES256), 1).await.unwrap();
    s.keys.insert_active(&key_of("r0", RS256), 1).await.unwrap();
    let (mut e, mut r) = (key_id("e0"), key_id("r0"));
    for round in 1..=3i64 {
        let insert = |kid: String, alg, replaces: KeyId| {
            let store = s.keys.clone();
            tokio::spawn(async move {
                let key = StoredKey {
                    alg,
                    ..pending_key(&kid, round * 10, round * 10 + 5)
                };
                store.insert_pending(&key, &replaces).await.unwrap()
            })
        };
        let (a, b) = tokio::join!(
            insert(format!("e{round}"), ES256, e.clone()),
            insert(format!("r{round}"), RS256, r.clone())
        );
        assert_eq!(
            (a.unwrap(), b.unwrap()),
            (PendingInsert::Inserted, PendingInsert::Inserted)
        );
        let promote = |kid: String| {
            let store = s.keys.clone();
            tokio::spawn(async move { store.promote(&key_id(&kid), round * 10 + 5).await.unwrap() })
        };
        let (a, b) = tokio::join!(promote(format!("e{round}")), promote(format!("r{round}")));
        assert!(a.unwrap() && b.unwrap(), "round {round}");
        e = key_id(&format!("e{round}"));
        r = key_id(&format!("r{round}"));
        assert_eq!(
            active_kids(&s.keys.list().await.unwrap()),
            [(ES256, e.to_string()), (RS256, r.to_string())]
        );
    }
}
