//! The `RefreshTokenStore` contract: families, rotation, reuse detection.

use latchkey::domain::*;
use latchkey::services::Stores;
use latchkey::storage::NewUserRecord;

use super::{client, stores, user};
use crate::helpers::Backend;

struct Family {
    client: ClientId,
    family_id: FamilyId,
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
        id: FamilyId::generate(),
        client_id: c.id.clone(),
        user_id: u.id.clone(),
        scope: Scope::parse("a").unwrap(),
        audience: "https://api.example.com".into(),
        created_at: now,
        absolute_expires_at: now + absolute,
        first: first.clone(),
        sign_in: None,
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

pub(super) async fn refresh_token_store_rotates_once_and_revokes_on_reuse(backend: Backend) {
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

pub(super) async fn refresh_token_store_concurrent_rotation_has_one_winner(backend: Backend) {
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

pub(super) async fn refresh_token_store_rejections_and_purge(backend: Backend) {
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
            family_id: FamilyId::generate(),
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

pub(super) async fn refresh_token_store_revokes_every_family_of_a_user(backend: Backend) {
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
        .find_family(&FamilyId::from_trusted("no-such-family".into()))
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
        id: FamilyId::generate(),
        client_id: f.client.clone(),
        user_id: f.user_id.clone(),
        scope: Scope::parse("a").unwrap(),
        audience: "https://api.example.com".into(),
        created_at: 1010,
        absolute_expires_at: 5000,
        first: token(1010, 100),
        sign_in: None,
    };
    assert!(!s.refresh_tokens.start_family(&raced).await.unwrap());
    assert!(s
        .refresh_tokens
        .find_family(&raced.id)
        .await
        .unwrap()
        .is_none());
    let later = NewFamily {
        id: FamilyId::generate(),
        created_at: 1011,
        ..raced
    };
    assert!(s.refresh_tokens.start_family(&later).await.unwrap());
}
