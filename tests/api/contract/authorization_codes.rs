//! The `AuthorizationCodeStore` contract: single-use codes, stored as hashes, whose first use
//! is recorded so that a second one can be answered with it.

use latchkey::domain::*;
use latchkey::services::Stores;
use latchkey::storage::NewUserRecord;

use super::{client, stores, user};
use crate::helpers::Backend;

/// A client and a user for codes to be bound to.
async fn parties(s: &Stores) -> (ClientId, UserId) {
    let c = client(&format!("c{}", uuid::Uuid::new_v4().simple()));
    s.clients.create(&c).await.unwrap();
    let u = user(&format!("{}@example.com", uuid::Uuid::new_v4().simple()), 1);
    s.users
        .create(&NewUserRecord {
            user: u.clone(),
            role_ids: vec![],
        })
        .await
        .unwrap();
    (c.id, u.id)
}

fn code(client_id: &ClientId, user_id: &UserId, created: i64, expires: i64) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: format!("code-{}", uuid::Uuid::new_v4().simple()),
        client_id: client_id.clone(),
        user_id: user_id.clone(),
        redirect_uri: "https://app.example.com/cb?x=1".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        nonce: Some("n-0S6_WzA2Mj".into()),
        scope: Scope::parse("openid profile a").unwrap(),
        resource: Some("https://api.example.com".into()),
        auth_time: created - 30,
        session_id: SessionId::generate(),
        amr: vec![Amr::Pwd, Amr::Mfa],
        created_at: created,
        expires_at: expires,
    }
}

fn redemption(jti: &str, family: bool) -> CodeRedemption {
    CodeRedemption {
        family_id: family.then(FamilyId::generate),
        access_jti: jti.into(),
        access_expires_at: 4600,
    }
}

pub(super) async fn authorization_code_store_redeems_a_code_once(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (c, u) = parties(&s).await;
    let issued = code(&c, &u, 1000, 1060);
    s.authorization_codes.issue(&issued).await.unwrap();
    let first = redemption("jti-1", true);
    let out = s
        .authorization_codes
        .redeem(&issued.code_hash, &first, 1010)
        .await
        .unwrap();
    assert_eq!(out, CodeUse::Redeemed(issued.clone()), "every binding kept");
    let out = s
        .authorization_codes
        .redeem(&issued.code_hash, &redemption("jti-2", true), 1011)
        .await
        .unwrap();
    assert_eq!(
        out,
        CodeUse::Replayed {
            client_id: c.clone(),
            first: first.clone()
        },
        "the second use learns what the first one issued"
    );
    // Still recognised after the code's expiry (until it is purged).
    let out = s
        .authorization_codes
        .redeem(&issued.code_hash, &redemption("jti-3", false), 5000)
        .await
        .unwrap();
    assert_eq!(
        out,
        CodeUse::Replayed {
            client_id: c.clone(),
            first
        }
    );
    // A code with no optional binding, redeemed by a client that may not refresh.
    let bare = AuthorizationCode {
        code_challenge: None,
        nonce: None,
        resource: None,
        amr: vec![],
        scope: Scope::parse("openid").unwrap(),
        ..code(&c, &u, 1000, 1060)
    };
    s.authorization_codes.issue(&bare).await.unwrap();
    let no_family = redemption("jti-4", false);
    assert_eq!(
        s.authorization_codes
            .redeem(&bare.code_hash, &no_family, 1059)
            .await
            .unwrap(),
        CodeUse::Redeemed(bare.clone())
    );
    assert_eq!(
        s.authorization_codes
            .redeem(&bare.code_hash, &redemption("jti-5", true), 1059)
            .await
            .unwrap(),
        CodeUse::Replayed {
            client_id: c,
            first: no_family
        }
    );
}

pub(super) async fn authorization_code_store_answers_unknown_for_unknown_and_expired_codes(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let (c, u) = parties(&s).await;
    assert_eq!(
        s.authorization_codes
            .redeem("code-unknown", &redemption("jti-1", true), 1000)
            .await
            .unwrap(),
        CodeUse::Unknown
    );
    let expired = code(&c, &u, 1000, 1060);
    s.authorization_codes.issue(&expired).await.unwrap();
    for at in [1060, 1061] {
        assert_eq!(
            s.authorization_codes
                .redeem(&expired.code_hash, &redemption("jti-2", true), at)
                .await
                .unwrap(),
            CodeUse::Unknown,
            "expired at {at}"
        );
    }
    // The refused use left no record: the code is still unused (and still expired).
    assert_eq!(
        s.authorization_codes
            .redeem(&expired.code_hash, &redemption("jti-3", true), 1100)
            .await
            .unwrap(),
        CodeUse::Unknown
    );
    // The same hash issued twice is refused.
    assert!(s.authorization_codes.issue(&expired).await.is_err());
}

pub(super) async fn authorization_code_store_concurrent_redemptions_have_one_winner(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let (c, u) = parties(&s).await;
    for round in 0..3 {
        let issued = code(&c, &u, 1000, 1060);
        s.authorization_codes.issue(&issued).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (store, hash) = (s.authorization_codes.clone(), issued.code_hash.clone());
                let mine = redemption(&format!("jti-{round}-{i}"), true);
                tokio::spawn(async move {
                    let out = store.redeem(&hash, &mine, 1010).await.unwrap();
                    (mine, out)
                })
            })
            .collect();
        let outcomes: Vec<_> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let winners: Vec<&CodeRedemption> = outcomes
            .iter()
            .filter(|(_, out)| matches!(out, CodeUse::Redeemed(_)))
            .map(|(mine, _)| mine)
            .collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        for (_, out) in &outcomes {
            match out {
                CodeUse::Redeemed(got) => assert_eq!(got, &issued),
                CodeUse::Replayed { client_id, first } => {
                    assert_eq!((client_id, first), (&c, winners[0]), "the winner's record")
                }
                CodeUse::Unknown => panic!("a used code is not unknown: {outcomes:?}"),
            }
        }
    }
}

pub(super) async fn authorization_code_store_purges_codes_expired_before_a_time(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let (c, u) = parties(&s).await;
    let early = code(&c, &u, 900, 1000);
    let used = code(&c, &u, 900, 1000);
    let at_cutoff = code(&c, &u, 1900, 2000);
    let late = code(&c, &u, 2900, 3000);
    for issued in [&early, &used, &at_cutoff, &late] {
        s.authorization_codes.issue(issued).await.unwrap();
    }
    let first = redemption("jti-used", true);
    assert!(matches!(
        s.authorization_codes
            .redeem(&used.code_hash, &first, 950)
            .await
            .unwrap(),
        CodeUse::Redeemed(_)
    ));
    assert_eq!(s.authorization_codes.purge_expired(1000).await.unwrap(), 0);
    assert_eq!(
        s.authorization_codes.purge_expired(2000).await.unwrap(),
        2,
        "the unused and the used code that expired before the cutoff"
    );
    assert_eq!(
        s.authorization_codes
            .redeem(&used.code_hash, &redemption("jti-again", true), 2000)
            .await
            .unwrap(),
        CodeUse::Unknown,
        "a purged code is forgotten"
    );
    assert!(matches!(
        s.authorization_codes
            .redeem(&at_cutoff.code_hash, &redemption("jti-c", true), 1999)
            .await
            .unwrap(),
        CodeUse::Redeemed(_)
    ));
    assert!(matches!(
        s.authorization_codes
            .redeem(&late.code_hash, &redemption("jti-l", true), 2500)
            .await
            .unwrap(),
        CodeUse::Redeemed(_)
    ));
    assert_eq!(s.authorization_codes.purge_expired(3001).await.unwrap(), 2);
    assert_eq!(s.authorization_codes.purge_expired(9000).await.unwrap(), 0);
}
