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
        .rotate(
            &f.token(0, &f.first),
            &f.client,
            None,
            None,
            &next,
            None,
            1001,
        )
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
        .rotate(
            &f.token(1, &next),
            &f.client,
            None,
            None,
            &next2,
            None,
            1002,
        )
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
            None,
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
            None,
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
                    .rotate(
                        &presented,
                        &client,
                        None,
                        None,
                        &token(1001, 100),
                        None,
                        1001,
                    )
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
        .rotate(&first, &other, None, None, &token(1001, 100), None, 1001)
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
            None,
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
            None,
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
            .rotate(&bogus, &f.client, None, None, &token(1001, 100), None, 1001)
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
            None,
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
            None,
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
        .rotate(
            &g.token(0, &g.first),
            &g.client,
            None,
            None,
            &next,
            None,
            1050,
        )
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

fn grace(until: i64, uses: i64) -> RetryGrace {
    RetryGrace {
        until,
        uses,
        sealed_successor: format!("sealed-{}", uuid::Uuid::new_v4()),
    }
}

async fn family_row(s: &Stores, f: &Family) -> FamilyRecord {
    s.refresh_tokens
        .find_family(&f.family_id)
        .await
        .unwrap()
        .unwrap()
}

pub(super) async fn refresh_token_store_admits_retries_inside_the_grace_window(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let f = family(&s, 1000, 10_000).await;
    let first = f.token(0, &f.first);
    let next = token(1001, 100);
    let kept = grace(1031, 2);
    let out = s
        .refresh_tokens
        .rotate(&first, &f.client, None, None, &next, Some(&kept), 1001)
        .await
        .unwrap();
    assert!(
        matches!(out, RotateOutcome::Rotated(ref i) if i.generation == 1),
        "{out:?}"
    );
    let row = family_row(&s, &f).await;
    assert_eq!(
        (
            row.grace_until,
            row.grace_retries,
            row.previous_token_hash.as_deref()
        ),
        (Some(1031), 0, Some(first.token_hash.as_str()))
    );
    // A wider scope inside the window is refused and uses nothing up.
    let wide = Scope::parse("a b").unwrap();
    let out = s
        .refresh_tokens
        .rotate(
            &first,
            &f.client,
            Some(&wide),
            None,
            &token(1002, 100),
            Some(&grace(1032, 2)),
            1002,
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
    for retry in 1..=2 {
        // Each retry brings its own (unused) next generation and grace; neither is stored.
        let out = s
            .refresh_tokens
            .rotate(
                &first,
                &f.client,
                None,
                None,
                &token(1005, 100),
                Some(&grace(1035, 2)),
                1005,
            )
            .await
            .unwrap();
        let RotateOutcome::Retried(r) = out else {
            panic!("retry {retry}: expected a retry, got {out:?}")
        };
        assert_eq!(
            (
                r.retries,
                r.info.generation,
                r.sealed_successor.as_str(),
                r.info.scope.to_wire()
            ),
            (retry, 1, kept.sealed_successor.as_str(), "a".to_owned())
        );
        let row = family_row(&s, &f).await;
        assert!(
            row.is_current(&f.token(1, &next), 1005),
            "the successor stays the current token"
        );
        assert_eq!((row.grace_retries, row.grace_until), (retry, Some(1031)));
    }
    // One more than the window admits: reuse, the family revoked and its window cleared.
    let out = s
        .refresh_tokens
        .rotate(
            &first,
            &f.client,
            None,
            None,
            &token(1006, 100),
            Some(&grace(1036, 2)),
            1006,
        )
        .await
        .unwrap();
    assert!(matches!(out, RotateOutcome::Reused { .. }), "{out:?}");
    let row = family_row(&s, &f).await;
    assert_eq!(row.revoked_at, Some(1006));
    assert_eq!((row.previous_token_hash, row.grace_until), (None, None));
}

pub(super) async fn refresh_token_store_ends_a_grace_window_when_it_passes_or_the_chain_moves_on(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let rotate = |presented: PresentedToken, client: ClientId, g: Option<RetryGrace>, now: i64| {
        let store = s.refresh_tokens.clone();
        async move {
            store
                .rotate(
                    &presented,
                    &client,
                    None,
                    None,
                    &token(now, 100),
                    g.as_ref(),
                    now,
                )
                .await
                .unwrap()
        }
    };
    let reused = |out: &RotateOutcome| matches!(out, RotateOutcome::Reused { .. });

    // After the window: reuse.
    let f = family(&s, 1000, 10_000).await;
    let first = f.token(0, &f.first);
    assert!(matches!(
        rotate(first.clone(), f.client.clone(), Some(grace(1031, 5)), 1001).await,
        RotateOutcome::Rotated(_)
    ));
    let out = rotate(first, f.client.clone(), Some(grace(1060, 5)), 1031).await;
    assert!(reused(&out), "the window has passed: {out:?}");

    // Once the successor is used, the previous generation is no retry any more.
    let f = family(&s, 1000, 10_000).await;
    let first = f.token(0, &f.first);
    let next = token(1001, 100);
    let out = s
        .refresh_tokens
        .rotate(
            &first,
            &f.client,
            None,
            None,
            &next,
            Some(&grace(1031, 5)),
            1001,
        )
        .await
        .unwrap();
    assert!(matches!(out, RotateOutcome::Rotated(_)));
    let out = rotate(
        f.token(1, &next),
        f.client.clone(),
        Some(grace(1032, 5)),
        1002,
    )
    .await;
    assert!(
        matches!(out, RotateOutcome::Rotated(ref i) if i.generation == 2),
        "{out:?}"
    );
    let out = rotate(first, f.client.clone(), Some(grace(1033, 5)), 1003).await;
    assert!(reused(&out), "the chain moved on: {out:?}");

    // A client without a grace window now: reuse, as strict rotation.
    let f = family(&s, 1000, 10_000).await;
    let first = f.token(0, &f.first);
    rotate(first.clone(), f.client.clone(), Some(grace(1031, 5)), 1001).await;
    let out = rotate(first, f.client.clone(), None, 1002).await;
    assert!(reused(&out), "grace turned off: {out:?}");

    // Another client presenting the previous token inside the window: reuse.
    let f = family(&s, 1000, 10_000).await;
    let first = f.token(0, &f.first);
    rotate(first.clone(), f.client.clone(), Some(grace(1031, 5)), 1001).await;
    let other = ClientId::parse("someone-else").unwrap();
    let out = rotate(first, other, Some(grace(1031, 5)), 1002).await;
    assert!(reused(&out), "another client: {out:?}");

    // A revoked family admits no retry, and keeps nothing.
    let f = family(&s, 1000, 10_000).await;
    let first = f.token(0, &f.first);
    rotate(first.clone(), f.client.clone(), Some(grace(1031, 5)), 1001).await;
    assert!(s
        .refresh_tokens
        .revoke_family(&f.family_id, "logout", 1002)
        .await
        .unwrap());
    let row = family_row(&s, &f).await;
    assert_eq!((row.previous_token_hash, row.grace_until), (None, None));
    let out = rotate(first, f.client.clone(), Some(grace(1031, 5)), 1003).await;
    assert!(
        matches!(out, RotateOutcome::Rejected(RefreshRejection::Revoked)),
        "{out:?}"
    );
    // So do the user's and the client's.
    for by in ["user", "client"] {
        let f = family(&s, 1000, 10_000).await;
        rotate(
            f.token(0, &f.first),
            f.client.clone(),
            Some(grace(1031, 5)),
            1001,
        )
        .await;
        if by == "user" {
            s.refresh_tokens
                .revoke_user_families(&f.user_id, None, "logout-all", 1002)
                .await
                .unwrap();
        } else {
            s.refresh_tokens
                .revoke_client_families(&f.client, "client disabled", 1002)
                .await
                .unwrap();
        }
        let row = family_row(&s, &f).await;
        assert_eq!(
            (row.previous_token_hash, row.grace_until, row.revoked_at),
            (None, None, Some(1002)),
            "{by}"
        );
    }

    // Housekeeping clears a window that has passed, and only such a window.
    let f = family(&s, 1000, 10_000).await;
    rotate(
        f.token(0, &f.first),
        f.client.clone(),
        Some(grace(1031, 5)),
        1001,
    )
    .await;
    s.refresh_tokens.purge_expired(1030).await.unwrap();
    assert_eq!(family_row(&s, &f).await.grace_until, Some(1031));
    s.refresh_tokens.purge_expired(1031).await.unwrap();
    let row = family_row(&s, &f).await;
    assert_eq!(
        (row.previous_token_hash, row.grace_until, row.revoked_at),
        (None, None, None)
    );
}

pub(super) async fn refresh_token_store_concurrent_retries_share_one_successor(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    for _ in 0..3 {
        let f = family(&s, 1000, 10_000).await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = s.refresh_tokens.clone();
            let (presented, client) = (f.token(0, &f.first), f.client.clone());
            tasks.push(tokio::spawn(async move {
                let kept = grace(1031, 8);
                let out = store
                    .rotate(
                        &presented,
                        &client,
                        None,
                        None,
                        &token(1001, 100),
                        Some(&kept),
                        1001,
                    )
                    .await
                    .unwrap();
                (out, kept.sealed_successor)
            }));
        }
        let outcomes: Vec<_> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let winners: Vec<&String> = outcomes
            .iter()
            .filter_map(|(o, sealed)| matches!(o, RotateOutcome::Rotated(_)).then_some(sealed))
            .collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        let mut retries: Vec<i64> = outcomes
            .iter()
            .filter_map(|(o, _)| match o {
                RotateOutcome::Retried(r) => {
                    assert_eq!(
                        &r.sealed_successor, winners[0],
                        "every retry answers the winner's successor"
                    );
                    Some(r.retries)
                }
                _ => None,
            })
            .collect();
        retries.sort_unstable();
        assert_eq!(retries, (1..=7).collect::<Vec<_>>(), "{outcomes:?}");
    }
}
