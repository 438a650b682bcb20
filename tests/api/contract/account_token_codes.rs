//! The `AccountTokenStore` contract, the magic link's short code: `consume_code`.

use latchkey::domain::*;

use super::account_tokens::{account, is_live, token};
use super::stores;
use crate::helpers::Backend;

use AccountTokenPurpose::{MagicLink, PasswordReset};

/// A magic link for `user` with a short code whose hash is `code`.
fn magic_link(user: &UserId, email: &str, hash: &str, code: &str, created_at: i64) -> AccountToken {
    AccountToken {
        code_hash: Some(code.into()),
        client_id: Some(ClientId::parse("web").unwrap()),
        created_at,
        ..token(MagicLink, Some(user), email, hash, 5000)
    }
}

/// The address as the store takes it.
fn address(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

/// A code check that accepts exactly `right`.
fn code_is(right: &'static str) -> impl Fn(&str) -> bool + Send + Sync {
    move |presented| presented == right
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
        .consume_code(&address(email), &right, 3, 1500)
        .await
        .unwrap();
    assert!(matches!(outcome, CodeOutcome::NoToken), "{outcome:?}");

    let link = magic_link(&grace, email, "m-1", "c-right", 1000);
    s.account_tokens.issue(&link).await.unwrap();
    for attempts in 1..=2 {
        let outcome = s
            .account_tokens
            .consume_code(&address(email), &wrong, 3, 1500)
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
        .consume_code(&address(email), &right, 3, 1600)
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
        .consume_code(&address(email), &right, 3, 1600)
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
            .consume_code(&address(email), &wrong, 3, 1700)
            .await
            .unwrap();
        assert!(matches!(outcome, CodeOutcome::Wrong), "{outcome:?}");
    }
    assert!(!is_live(&s, MagicLink, "m-2", 1700).await, "used up");
    let outcome = s
        .account_tokens
        .consume_code(&address(email), &right, 3, 1700)
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
        .consume_code(&address(email), &code_is("c-ivan"), 3, 1500)
        .await
        .unwrap();
    assert!(matches!(outcome, CodeOutcome::NoToken), "{outcome:?}");
    let outcome = s
        .account_tokens
        .consume_code(&address(email), &code_is("c-reset"), 3, 1500)
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
        .consume_code(&address(email), &code_is("c-older"), 3, 1500)
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
        .consume_code(&address(email), &code_is("c-newer"), 3, 1500)
        .await
        .unwrap()
    else {
        panic!("the newer link's code")
    };
    assert_eq!(used.token_hash, "newer");
    // The newer one used, the older one is the newest live link; past its expiry, none.
    let CodeOutcome::Consumed(used) = s
        .account_tokens
        .consume_code(&address(email), &code_is("c-older"), 3, 1500)
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
        .consume_code(&address(email), &code_is("c-late"), 3, 2000)
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
                    .consume_code(&address(email), &code_is("c-never"), 100, 1500)
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
                    .consume_code(&address(email), &code_is("c-right"), 100, 1500)
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
