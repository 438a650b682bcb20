//! Transitions an operator asks for through the key service: a rotation (pending, or active
//! at once), retiring the active key, withdrawing a pending key that cannot be opened, and
//! removing the active key by force.

use std::collections::HashMap;

use jsonwebtoken::decode_header;
use jsonwebtoken::jwk::JwkSet;
use latchkey::clock::Clock;
use latchkey::domain::SigningAlg;

use super::{issue, kid_of, long_lived_client, published_kids, step, QUIET};
use crate::helpers::{spawn_app_with, str_of, Backend};

pub(super) async fn manual_rotation_is_pending_until_published_long_enough(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    let secret = long_lived_client(&app).await;
    let old = kid_of(&issue(&app, &secret).await);
    let keys = &app.services.keys;
    // The access-token algorithm (ES256): its key signs the tokens issued below.
    let pending = keys.rotate_with(SigningAlg::ES256, false).await.unwrap();
    assert_eq!((pending.state, pending.alg), ("pending", "ES256"));
    assert!(pending.activate_at.is_some());
    assert!(
        published_kids(&app).await.contains(&pending.kid),
        "published at once"
    );
    assert_eq!(kid_of(&issue(&app, &secret).await), old, "not signing yet");
    let again = keys.rotate_with(SigningAlg::ES256, false).await;
    assert!(
        matches!(&again, Err(latchkey::services::KeyError::Conflict(m)) if m.contains("already pending")),
        "{again:?}"
    );
    // One pending key per algorithm: the RS256 key (ID tokens) has its own.
    let rs_pending = keys.rotate_with(SigningAlg::RS256, false).await.unwrap();
    assert_eq!((rs_pending.state, rs_pending.alg), ("pending", "RS256"));
    app.clock
        .advance(app.settings.keys.publish_ahead.as_secs() as i64 - 1);
    assert!(step(&app).await.promoted.is_empty(), "not before its time");
    app.clock.advance(1);
    let mut promoted = step(&app).await.promoted;
    promoted.sort();
    let mut expected = vec![pending.kid.clone(), rs_pending.kid.clone()];
    expected.sort();
    assert_eq!(promoted, expected);
    assert_eq!(kid_of(&issue(&app, &secret).await), pending.kid);
    let ring = app.services.keys.ring().current().unwrap();
    assert_eq!(
        ring.signer(SigningAlg::RS256).map(|k| k.kid().to_owned()),
        Some(rs_pending.kid.clone()),
        "the promoted RS256 key signs ID tokens"
    );

    // --now: active at once, and a pending key of the algorithm is withdrawn.
    let next = keys.rotate_with(SigningAlg::ES256, false).await.unwrap();
    let urgent = keys.rotate_with(SigningAlg::ES256, true).await.unwrap();
    assert_eq!(urgent.state, "active");
    assert_eq!(kid_of(&issue(&app, &secret).await), urgent.kid);
    let states: HashMap<String, &str> = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(states[&next.kid], "retired", "withdrawn");
    assert_eq!(states[&pending.kid], "retired");
    // A withdrawn key never signed: the next step removes it; the others stay.
    let report = step(&app).await;
    assert_eq!(report.removed, 1);
    let published = published_kids(&app).await;
    assert!(!published.contains(&next.kid));
    assert!(published.contains(&pending.kid) && published.contains(&old));
}

pub(super) async fn retiring_the_active_key_needs_a_successor(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    let keys = &app.services.keys;
    let listed = keys.list().await.unwrap();
    let active = listed
        .iter()
        .find(|k| k.signs_access_tokens)
        .unwrap()
        .kid
        .clone();
    let rs256 = listed
        .iter()
        .find(|k| k.alg == "RS256" && k.state == "active")
        .unwrap()
        .kid
        .clone();
    let refused = keys.retire(&active).await;
    assert!(
        matches!(&refused, Err(latchkey::services::KeyError::Conflict(m)) if m.contains("no pending key")),
        "{refused:?}"
    );
    let pending = keys.rotate_with(SigningAlg::ES256, false).await.unwrap();
    let retired = keys.retire(&active).await.unwrap();
    assert_eq!(retired.state, "retired");
    let now_active: Vec<String> = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == "active" && k.alg == "ES256")
        .map(|k| k.kid)
        .collect();
    assert_eq!(
        now_active,
        std::slice::from_ref(&pending.kid),
        "the pending key took over at once"
    );
    // The other algorithm's key is not its successor, and stays as it was.
    let refused = keys.retire(&rs256).await;
    assert!(
        matches!(&refused, Err(latchkey::services::KeyError::Conflict(m)) if m.contains("no pending key")),
        "{refused:?}"
    );
    assert!(matches!(
        keys.retire("no-such-kid").await,
        Err(latchkey::services::KeyError::NotFound(_))
    ));
    assert_eq!(
        keys.retire(&active).await.unwrap().state,
        "retired",
        "idempotent"
    );
}

pub(super) async fn a_pending_key_that_cannot_be_opened_is_never_promoted(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    let secret = long_lived_client(&app).await;
    let active = kid_of(&issue(&app, &secret).await);
    // A pending key whose private part cannot be opened (corrupt, or sealed elsewhere).
    let now = app.clock.now();
    let bogus = latchkey::domain::StoredKey {
        kid: latchkey::domain::KeyId::from_trusted("bogus".into()),
        alg: SigningAlg::ES256,
        state: latchkey::domain::KeyState::Pending,
        public_jwk: "{}".into(),
        private_key_enc: vec![0; 40],
        enc_key_id: "elsewhere".into(),
        created_at: now,
        activate_at: Some(now + app.settings.keys.publish_ahead.as_secs() as i64),
        activated_at: None,
        retired_at: None,
        removed_at: None,
    };
    assert_eq!(
        app.services
            .stores
            .keys
            .insert_pending(
                &bogus,
                &latchkey::domain::KeyId::from_trusted(active.clone())
            )
            .await
            .unwrap(),
        latchkey::storage::PendingInsert::Inserted
    );
    assert!(app.services.keys.reload().await.is_err(), "fails closed");
    let pending = app
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.state == "pending")
        .unwrap();
    app.clock
        .advance(app.settings.keys.publish_ahead.as_secs() as i64 + 1);
    let report = app.services.keys.tick().await.unwrap();
    assert!(report.promoted.is_empty(), "{report:?}");
    assert_eq!(
        kid_of(&issue(&app, &secret).await),
        active,
        "still signing with the old key"
    );
    let states: Vec<(String, &str)> = app
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert!(
        states.contains(&(pending.kid.clone(), "pending")),
        "{states:?}"
    );
    assert!(states.contains(&(active, "active")), "{states:?}");
    // Withdrawing it lets the lifecycle go on: it never signed, so the next step removes it.
    assert_eq!(
        app.services.keys.retire(&pending.kid).await.unwrap().state,
        "retired"
    );
    assert_eq!(app.services.keys.tick().await.unwrap().removed, 1);
    app.services.keys.reload().await.unwrap();
    assert!(!published_kids(&app).await.contains(&pending.kid));
}

pub(super) async fn force_removing_the_active_key_activates_a_replacement(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await;
    let f = app.fixture().await;
    let keys = &app.services.keys;
    let before = keys.list().await.unwrap();
    let old = before
        .iter()
        .find(|k| k.state == "active" && k.signs_access_tokens)
        .unwrap()
        .kid
        .clone();
    let rs256 = before
        .iter()
        .find(|k| k.state == "active" && k.alg == "RS256")
        .unwrap()
        .kid
        .clone();
    assert!(keys.remove(&old, false).await.is_err(), "needs force");
    keys.remove(&old, true).await.unwrap();
    let listed = keys.list().await.unwrap();
    let active: Vec<_> = listed
        .iter()
        .filter(|k| k.state == "active" && k.alg == "ES256")
        .collect();
    assert_eq!(active.len(), 1, "{listed:?}");
    assert_ne!(active[0].kid, old);
    assert!(active[0].signs_access_tokens);
    assert!(
        listed.iter().any(|k| k.kid == rs256 && k.state == "active"),
        "the other algorithm's key is left alone: {listed:?}"
    );
    assert!(listed.iter().any(|k| k.kid == old && k.state == "removed"));
    let (status, body) = app
        .client_credentials(&f.billing_id, &f.billing_secret)
        .await;
    assert_eq!(status, 200, "{body}");
    let header = decode_header(str_of(&body, "access_token")).unwrap();
    assert_eq!(header.kid.as_deref(), Some(active[0].kid.as_str()));
    let jwks: JwkSet = app.get_json("/.well-known/jwks.json").await;
    assert!(
        jwks.find(&old).is_none(),
        "the removed key is unpublished at once"
    );
}
