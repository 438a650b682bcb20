//! The directory stores' contracts: `UserStore`, `RoleStore`, `ClientStore`.

use std::collections::BTreeSet;

use latchkey::domain::*;
use latchkey::storage::{NewUserRecord, StorageError, UserPatch};

use super::{client, role, stores, user};
use crate::helpers::Backend;

pub(super) async fn user_store_contract(backend: Backend) {
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
        .find_by_email(&Email::parse("alice@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.clone(), found.attributes["tenant"].as_str()),
        (alice.id.clone(), Some("acme"))
    );
    assert!(
        s.users
            .find_by_email(&Email::parse("ALICE@example.com").unwrap())
            .await
            .unwrap()
            .is_some_and(|u| u.id == alice.id),
        "the caller's address is normalised by the type"
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
    let (found, with) = s.users.find_with_claims(&alice.id).await.unwrap().unwrap();
    assert_eq!(found.id, alice.id);
    assert_eq!(found.email.as_ref().unwrap().as_str(), "alice@example.com");
    assert_eq!(found.attributes["tenant"].as_str(), Some("acme"));
    assert_eq!(
        (with.is_active, &with.roles, &with.permissions),
        (claims.is_active, &claims.roles, &claims.permissions),
        "the claims `claims` answers"
    );
    assert!(s
        .users
        .find_with_claims(&UserId::generate())
        .await
        .unwrap()
        .is_none());
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
    assert_eq!(paged[0].email.as_ref().unwrap().as_str(), "bob@example.com");

    // Keyset paging in (created_at, id) order; a role granted after a later user's keeps its
    // user's place in the role's order.
    assert!(s.users.revoke_role(&alice.id, &viewer.id).await.unwrap());
    assert!(s.users.grant_role(&alice.id, &viewer.id).await.unwrap());
    let viewers = s
        .users
        .list(&UserFilter {
            role: Some(RoleName::parse("viewer").unwrap()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        viewers
            .iter()
            .map(|u| u.email.as_ref().unwrap().as_str())
            .collect::<Vec<_>>(),
        ["alice@example.com", "bob@example.com"]
    );
    for role in [None, Some(RoleName::parse("viewer").unwrap())] {
        let after_alice = s
            .users
            .list(&UserFilter {
                role,
                limit: 10,
                after: Some(UserCursor::of(&viewers[0])),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(after_alice.len(), 1);
        assert_eq!(
            after_alice[0].email.as_ref().unwrap().as_str(),
            "bob@example.com"
        );
    }
    let mut roles = s
        .users
        .role_names_of(&[alice.id.clone(), viewers[1].id.clone(), UserId::generate()])
        .await
        .unwrap();
    roles.sort();
    let mut expected = vec![
        (alice.id.clone(), "viewer".to_owned()),
        (viewers[1].id.clone(), "viewer".to_owned()),
    ];
    expected.sort();
    assert_eq!(roles, expected);
    assert!(s.users.role_names_of(&[]).await.unwrap().is_empty());

    // A user without roles: one row, no role, no permission.
    let carol = user("carol@example.com", 102);
    s.users
        .create(&NewUserRecord {
            user: carol.clone(),
            role_ids: vec![],
        })
        .await
        .unwrap();
    let (found, with) = s.users.find_with_claims(&carol.id).await.unwrap().unwrap();
    assert_eq!(
        (found.id, with.is_active, with.roles, with.permissions),
        (carol.id, carol.is_active, vec![], vec![])
    );

    assert!(s.users.delete(&alice.id).await.unwrap());
    assert!(!s.users.delete(&alice.id).await.unwrap());
    assert!(s.users.claims(&alice.id).await.unwrap().is_none());
    assert!(s.users.find_with_claims(&alice.id).await.unwrap().is_none());
}

pub(super) async fn role_store_contract(backend: Backend) {
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

pub(super) async fn client_store_contract(backend: Backend) {
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
    assert!(
        !s.clients.update(&c).await.unwrap(),
        "updating a client that is gone changes nothing"
    );
}

/// `update` replaces every setting and `updated_at`, and leaves the id, kind, secret,
/// `enabled` and `created_at` alone.
pub(super) async fn client_store_update_replaces_the_settings(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let mut stored = client("svc");
    stored.kind = ClientKind::Confidential;
    stored.secret_hash = Some("hash".into());
    stored.oidc.post_logout_redirect_uris = vec!["https://app.example.com/bye".into()];
    stored.oidc.backchannel_logout_uri = Some("https://app.example.com/bc".into());
    s.clients.create(&stored).await.unwrap();
    assert!(s.clients.set_enabled(&stored.id, false, 2).await.unwrap());

    let mut changed = stored.clone();
    changed.name = "Renamed".into();
    changed.kind = ClientKind::Public;
    changed.secret_hash = None;
    changed.enabled = true;
    changed.created_at = 99;
    changed.grant_types = BTreeSet::from([GrantType::AuthorizationCode, GrantType::RefreshToken]);
    changed.scopes = Scope::parse("openid profile").unwrap();
    changed.redirect_uris = vec![
        "https://app.example.com/cb2".into(),
        "https://app.example.com/cb3".into(),
    ];
    changed.audiences = vec![
        Audience::parse("https://api.example.com").unwrap(),
        Audience::parse("orders").unwrap(),
    ];
    changed.default_audience = Some(Audience::parse("orders").unwrap());
    changed.token_settings = ClientTokenSettings {
        access_token_ttl: None,
        refresh_idle_ttl: Some(3600),
        refresh_absolute_ttl: Some(86_400),
        refresh_grace_secs: Some(30),
        refresh_grace_uses: Some(3),
    };
    changed.oidc = ClientOidcSettings {
        post_logout_redirect_uris: vec![],
        allowed_origins: vec!["https://app.example.com".into()],
        first_party: true,
        backchannel_logout_uri: None,
        id_token_alg: SigningAlg::EdDSA,
        require_mfa: true,
    };
    changed.updated_at = 7;
    assert!(s.clients.update(&changed).await.unwrap());

    let found = s.clients.find(&stored.id).await.unwrap().unwrap();
    assert_eq!(found.name, "Renamed");
    assert_eq!(found.grant_types, changed.grant_types);
    assert_eq!(found.scopes, changed.scopes);
    assert_eq!(found.redirect_uris, changed.redirect_uris);
    assert_eq!(found.audiences, changed.audiences);
    assert_eq!(found.default_audience, changed.default_audience);
    assert_eq!(found.token_settings, changed.token_settings);
    assert_eq!(found.oidc, changed.oidc);
    assert_eq!(found.updated_at, 7);
    assert_eq!(found.kind, ClientKind::Confidential, "the kind stays");
    assert_eq!(
        found.secret_hash.as_deref(),
        Some("hash"),
        "the secret stays"
    );
    assert!(
        !found.enabled,
        "an update never re-enables a disabled client"
    );
    assert_eq!(found.created_at, stored.created_at);

    let other = client("other");
    s.clients.create(&other).await.unwrap();
    let mut back = found.clone();
    back.oidc.backchannel_logout_uri = Some("https://app.example.com/bc2".into());
    back.updated_at = 8;
    assert!(s.clients.update(&back).await.unwrap());
    assert_eq!(
        s.clients.find(&stored.id).await.unwrap().unwrap().oidc,
        back.oidc
    );
    let untouched = s.clients.find(&other.id).await.unwrap().unwrap();
    assert_eq!(untouched.name, "other", "only the named client changes");
    assert_eq!(untouched.updated_at, other.updated_at);
}
