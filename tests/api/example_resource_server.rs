//! The example resource server (`examples/resource-server`), run as a real process against
//! the app: what it refuses (no token, a malformed one, another API's audience), the four
//! kinds of revocation-feed entry it must apply, failing closed (503) when the feed cannot be
//! read, and an emergency key rotation (an unknown
//! `kid` refetches the JWKS, but at most once per `RS_JWKS_MIN_REFETCH_SECS`). The browser test
//! (`browser.rs`) shows it serving the example SPA; this one checks it as a validator.

use std::time::Duration;

use latchkey::domain::{ClientKind, ClientTokenSettings, SigningAlg};
use latchkey::services::NewClientInput;

use crate::browser::harness::{start_resource_server, Service};
use crate::helpers::{resource_server, spawn_app, str_of, Backend, TestApp};
use crate::scenarios;

scenarios!(cells [sqlite_embedded, postgres_redis]:
    the_example_api_refuses_foreign_tokens_and_applies_every_revocation_kind,
    the_example_api_follows_an_emergency_key_rotation_without_hammering_the_jwks,
);

const ORIGIN: &str = "http://127.0.0.1:5173";

/// `GET /api/me` with `token`: the status and the body.
async fn me(app: &TestApp, api: &Service, token: &str) -> (u16, serde_json::Value) {
    let answer = app
        .http
        .get(format!("{}/api/me", api.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    crate::helpers::json_answer(answer).await
}

/// Waits (the API polls the feed every 250 ms here) until `token` is refused.
async fn refused_soon(app: &TestApp, api: &Service, token: &str, why: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = me(app, api, token).await;
        if status == 401 {
            assert!(
                str_of(&body, "error_description").contains(why),
                "refused for another reason: {body}"
            );
            return;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepted 5 s after the revocation ({why}):\n{}",
            api.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_example_api_refuses_foreign_tokens_and_applies_every_revocation_kind(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let fixture = app.fixture().await;
    let rs_secret = resource_server(&app).await;
    let api = start_resource_server(
        &app,
        "rs",
        &rs_secret,
        ORIGIN,
        &[("RS_REVOCATION_MAX_STALENESS_SECS", "3")],
    )
    .await;

    let first = app.login("alice@example.com").await;
    let (status, body) = me(&app, &api, str_of(&first, "access_token")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], fixture.user_id.as_str());
    assert_eq!(body["client_id"], "web");
    assert_eq!(body["scope"], str_of(&first, "scope"));

    // Refused: no token, a malformed one, a token for another API.
    let bare = app
        .http
        .get(format!("{}/api/me", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    assert!(bare.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(me(&app, &api, "not.a.token").await.0, 401);
    app.admin()
        .create_client(NewClientInput {
            client_id: Some("reports".into()),
            name: "reports".into(),
            kind: ClientKind::Public,
            grant_types: vec!["password".into()],
            scopes: vec!["orders.read".into()],
            redirect_uris: vec![],
            audiences: vec!["https://reports.example.com".into()],
            default_audience: None,
            token_settings: ClientTokenSettings::default(),
        })
        .await
        .unwrap();
    let (status, foreign) = app
        .token_json(&[
            ("grant_type", "password"),
            ("client_id", "reports"),
            ("username", "alice@example.com"),
            ("password", crate::helpers::PASSWORD),
            ("resource", "https://reports.example.com"),
        ])
        .await;
    assert_eq!(status, 200, "{foreign}");
    let (status, body) = me(&app, &api, str_of(&foreign, "access_token")).await;
    assert_eq!(status, 401, "a token for another API: {body}");
    assert!(
        str_of(&body, "error_description").contains("Audience"),
        "{body}"
    );

    // An access token revoked by jti.
    assert_eq!(app.revoke_public(str_of(&first, "access_token")).await, 200);
    refused_soon(
        &app,
        &api,
        str_of(&first, "access_token"),
        "token was revoked",
    )
    .await;

    // A session (refresh-token family) ended: its access tokens, by sid.
    // (Logging out with one of its access tokens revokes that one by jti too: the other one,
    // from a refresh of the same session, shows the session entry at work.)
    let second = app.login("alice@example.com").await;
    let (status, same_session) = app.refresh(str_of(&second, "refresh_token")).await;
    assert_eq!(status, 200, "{same_session}");
    assert_eq!(
        me(&app, &api, str_of(&same_session, "access_token"))
            .await
            .0,
        200
    );
    let r = app
        .post_bearer("/api/v1/logout", str_of(&second, "access_token"))
        .await;
    assert_eq!(r.status(), 204);
    refused_soon(&app, &api, str_of(&same_session, "access_token"), "session").await;

    // The user's watermark: every token issued until then; a later sign-in is fine.
    let third = app.login("alice@example.com").await;
    let fourth = app.login("alice@example.com").await;
    let r = app
        .post_bearer("/api/v1/logout-all", str_of(&third, "access_token"))
        .await;
    assert_eq!(r.status(), 204);
    refused_soon(&app, &api, str_of(&fourth, "access_token"), "user's tokens").await;
    app.clock.advance(1);
    let later = app.login("alice@example.com").await;
    assert_eq!(me(&app, &api, str_of(&later, "access_token")).await.0, 200);

    // The client's watermark: a disabled client's tokens, user tokens included.
    let (status, service) = app
        .client_credentials(&fixture.billing_id, &fixture.billing_secret)
        .await;
    assert_eq!(status, 200, "{service}");
    assert_eq!(
        me(&app, &api, str_of(&service, "access_token")).await.0,
        200
    );
    app.admin()
        .set_client_enabled(&fixture.billing_id, false)
        .await
        .unwrap();
    refused_soon(
        &app,
        &api,
        str_of(&service, "access_token"),
        "client's tokens",
    )
    .await;
    // Alice's later token came from another client: untouched.
    assert_eq!(me(&app, &api, str_of(&later, "access_token")).await.0, 200);

    // Fail closed: when the feed cannot be read (here its credentials were rotated away) for
    // longer than RS_REVOCATION_MAX_STALENESS_SECS, tokens get 503, not 200.
    app.admin().rotate_client_secret("rs").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = me(&app, &api, str_of(&later, "access_token")).await;
        if status == 503 {
            assert_eq!(body["error"], "temporarily_unavailable", "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "a stale feed still lets tokens through:\n{}",
            api.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = app
        .http
        .get(format!("{}/healthz", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
}

async fn the_example_api_follows_an_emergency_key_rotation_without_hammering_the_jwks(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs_secret = resource_server(&app).await;
    let api = start_resource_server(
        &app,
        "rs",
        &rs_secret,
        ORIGIN,
        &[("RS_JWKS_MIN_REFETCH_SECS", "2")],
    )
    .await;
    let fetches = |api: &Service| api.output().matches("JWKS fetched").count();
    // The server's log reaches the test through a reader thread: a line written before the
    // answer may be read a moment after it. Waits (up to 2 s) for `n` fetches to show, then
    // counts them all.
    let fetches_seen = |api: &Service, n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while fetches(api) < n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        fetches(api)
    };

    let before = app.login("alice@example.com").await;
    assert_eq!(me(&app, &api, str_of(&before, "access_token")).await.0, 200);
    assert_eq!(fetches(&api), 0, "the keys loaded at start-up serve");

    // An emergency rotation: the new key signs at once, before any cache expires.
    let urgent = app
        .services
        .keys
        .rotate_with(SigningAlg::ES256, true)
        .await
        .unwrap();
    let after = app.login("alice@example.com").await;
    let (header, _) = crate::helpers::jwt_parts(str_of(&after, "access_token"));
    assert_eq!(header["kid"], urgent.kid.as_str());
    let (status, body) = me(&app, &api, str_of(&after, "access_token")).await;
    assert_eq!(status, 200, "the unknown kid refetched the JWKS: {body}");
    assert_eq!(fetches_seen(&api, 1), 1);
    // The old key is still published: its tokens still verify, from the cache.
    assert_eq!(me(&app, &api, str_of(&before, "access_token")).await.0, 200);

    // Tokens naming kids nobody published: refused, and within RS_JWKS_MIN_REFETCH_SECS
    // they cost no fetch at all.
    let forged = |kid: &str| {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}"}}"#));
        let body = str_of(&after, "access_token")
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        format!("{header}.{body}.{}", b64.encode([0u8; 64]))
    };
    for i in 0..5 {
        let (status, body) = me(&app, &api, &forged(&format!("made-up-{i}"))).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            str_of(&body, "error_description").contains("unknown kid"),
            "{body}"
        );
    }
    assert_eq!(
        fetches_seen(&api, 2),
        1,
        "no refetch within the interval:\n{}",
        api.output()
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(me(&app, &api, &forged("made-up-again")).await.0, 401);
    assert_eq!(
        fetches_seen(&api, 2),
        2,
        "one refetch once the interval has passed"
    );
}
