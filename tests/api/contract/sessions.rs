//! The `SessionStore` contract: Latchkey's SSO sessions, on each database (the SQL adapter)
//! and on Redis (the Redis adapter, which `build_session_store` picks when Redis is
//! configured). Liveness is judged by the caller's clock: the times here are small numbers,
//! far from the real time Redis keeps.

use std::collections::BTreeSet;

use latchkey::domain::*;
use latchkey::services::Stores;
use latchkey::storage::{NewUserRecord, StorageError, UserPatch};

use super::{stores, user};
use crate::helpers::{Backend, TestDatabase};

/// The stores with the session store `backend` selects: Redis in the Redis cell, else SQL.
async fn session_stores(backend: Backend) -> (Stores, TestDatabase) {
    let (mut s, db, settings) = stores(backend).await;
    s.sessions = latchkey::startup::build_session_store(&settings, &s).unwrap();
    let expected = if backend.redis { "redis" } else { "sql" };
    assert_eq!(s.sessions.name(), expected);
    (s, db)
}

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

/// A session of `user` created at `created`, idle until `idle`, ending at `absolute`.
fn session(user: &UserId, created: i64, idle: i64, absolute: i64) -> SsoSession {
    SsoSession {
        id: SessionId::generate(),
        secret_hash: format!("secret-{}", uuid::Uuid::new_v4().simple()),
        user_id: user.clone(),
        auth_time: created,
        amr: vec![Amr::Pwd, Amr::Otp],
        remember: true,
        created_at: created,
        last_seen_at: created,
        idle_expires_at: idle,
        absolute_expires_at: absolute,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        ip: Some("192.0.2.7".into()),
        clients: vec![],
    }
}

async fn created(s: &Stores, session: SsoSession) -> SsoSession {
    s.sessions.create(&session).await.unwrap();
    session
}

fn ids(sessions: &[SsoSession]) -> Vec<SessionId> {
    sessions.iter().map(|s| s.id.clone()).collect()
}

fn id_set(sessions: &[SsoSession]) -> BTreeSet<SessionId> {
    sessions.iter().map(|s| s.id.clone()).collect()
}

pub(super) async fn session_store_creates_and_finds_a_session(backend: Backend) {
    let (s, _db) = session_stores(backend).await;
    let alice = person(&s).await;
    let one = created(&s, session(&alice, 1000, 1600, 5000)).await;
    let bare = created(
        &s,
        SsoSession {
            amr: vec![Amr::Fed],
            remember: false,
            user_agent: None,
            ip: None,
            clients: vec![ClientId::parse("c-1").unwrap()],
            ..session(&alice, 1000, 1600, 5000)
        },
    )
    .await;
    for expected in [&one, &bare] {
        let found = s
            .sessions
            .find_live(&expected.secret_hash, 1001)
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(expected), "by the secret's hash");
        let got = s.sessions.get_live(&expected.id, 1001).await.unwrap();
        assert_eq!(got.as_ref(), Some(expected), "by id");
    }
    assert_eq!(
        s.sessions.find_live("secret-unknown", 1001).await.unwrap(),
        None
    );
    assert_eq!(
        s.sessions
            .get_live(&SessionId::generate(), 1001)
            .await
            .unwrap(),
        None
    );
    // The id and the secret's hash are each unique.
    let same_id = SsoSession {
        secret_hash: "secret-other".into(),
        ..one.clone()
    };
    assert!(matches!(
        s.sessions.create(&same_id).await,
        Err(StorageError::Conflict(_))
    ));
    let same_secret = SsoSession {
        id: SessionId::generate(),
        ..one.clone()
    };
    assert!(matches!(
        s.sessions.create(&same_secret).await,
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(
        s.sessions.get_live(&one.id, 1001).await.unwrap().as_ref(),
        Some(&one),
        "unchanged by the refused creations"
    );
}

/// `find_live_with_user` finds what `find_live` finds; SQL reads the user's active flag in the
/// same statement, Redis leaves it to the caller.
pub(super) async fn session_store_finds_a_session_with_its_users_standing(backend: Backend) {
    let (s, _db) = session_stores(backend).await;
    let alice = person(&s).await;
    let one = created(&s, session(&alice, 1000, 1600, 5000)).await;
    let standing = |active: bool| (!backend.redis).then_some(active);

    let found = s
        .sessions
        .find_live_with_user(&one.secret_hash, 1001)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session, one);
    assert_eq!(found.user_active, standing(true));
    for (hash, at) in [("secret-unknown", 1001), (one.secret_hash.as_str(), 1600)] {
        assert!(
            s.sessions
                .find_live_with_user(hash, at)
                .await
                .unwrap()
                .is_none(),
            "{hash} at {at}"
        );
    }

    let patch = UserPatch {
        is_active: Some(false),
        ..Default::default()
    };
    assert!(s.users.update(&alice, &patch, 1002).await.unwrap());
    let found = s
        .sessions
        .find_live_with_user(&one.secret_hash, 1003)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session, one, "the session itself is still live");
    assert_eq!(found.user_active, standing(false));
}

pub(super) async fn session_store_expires_sessions_by_the_callers_clock(backend: Backend) {
    let (s, _db) = session_stores(backend).await;
    let alice = person(&s).await;
    let one = created(&s, session(&alice, 1000, 1100, 2000)).await;
    let live = |at: i64| {
        let (s, one) = (s.clone(), one.clone());
        async move {
            let by_hash = s.sessions.find_live(&one.secret_hash, at).await.unwrap();
            let by_id = s.sessions.get_live(&one.id, at).await.unwrap();
            let listed = s.sessions.list_for_user(&one.user_id, at).await.unwrap();
            assert_eq!(by_hash.is_some(), by_id.is_some(), "at {at}");
            assert_eq!(by_hash.is_some(), !listed.is_empty(), "at {at}");
            by_hash
        }
    };
    assert!(live(1099).await.is_some());
    assert!(live(1100).await.is_none(), "idle expiry reached");
    // A use moves the idle expiry and records when it was seen.
    assert!(s.sessions.touch(&one.id, 1150, 1050).await.unwrap());
    let touched = live(1120).await.unwrap();
    assert_eq!(
        (touched.last_seen_at, touched.idle_expires_at),
        (1050, 1150)
    );
    assert!(live(1150).await.is_none());
    // Never past the absolute expiry.
    assert!(s.sessions.touch(&one.id, 9000, 1100).await.unwrap());
    let touched = live(1999).await.unwrap();
    assert_eq!(
        (touched.last_seen_at, touched.idle_expires_at),
        (1100, 2000)
    );
    assert!(live(2000).await.is_none(), "absolute expiry reached");
    assert!(
        !s.sessions.touch(&one.id, 2500, 2000).await.unwrap(),
        "an expired session is not touched back to life"
    );
    assert!(
        live(1999).await.is_some(),
        "the refused touch changed nothing"
    );
    assert!(!s
        .sessions
        .touch(&SessionId::generate(), 1500, 1000)
        .await
        .unwrap());
    // An idle-expired session stays expired: a late touch does not revive it.
    let idle = created(&s, session(&alice, 1000, 1100, 2000)).await;
    assert!(!s.sessions.touch(&idle.id, 1300, 1100).await.unwrap());
    assert_eq!(s.sessions.get_live(&idle.id, 1100).await.unwrap(), None);
}

pub(super) async fn session_store_adds_each_client_once(backend: Backend) {
    let (s, _db) = session_stores(backend).await;
    let alice = person(&s).await;
    let one = created(&s, session(&alice, 1000, 1600, 5000)).await;
    let c1 = ClientId::parse("client-1").unwrap();
    let c2 = ClientId::parse("client-2").unwrap();
    for c in [&c1, &c2, &c1, &c2, &c1] {
        assert!(s.sessions.add_client(&one.id, c, 1001).await.unwrap());
    }
    let found = s.sessions.get_live(&one.id, 1001).await.unwrap().unwrap();
    assert_eq!(found.clients, vec![c1.clone(), c2.clone()]);
    assert!(!s
        .sessions
        .add_client(&SessionId::generate(), &c1, 1001)
        .await
        .unwrap());
    assert!(
        !s.sessions.add_client(&one.id, &c1, 1600).await.unwrap(),
        "not live"
    );
    // Concurrent additions all land (each is one atomic step).
    let fresh = created(&s, session(&alice, 1000, 1600, 5000)).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, id) = (s.sessions.clone(), fresh.id.clone());
            tokio::spawn(async move {
                let c = ClientId::parse(&format!("client-{}", i % 4)).unwrap();
                store.add_client(&id, &c, 1001).await.unwrap()
            })
        })
        .collect();
    for outcome in futures::future::join_all(tasks).await {
        assert!(outcome.unwrap());
    }
    let found = s.sessions.get_live(&fresh.id, 1001).await.unwrap().unwrap();
    let clients: BTreeSet<&str> = found.clients.iter().map(ClientId::as_str).collect();
    assert_eq!(
        clients,
        BTreeSet::from(["client-0", "client-1", "client-2", "client-3"])
    );
    assert_eq!(found.clients.len(), 4, "no duplicates: {:?}", found.clients);
}

pub(super) async fn session_store_lists_a_users_live_sessions_newest_first(backend: Backend) {
    let (s, _db) = session_stores(backend).await;
    let alice = person(&s).await;
    let bob = person(&s).await;
    let old = created(&s, session(&alice, 1000, 1600, 5000)).await;
    let newest = created(&s, session(&alice, 1020, 1600, 5000)).await;
    let middle = created(&s, session(&alice, 1010, 1600, 5000)).await;
    let _idle = created(&s, session(&alice, 1030, 1040, 5000)).await;
    let _ended = created(&s, session(&alice, 1030, 1600, 1050)).await;
    let theirs = created(&s, session(&bob, 1040, 1600, 5000)).await;
    let listed = s.sessions.list_for_user(&alice, 1100).await.unwrap();
    assert_eq!(ids(&listed), ids(&[newest.clone(), middle, old]));
    assert_eq!(listed[0], newest, "whole sessions");
    assert_eq!(
        ids(&s.sessions.list_for_user(&bob, 1100).await.unwrap()),
        ids(&[theirs])
    );
    assert!(s
        .sessions
        .list_for_user(&UserId::generate(), 1100)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .sessions
        .list_for_user(&alice, 5000)
        .await
        .unwrap()
        .is_empty());
}

pub(super) async fn session_store_ends_a_session_once(backend: Backend) {
    let (s, _db) = session_stores(backend).await;
    let alice = person(&s).await;
    let one = created(&s, session(&alice, 1000, 1600, 5000)).await;
    assert!(s
        .sessions
        .add_client(&one.id, &ClientId::parse("c-1").unwrap(), 1001)
        .await
        .unwrap());
    assert!(s.sessions.touch(&one.id, 1700, 1002).await.unwrap());
    let ended = s.sessions.end(&one.id, 1003).await.unwrap().unwrap();
    assert_eq!(ended.id, one.id);
    assert_eq!(ended.clients, vec![ClientId::parse("c-1").unwrap()]);
    assert_eq!(
        (ended.last_seen_at, ended.idle_expires_at),
        (1002, 1700),
        "as it was when it ended"
    );
    assert_eq!(s.sessions.end(&one.id, 1003).await.unwrap(), None, "once");
    assert_eq!(
        s.sessions.find_live(&one.secret_hash, 1003).await.unwrap(),
        None
    );
    assert_eq!(s.sessions.get_live(&one.id, 1003).await.unwrap(), None);
    assert!(!s.sessions.touch(&one.id, 1700, 1003).await.unwrap());
    assert!(s
        .sessions
        .list_for_user(&alice, 1003)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.sessions.end(&SessionId::generate(), 1003).await.unwrap(),
        None
    );
    // An expired session is not ended (it is taken by `take_expired`).
    let idle = created(&s, session(&alice, 1000, 1100, 5000)).await;
    assert_eq!(s.sessions.end(&idle.id, 1100).await.unwrap(), None);
    assert_eq!(
        ids(&s.sessions.take_expired(1100, 10).await.unwrap()),
        ids(&[idle])
    );
    // Of concurrent ends, exactly one gets the session.
    for _ in 0..3 {
        let contested = created(&s, session(&alice, 1000, 1600, 5000)).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, id) = (s.sessions.clone(), contested.id.clone());
                tokio::spawn(async move { store.end(&id, 1001).await.unwrap() })
            })
            .collect();
        let outcomes = futures::future::join_all(tasks).await;
        let winners: Vec<SsoSession> = outcomes.into_iter().filter_map(|o| o.unwrap()).collect();
        assert_eq!(ids(&winners), ids(&[contested]));
    }
}

pub(super) async fn session_store_ends_every_session_of_a_user_but_one(backend: Backend) {
    let (s, _db) = session_stores(backend).await;
    let alice = person(&s).await;
    let bob = person(&s).await;
    let a1 = created(&s, session(&alice, 1000, 1600, 5000)).await;
    let a2 = created(&s, session(&alice, 1010, 1600, 5000)).await;
    let a3 = created(&s, session(&alice, 1020, 1600, 5000)).await;
    let a_idle = created(&s, session(&alice, 1000, 1050, 5000)).await;
    let b1 = created(&s, session(&bob, 1000, 1600, 5000)).await;
    let ended = s
        .sessions
        .end_for_user(&alice, Some(&a2.id), 1100)
        .await
        .unwrap();
    assert_eq!(id_set(&ended), id_set(&[a1.clone(), a3.clone()]));
    assert_eq!(
        ids(&s.sessions.list_for_user(&alice, 1100).await.unwrap()),
        vec![a2.id.clone()]
    );
    assert!(
        s.sessions.get_live(&b1.id, 1100).await.unwrap().is_some(),
        "another user's"
    );
    assert_eq!(s.sessions.get_live(&a1.id, 1100).await.unwrap(), None);
    assert_eq!(
        s.sessions.end(&a3.id, 1100).await.unwrap(),
        None,
        "already ended"
    );
    let rest = s.sessions.end_for_user(&alice, None, 1100).await.unwrap();
    assert_eq!(ids(&rest), ids(&[a2]));
    assert!(s
        .sessions
        .end_for_user(&alice, None, 1100)
        .await
        .unwrap()
        .is_empty());
    // The expired one was left for `take_expired`.
    assert_eq!(
        ids(&s.sessions.take_expired(1100, 10).await.unwrap()),
        ids(&[a_idle])
    );
}

pub(super) async fn session_store_takes_expired_sessions_once(backend: Backend) {
    let (s, _db) = session_stores(backend).await;
    let alice = person(&s).await;
    let live = created(&s, session(&alice, 1000, 1600, 5000)).await;
    let idle = created(&s, session(&alice, 1000, 1100, 5000)).await;
    let ended = created(&s, session(&alice, 900, 1300, 1300)).await;
    let later = created(&s, session(&alice, 1010, 1300, 5000)).await;
    // Touched past the time it was created to idle out at: not expired.
    assert!(s.sessions.touch(&later.id, 1800, 1050).await.unwrap());
    assert!(s.sessions.take_expired(1099, 10).await.unwrap().is_empty());
    let first = s.sessions.take_expired(1300, 1).await.unwrap();
    assert_eq!(first.len(), 1, "at most the limit");
    let second = s.sessions.take_expired(1300, 10).await.unwrap();
    let mut taken = first.clone();
    taken.extend(second);
    assert_eq!(id_set(&taken), id_set(&[idle.clone(), ended.clone()]));
    assert_eq!(
        taken.iter().find(|t| t.id == idle.id),
        Some(&idle),
        "returned as they were"
    );
    assert!(
        s.sessions.take_expired(1300, 10).await.unwrap().is_empty(),
        "taken once"
    );
    // They are gone: nothing answers them, even at a time they were live.
    for gone in [&idle, &ended] {
        assert_eq!(s.sessions.get_live(&gone.id, 1000).await.unwrap(), None);
        assert_eq!(
            s.sessions.find_live(&gone.secret_hash, 1000).await.unwrap(),
            None
        );
        assert_eq!(s.sessions.end(&gone.id, 1000).await.unwrap(), None);
    }
    assert_eq!(
        ids(&s.sessions.list_for_user(&alice, 1300).await.unwrap()),
        ids(&[later.clone(), live.clone()])
    );
    assert!(s.sessions.get_live(&live.id, 1300).await.unwrap().is_some());
    let at_end = s.sessions.take_expired(5000, 10).await.unwrap();
    assert_eq!(id_set(&at_end), id_set(&[live, later]));
    assert!(s
        .sessions
        .list_for_user(&alice, 1000)
        .await
        .unwrap()
        .is_empty());
    assert!(s.sessions.take_expired(9000, 10).await.unwrap().is_empty());
}

/// Issue 15: a step-up replaces a live session's `amr` and `auth_time` and nothing else; a
/// session that is not live is left alone.
pub(super) async fn session_store_steps_up_a_live_session(backend: Backend) {
    let (s, _db) = session_stores(backend).await;
    let alice = person(&s).await;
    let mut one = session(&alice, 1000, 1600, 5000);
    one.amr = vec![Amr::Pwd];
    let one = created(&s, one).await;
    let google = Amr::Idp(ProviderId::parse("google").unwrap());
    let amr = vec![Amr::Pwd, Amr::Otp, Amr::Mfa, Amr::Fed, google];
    assert!(s.sessions.step_up(&one.id, &amr, 1200, 1200).await.unwrap());
    let found = s.sessions.get_live(&one.id, 1201).await.unwrap().unwrap();
    assert_eq!(found.amr, amr);
    assert_eq!(found.auth_time, 1200);
    assert_eq!(found.created_at, one.created_at);
    assert_eq!(found.secret_hash, one.secret_hash);
    assert_eq!(found.idle_expires_at, one.idle_expires_at);
    let by_cookie = s
        .sessions
        .find_live(&one.secret_hash, 1201)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_cookie.amr, amr);
    // Not live (idle expiry passed), or unknown: nothing changes.
    assert!(!s
        .sessions
        .step_up(&one.id, &[Amr::Pwd], 1700, 1700)
        .await
        .unwrap());
    assert!(!s
        .sessions
        .step_up(&SessionId::generate(), &[Amr::Pwd], 1200, 1200)
        .await
        .unwrap());
}
