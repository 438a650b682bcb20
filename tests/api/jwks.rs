use std::sync::Arc;

use jsonwebtoken::jwk::{JwkSet, ThumbprintHash};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use latchkey::clock::MockClock;
use latchkey::crypto::MasterKey;
use latchkey::startup::Application;

use crate::helpers::{
    fresh_database, spawn_app, spawn_app_with, str_of, test_settings, Backend, TestApp,
};
use crate::scenarios;

scenarios!(
    tokens_validate_against_the_served_jwks_for_every_algorithm,
    es256_tokens_verify_with_an_independent_p256_implementation,
    jwks_and_discovery_are_cacheable_and_open_to_any_origin,
    rotated_keys_stay_published_and_old_tokens_still_verify,
    a_changed_algorithm_gets_its_key_at_start_and_a_wrong_master_key_stops_it,
    health_and_readiness_answer,
);

async fn client_token(app: &TestApp) -> String {
    let f = app.fixture().await;
    let (status, body) = app
        .client_credentials(&f.billing_id, &f.billing_secret)
        .await;
    assert_eq!(status, 200, "{body}");
    str_of(&body, "access_token").to_owned()
}

/// What a resource server does: discovery -> jwks_uri -> verify with the key named by `kid`.
async fn verify_like_a_resource_server(app: &TestApp, token: &str) -> serde_json::Value {
    let discovery: serde_json::Value = app.get_json("/.well-known/openid-configuration").await;
    let jwks: JwkSet = app.get_json(str_of(&discovery, "jwks_uri")).await;
    let header = decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is published");
    assert_eq!(
        jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
        kid,
        "kid is the RFC 7638 thumbprint"
    );
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[app.settings.issuer()]);
    validation.set_audience(&[app.settings.default_audience()]);
    validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "sub", "aud"]);
    decode::<serde_json::Value>(token, &key, &validation)
        .expect("token verifies")
        .claims
}

async fn tokens_validate_against_the_served_jwks_for_every_algorithm(backend: Backend) {
    for (alg, expected) in [
        ("ES256", Algorithm::ES256),
        ("RS256", Algorithm::RS256),
        ("EdDSA", Algorithm::EdDSA),
    ] {
        let app = spawn_app_with(backend, &[("LATCHKEY_SIGNING_ALG", alg)]).await;
        let token = client_token(&app).await;
        assert_eq!(decode_header(&token).unwrap().alg, expected);
        let claims = verify_like_a_resource_server(&app, &token).await;
        assert_eq!(claims["client_id"], "billing");
        let jwks: serde_json::Value = app.get_json("/.well-known/jwks.json").await;
        let key = &jwks["keys"][0];
        assert_eq!(
            (key["use"].as_str(), key["alg"].as_str()),
            (Some("sig"), Some(alg))
        );
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "no private material is published"
        );
    }
}

async fn es256_tokens_verify_with_an_independent_p256_implementation(backend: Backend) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use p256::ecdsa::signature::Verifier;
    let app = spawn_app(backend).await;
    let token = client_token(&app).await;
    let jwks: serde_json::Value = app.get_json("/.well-known/jwks.json").await;
    let coord = |c: &str| URL_SAFE_NO_PAD.decode(str_of(&jwks["keys"][0], c)).unwrap();
    let (x, y) = (coord("x"), coord("y"));
    let point = p256::EncodedPoint::from_affine_coordinates(
        x.as_slice().into(),
        y.as_slice().into(),
        false,
    );
    let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).unwrap();
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    key.verify(signed.as_bytes(), &sig)
        .expect("signature verifies");
    let mut tampered = signed.to_owned();
    tampered.push('A');
    assert!(key.verify(tampered.as_bytes(), &sig).is_err());
}

async fn jwks_and_discovery_are_cacheable_and_open_to_any_origin(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = app
            .http
            .get(app.url(path))
            .header("origin", "https://spa.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert_eq!(r.headers()["cache-control"], "public, max-age=3600");
    }
    let d: serde_json::Value = app.get_json("/.well-known/openid-configuration").await;
    let issuer = app.settings.issuer();
    assert_eq!(d["issuer"], issuer);
    assert_eq!(d["token_endpoint"], format!("{issuer}/oauth2/token"));
    assert_eq!(d["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(
        d["grant_types_supported"],
        serde_json::json!([
            "password",
            "refresh_token",
            "client_credentials",
            "authorization_code",
            "urn:latchkey:params:oauth:grant-type:magic-link",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:latchkey:params:oauth:grant-type:mfa"
        ])
    );
    assert_eq!(
        d["authorization_endpoint"],
        format!("{issuer}/oauth2/authorize")
    );
    assert_eq!(d["userinfo_endpoint"], format!("{issuer}/oauth2/userinfo"));
    assert_eq!(d["end_session_endpoint"], format!("{issuer}/oauth2/logout"));
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        d["response_modes_supported"],
        serde_json::json!(["query", "form_post"])
    );
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(d["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(
            d["scopes_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == scope),
            "{scope}"
        );
    }
    for prompt in ["none", "login", "consent", "create"] {
        assert!(
            d["prompt_values_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == prompt),
            "{prompt}"
        );
    }
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "RS256"]),
        "the access-token algorithm, and RS256 as OpenID Connect requires"
    );
}

async fn rotated_keys_stay_published_and_old_tokens_still_verify(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = client_token(&app).await;
    let new_key = app
        .services
        .keys
        .rotate(latchkey::domain::SigningAlg::ES256)
        .await
        .unwrap();
    let f_secret = app
        .admin()
        .rotate_client_secret("billing")
        .await
        .unwrap()
        .client_secret
        .unwrap();
    let (_, body) = app.client_credentials("billing", &f_secret).await;
    let after = str_of(&body, "access_token").to_owned();
    assert_eq!(
        decode_header(&after).unwrap().kid.as_deref(),
        Some(new_key.kid.as_str())
    );
    verify_like_a_resource_server(&app, &before).await;
    verify_like_a_resource_server(&app, &after).await;
    let keys = app.services.keys.list().await.unwrap();
    let states: Vec<&str> = keys
        .iter()
        .filter(|k| k.alg == "ES256")
        .map(|k| k.state)
        .collect();
    assert_eq!(states, ["active", "retired"]);
    let rs256: Vec<&str> = keys
        .iter()
        .filter(|k| k.alg == "RS256")
        .map(|k| k.state)
        .collect();
    assert_eq!(rs256, ["active"], "the other algorithm's key is left alone");
}

async fn a_changed_algorithm_gets_its_key_at_start_and_a_wrong_master_key_stops_it(
    backend: Backend,
) {
    let db = fresh_database(backend).await;
    let master = MasterKey::generate_base64();
    let first = test_settings(&db, &[("LATCHKEY_MASTER_KEY", &master)]);
    let (_app, services) = Application::build(&first, Arc::new(MockClock::starting_now()))
        .await
        .unwrap();
    let first_keys = services.keys.list().await.unwrap();
    let first_kid = first_keys
        .iter()
        .find(|k| k.signs_access_tokens)
        .unwrap()
        .kid
        .clone();
    assert_eq!(
        first_keys.len(),
        2,
        "ES256 for access tokens, RS256 for ID tokens"
    );
    drop(services);
    let second = test_settings(
        &db,
        &[
            ("LATCHKEY_MASTER_KEY", &master),
            ("LATCHKEY_SIGNING_ALG", "EdDSA"),
        ],
    );
    let (_app2, services) = Application::build(&second, Arc::new(MockClock::starting_now()))
        .await
        .unwrap();
    let keys = services.keys.list().await.unwrap();
    let new = keys.iter().find(|k| k.signs_access_tokens).unwrap();
    assert_eq!((new.alg, new.state), ("EdDSA", "active"));
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.kid == first_kid && k.state == "active" && !k.signs_access_tokens),
        "the former access-token key stays active for ID tokens: {keys:?}"
    );
    let ring = services.keys.ring().current().unwrap();
    assert_eq!(ring.active.kid(), new.kid);
    assert_eq!(
        ring.signer(latchkey::domain::SigningAlg::ES256)
            .map(|k| k.kid().to_owned()),
        Some(first_kid.clone())
    );
    // Back to ES256: its key is still active, so nothing is created.
    drop(services);
    let (_app3, services) = Application::build(&first, Arc::new(MockClock::starting_now()))
        .await
        .unwrap();
    let keys = services.keys.list().await.unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys
        .iter()
        .any(|k| k.kid == first_kid && k.signs_access_tokens));
    drop(services);
    let other = test_settings(&db, &[]);
    let err = Application::build(&other, Arc::new(MockClock::starting_now()))
        .await
        .err()
        .expect("must not start");
    let msg = format!("{err:#}");
    assert!(msg.contains("master key"), "{msg}");
    // Recovery after a lost master key: remove the unreadable keys, and start again.
    let services =
        latchkey::startup::build_services(&other, Arc::new(MockClock::starting_now()), false)
            .await
            .unwrap();
    for k in services.keys.list().await.unwrap() {
        services.keys.remove(&k.kid, true).await.unwrap();
    }
    let (_app4, services) = Application::build(&other, Arc::new(MockClock::starting_now()))
        .await
        .unwrap();
    let mut states: Vec<(&str, &str)> = services
        .keys
        .list()
        .await
        .unwrap()
        .iter()
        .map(|k| (k.alg, k.state))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("ES256", "active"),
            ("ES256", "removed"),
            ("EdDSA", "removed"),
            ("RS256", "active"),
            ("RS256", "removed"),
        ]
    );
}

async fn health_and_readiness_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The embedded denylist loads the revocation log after the server starts: readiness
    // follows once it is loaded (moments, with an empty log).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let r = loop {
        let r: serde_json::Value = app.get_json("/readyz").await;
        if r["status"] == "ready" || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        r,
        serde_json::json!({"status": "ready", "checks": {
            "database": "ok", "keys": "ok", "denylist": "ok",
            "denylist_backend": app.services.revocations.denylist().name(),
        }})
    );
}
