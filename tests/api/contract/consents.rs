//! The `ConsentStore` contract: the scopes a user approved for a client, merged grant by grant.

use std::collections::BTreeSet;

use latchkey::domain::*;
use latchkey::services::Stores;
use latchkey::storage::NewUserRecord;

use super::{client, stores, user};
use crate::helpers::Backend;

async fn person(s: &Stores) -> UserId {
    let u = user(&format!("{}@example.com", uuid::Uuid::new_v4().simple()), 1);
    s.users
        .create(&NewUserRecord {
            user: u.clone(),
            role_ids: vec![],
        })
        .await
        .unwrap();
    u.id
}

async fn app(s: &Stores) -> ClientId {
    let c = client(&format!("c{}", uuid::Uuid::new_v4().simple()));
    s.clients.create(&c).await.unwrap();
    c.id
}

fn scope(raw: &str) -> Scope {
    Scope::parse(raw).unwrap()
}

fn clients_of(consents: &[Consent]) -> Vec<ClientId> {
    consents.iter().map(|c| c.client_id.clone()).collect()
}

pub(super) async fn consent_store_grants_merges_lists_and_revokes(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    let (c1, c2) = (app(&s).await, app(&s).await);
    assert_eq!(s.consents.find(&alice, &c1).await.unwrap(), None);
    s.consents
        .grant(&alice, &c1, &scope("openid profile"), 100)
        .await
        .unwrap();
    assert_eq!(
        s.consents.find(&alice, &c1).await.unwrap(),
        Some(Consent {
            user_id: alice.clone(),
            client_id: c1.clone(),
            scope: scope("openid profile"),
            granted_at: 100,
        })
    );
    // A second grant adds to the first: the union, granted when it was last approved.
    s.consents
        .grant(&alice, &c1, &scope("email openid"), 300)
        .await
        .unwrap();
    let merged = s.consents.find(&alice, &c1).await.unwrap().unwrap();
    assert_eq!(
        (merged.scope, merged.granted_at),
        (scope("email openid profile"), 300)
    );
    // A grant within what was approved narrows nothing.
    s.consents
        .grant(&alice, &c1, &scope("openid"), 400)
        .await
        .unwrap();
    assert_eq!(
        s.consents.find(&alice, &c1).await.unwrap().unwrap().scope,
        scope("email openid profile")
    );
    s.consents
        .grant(&alice, &c2, &scope("openid"), 200)
        .await
        .unwrap();
    s.consents
        .grant(&bob, &c1, &scope("openid"), 200)
        .await
        .unwrap();
    let listed = s.consents.list_for_user(&alice).await.unwrap();
    assert_eq!(
        clients_of(&listed),
        vec![c2.clone(), c1.clone()],
        "oldest first"
    );
    assert!(listed.iter().all(|c| c.user_id == alice));
    assert_eq!(
        clients_of(&s.consents.list_for_user(&bob).await.unwrap()),
        vec![c1.clone()]
    );
    assert!(s.consents.revoke(&alice, &c1).await.unwrap());
    assert!(!s.consents.revoke(&alice, &c1).await.unwrap(), "once");
    assert_eq!(s.consents.find(&alice, &c1).await.unwrap(), None);
    assert_eq!(
        clients_of(&s.consents.list_for_user(&alice).await.unwrap()),
        vec![c2]
    );
    assert!(
        s.consents.find(&bob, &c1).await.unwrap().is_some(),
        "another user's consent stays"
    );
    // After a revocation, a grant starts afresh.
    s.consents
        .grant(&alice, &c1, &scope("a"), 500)
        .await
        .unwrap();
    assert_eq!(
        s.consents.find(&alice, &c1).await.unwrap().unwrap().scope,
        scope("a")
    );
}

pub(super) async fn consent_store_concurrent_grants_keep_every_scope(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let alice = person(&s).await;
    for _ in 0..3 {
        let c = app(&s).await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (store, user, c) = (s.consents.clone(), alice.clone(), c.clone());
                tokio::spawn(async move {
                    store
                        .grant(&user, &c, &scope(&format!("openid s{i}")), 100 + i)
                        .await
                })
            })
            .collect();
        for outcome in futures::future::join_all(tasks).await {
            outcome.unwrap().unwrap();
        }
        let granted = s.consents.find(&alice, &c).await.unwrap().unwrap().scope;
        let tokens: BTreeSet<&str> = granted.iter().collect();
        let mut expected: BTreeSet<String> = (0..8).map(|i| format!("s{i}")).collect();
        expected.insert("openid".into());
        assert_eq!(
            tokens,
            expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
        );
    }
}

pub(super) async fn consent_store_forgets_a_deleted_users_consents(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    let (c1, c2) = (app(&s).await, app(&s).await);
    for (u, c) in [(&alice, &c1), (&alice, &c2), (&bob, &c1), (&bob, &c2)] {
        s.consents.grant(u, c, &scope("openid"), 100).await.unwrap();
    }
    assert!(s.users.delete(&alice).await.unwrap());
    assert!(s.consents.list_for_user(&alice).await.unwrap().is_empty());
    assert_eq!(s.consents.find(&alice, &c1).await.unwrap(), None);
    assert!(s.clients.delete(&c2).await.unwrap());
    assert_eq!(
        clients_of(&s.consents.list_for_user(&bob).await.unwrap()),
        vec![c1],
        "and a deleted client's"
    );
}
