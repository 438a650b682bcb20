//! One active key per algorithm: a fresh server signs access tokens with its ES256 key and
//! holds an RS256 key for ID tokens, rotation rotates every algorithm (or the one asked for),
//! `ensure_alg` adds an algorithm once however many instances ask, and the configured ID-token
//! algorithms have a key from start-up on.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use latchkey::clock::Clock;
use latchkey::domain::SigningAlg;
use serde_json::{json, Value};

use super::{issue, kid_of, long_lived_client, published_kids, step, CachingResourceServer, QUIET};
use crate::helpers::{spawn_app_with, spawn_instance_like, str_of, Backend, TestApp};

/// The kid of the key the ring signs `alg` with.
fn signer_kid(app: &TestApp, alg: SigningAlg) -> Option<String> {
    let ring = app.services.keys.ring().current()?;
    ring.signer(alg).map(|k| k.kid().to_owned())
}

/// `(alg, kid)` of the active keys, in `SigningAlg::ALL` order.
async fn active_keys(app: &TestApp) -> Vec<(&'static str, String)> {
    let mut keys: Vec<(&'static str, String)> = app
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == "active")
        .map(|k| (k.alg, k.kid))
        .collect();
    keys.sort_by_key(|(alg, _)| SigningAlg::parse(alg).unwrap().index());
    keys
}

/// Signs a JWT with the ring's `alg` key and checks it against the served JWKS with an
/// independent implementation.
async fn signs_verifiably(app: &TestApp, alg: SigningAlg) {
    let ring = app.services.keys.ring().current().unwrap();
    let key = ring.signer(alg).unwrap();
    let jwt = key.sign_jwt(&json!({"sub": "someone"})).unwrap();
    let jwks: JwkSet = app.get_json("/.well-known/jwks.json").await;
    let jwk = jwks.find(key.kid()).expect("the signer is published");
    let header = decode_header(&jwt).unwrap();
    let expected = match alg {
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::EdDSA => Algorithm::EdDSA,
    };
    assert_eq!(header.alg, expected);
    let mut validation = Validation::new(expected);
    validation.validate_exp = false;
    validation.set_required_spec_claims::<&str>(&[]);
    let claims = decode::<Value>(&jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap_or_else(|e| panic!("{alg}: {e}"))
        .claims;
    assert_eq!(claims["sub"], "someone");
}

pub(super) async fn a_fresh_server_publishes_an_es256_and_an_rs256_key(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    let secret = long_lived_client(&app).await;
    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    let served: Vec<(&str, &str)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (str_of(k, "alg"), str_of(k, "kid")))
        .collect();
    let active = active_keys(&app).await;
    assert_eq!(
        served,
        active
            .iter()
            .map(|(alg, kid)| (*alg, kid.as_str()))
            .collect::<Vec<_>>(),
        "ES256 (access tokens, first) and RS256 (ID tokens)"
    );
    assert_eq!(
        active.iter().map(|(alg, _)| *alg).collect::<Vec<_>>(),
        ["ES256", "RS256"]
    );
    let token = issue(&app, &secret).await;
    assert_eq!(decode_header(&token).unwrap().alg, Algorithm::ES256);
    assert_eq!(kid_of(&token), active[0].1, "access tokens: the ES256 key");
    assert_eq!(
        signer_kid(&app, SigningAlg::ES256),
        Some(active[0].1.clone())
    );
    assert_eq!(
        signer_kid(&app, SigningAlg::RS256),
        Some(active[1].1.clone())
    );
    assert_eq!(signer_kid(&app, SigningAlg::EdDSA), None);
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        signs_verifiably(&app, alg).await;
    }
    let listed = app.services.keys.list().await.unwrap();
    let access: Vec<&str> = listed
        .iter()
        .filter(|k| k.signs_access_tokens)
        .map(|k| k.alg)
        .collect();
    assert_eq!(access, ["ES256"]);
    let d: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256"])
    );
}

pub(super) async fn rotation_rotates_every_algorithm_and_old_keys_stay_published_until_removed(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    let other = spawn_instance_like(&app, &[QUIET]).await;
    let secret = long_lived_client(&app).await;
    let before = issue(&app, &secret).await;
    let old = active_keys(&app).await;
    let keys = &app.services.keys;

    let rotation = keys.rotate_keys(None, false).await.unwrap();
    let rotated: Vec<(&str, &str)> = rotation.rotated.iter().map(|k| (k.alg, k.state)).collect();
    assert_eq!(rotated, [("ES256", "pending"), ("RS256", "pending")]);
    assert_eq!(rotation.key.kid, rotation.rotated[0].kid);
    let new: Vec<String> = rotation.rotated.iter().map(|k| k.kid.clone()).collect();
    let published = published_kids(&app).await;
    for kid in old.iter().map(|(_, k)| k).chain(&new) {
        assert!(published.contains(kid), "{kid} is published at once");
    }
    assert_eq!(
        signer_kid(&app, SigningAlg::RS256),
        Some(old[1].1.clone()),
        "a pending key signs no ID token either"
    );
    assert_eq!(kid_of(&issue(&app, &secret).await), old[0].1);

    // After the publication delay one step promotes both.
    app.clock
        .advance(app.settings.keys.publish_ahead.as_secs() as i64);
    let mut promoted = step(&app).await.promoted;
    promoted.sort();
    let mut expected = new.clone();
    expected.sort();
    assert_eq!(promoted, expected);
    assert_eq!(
        active_keys(&app).await,
        [("ES256", new[0].clone()), ("RS256", new[1].clone())]
    );
    assert_eq!(kid_of(&issue(&app, &secret).await), new[0]);
    assert_eq!(signer_kid(&app, SigningAlg::RS256), Some(new[1].clone()));
    signs_verifiably(&app, SigningAlg::RS256).await;
    // Another instance picks both up on its next reload.
    other.clock.set(app.clock.now());
    other.services.keys.reload().await.unwrap();
    assert_eq!(signer_kid(&other, SigningAlg::RS256), Some(new[1].clone()));
    assert_eq!(kid_of(&issue(&other, &secret).await), new[0]);

    // The retired keys stay published, and the old tokens verify, until the grace is over.
    let published = published_kids(&app).await;
    assert!(old.iter().all(|(_, kid)| published.contains(kid)));
    let mut rs = CachingResourceServer::new(&app).await;
    rs.verify(&app, &before).await.unwrap();
    app.clock
        .advance(app.settings.keys.retired_grace().as_secs() as i64 + 1);
    assert_eq!(step(&app).await.removed, 2, "both retired keys");
    let published = published_kids(&app).await;
    assert!(old.iter().all(|(_, kid)| !published.contains(kid)));
    assert!(new.iter().all(|kid| published.contains(kid)));

    // With an algorithm, only that one.
    let only = keys
        .rotate_keys(Some(SigningAlg::RS256), false)
        .await
        .unwrap();
    assert_eq!(
        only.rotated
            .iter()
            .map(|k| (k.alg, k.state))
            .collect::<Vec<_>>(),
        [("RS256", "pending")]
    );
    let pending: Vec<&str> = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == "pending")
        .map(|k| k.alg)
        .collect();
    assert_eq!(pending, ["RS256"]);
}

pub(super) async fn ensure_alg_adds_an_algorithm_once(backend: Backend) {
    let a = spawn_app_with(backend, &[QUIET]).await;
    let b = spawn_instance_like(&a, &[QUIET]).await;
    let secret = long_lived_client(&a).await;
    let access = kid_of(&issue(&a, &secret).await);
    assert_eq!(signer_kid(&a, SigningAlg::EdDSA), None);

    // Two instances ask together: one key, which both use at once.
    let (ka, kb) = tokio::join!(
        a.services.keys.ensure_alg(SigningAlg::EdDSA),
        b.services.keys.ensure_alg(SigningAlg::EdDSA)
    );
    let (ka, kb) = (ka.unwrap(), kb.unwrap());
    assert_eq!(ka.kid, kb.kid);
    assert_eq!(
        (ka.alg, ka.state, ka.signs_access_tokens),
        ("EdDSA", "active", false)
    );
    for app in [&a, &b] {
        assert_eq!(signer_kid(app, SigningAlg::EdDSA), Some(ka.kid.clone()));
        assert!(published_kids(app).await.contains(&ka.kid));
    }
    signs_verifiably(&a, SigningAlg::EdDSA).await;
    let eddsa =
        |keys: &[latchkey::services::KeyView]| keys.iter().filter(|k| k.alg == "EdDSA").count();
    assert_eq!(eddsa(&a.services.keys.list().await.unwrap()), 1);

    // Idempotent, for a new algorithm as for one that had a key all along.
    assert_eq!(
        a.services
            .keys
            .ensure_alg(SigningAlg::EdDSA)
            .await
            .unwrap()
            .kid,
        ka.kid
    );
    assert_eq!(
        a.services
            .keys
            .ensure_alg(SigningAlg::ES256)
            .await
            .unwrap()
            .kid,
        access
    );
    assert_eq!(a.services.keys.list().await.unwrap().len(), 3);
    assert_eq!(
        kid_of(&issue(&a, &secret).await),
        access,
        "access tokens unchanged"
    );

    // From now on it is an algorithm in use: rotated with the others.
    let rotation = a.services.keys.rotate_keys(None, false).await.unwrap();
    assert_eq!(
        rotation.rotated.iter().map(|k| k.alg).collect::<Vec<_>>(),
        ["ES256", "RS256", "EdDSA"]
    );
}

pub(super) async fn the_configured_id_token_algorithms_get_a_key_at_start(backend: Backend) {
    let algs = ("LATCHKEY_KEYS_ID_TOKEN_ALGS", "EdDSA");
    let app = spawn_app_with(backend, &[QUIET, algs]).await;
    let active = active_keys(&app).await;
    assert_eq!(
        active.iter().map(|(alg, _)| *alg).collect::<Vec<_>>(),
        ["ES256", "RS256", "EdDSA"],
        "RS256 even though the list does not name it"
    );
    for alg in SigningAlg::ALL {
        assert!(signer_kid(&app, alg).is_some(), "{alg}");
    }
    let d: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256"])
    );
    // Another instance of the same deployment starts with the same keys.
    let other = spawn_instance_like(&app, &[QUIET, algs]).await;
    assert_eq!(active_keys(&other).await, active);
    assert_eq!(other.services.keys.list().await.unwrap().len(), 3);
}
