//! The `MfaStore` contract: second factors (pending until confirmed, TOTP steps used once)
//! and recovery codes (replaced as a set, single use).

use latchkey::domain::*;
use latchkey::services::Stores;
use latchkey::storage::{NewUserRecord, StorageError};

use super::{stores, user};
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

/// A pending TOTP factor, as enrolment creates it.
fn totp(user: &UserId, created_at: i64) -> MfaFactor {
    MfaFactor {
        id: FactorId::generate(),
        user_id: user.clone(),
        kind: FactorKind::Totp,
        name: "Authenticator app".into(),
        secret_enc: Some(vec![1, 2, 3, 0, 255]),
        enc_key_id: Some("master-1".into()),
        credential: None,
        credential_id: None,
        confirmed_at: None,
        last_step: 0,
        created_at,
        last_used_at: None,
    }
}

/// A pending passkey.
fn passkey(user: &UserId, created_at: i64) -> MfaFactor {
    MfaFactor {
        id: FactorId::generate(),
        user_id: user.clone(),
        kind: FactorKind::Passkey,
        name: "Laptop".into(),
        secret_enc: None,
        enc_key_id: None,
        credential: Some(r#"{"cred":"opaque"}"#.into()),
        credential_id: Some(uuid::Uuid::new_v4().simple().to_string()),
        confirmed_at: None,
        last_step: 0,
        created_at,
        last_used_at: None,
    }
}

fn hashes(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:02}")).collect()
}

fn ids(factors: &[MfaFactor]) -> Vec<FactorId> {
    factors.iter().map(|f| f.id.clone()).collect()
}

/// A TOTP factor created and confirmed at `at`, its step `step`.
async fn confirmed_totp(s: &Stores, user: &UserId, at: i64, step: i64) -> FactorId {
    let f = totp(user, at);
    s.mfa.create(&f).await.unwrap();
    assert!(s.mfa.confirm(user, &f.id, step, None, at).await.unwrap());
    f.id
}

pub(super) async fn mfa_store_creates_finds_lists_and_confirms_factors(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    assert!(s.mfa.list(&alice).await.unwrap().is_empty());
    let t = totp(&alice, 100);
    s.mfa.create(&t).await.unwrap();
    let found = s.mfa.find(&alice, &t.id).await.unwrap().unwrap();
    assert_eq!(
        (
            &found.id,
            &found.user_id,
            found.kind,
            found.name.as_str(),
            found.secret_enc.as_deref(),
            found.enc_key_id.as_deref(),
            found.credential.as_deref(),
            found.credential_id.as_deref(),
            found.confirmed_at,
            found.last_step,
            found.created_at,
            found.last_used_at,
        ),
        (
            &t.id,
            &alice,
            FactorKind::Totp,
            "Authenticator app",
            Some(&[1u8, 2, 3, 0, 255][..]),
            Some("master-1"),
            None,
            None,
            None,
            0,
            100,
            None,
        ),
        "read back as written, pending"
    );
    assert!(
        s.mfa.find(&bob, &t.id).await.unwrap().is_none(),
        "another user's factor is not found"
    );
    assert!(s
        .mfa
        .find(&alice, &FactorId::generate())
        .await
        .unwrap()
        .is_none());

    // Passkeys: the credential is read back; its id is unique across users.
    let p = passkey(&alice, 90);
    s.mfa.create(&p).await.unwrap();
    let read = s.mfa.find(&alice, &p.id).await.unwrap().unwrap();
    assert_eq!(read.kind, FactorKind::Passkey);
    assert_eq!(read.credential, p.credential);
    assert_eq!(read.credential_id, p.credential_id);
    assert_eq!(read.secret_enc, None);
    let mut taken = passkey(&bob, 95);
    taken.credential_id = p.credential_id.clone();
    let dup = s.mfa.create(&taken).await;
    assert!(
        matches!(dup, Err(StorageError::Conflict(ref c)) if c == "mfa_factors_credential_id_key"),
        "{dup:?}"
    );
    // Two factors of one time are listed by id.
    let mut same_time: Vec<MfaFactor> = (0..2).map(|_| passkey(&alice, 100)).collect();
    for f in &same_time {
        s.mfa.create(f).await.unwrap();
    }
    let listed = s.mfa.list(&alice).await.unwrap();
    same_time.sort_by(|a, b| a.id.cmp(&b.id));
    let mut at_100 = vec![
        t.id.clone(),
        same_time[0].id.clone(),
        same_time[1].id.clone(),
    ];
    at_100.sort();
    let mut expected = vec![p.id.clone()];
    expected.extend(at_100);
    assert_eq!(ids(&listed), expected, "by created_at, then id");
    assert!(s.mfa.list(&bob).await.unwrap().is_empty());

    // Confirming: once, only the user's own pending factor.
    let codes = hashes("a", 10);
    assert!(
        !s.mfa
            .confirm(&bob, &t.id, 5, Some(&codes), 200)
            .await
            .unwrap(),
        "another user's factor"
    );
    assert!(!s
        .mfa
        .confirm(&alice, &FactorId::generate(), 5, None, 200)
        .await
        .unwrap());
    assert_eq!(
        s.mfa.recovery_codes_left(&bob).await.unwrap(),
        0,
        "a refused confirmation stores no codes"
    );
    assert!(s
        .mfa
        .confirm(&alice, &t.id, 7, Some(&codes), 200)
        .await
        .unwrap());
    let confirmed = s.mfa.find(&alice, &t.id).await.unwrap().unwrap();
    assert_eq!(
        (
            confirmed.confirmed_at,
            confirmed.last_step,
            confirmed.last_used_at
        ),
        (Some(200), 7, Some(200))
    );
    assert!(confirmed.is_confirmed());
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 10);
    assert!(
        !s.mfa
            .confirm(&alice, &t.id, 9, Some(&hashes("b", 10)), 300)
            .await
            .unwrap(),
        "twice"
    );
    let after = s.mfa.find(&alice, &t.id).await.unwrap().unwrap();
    assert_eq!(
        (after.confirmed_at, after.last_step),
        (Some(200), 7),
        "unchanged"
    );
    assert!(
        s.mfa.use_recovery_code(&alice, "a-03", 300).await.unwrap(),
        "the codes of the first confirmation stay"
    );
}

pub(super) async fn mfa_store_a_new_pending_totp_factor_replaces_the_older_pending_one(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    let confirmed = confirmed_totp(&s, &alice, 10, 1).await;
    let pending_key = passkey(&alice, 20);
    s.mfa.create(&pending_key).await.unwrap();
    let first = totp(&alice, 30);
    s.mfa.create(&first).await.unwrap();
    let bobs = totp(&bob, 30);
    s.mfa.create(&bobs).await.unwrap();
    let second = totp(&alice, 40);
    s.mfa.create(&second).await.unwrap();
    assert_eq!(
        ids(&s.mfa.list(&alice).await.unwrap()),
        vec![confirmed.clone(), pending_key.id.clone(), second.id.clone()],
        "the older pending TOTP factor is gone; the confirmed one and a pending passkey stay"
    );
    assert!(s.mfa.find(&alice, &first.id).await.unwrap().is_none());
    assert!(!s.mfa.confirm(&alice, &first.id, 5, None, 50).await.unwrap());
    assert_eq!(
        ids(&s.mfa.list(&bob).await.unwrap()),
        vec![bobs.id],
        "another user's pending factor stays"
    );
    // A second confirmed TOTP factor is possible; a new pending one leaves both.
    assert!(s
        .mfa
        .confirm(&alice, &second.id, 5, None, 50)
        .await
        .unwrap());
    let third = totp(&alice, 60);
    s.mfa.create(&third).await.unwrap();
    assert_eq!(
        ids(&s.mfa.list(&alice).await.unwrap()),
        vec![confirmed, pending_key.id, second.id, third.id]
    );
}

pub(super) async fn mfa_store_uses_each_totp_step_once(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    let id = confirmed_totp(&s, &alice, 100, 1000).await;
    assert!(
        !s.mfa.use_totp_step(&alice, &id, 1000, 110).await.unwrap(),
        "the step of the confirmation is used"
    );
    assert!(!s.mfa.use_totp_step(&alice, &id, 999, 110).await.unwrap());
    assert!(s.mfa.use_totp_step(&alice, &id, 1001, 120).await.unwrap());
    assert!(
        !s.mfa.use_totp_step(&alice, &id, 1001, 121).await.unwrap(),
        "same step twice"
    );
    assert!(
        !s.mfa.use_totp_step(&alice, &id, 1000, 122).await.unwrap(),
        "an earlier step"
    );
    assert!(s.mfa.use_totp_step(&alice, &id, 1003, 130).await.unwrap());
    let f = s.mfa.find(&alice, &id).await.unwrap().unwrap();
    assert_eq!((f.last_step, f.last_used_at), (1003, Some(130)));
    assert!(
        !s.mfa.use_totp_step(&bob, &id, 2000, 140).await.unwrap(),
        "another user's factor"
    );
    assert_eq!(
        s.mfa.find(&alice, &id).await.unwrap().unwrap().last_step,
        1003
    );
    let pending = totp(&alice, 100);
    s.mfa.create(&pending).await.unwrap();
    assert!(
        !s.mfa
            .use_totp_step(&alice, &pending.id, 5000, 140)
            .await
            .unwrap(),
        "a pending factor"
    );
    let key = passkey(&alice, 100);
    s.mfa.create(&key).await.unwrap();
    assert!(s.mfa.confirm(&alice, &key.id, 0, None, 100).await.unwrap());
    assert!(
        !s.mfa
            .use_totp_step(&alice, &key.id, 5000, 140)
            .await
            .unwrap(),
        "a passkey"
    );
    assert!(!s
        .mfa
        .use_totp_step(&alice, &FactorId::generate(), 5000, 140)
        .await
        .unwrap());
}

pub(super) async fn mfa_store_concurrent_uses_of_one_totp_step_have_one_winner(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let alice = person(&s).await;
    let id = confirmed_totp(&s, &alice, 100, 10).await;
    for step in [11, 12, 20] {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (store, user, id) = (s.mfa.clone(), alice.clone(), id.clone());
                tokio::spawn(async move { store.use_totp_step(&user, &id, step, 200 + i).await })
            })
            .collect();
        let wins = futures::future::join_all(tasks)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap().as_ref().unwrap())
            .count();
        assert_eq!(wins, 1, "step {step}");
        assert_eq!(
            s.mfa.find(&alice, &id).await.unwrap().unwrap().last_step,
            step
        );
    }
}

pub(super) async fn mfa_store_stores_a_used_passkey_only_over_what_was_read(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    let key = passkey(&alice, 100);
    s.mfa.create(&key).await.unwrap();
    let seen = key.credential.clone().unwrap();
    assert!(
        !s.mfa
            .use_passkey(&alice, &key.id, &seen, r#"{"cred":"n1"}"#, 110)
            .await
            .unwrap(),
        "a pending passkey is not used"
    );
    assert!(s.mfa.confirm(&alice, &key.id, 0, None, 105).await.unwrap());
    assert!(s
        .mfa
        .use_passkey(&alice, &key.id, &seen, r#"{"cred":"n1"}"#, 110)
        .await
        .unwrap());
    let f = s.mfa.find(&alice, &key.id).await.unwrap().unwrap();
    assert_eq!(f.credential.as_deref(), Some(r#"{"cred":"n1"}"#));
    assert_eq!(f.last_used_at, Some(110));
    assert!(
        !s.mfa
            .use_passkey(&alice, &key.id, &seen, r#"{"cred":"n2"}"#, 120)
            .await
            .unwrap(),
        "a use that read the credential before the last one changed it"
    );
    assert!(
        !s.mfa
            .use_passkey(&bob, &key.id, r#"{"cred":"n1"}"#, r#"{"cred":"n3"}"#, 120)
            .await
            .unwrap(),
        "another user's passkey"
    );
    let id = confirmed_totp(&s, &alice, 100, 10).await;
    assert!(
        !s.mfa
            .use_passkey(&alice, &id, "", r#"{"cred":"n4"}"#, 120)
            .await
            .unwrap(),
        "a TOTP factor"
    );
    assert_eq!(
        s.mfa
            .find(&alice, &key.id)
            .await
            .unwrap()
            .unwrap()
            .credential
            .as_deref(),
        Some(r#"{"cred":"n1"}"#)
    );
    // Of concurrent uses that read the same credential, one stores its own.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, user, id) = (s.mfa.clone(), alice.clone(), key.id.clone());
            tokio::spawn(async move {
                store
                    .use_passkey(
                        &user,
                        &id,
                        r#"{"cred":"n1"}"#,
                        &format!("{{\"cred\":\"c{i}\"}}"),
                        130,
                    )
                    .await
            })
        })
        .collect();
    let wins = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap().as_ref().unwrap())
        .count();
    assert_eq!(wins, 1);
}

pub(super) async fn mfa_store_deletes_one_factor_or_all_of_a_user(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    let a1 = confirmed_totp(&s, &alice, 10, 1).await;
    let a2 = passkey(&alice, 20);
    s.mfa.create(&a2).await.unwrap();
    let a3 = totp(&alice, 30);
    s.mfa.create(&a3).await.unwrap();
    s.mfa
        .replace_recovery_codes(&alice, &hashes("a", 10), 30)
        .await
        .unwrap();
    let b1 = confirmed_totp(&s, &bob, 10, 1).await;
    s.mfa
        .replace_recovery_codes(&bob, &hashes("b", 10), 30)
        .await
        .unwrap();

    assert!(!s.mfa.delete(&bob, &a1).await.unwrap(), "not bob's");
    assert!(s.mfa.delete(&alice, &a1).await.unwrap());
    assert!(!s.mfa.delete(&alice, &a1).await.unwrap(), "once");
    assert!(s.mfa.find(&alice, &a1).await.unwrap().is_none());
    assert_eq!(
        ids(&s.mfa.list(&alice).await.unwrap()),
        vec![a2.id.clone(), a3.id.clone()]
    );

    assert_eq!(s.mfa.delete_all(&alice).await.unwrap(), 2);
    assert!(s.mfa.list(&alice).await.unwrap().is_empty());
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 0);
    assert!(!s.mfa.use_recovery_code(&alice, "a-00", 40).await.unwrap());
    assert_eq!(s.mfa.delete_all(&alice).await.unwrap(), 0, "nothing left");
    assert_eq!(ids(&s.mfa.list(&bob).await.unwrap()), vec![b1]);
    assert_eq!(
        s.mfa.recovery_codes_left(&bob).await.unwrap(),
        10,
        "another user's factors and codes stay"
    );
}

pub(super) async fn mfa_store_recovery_codes_are_replaced_as_a_set_and_used_once(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 0);
    let t = totp(&alice, 10);
    s.mfa.create(&t).await.unwrap();
    let first = hashes("first", 10);
    assert!(s
        .mfa
        .confirm(&alice, &t.id, 1, Some(&first), 20)
        .await
        .unwrap());
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 10);
    assert!(s
        .mfa
        .use_recovery_code(&alice, &first[0], 30)
        .await
        .unwrap());
    assert!(
        !s.mfa
            .use_recovery_code(&alice, &first[0], 31)
            .await
            .unwrap(),
        "single use"
    );
    assert!(!s
        .mfa
        .use_recovery_code(&alice, "unknown", 31)
        .await
        .unwrap());
    assert!(
        !s.mfa.use_recovery_code(&bob, &first[1], 31).await.unwrap(),
        "another user's code"
    );
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 9);

    // Regenerated: the old set dies, used codes and unused ones alike.
    let second = hashes("second", 10);
    s.mfa
        .replace_recovery_codes(&alice, &second, 40)
        .await
        .unwrap();
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 10);
    assert!(!s
        .mfa
        .use_recovery_code(&alice, &first[1], 41)
        .await
        .unwrap());
    assert!(s
        .mfa
        .use_recovery_code(&alice, &second[1], 42)
        .await
        .unwrap());
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 9);

    // Confirming another factor without codes keeps them; with codes replaces them.
    let key = passkey(&alice, 50);
    s.mfa.create(&key).await.unwrap();
    assert!(s.mfa.confirm(&alice, &key.id, 0, None, 51).await.unwrap());
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 9);
    let t2 = totp(&alice, 60);
    s.mfa.create(&t2).await.unwrap();
    let third = hashes("third", 10);
    assert!(s
        .mfa
        .confirm(&alice, &t2.id, 1, Some(&third), 61)
        .await
        .unwrap());
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 10);
    assert!(!s
        .mfa
        .use_recovery_code(&alice, &second[2], 62)
        .await
        .unwrap());
    assert!(s
        .mfa
        .use_recovery_code(&alice, &third[2], 62)
        .await
        .unwrap());

    // A hash given twice is one code; an empty set leaves none.
    let twice = vec!["x".to_owned(), "x".to_owned(), "y".to_owned()];
    s.mfa
        .replace_recovery_codes(&alice, &twice, 70)
        .await
        .unwrap();
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 2);
    // One user's hash may be another's too: codes are per user.
    s.mfa
        .replace_recovery_codes(&bob, &twice, 70)
        .await
        .unwrap();
    assert!(s.mfa.use_recovery_code(&bob, "x", 71).await.unwrap());
    assert!(s.mfa.use_recovery_code(&alice, "x", 71).await.unwrap());
    s.mfa.replace_recovery_codes(&alice, &[], 80).await.unwrap();
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 0);
    assert_eq!(s.mfa.recovery_codes_left(&bob).await.unwrap(), 1);
}

pub(super) async fn mfa_store_concurrent_uses_of_one_recovery_code_have_one_winner(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let alice = person(&s).await;
    let codes = hashes("c", 10);
    s.mfa
        .replace_recovery_codes(&alice, &codes, 10)
        .await
        .unwrap();
    for code in &codes[..3] {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (store, user, code) = (s.mfa.clone(), alice.clone(), code.clone());
                tokio::spawn(async move { store.use_recovery_code(&user, &code, 20 + i).await })
            })
            .collect();
        let wins = futures::future::join_all(tasks)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap().as_ref().unwrap())
            .count();
        assert_eq!(wins, 1, "{code}");
    }
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 7);
}

pub(super) async fn mfa_store_purges_only_old_unconfirmed_factors(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    let old_confirmed = confirmed_totp(&s, &alice, 10, 1).await;
    let old_pending = totp(&alice, 50);
    s.mfa.create(&old_pending).await.unwrap();
    let edge = totp(&bob, 100);
    s.mfa.create(&edge).await.unwrap();
    let young = passkey(&bob, 150);
    s.mfa.create(&young).await.unwrap();
    // More abandoned passkeys than one purge batch holds (a new pending passkey, unlike a
    // pending TOTP factor, leaves the older ones).
    let carol = person(&s).await;
    for i in 0..1005 {
        s.mfa.create(&passkey(&carol, 20 + i % 30)).await.unwrap();
    }
    assert_eq!(s.mfa.purge_pending(100).await.unwrap(), 1006);
    assert_eq!(ids(&s.mfa.list(&alice).await.unwrap()), vec![old_confirmed]);
    assert_eq!(
        ids(&s.mfa.list(&bob).await.unwrap()),
        vec![edge.id, young.id],
        "created at or after the limit: kept"
    );
    assert!(s.mfa.list(&carol).await.unwrap().is_empty());
    assert_eq!(s.mfa.purge_pending(100).await.unwrap(), 0);
}

pub(super) async fn mfa_store_forgets_a_deleted_users_factors_and_codes(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    let a1 = confirmed_totp(&s, &alice, 10, 1).await;
    let a2 = passkey(&alice, 20);
    s.mfa.create(&a2).await.unwrap();
    s.mfa
        .replace_recovery_codes(&alice, &hashes("a", 10), 30)
        .await
        .unwrap();
    let b1 = confirmed_totp(&s, &bob, 10, 1).await;
    s.mfa
        .replace_recovery_codes(&bob, &hashes("a", 10), 30)
        .await
        .unwrap();
    assert!(s.users.delete(&alice).await.unwrap());
    assert!(s.mfa.list(&alice).await.unwrap().is_empty());
    assert!(s.mfa.find(&alice, &a1).await.unwrap().is_none());
    assert_eq!(s.mfa.recovery_codes_left(&alice).await.unwrap(), 0);
    // The passkey's credential id is free again.
    let mut again = passkey(&bob, 40);
    again.credential_id = a2.credential_id.clone();
    s.mfa.create(&again).await.unwrap();
    assert_eq!(ids(&s.mfa.list(&bob).await.unwrap()), vec![b1, again.id]);
    assert_eq!(s.mfa.recovery_codes_left(&bob).await.unwrap(), 10);
}

/// Issue 15: the first time a user was asked to enrol is recorded once (the grace period
/// counts from it) and goes with the user; a user's roles require a second factor when one
/// of them does, as roles change.
pub(super) async fn mfa_store_keeps_the_first_enrolment_prompt_and_reads_role_policies(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let (alice, bob) = (person(&s).await, person(&s).await);
    assert_eq!(s.mfa.enrolment_first_asked(&alice, 100).await.unwrap(), 100);
    assert_eq!(s.mfa.enrolment_first_asked(&alice, 500).await.unwrap(), 100);
    assert_eq!(s.mfa.enrolment_first_asked(&bob, 700).await.unwrap(), 700);
    assert!(s.users.delete(&alice).await.unwrap());
    let again = person(&s).await;
    assert_eq!(s.mfa.enrolment_first_asked(&again, 900).await.unwrap(), 900);

    let role = |name: &str, require_mfa: bool| Role {
        id: RoleId::generate(),
        name: RoleName::parse(name).unwrap(),
        description: None,
        permissions: vec![],
        require_mfa,
        created_at: 1,
    };
    let (admin, staff) = (role("admin", true), role("staff", false));
    s.roles.create(&admin).await.unwrap();
    s.roles.create(&staff).await.unwrap();
    assert!(!s.mfa.required_by_role(&bob).await.unwrap(), "no roles");
    s.users.grant_role(&bob, &staff.id).await.unwrap();
    assert!(!s.mfa.required_by_role(&bob).await.unwrap());
    s.users.grant_role(&bob, &admin.id).await.unwrap();
    assert!(s.mfa.required_by_role(&bob).await.unwrap());
    assert!(s.roles.set_require_mfa(&admin.id, false).await.unwrap());
    assert!(!s.mfa.required_by_role(&bob).await.unwrap());
    assert!(s.roles.set_require_mfa(&staff.id, true).await.unwrap());
    assert!(s.mfa.required_by_role(&bob).await.unwrap());
    let found = s.roles.find_by_name(&staff.name).await.unwrap().unwrap();
    assert!(found.require_mfa);
    assert!(!s
        .roles
        .set_require_mfa(&RoleId::generate(), true)
        .await
        .unwrap());
}
