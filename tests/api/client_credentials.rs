use crate::helpers::{assert_oauth_error, jwt_parts, spawn_app, str_of, Backend};
use crate::scenarios;

scenarios!(
    client_credentials_with_basic_authentication,
    client_credentials_with_secret_in_the_body,
    wrong_or_unknown_client_gets_401_with_a_challenge,
    two_authentication_methods_at_once_are_rejected,
    disabled_client_is_refused_at_once,
    rotated_secret_replaces_the_old_one,
    public_client_cannot_use_client_credentials,
    unsupported_grant_type_is_named,
    per_client_access_token_lifetime_applies,
);

async fn client_credentials_with_basic_authentication(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&f.billing_id, Some(&f.billing_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token for client_credentials"
    );
    assert_eq!(body["scope"], "orders.read");
    let (_, claims) = jwt_parts(str_of(&body, "access_token"));
    assert_eq!(claims["sub"], "billing");
    assert_eq!(claims["client_id"], "billing");
    assert!(claims.get("roles").is_none());
}

async fn client_credentials_with_secret_in_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let (status, body) = app
        .token_json(&[
            ("grant_type", "client_credentials"),
            ("client_id", &f.billing_id),
            ("client_secret", &f.billing_secret),
            ("scope", "orders.read"),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn wrong_or_unknown_client_gets_401_with_a_challenge(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    for (id, secret) in [
        (f.billing_id.as_str(), "wrong"),
        ("nobody", "whatever"),
        (f.billing_id.as_str(), ""),
    ] {
        let r = app
            .http
            .post(app.url("/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=\"latchkey\""));
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    let (status, body) = app
        .token_json(&[
            ("grant_type", "client_credentials"),
            ("client_id", &f.billing_id),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "confidential client without secret"
    );
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .header("authorization", "Basic !!!not-base64")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn two_authentication_methods_at_once_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&f.billing_id, Some(&f.billing_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", f.billing_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

async fn disabled_client_is_refused_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", f.billing_id.as_str()),
        ("client_secret", f.billing_secret.as_str()),
    ];
    assert_eq!(app.token_json(&form).await.0, 200, "warms the client cache");
    app.admin()
        .set_client_enabled("billing", false)
        .await
        .unwrap();
    let (status, body) = app.token_json(&form).await;
    assert_oauth_error(status, &body, 401, "invalid_client");
    app.admin()
        .set_client_enabled("billing", true)
        .await
        .unwrap();
    assert_eq!(app.token_json(&form).await.0, 200);
}

async fn rotated_secret_replaces_the_old_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let new_secret = app
        .admin()
        .rotate_client_secret("billing")
        .await
        .unwrap()
        .client_secret
        .unwrap();
    let old = app.client_credentials("billing", &f.billing_secret).await;
    assert_eq!(old.0, 401);
    let new = app.client_credentials("billing", &new_secret).await;
    assert_eq!(new.0, 200);
}

async fn public_client_cannot_use_client_credentials(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let (status, body) = app
        .token_json(&[("grant_type", "client_credentials"), ("client_id", "web")])
        .await;
    assert_oauth_error(status, &body, 400, "unauthorized_client");
}

async fn unsupported_grant_type_is_named(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let (status, body) = app
        .token_json(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "web"),
        ])
        .await;
    assert_oauth_error(status, &body, 400, "unsupported_grant_type");
}

async fn per_client_access_token_lifetime_applies(backend: Backend) {
    use latchkey::domain::{ClientKind, ClientTokenSettings};
    use latchkey::services::NewClientInput;
    let app = spawn_app(backend).await;
    app.fixture().await;
    let secret = app
        .admin()
        .create_client(NewClientInput {
            client_id: Some("short".into()),
            name: "short-lived".into(),
            kind: ClientKind::Confidential,
            grant_types: vec!["client_credentials".into()],
            scopes: vec![],
            redirect_uris: vec![],
            audiences: vec![],
            default_audience: None,
            token_settings: ClientTokenSettings {
                access_token_ttl: Some(60),
                ..Default::default()
            },
        })
        .await
        .unwrap()
        .client_secret
        .unwrap();
    let (status, body) = app.client_credentials("short", &secret).await;
    assert_eq!((status, body["expires_in"].as_i64()), (200, Some(60)));
}
