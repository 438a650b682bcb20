//! The `AccountTokenStore` contract: single-use tokens sent by mail, stored as hashes (the
//! magic link's short code in `account_token_codes`).

use latchkey::domain::*;
use latchkey::services::Stores;
use latchkey::storage::NewUserRecord;

use super::{stores, user};
use crate::helpers::Backend;

use AccountTokenPurpose::{Invite, MagicLink, PasswordReset, VerifyEmail};

/// How long a used token is kept before `purge_expired` removes it.
const KEEP_USED: i64 = 86_400;
/// An expiry later than every clock reading of these tests.
const LATE: i64 = 1_000_000;

/// A user with this address, for the tokens that belong to one.
pub(super) async fn account(s: &Stores, email: &str) -> UserId {
    let u = user(email, 1);
    s.users
        .create(&NewUserRecord {
            user: u.clone(),
            role_ids: vec![],
        })
        .await
        .unwrap();
    u.id
}

/// A token of `purpose` for `user` (or, without one, for `email` alone), issued at 1000 and
/// live until `expires_at`.
pub(super) fn token(
    purpose: AccountTokenPurpose,
    user: Option<&UserId>,
    email: &str,
    hash: &str,
    expires_at: i64,
) -> AccountToken {
    AccountToken {
        id: uuid::Uuid::new_v4().to_string(),
        purpose,
        token_hash: hash.into(),
        code_hash: None,
        user_id: user.cloned(),
        email: Email::parse(email).unwrap(),
        client_id: None,
        data: serde_json::Map::new(),
        attempts: 0,
        created_at: 1000,
        expires_at,
        used_at: None,
    }
}

/// Every stored field, to compare a token read back with the one issued.
#[allow(clippy::type_complexity)]
fn fields(
    t: &AccountToken,
) -> (
    &str,
    AccountTokenPurpose,
    &str,
    Option<&str>,
    Option<&UserId>,
    &str,
    Option<&ClientId>,
    &serde_json::Map<String, serde_json::Value>,
    (i64, i64, i64, Option<i64>),
) {
    (
        &t.id,
        t.purpose,
        &t.token_hash,
        t.code_hash.as_deref(),
        t.user_id.as_ref(),
        t.email.as_str(),
        t.client_id.as_ref(),
        &t.data,
        (t.attempts, t.created_at, t.expires_at, t.used_at),
    )
}

pub(super) async fn is_live(
    s: &Stores,
    purpose: AccountTokenPurpose,
    hash: &str,
    now: i64,
) -> bool {
    s.account_tokens
        .find_live(purpose, hash, now)
        .await
        .unwrap()
        .is_some()
}

pub(super) async fn account_token_store_finds_and_consumes_a_token_once(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let alice = account(&s, "alice@example.com").await;
    let mut issued = token(VerifyEmail, Some(&alice), "alice@example.com", "h-1", 2000);
    issued.client_id = Some(ClientId::parse("web").unwrap());
    issued
        .data
        .insert("roles".into(), serde_json::json!(["viewer"]));
    s.account_tokens.issue(&issued).await.unwrap();

    let found = s
        .account_tokens
        .find_live(VerifyEmail, "h-1", 1500)
        .await
        .unwrap()
        .expect("live");
    assert_eq!(fields(&found), fields(&issued), "every field round-trips");
    assert!(
        is_live(&s, VerifyEmail, "h-1", 1500).await,
        "finding does not use the token"
    );
    assert!(!is_live(&s, VerifyEmail, "h-unknown", 1500).await);

    let used = s
        .account_tokens
        .consume(VerifyEmail, "h-1", 1500)
        .await
        .unwrap()
        .expect("consumed");
    assert_eq!(
        fields(&used),
        fields(&AccountToken {
            used_at: Some(1500),
            ..issued.clone()
        }),
        "the consumed token, marked used now"
    );
    assert!(s
        .account_tokens
        .consume(VerifyEmail, "h-1", 1501)
        .await
        .unwrap()
        .is_none());
    assert!(!is_live(&s, VerifyEmail, "h-1", 1501).await, "used");
    assert!(s
        .account_tokens
        .consume(VerifyEmail, "h-unknown", 1501)
        .await
        .unwrap()
        .is_none());
}

pub(super) async fn account_token_store_keeps_purposes_apart(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let bob = account(&s, "bob@example.com").await;
    s.account_tokens
        .issue(&token(
            PasswordReset,
            Some(&bob),
            "bob@example.com",
            "h-r",
            2000,
        ))
        .await
        .unwrap();
    for other in [VerifyEmail, MagicLink, Invite] {
        assert!(!is_live(&s, other, "h-r", 1500).await, "{other:?}");
        assert!(
            s.account_tokens
                .consume(other, "h-r", 1500)
                .await
                .unwrap()
                .is_none(),
            "{other:?}"
        );
    }
    assert!(
        is_live(&s, PasswordReset, "h-r", 1500).await,
        "a try with another purpose did not use it"
    );
    // A newer token of one purpose leaves the user's tokens of other purposes alone.
    s.account_tokens
        .issue(&token(
            VerifyEmail,
            Some(&bob),
            "bob@example.com",
            "h-v",
            2000,
        ))
        .await
        .unwrap();
    assert!(is_live(&s, PasswordReset, "h-r", 1500).await);
    assert!(is_live(&s, VerifyEmail, "h-v", 1500).await);
}

pub(super) async fn account_token_store_expires_tokens_by_the_callers_clock(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let carol = account(&s, "carol@example.com").await;
    s.account_tokens
        .issue(&token(
            PasswordReset,
            Some(&carol),
            "carol@example.com",
            "h-e",
            2000,
        ))
        .await
        .unwrap();
    assert!(is_live(&s, PasswordReset, "h-e", 1999).await);
    assert!(
        !is_live(&s, PasswordReset, "h-e", 2000).await,
        "over at its expiry"
    );
    assert!(s
        .account_tokens
        .consume(PasswordReset, "h-e", 2000)
        .await
        .unwrap()
        .is_none());
    assert!(
        s.account_tokens
            .consume(PasswordReset, "h-e", 1999)
            .await
            .unwrap()
            .is_some(),
        "a refused late try did not use it"
    );
}

pub(super) async fn account_token_store_a_newer_token_supersedes_the_unused_older_ones(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let dave = account(&s, "dave@example.com").await;
    let erin = account(&s, "erin@example.com").await;
    let reset = |user, email, hash| token(PasswordReset, Some(user), email, hash, LATE);
    s.account_tokens
        .issue(&reset(&dave, "dave@example.com", "d-1"))
        .await
        .unwrap();
    s.account_tokens
        .issue(&reset(&erin, "erin@example.com", "e-1"))
        .await
        .unwrap();
    s.account_tokens
        .issue(&reset(&dave, "dave@example.com", "d-2"))
        .await
        .unwrap();
    assert!(!is_live(&s, PasswordReset, "d-1", 1500).await, "superseded");
    assert!(is_live(&s, PasswordReset, "d-2", 1500).await);
    assert!(
        is_live(&s, PasswordReset, "e-1", 1500).await,
        "another user's token stays"
    );
    // A used token is not deleted by a newer one: it stays until purged a day after use.
    s.account_tokens
        .consume(PasswordReset, "d-2", 1500)
        .await
        .unwrap()
        .unwrap();
    s.account_tokens
        .issue(&reset(&dave, "dave@example.com", "d-3"))
        .await
        .unwrap();
    assert_eq!(
        s.account_tokens
            .purge_expired(1500 + KEEP_USED)
            .await
            .unwrap(),
        1,
        "the used d-2 was kept until now"
    );
    assert!(is_live(&s, PasswordReset, "d-3", 1500).await);

    // Without a user (invitations): the same address supersedes, another does not, and a
    // user's token for the same address is left alone.
    let invite = |email, hash| token(Invite, None, email, hash, LATE);
    s.account_tokens
        .issue(&token(
            Invite,
            Some(&dave),
            "dave@example.com",
            "d-inv",
            LATE,
        ))
        .await
        .unwrap();
    s.account_tokens
        .issue(&invite("new@example.com", "i-1"))
        .await
        .unwrap();
    s.account_tokens
        .issue(&invite("other@example.com", "i-other"))
        .await
        .unwrap();
    s.account_tokens
        .issue(&invite("dave@example.com", "i-dave"))
        .await
        .unwrap();
    s.account_tokens
        .issue(&invite("new@example.com", "i-2"))
        .await
        .unwrap();
    assert!(!is_live(&s, Invite, "i-1", 1500).await, "superseded");
    for live in ["i-2", "i-other", "i-dave", "d-inv"] {
        assert!(is_live(&s, Invite, live, 1500).await, "{live}");
    }
}

pub(super) async fn account_token_store_concurrent_consumers_have_one_winner(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let frank = account(&s, "frank@example.com").await;
    for round in 0..3 {
        let hash = format!("f-{round}");
        s.account_tokens
            .issue(&token(
                VerifyEmail,
                Some(&frank),
                "frank@example.com",
                &hash,
                9000,
            ))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, hash) = (s.account_tokens.clone(), hash.clone());
                tokio::spawn(async move {
                    store
                        .consume(VerifyEmail, &hash, 1500)
                        .await
                        .unwrap()
                        .is_some()
                })
            })
            .collect();
        let outcomes = futures::future::join_all(tasks).await;
        let winners = outcomes.iter().filter(|o| matches!(o, Ok(true))).count();
        assert_eq!(winners, 1, "{outcomes:?}");
    }
}

pub(super) async fn account_token_store_invalidates_the_unused_tokens_of_a_purpose(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let kim = account(&s, "kim@example.com").await;
    let lee = account(&s, "lee@example.com").await;
    for (user, email, purpose, hash) in [
        (&kim, "kim@example.com", PasswordReset, "k-reset"),
        (&kim, "kim@example.com", VerifyEmail, "k-verify"),
        (&lee, "lee@example.com", PasswordReset, "l-reset"),
    ] {
        s.account_tokens
            .issue(&token(purpose, Some(user), email, hash, LATE))
            .await
            .unwrap();
    }
    assert_eq!(
        s.account_tokens
            .invalidate(&kim, PasswordReset)
            .await
            .unwrap(),
        1
    );
    assert!(!is_live(&s, PasswordReset, "k-reset", 1500).await);
    assert!(
        is_live(&s, VerifyEmail, "k-verify", 1500).await,
        "another purpose"
    );
    assert!(
        is_live(&s, PasswordReset, "l-reset", 1500).await,
        "another user"
    );
    assert_eq!(
        s.account_tokens
            .invalidate(&kim, PasswordReset)
            .await
            .unwrap(),
        0
    );
    // A used token is not invalidated (it is purged a day after use).
    s.account_tokens
        .consume(VerifyEmail, "k-verify", 1500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.account_tokens
            .invalidate(&kim, VerifyEmail)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.account_tokens
            .purge_expired(1500 + KEEP_USED)
            .await
            .unwrap(),
        1
    );
}

pub(super) async fn account_token_store_purges_expired_tokens_and_used_ones_after_a_day(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let mia = account(&s, "mia@example.com").await;
    let email = "mia@example.com";
    for (purpose, hash, expires_at) in [
        (VerifyEmail, "p-expires-2000", 2000),
        (PasswordReset, "p-expires-3000", 3000),
        (MagicLink, "p-used", LATE),
        (Invite, "p-live", LATE),
    ] {
        s.account_tokens
            .issue(&token(purpose, Some(&mia), email, hash, expires_at))
            .await
            .unwrap();
    }
    s.account_tokens
        .consume(MagicLink, "p-used", 1500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.account_tokens.purge_expired(1999).await.unwrap(), 0);
    assert_eq!(
        s.account_tokens.purge_expired(2000).await.unwrap(),
        1,
        "expired at its expiry"
    );
    assert!(is_live(&s, PasswordReset, "p-expires-3000", 2000).await);
    assert_eq!(s.account_tokens.purge_expired(3000).await.unwrap(), 1);
    assert_eq!(
        s.account_tokens
            .purge_expired(1499 + KEEP_USED)
            .await
            .unwrap(),
        0,
        "a used token stays for a day"
    );
    assert_eq!(
        s.account_tokens
            .purge_expired(1500 + KEEP_USED)
            .await
            .unwrap(),
        1
    );
    assert!(is_live(&s, Invite, "p-live", 1500 + KEEP_USED).await);
    assert_eq!(
        s.account_tokens
            .purge_expired(1500 + KEEP_USED)
            .await
            .unwrap(),
        0
    );
}
