//! Logout and "log out everywhere" for first-party apps.

use crate::helpers::{assert_oauth_error, resource_server, spawn_app, str_of, Backend};
use crate::scenarios;

scenarios!(
    logout_revokes_the_presented_token_and_its_session_only,
    logout_everywhere_ends_every_session_of_the_user,
    logout_needs_a_valid_bearer_token,
    operators_disabling_a_user_or_setting_a_password_revoke_every_token,
);

async fn logout_revokes_the_presented_token_and_its_session_only(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let first = app.login("alice@example.com").await;
    let (_, second) = app.refresh(str_of(&first, "refresh_token")).await;
    let other = app.login("alice@example.com").await;

    let r = app
        .post_bearer("/api/v1/logout", str_of(&second, "access_token"))
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["cache-control"], "no-store");

    for t in [&first, &second] {
        assert!(!app.is_active(&rs, str_of(t, "access_token")).await);
    }
    let (status, body) = app.refresh(str_of(&second, "refresh_token")).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert!(app.is_active(&rs, str_of(&other, "access_token")).await);
    let (status, _) = app.refresh(str_of(&other, "refresh_token")).await;
    assert_eq!(status, 200, "the user's other session goes on");
    let r = app
        .post_bearer("/api/v1/logout", str_of(&second, "access_token"))
        .await;
    assert_eq!(r.status(), 401, "a logged-out token cannot log out again");
}

async fn logout_everywhere_ends_every_session_of_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let a = app.login("alice@example.com").await;
    let b = app.login("alice@example.com").await;
    let r = app
        .post_bearer("/api/v1/logout-all", str_of(&a, "access_token"))
        .await;
    assert_eq!(r.status(), 204);
    for t in [&a, &b] {
        assert!(!app.is_active(&rs, str_of(t, "access_token")).await);
        let (status, body) = app.refresh(str_of(t, "refresh_token")).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
    }
    app.clock.advance(1);
    let again = app.login("alice@example.com").await;
    assert!(
        app.is_active(&rs, str_of(&again, "access_token")).await,
        "signing in again afterwards works"
    );
    let (status, _) = app.refresh(str_of(&again, "refresh_token")).await;
    assert_eq!(status, 200);
}

async fn logout_needs_a_valid_bearer_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    for path in ["/api/v1/logout", "/api/v1/logout-all"] {
        let r = app.http.post(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(
            r.headers()["www-authenticate"],
            r#"Bearer realm="latchkey""#,
            "no credentials: a challenge without an error code (RFC 6750 §3.1)"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
        for auth in ["Basic d2ViOg==", "Bearer", "Bearer a b", "token"] {
            let r = app
                .http
                .post(app.url(path))
                .header("authorization", auth)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{path} {auth}");
            assert!(r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token""#));
        }
        let r = app.post_bearer(path, "not-a-token").await;
        assert_eq!(r.status(), 401, "{path}");
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 405, "{path}");
    }
    // An expired token.
    let tokens = app.login("alice@example.com").await;
    app.clock.advance(601);
    let r = app
        .post_bearer("/api/v1/logout", str_of(&tokens, "access_token"))
        .await;
    assert_eq!(r.status(), 401);
    // A token for another API (aud) does not work at Latchkey's own endpoints: an API that
    // receives a user's token cannot log the user out.
    let api = "https://api.example.com";
    app.admin()
        .create_client(latchkey::services::NewClientInput {
            client_id: Some("spa".into()),
            name: "spa".into(),
            kind: latchkey::domain::ClientKind::Public,
            grant_types: vec!["password".into(), "refresh_token".into()],
            scopes: vec![],
            redirect_uris: vec![],
            audiences: vec![api.into()],
            default_audience: None,
            token_settings: Default::default(),
        })
        .await
        .unwrap();
    let (status, for_api) = app
        .token_json(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", crate::helpers::PASSWORD),
            ("client_id", "spa"),
            ("resource", api),
        ])
        .await;
    assert_eq!(status, 200, "{for_api}");
    for path in ["/api/v1/logout", "/api/v1/logout-all"] {
        let r = app
            .post_bearer(path, str_of(&for_api, "access_token"))
            .await;
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_oauth_error(status, &body, 401, "invalid_token");
    }
    let (status, _) = app
        .refresh_as("spa", str_of(&for_api, "refresh_token"))
        .await;
    assert_eq!(status, 200, "nothing was revoked");
    // A client's own token has no user to log out everywhere.
    let (_, cc) = app
        .client_credentials(&f.billing_id, &f.billing_secret)
        .await;
    let r = app
        .post_bearer("/api/v1/logout-all", str_of(&cc, "access_token"))
        .await;
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_oauth_error(status, &body, 400, "invalid_request");
}

async fn operators_disabling_a_user_or_setting_a_password_revoke_every_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let before = app.login("alice@example.com").await;
    app.set_active("alice@example.com", false).await;
    assert!(!app.is_active(&rs, str_of(&before, "access_token")).await);
    app.set_active("alice@example.com", true).await;
    app.clock.advance(1);
    let after = app.login("alice@example.com").await;
    assert!(app.is_active(&rs, str_of(&after, "access_token")).await);
    app.admin()
        .set_password(
            "alice@example.com",
            Some(secrecy::SecretString::from("another long passphrase")),
        )
        .await
        .unwrap();
    assert!(!app.is_active(&rs, str_of(&after, "access_token")).await);
    let (status, _) = app.refresh(str_of(&after, "refresh_token")).await;
    assert_eq!(status, 400);
}
