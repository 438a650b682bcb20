//! Storage contract: each trait checked directly against each adapter.

use std::collections::BTreeSet;

use latchkey::config::Settings;
use latchkey::domain::*;
use latchkey::services::Stores;
use latchkey::storage::{NewUserRecord, StorageError, UserPatch};

use crate::helpers::{fresh_database, test_settings, Backend, Database, TestDatabase};
use crate::scenarios;

mod account_token_codes;
mod account_tokens;
mod audit;

use account_token_codes::*;
use account_tokens::*;
use audit::*;

scenarios!(
    databases:
    user_store_contract,
    role_store_contract,
    client_store_contract,
    signing_key_store_contract,
    signing_key_store_lifecycle_steps_are_compare_and_set,
    signing_key_store_concurrent_transitions_have_one_winner,
    existing_keys_survive_the_lifecycle_migration,
    refresh_token_store_rotates_once_and_revokes_on_reuse,
    refresh_token_store_concurrent_rotation_has_one_winner,
    refresh_token_store_rejections_and_purge,
    refresh_token_store_revokes_every_family_of_a_user,
    revocation_store_keeps_commit_order_and_forgets_expired_entries,
    revocation_store_concurrent_appends_never_let_a_cursor_skip_an_entry,
    account_token_store_finds_and_consumes_a_token_once,
    account_token_store_keeps_purposes_apart,
    account_token_store_expires_tokens_by_the_callers_clock,
    account_token_store_a_newer_token_supersedes_the_unused_older_ones,
    account_token_store_concurrent_consumers_have_one_winner,
    account_token_store_counts_wrong_codes_and_uses_a_link_up_at_the_limit,
    account_token_store_checks_codes_against_the_newest_live_magic_link,
    account_token_store_concurrent_codes_count_every_attempt_and_consume_once,
    account_token_store_invalidates_the_unused_tokens_of_a_purpose,
    account_token_store_purges_expired_tokens_and_used_ones_after_a_day,
    audit_store_appends_in_order_and_lists_the_newest_oldest_first,
    audit_store_follows_the_trail_after_a_position_in_pages,
    audit_store_filters_by_user_and_by_event,
    audit_store_scrubs_a_users_ip_and_user_agent_only,
    audit_store_concurrent_appends_all_land_with_their_own_ids,
);

async fn stores(backend: Backend) -> (Stores, TestDatabase, Settings) {
    let db = fresh_database(backend).await;
    let settings = test_settings(&db, &[]);
    let stores = latchkey::startup::connect_stores(&settings).await.unwrap();
    (stores, db, settings)
}

fn user(email: &str, now: i64) -> User {
    User {
        id: UserId::generate(),
        email: Email::parse(email).unwrap(),
        username: None,
        display_name: Some("Test".into()),
        is_active: true,
        email_verified: false,
        password_hash: Some("$argon2id$dummy".into()),
        attributes: serde_json::Map::new(),
        created_at: now,
        updated_at: now,
        last_login_at: None,
        must_change_password: false,
        password_changed_at: None,
    }
}

fn role(name: &str, perms: &[&str]) -> Role {
    Role {
        id: uuid::Uuid::new_v4().to_string(),
        name: RoleName::parse(name).unwrap(),
        description: None,
        permissions: perms
            .iter()
            .map(|p| Permission::parse(p).unwrap())
            .collect(),
        created_at: 1,
    }
}

fn client(id: &str) -> Client {
    Client {
        id: ClientId::parse(id).unwrap(),
        name: id.into(),
        kind: ClientKind::Public,
        secret_hash: None,
        enabled: true,
        grant_types: BTreeSet::from([GrantType::Password, GrantType::RefreshToken]),
        scopes: Scope::parse("a b").unwrap(),
        redirect_uris: vec!["https://app.example.com/cb".into()],
        audiences: vec![Audience::parse("https://api.example.com").unwrap()],
        default_audience: None,
        token_settings: ClientTokenSettings {
            access_token_ttl: Some(60),
            ..Default::default()
        },
        created_at: 1,
        updated_at: 1,
    }
}

async fn user_store_contract(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let manager = role("manager", &["orders.view", "orders.approve"]);
    let viewer = role("viewer", &["orders.view"]);
    s.roles.create(&manager).await.unwrap();
    s.roles.create(&viewer).await.unwrap();
    let mut alice = user("alice@example.com", 100);
    alice.attributes.insert("tenant".into(), "acme".into());
    s.users
        .create(&NewUserRecord {
            user: alice.clone(),
            role_ids: vec![manager.id.clone()],
        })
        .await
        .unwrap();
    let dup = s
        .users
        .create(&NewUserRecord {
            user: user("alice@example.com", 100),
            role_ids: vec![],
        })
        .await;
    assert!(
        matches!(dup, Err(StorageError::Conflict(ref c)) if c == "users_email_key"),
        "{dup:?}"
    );

    let found = s
        .users
        .find_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.clone(), found.attributes["tenant"].as_str()),
        (alice.id.clone(), Some("acme"))
    );
    assert!(
        s.users
            .find_by_email("ALICE@example.com")
            .await
            .unwrap()
            .is_none(),
        "callers normalise"
    );
    assert!(s
        .users
        .find_by_id(&UserId::generate())
        .await
        .unwrap()
        .is_none());

    assert!(s.users.grant_role(&alice.id, &viewer.id).await.unwrap());
    assert!(
        !s.users.grant_role(&alice.id, &viewer.id).await.unwrap(),
        "idempotent"
    );
    let claims = s.users.claims(&alice.id).await.unwrap().unwrap();
    assert_eq!(claims.roles, ["manager", "viewer"]);
    assert_eq!(claims.permissions, ["orders.approve", "orders.view"]);
    assert!(s.users.revoke_role(&alice.id, &manager.id).await.unwrap());
    assert_eq!(s.users.role_names(&alice.id).await.unwrap(), ["viewer"]);

    let patch = UserPatch {
        is_active: Some(false),
        display_name: Some(None),
        ..Default::default()
    };
    assert!(s.users.update(&alice.id, &patch, 200).await.unwrap());
    let u = s.users.find_by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!(
        (u.is_active, u.display_name.clone(), u.updated_at),
        (false, None, 200)
    );
    assert!(!s
        .users
        .update(&UserId::generate(), &patch, 200)
        .await
        .unwrap());
    s.users
        .record_login(&alice.id, None, Some("$argon2id$new"), 300)
        .await
        .unwrap();
    let u = s.users.find_by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!(
        (u.password_hash.as_deref(), u.last_login_at),
        (Some("$argon2id$new"), Some(300))
    );
    assert!(s
        .users
        .record_login(&alice.id, None, None, 301)
        .await
        .unwrap());
    // Only while the verified hash is still the stored one.
    assert!(!s
        .users
        .record_login(&alice.id, Some("$argon2id$old"), None, 302)
        .await
        .unwrap());
    assert!(s
        .users
        .record_login(&alice.id, Some("$argon2id$new"), None, 303)
        .await
        .unwrap());
    assert_eq!(
        s.users
            .find_by_id(&alice.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$new")
    );
    assert!(s
        .users
        .set_password_hash(&alice.id, None, 302)
        .await
        .unwrap());

    s.users
        .create(&NewUserRecord {
            user: user("bob@example.com", 101),
            role_ids: vec![viewer.id.clone()],
        })
        .await
        .unwrap();
    let all = s
        .users
        .list(&UserFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let active = s
        .users
        .list(&UserFilter {
            active: Some(true),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    let by_role = s
        .users
        .list(&UserFilter {
            role: Some(RoleName::parse("viewer").unwrap()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_role.len(), 2);
    let like = s
        .users
        .list(&UserFilter {
            email_contains: Some("%".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(like.is_empty(), "LIKE metacharacters match literally");
    let paged = s
        .users
        .list(&UserFilter {
            limit: 1,
            offset: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(paged[0].email.as_str(), "bob@example.com");

    assert!(s.users.delete(&alice.id).await.unwrap());
    assert!(!s.users.delete(&alice.id).await.unwrap());
    assert!(s.users.claims(&alice.id).await.unwrap().is_none());
}

async fn role_store_contract(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let r = role("manager", &["orders.view"]);
    s.roles.create(&r).await.unwrap();
    let dup = s.roles.create(&role("manager", &[])).await;
    assert!(
        matches!(dup, Err(StorageError::Conflict(ref c)) if c == "roles_name_key"),
        "{dup:?}"
    );
    s.roles
        .add_permissions(
            &r.id,
            &[
                Permission::parse("orders.approve").unwrap(),
                Permission::parse("orders.view").unwrap(),
            ],
        )
        .await
        .unwrap();
    let found = s.roles.find_by_name(&r.name).await.unwrap().unwrap();
    assert_eq!(
        found
            .permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>(),
        ["orders.approve", "orders.view"]
    );
    s.roles
        .remove_permissions(&r.id, &[Permission::parse("orders.view").unwrap()])
        .await
        .unwrap();
    assert_eq!(s.roles.list().await.unwrap()[0].permissions.len(), 1);
    assert!(s.roles.delete(&r.id).await.unwrap());
    assert!(s.roles.find_by_name(&r.name).await.unwrap().is_none());
}

async fn client_store_contract(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let c = client("web");
    s.clients.create(&c).await.unwrap();
    let dup = s.clients.create(&client("web")).await;
    assert!(
        matches!(dup, Err(StorageError::Conflict(ref x)) if x == "clients_pkey"),
        "{dup:?}"
    );
    let found = s.clients.find(&c.id).await.unwrap().unwrap();
    assert_eq!(found.grant_types, c.grant_types);
    assert_eq!(found.scopes, c.scopes);
    assert_eq!(found.audiences, c.audiences);
    assert_eq!(found.redirect_uris, c.redirect_uris);
    assert_eq!(found.token_settings, c.token_settings);
    assert!(s.clients.set_enabled(&c.id, false, 5).await.unwrap());
    assert!(!s.clients.find(&c.id).await.unwrap().unwrap().enabled);
    assert!(
        !s.clients.set_secret_hash(&c.id, "abc", 6).await.unwrap(),
        "a public client has no secret"
    );
    let mut conf = client("svc");
    conf.kind = ClientKind::Confidential;
    conf.secret_hash = Some("old".into());
    s.clients.create(&conf).await.unwrap();
    assert!(s.clients.set_secret_hash(&conf.id, "new", 6).await.unwrap());
    assert_eq!(
        s.clients
            .find(&conf.id)
            .await
            .unwrap()
            .unwrap()
            .secret_hash
            .as_deref(),
        Some("new")
    );
    assert_eq!(s.clients.list().await.unwrap().len(), 2);
    assert!(s.clients.delete(&c.id).await.unwrap());
    assert!(s.clients.find(&c.id).await.unwrap().is_none());
}

fn stored_key(kid: &str) -> StoredKey {
    StoredKey {
        kid: kid.into(),
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

async fn signing_key_store_contract(backend: Backend) {
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
    assert!(s.keys.mark_removed("k1", 40).await.unwrap());
    assert!(!s.keys.mark_removed("k1", 41).await.unwrap());
    assert!(!s.keys.mark_removed("nope", 41).await.unwrap());
    let k1 = s
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == "k1")
        .unwrap();
    assert_eq!((k1.state, k1.removed_at), (KeyState::Removed, Some(40)));
}

struct Family {
    client: ClientId,
    family_id: String,
    user_id: UserId,
    first: NextGeneration,
}

impl Family {
    /// The token of generation `generation` whose secret hashes to `next.token_hash`.
    fn token(&self, generation: i64, next: &NextGeneration) -> PresentedToken {
        PresentedToken {
            family_id: self.family_id.clone(),
            generation,
            token_hash: next.token_hash.clone(),
        }
    }
}

async fn family(s: &Stores, now: i64, absolute: i64) -> Family {
    let c = client(&format!("c{}", uuid::Uuid::new_v4().simple()));
    s.clients.create(&c).await.unwrap();
    let u = user(
        &format!("{}@example.com", uuid::Uuid::new_v4().simple()),
        now,
    );
    s.users
        .create(&NewUserRecord {
            user: u.clone(),
            role_ids: vec![],
        })
        .await
        .unwrap();
    let first = token(now, 100);
    let f = NewFamily {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: c.id.clone(),
        user_id: u.id.clone(),
        scope: Scope::parse("a").unwrap(),
        audience: "https://api.example.com".into(),
        created_at: now,
        absolute_expires_at: now + absolute,
        first: first.clone(),
    };
    assert!(s.refresh_tokens.start_family(&f).await.unwrap());
    Family {
        client: c.id,
        family_id: f.id,
        user_id: u.id,
        first,
    }
}

fn token(now: i64, idle: i64) -> NextGeneration {
    NextGeneration {
        token_hash: format!("hash-{}", uuid::Uuid::new_v4()),
        expires_at: now + idle,
    }
}

async fn refresh_token_store_rotates_once_and_revokes_on_reuse(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let f = family(&s, 1000, 10_000).await;
    let found = s
        .refresh_tokens
        .find_family(&f.family_id)
        .await
        .unwrap()
        .unwrap();
    assert!(found.is_current(&f.token(0, &f.first), 1000));
    let next = token(1001, 100);
    let out = s
        .refresh_tokens
        .rotate(&f.token(0, &f.first), &f.client, None, None, &next, 1001)
        .await
        .unwrap();
    let RotateOutcome::Rotated(info) = out else {
        panic!("expected rotation, got {out:?}")
    };
    assert_eq!(
        (
            info.generation,
            info.scope.to_wire(),
            info.audience.as_str(),
            info.family_id.as_str()
        ),
        (
            1,
            "a".into(),
            "https://api.example.com",
            f.family_id.as_str()
        )
    );
    let found = s
        .refresh_tokens
        .find_family(&f.family_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!found.is_current(&f.token(0, &f.first), 1001));
    assert!(found.is_current(&f.token(1, &next), 1001));
    assert_eq!(found.issued_at, 1001);
    let next2 = token(1002, 100);
    let out = s
        .refresh_tokens
        .rotate(&f.token(1, &next), &f.client, None, None, &next2, 1002)
        .await
        .unwrap();
    assert!(
        matches!(out, RotateOutcome::Rotated(ref i) if i.generation == 2),
        "{out:?}"
    );
    // Generation 0, two generations old: reuse.
    let out = s
        .refresh_tokens
        .rotate(
            &f.token(0, &f.first),
            &f.client,
            None,
            None,
            &token(1003, 100),
            1003,
        )
        .await
        .unwrap();
    assert!(
        matches!(out, RotateOutcome::Reused { ref family_id, absolute_expires_at: 11_000 } if *family_id == f.family_id),
        "{out:?}"
    );
    let out = s
        .refresh_tokens
        .rotate(
            &f.token(2, &next2),
            &f.client,
            None,
            None,
            &token(1004, 100),
            1004,
        )
        .await
        .unwrap();
    assert!(
        matches!(out, RotateOutcome::Rejected(RefreshRejection::Revoked)),
        "{out:?}"
    );
}

async fn refresh_token_store_concurrent_rotation_has_one_winner(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    for _ in 0..3 {
        let f = family(&s, 1000, 10_000).await;
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let store = s.refresh_tokens.clone();
            let (presented, client) = (f.token(0, &f.first), f.client.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .rotate(&presented, &client, None, None, &token(1001, 100), 1001)
                    .await
                    .unwrap()
            }));
        }
        let outcomes = futures::future::join_all(tasks).await;
        let rotated = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(RotateOutcome::Rotated(_))))
            .count();
        assert_eq!(rotated, 1, "{outcomes:?}");
    }
}

async fn refresh_token_store_rejections_and_purge(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let f = family(&s, 1000, 500).await;
    let other = ClientId::parse("someone-else").unwrap();
    let first = f.token(0, &f.first);
    let out = s
        .refresh_tokens
        .rotate(&first, &other, None, None, &token(1001, 100), 1001)
        .await
        .unwrap();
    assert!(
        matches!(out, RotateOutcome::Rejected(RefreshRejection::WrongClient)),
        "{out:?}"
    );
    let wide = Scope::parse("a b").unwrap();
    let out = s
        .refresh_tokens
        .rotate(
            &first,
            &f.client,
            Some(&wide),
            None,
            &token(1001, 100),
            1001,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            RotateOutcome::Rejected(RefreshRejection::ScopeExceeded)
        ),
        "{out:?}"
    );
    let out = s
        .refresh_tokens
        .rotate(
            &first,
            &f.client,
            None,
            Some("https://other.example.com"),
            &token(1001, 100),
            1001,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            RotateOutcome::Rejected(RefreshRejection::AudienceMismatch)
        ),
        "{out:?}"
    );
    // A secret that was never stored, for the current generation or a future one: refused,
    // and the family is not revoked.
    for bogus in [
        PresentedToken {
            token_hash: "nope".into(),
            ..first.clone()
        },
        PresentedToken {
            generation: 5,
            ..first.clone()
        },
        PresentedToken {
            family_id: uuid::Uuid::new_v4().to_string(),
            ..first.clone()
        },
    ] {
        let out = s
            .refresh_tokens
            .rotate(&bogus, &f.client, None, None, &token(1001, 100), 1001)
            .await
            .unwrap();
        assert!(
            matches!(out, RotateOutcome::Rejected(RefreshRejection::Unknown)),
            "{out:?}"
        );
    }
    let narrow = Scope::parse("a").unwrap();
    let kept = token(1001, 100);
    let out = s
        .refresh_tokens
        .rotate(
            &first,
            &f.client,
            Some(&narrow),
            Some("https://api.example.com"),
            &kept,
            1001,
        )
        .await
        .unwrap();
    assert!(
        matches!(out, RotateOutcome::Rotated(_)),
        "a refused scope or audience, or a bogus token, did not use the token up: {out:?}"
    );
    let out = s
        .refresh_tokens
        .rotate(
            &f.token(1, &kept),
            &f.client,
            None,
            None,
            &token(1200, 100),
            1200,
        )
        .await
        .unwrap();
    assert!(
        matches!(out, RotateOutcome::Rejected(RefreshRejection::Expired)),
        "idle expiry: {out:?}"
    );
    let g = family(&s, 1000, 500).await;
    let next = token(1050, 1_000_000);
    let RotateOutcome::Rotated(info) = s
        .refresh_tokens
        .rotate(&g.token(0, &g.first), &g.client, None, None, &next, 1050)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        info.expires_at, 1500,
        "capped at the family's absolute expiry"
    );
    assert!(s
        .refresh_tokens
        .revoke_family(&g.family_id, "logout", 1060)
        .await
        .unwrap());
    assert!(!s
        .refresh_tokens
        .revoke_family(&g.family_id, "logout", 1061)
        .await
        .unwrap());
    assert_eq!(s.refresh_tokens.purge_expired(1499).await.unwrap(), 0);
    assert_eq!(s.refresh_tokens.purge_expired(1500).await.unwrap(), 2);
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
    let mut v: Vec<(String, KeyState)> = keys.iter().map(|k| (k.kid.clone(), k.state)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

async fn signing_key_store_lifecycle_steps_are_compare_and_set(backend: Backend) {
    use latchkey::storage::PendingInsert;
    let (s, _db, _) = stores(backend).await;
    s.keys.insert_active(&stored_key("a"), 10).await.unwrap();
    assert_eq!(
        s.keys
            .insert_pending(&pending_key("p", 11, 100), "not-active")
            .await
            .unwrap(),
        PendingInsert::ActiveChanged
    );
    assert_eq!(
        s.keys
            .insert_pending(&pending_key("p", 11, 100), "a")
            .await
            .unwrap(),
        PendingInsert::Inserted
    );
    assert_eq!(
        s.keys
            .insert_pending(&pending_key("q", 12, 100), "a")
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
        .find(|k| k.kid == "p")
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
    assert!(!s.keys.promote("nope", 50).await.unwrap());
    assert!(
        !s.keys.promote("a", 50).await.unwrap(),
        "only a pending key is promoted"
    );
    assert!(s.keys.promote("p", 50).await.unwrap());
    assert!(!s.keys.promote("p", 51).await.unwrap(), "once");
    let keys = s.keys.list().await.unwrap();
    assert_eq!(
        key_states(&keys),
        [
            ("a".into(), KeyState::Retired),
            ("p".into(), KeyState::Active)
        ]
    );
    let a = keys.iter().find(|k| k.kid == "a").unwrap();
    let p = keys.iter().find(|k| k.kid == "p").unwrap();
    assert_eq!((a.retired_at, p.activated_at), (Some(50), Some(50)));

    assert_eq!(
        s.keys
            .insert_pending(&pending_key("q", 60, 200), "p")
            .await
            .unwrap(),
        PendingInsert::Inserted
    );
    assert!(
        !s.keys.retire_pending("p", 61).await.unwrap(),
        "the active key is not pending"
    );
    assert!(s.keys.retire_pending("q", 61).await.unwrap());
    assert!(!s.keys.retire_pending("q", 62).await.unwrap());
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
        keys.iter().find(|k| k.kid == "a").unwrap().removed_at,
        Some(72)
    );

    // insert_active withdraws the pending key and retires the active one.
    s.keys
        .insert_pending(&pending_key("r", 80, 300), "p")
        .await
        .unwrap();
    s.keys.insert_active(&stored_key("z"), 90).await.unwrap();
    let keys = s.keys.list().await.unwrap();
    let states = key_states(&keys);
    assert!(states.contains(&("p".into(), KeyState::Retired)));
    assert!(states.contains(&("r".into(), KeyState::Retired)));
    assert!(states.contains(&("z".into(), KeyState::Active)));
}

async fn signing_key_store_concurrent_transitions_have_one_winner(backend: Backend) {
    use latchkey::storage::PendingInsert;
    let (s, _db, _) = stores(backend).await;
    s.keys.insert_active(&stored_key("a0"), 1).await.unwrap();
    let mut active = "a0".to_owned();
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
        let outcomes: Vec<(String, PendingInsert)> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let winners: Vec<&String> = outcomes
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
async fn existing_keys_survive_the_lifecycle_migration(backend: Backend) {
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
    let get = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap();
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
}

async fn refresh_token_store_revokes_every_family_of_a_user(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let f = family(&s, 1000, 500).await;
    let g = family(&s, 1000, 500).await;
    let revoked = s
        .refresh_tokens
        .revoke_user_families(&f.user_id, None, "logout-all", 1001)
        .await
        .unwrap();
    assert_eq!(revoked, vec![(f.family_id.clone(), 1500)]);
    let found = s
        .refresh_tokens
        .find_family(&f.family_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.revoked_at, Some(1001));
    let other = s
        .refresh_tokens
        .find_family(&g.family_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.revoked_at, None, "another user's family is untouched");
    assert!(s
        .refresh_tokens
        .revoke_user_families(&f.user_id, None, "logout-all", 1002)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .refresh_tokens
        .find_family("no-such-family")
        .await
        .unwrap()
        .is_none());
    // A login that raced the revocation (its family dated at or before the watermark)
    // does not start a session; a later one does.
    s.revocations
        .append(
            &[Revocation::User {
                user_id: f.user_id.as_str().to_owned(),
                not_after: 1010,
                expires_at: 99_999,
            }],
            1010,
        )
        .await
        .unwrap();
    let raced = NewFamily {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: f.client.clone(),
        user_id: f.user_id.clone(),
        scope: Scope::parse("a").unwrap(),
        audience: "https://api.example.com".into(),
        created_at: 1010,
        absolute_expires_at: 5000,
        first: token(1010, 100),
    };
    assert!(!s.refresh_tokens.start_family(&raced).await.unwrap());
    assert!(s
        .refresh_tokens
        .find_family(&raced.id)
        .await
        .unwrap()
        .is_none());
    let later = NewFamily {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: 1011,
        ..raced
    };
    assert!(s.refresh_tokens.start_family(&later).await.unwrap());
}

fn jti(j: &str, exp: i64) -> Revocation {
    Revocation::AccessToken {
        jti: j.into(),
        expires_at: exp,
    }
}

async fn revocation_store_keeps_commit_order_and_forgets_expired_entries(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    assert!(s.revocations.since(0, 1000, 10).await.unwrap().is_empty());
    assert_eq!(s.revocations.last_seq().await.unwrap(), 0);
    s.revocations
        .append(
            &[
                jti("a", 2000),
                Revocation::Family {
                    family_id: "f".into(),
                    expires_at: 3000,
                },
            ],
            1000,
        )
        .await
        .unwrap();
    s.revocations
        .append(
            &[Revocation::User {
                user_id: "u".into(),
                not_after: 1001,
                expires_at: 5000,
            }],
            1001,
        )
        .await
        .unwrap();
    let all = s.revocations.since(0, 1001, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all[0].revocation, jti("a", 2000));
    assert_eq!(all[0].revoked_at, 1000);
    assert_eq!(
        all[2].revocation,
        Revocation::User {
            user_id: "u".into(),
            not_after: 1001,
            expires_at: 5000
        }
    );
    let after_first = s.revocations.since(all[0].seq, 1001, 1).await.unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].seq, all[1].seq);
    // At 2000 the access-token entry has expired: not listed, then purged.
    assert_eq!(s.revocations.since(0, 2000, 10).await.unwrap().len(), 2);
    assert_eq!(s.revocations.purge_expired(2000).await.unwrap(), 1);
    assert_eq!(s.revocations.purge_expired(2000).await.unwrap(), 0);
    // Sequence numbers are never reused, even after the newest entry is purged.
    s.revocations.purge_expired(6000).await.unwrap();
    s.revocations.append(&[jti("b", 9000)], 6000).await.unwrap();
    let b = s.revocations.since(0, 6000, 10).await.unwrap();
    assert_eq!(b.len(), 1);
    assert!(b[0].seq > all[2].seq);
    assert_eq!(s.revocations.last_seq().await.unwrap(), b[0].seq);
    s.revocations.purge_expired(10_000).await.unwrap();
    assert_eq!(
        s.revocations.last_seq().await.unwrap(),
        b[0].seq,
        "purging does not lower the last seq"
    );
    assert!(s.revocations.append(&[], 6000).await.is_ok());
}

async fn revocation_store_concurrent_appends_never_let_a_cursor_skip_an_entry(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let log = s.revocations.clone();
            tokio::spawn(async move {
                for i in 0..15 {
                    log.append(&[jti(&format!("{w}-{i}"), 10_000)], 1000)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    // A reader follows the log with a cursor while the writers append.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = 0;
    loop {
        let batch = s.revocations.since(cursor, 1000, 7).await.unwrap();
        for e in &batch {
            assert!(e.seq > cursor);
            cursor = e.seq;
            seen.insert(e.revocation.subject().to_owned());
        }
        if batch.is_empty() {
            if writers.iter().all(|w| w.is_finished()) {
                let rest = s.revocations.since(cursor, 1000, 1000).await.unwrap();
                for e in &rest {
                    seen.insert(e.revocation.subject().to_owned());
                }
                if rest.is_empty() {
                    break;
                }
                cursor = rest.last().unwrap().seq;
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
    }
    assert_eq!(
        seen.len(),
        8 * 15,
        "a cursor-following reader saw every entry"
    );
}
