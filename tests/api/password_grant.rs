use crate::helpers::{assert_oauth_error, jwt_parts, spawn_app, str_of, Backend, PASSWORD};
use crate::scenarios;

scenarios!(
    password_grant_issues_a_bearer_access_token_and_a_refresh_token,
    access_token_carries_rfc_9068_claims_with_roles_and_permissions,
    password_grant_accepts_a_json_body,
    wrong_password_and_unknown_email_get_the_same_answer,
    email_login_is_case_insensitive,
    inactive_user_cannot_get_tokens,
    user_without_a_password_cannot_use_the_password_grant,
    client_not_allowed_the_password_grant_is_unauthorized,
    requested_scope_is_checked_against_the_client,
    no_refresh_token_when_the_client_may_not_refresh,
    missing_parameters_are_invalid_requests,
    public_client_presenting_a_secret_is_rejected,
);

async fn password_grant_issues_a_bearer_access_token_and_a_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let r = app
        .token(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", PASSWORD),
            ("client_id", "web"),
        ])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "orders.read orders.write");
    let refresh = str_of(&body, "refresh_token");
    assert!(
        refresh.starts_with("lkrt_") && refresh.len() >= 5 + 43,
        "refresh token has 256 bits: {refresh}"
    );
    assert_eq!(str_of(&body, "access_token").split('.').count(), 3);
}

async fn access_token_carries_rfc_9068_claims_with_roles_and_permissions(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let body = app.login("alice@example.com").await;
    let (header, claims) = jwt_parts(str_of(&body, "access_token"));
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    assert_eq!(claims["iss"], app.settings.issuer());
    assert_eq!(claims["sub"], f.user_id);
    assert_eq!(claims["aud"], app.settings.issuer());
    assert_eq!(claims["client_id"], "web");
    assert_eq!(claims["scope"], "orders.read orders.write");
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 600);
    assert_eq!(claims["nbf"].as_i64().unwrap(), iat);
    assert_eq!(claims["roles"], serde_json::json!(["auditor", "manager"]));
    assert_eq!(
        claims["permissions"],
        serde_json::json!(["audit.read", "orders.approve", "orders.view"])
    );
    let other = app.login("alice@example.com").await;
    let (_, other_claims) = jwt_parts(str_of(&other, "access_token"));
    assert_ne!(
        claims["jti"], other_claims["jti"],
        "jti is unique per token"
    );
}

async fn password_grant_accepts_a_json_body(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .json(&serde_json::json!({
            "grant_type": "password", "username": "alice@example.com", "password": PASSWORD,
            "client_id": "web", "scope": "orders.read"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "orders.read");
}

async fn wrong_password_and_unknown_email_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let wrong = app.password_grant("alice@example.com", "nope", "web").await;
    let unknown = app
        .password_grant("nobody@example.com", "nope", "web")
        .await;
    let malformed = app.password_grant("not an email", "nope", "web").await;
    assert_eq!(wrong.0, 400);
    assert_eq!(wrong.1["error"], "invalid_grant");
    assert_eq!(wrong, unknown, "no user enumeration");
    assert_eq!(wrong, malformed);
}

async fn email_login_is_case_insensitive(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    app.login("  ALICE@Example.COM ").await;
}

async fn inactive_user_cannot_get_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let tokens = app.login("alice@example.com").await;
    app.set_active("alice@example.com", false).await;
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = app.refresh(str_of(&tokens, "refresh_token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "refresh stops at once too"
    );
    app.set_active("alice@example.com", true).await;
    let (status, body) = app.refresh(str_of(&tokens, "refresh_token")).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert_eq!(
        body["error_description"], "the refresh token has been revoked",
        "disabling an account ends its sessions for good"
    );
    app.clock.advance(1);
    app.login("alice@example.com").await;
}

async fn user_without_a_password_cannot_use_the_password_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    app.admin()
        .set_password("alice@example.com", None)
        .await
        .unwrap();
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}

async fn client_not_allowed_the_password_grant_is_unauthorized(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&f.billing_id, Some(&f.billing_secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
}

async fn requested_scope_is_checked_against_the_client(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let base = [
        ("grant_type", "password"),
        ("username", "alice@example.com"),
        ("password", PASSWORD),
        ("client_id", "web"),
    ];
    let with = |scope: &'static str| {
        let mut v = base.to_vec();
        v.push(("scope", scope));
        v
    };
    let (status, body) = app.token_json(&with("orders.write")).await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (200, Some("orders.write"))
    );
    let (status, body) = app.token_json(&with("orders.read admin")).await;
    assert_oauth_error(status, &body, 400, "invalid_scope");
    let (status, body) = app.token_json(&with("bad\"scope")).await;
    assert_oauth_error(status, &body, 400, "invalid_scope");
}

async fn no_refresh_token_when_the_client_may_not_refresh(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    crate::helpers::public_client(app.admin(), "kiosk", &["password"], &[]).await;
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "kiosk")
        .await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("scope").is_none(), "an empty scope is omitted");
}

async fn missing_parameters_are_invalid_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    for form in [
        vec![
            ("grant_type", "password"),
            ("password", PASSWORD),
            ("client_id", "web"),
        ],
        vec![
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("client_id", "web"),
        ],
        vec![
            ("username", "alice@example.com"),
            ("password", PASSWORD),
            ("client_id", "web"),
        ],
        vec![("grant_type", "refresh_token"), ("client_id", "web")],
    ] {
        let (status, body) = app.token_json(&form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{form:?}"
        );
    }
    let (status, body) = app
        .token_json(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "no client at all"
    );
}

async fn public_client_presenting_a_secret_is_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let (status, body) = app
        .token_json(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", PASSWORD),
            ("client_id", "web"),
            ("client_secret", "guess"),
        ])
        .await;
    assert_oauth_error(status, &body, 401, "invalid_client");
}
