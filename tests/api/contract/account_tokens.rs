//! The `AccountTokenStore` contract: single-use tokens sent by mail, stored as hashes.

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
async fn account(s: &Stores, email: &str) -> UserId {
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
fn token(
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

/// A magic link for `user` with a short code whose hash is `code`.
fn magic_link(user: &UserId, email: &str, hash: &str, code: &str, created_at: i64) -> AccountToken {
    AccountToken {
        code_hash: Some(code.into()),
        client_id: Some(ClientId::parse("web").unwrap()),
        created_at,
        ..token(MagicLink, Some(user), email, hash, 5000)
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

async fn is_live(s: &Stores, purpose: AccountTokenPurpose, hash: &str, now: i64) -> bool {
    s.account_tokens
        .find_live(purpose, hash, now)
        .await
        .unwrap()
        .is_some()
}

/// A code check that accepts exactly `right`.
fn code_is(right: &'static str) -> impl Fn(&str) -> bool + Send + Sync {
    move |presented| presented == right
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

pub(super) async fn account_token_store_counts_wrong_codes_and_uses_a_link_up_at_the_limit(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let grace = account(&s, "grace@example.com").await;
    let email = "grace@example.com";
    let right = code_is("c-right");
    let wrong = code_is("c-never");
    let outcome = s
        .account_tokens
        .consume_code(email, &right, 3, 1500)
        .await
        .unwrap();
    assert!(matches!(outcome, CodeOutcome::NoToken), "{outcome:?}");

    let link = magic_link(&grace, email, "m-1", "c-right", 1000);
    s.account_tokens.issue(&link).await.unwrap();
    for attempts in 1..=2 {
        let outcome = s
            .account_tokens
            .consume_code(email, &wrong, 3, 1500)
            .await
            .unwrap();
        assert!(matches!(outcome, CodeOutcome::Wrong), "{outcome:?}");
        let live = s
            .account_tokens
            .find_live(MagicLink, "m-1", 1500)
            .await
            .unwrap()
            .expect("still live below the limit");
        assert_eq!(live.attempts, attempts);
    }
    let CodeOutcome::Consumed(used) = s
        .account_tokens
        .consume_code(email, &right, 3, 1600)
        .await
        .unwrap()
    else {
        panic!("the right code consumes the link")
    };
    assert_eq!(
        (used.id.as_str(), used.attempts, used.used_at),
        (link.id.as_str(), 2, Some(1600))
    );
    assert!(!is_live(&s, MagicLink, "m-1", 1600).await);
    let outcome = s
        .account_tokens
        .consume_code(email, &right, 3, 1600)
        .await
        .unwrap();
    assert!(
        matches!(outcome, CodeOutcome::NoToken),
        "used once: {outcome:?}"
    );

    // At the limit the link is used up: the right code comes too late.
    s.account_tokens
        .issue(&magic_link(&grace, email, "m-2", "c-right", 1000))
        .await
        .unwrap();
    for _ in 0..3 {
        let outcome = s
            .account_tokens
            .consume_code(email, &wrong, 3, 1700)
            .await
            .unwrap();
        assert!(matches!(outcome, CodeOutcome::Wrong), "{outcome:?}");
    }
    assert!(!is_live(&s, MagicLink, "m-2", 1700).await, "used up");
    let outcome = s
        .account_tokens
        .consume_code(email, &right, 3, 1700)
        .await
        .unwrap();
    assert!(matches!(outcome, CodeOutcome::NoToken), "{outcome:?}");
}

pub(super) async fn account_token_store_checks_codes_against_the_newest_live_magic_link(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let heidi = account(&s, "heidi@example.com").await;
    let email = "heidi@example.com";
    // Not candidates: a link without a code, an expired one, another purpose, another address.
    s.account_tokens
        .issue(&token(MagicLink, None, email, "no-code", 5000))
        .await
        .unwrap();
    s.account_tokens
        .issue(&AccountToken {
            code_hash: Some("c-reset".into()),
            ..token(PasswordReset, Some(&heidi), email, "reset", 5000)
        })
        .await
        .unwrap();
    let ivan = account(&s, "ivan@example.com").await;
    s.account_tokens
        .issue(&magic_link(
            &ivan,
            "ivan@example.com",
            "ivan",
            "c-ivan",
            1000,
        ))
        .await
        .unwrap();
    let outcome = s
        .account_tokens
        .consume_code(email, &code_is("c-ivan"), 3, 1500)
        .await
        .unwrap();
    assert!(matches!(outcome, CodeOutcome::NoToken), "{outcome:?}");
    let outcome = s
        .account_tokens
        .consume_code(email, &code_is("c-reset"), 3, 1500)
        .await
        .unwrap();
    assert!(matches!(outcome, CodeOutcome::NoToken), "{outcome:?}");

    // Two live links for one address (one without a user, which the user's does not
    // supersede): the code is checked against the newer one only.
    s.account_tokens
        .issue(&AccountToken {
            user_id: None,
            ..magic_link(&heidi, email, "older", "c-older", 1000)
        })
        .await
        .unwrap();
    s.account_tokens
        .issue(&magic_link(&heidi, email, "newer", "c-newer", 1100))
        .await
        .unwrap();
    let outcome = s
        .account_tokens
        .consume_code(email, &code_is("c-older"), 3, 1500)
        .await
        .unwrap();
    assert!(matches!(outcome, CodeOutcome::Wrong), "{outcome:?}");
    let newer = s
        .account_tokens
        .find_live(MagicLink, "newer", 1500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        newer.attempts, 1,
        "the wrong code counted on the newer link"
    );
    let CodeOutcome::Consumed(used) = s
        .account_tokens
        .consume_code(email, &code_is("c-newer"), 3, 1500)
        .await
        .unwrap()
    else {
        panic!("the newer link's code")
    };
    assert_eq!(used.token_hash, "newer");
    // The newer one used, the older one is the newest live link; past its expiry, none.
    let CodeOutcome::Consumed(used) = s
        .account_tokens
        .consume_code(email, &code_is("c-older"), 3, 1500)
        .await
        .unwrap()
    else {
        panic!("the older link's code")
    };
    assert_eq!(used.token_hash, "older");
    s.account_tokens
        .issue(&AccountToken {
            expires_at: 2000,
            ..magic_link(&heidi, email, "late", "c-late", 1200)
        })
        .await
        .unwrap();
    let outcome = s
        .account_tokens
        .consume_code(email, &code_is("c-late"), 3, 2000)
        .await
        .unwrap();
    assert!(
        matches!(outcome, CodeOutcome::NoToken),
        "expired: {outcome:?}"
    );
}

pub(super) async fn account_token_store_concurrent_codes_count_every_attempt_and_consume_once(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let judy = account(&s, "judy@example.com").await;
    let email = "judy@example.com";
    s.account_tokens
        .issue(&magic_link(&judy, email, "j-1", "c-right", 1000))
        .await
        .unwrap();
    let wrongs: Vec<_> = (0..6)
        .map(|_| {
            let store = s.account_tokens.clone();
            tokio::spawn(async move {
                store
                    .consume_code(email, &code_is("c-never"), 100, 1500)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for outcome in futures::future::join_all(wrongs).await {
        assert!(matches!(outcome, Ok(CodeOutcome::Wrong)), "{outcome:?}");
    }
    let live = s
        .account_tokens
        .find_live(MagicLink, "j-1", 1500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.attempts, 6, "no wrong attempt was lost");
    let rights: Vec<_> = (0..6)
        .map(|_| {
            let store = s.account_tokens.clone();
            tokio::spawn(async move {
                store
                    .consume_code(email, &code_is("c-right"), 100, 1500)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let outcomes = futures::future::join_all(rights).await;
    let consumed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(CodeOutcome::Consumed(_))))
        .count();
    assert_eq!(consumed, 1, "{outcomes:?}");
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
