use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use latchkey::domain::{ClientKind, ClientTokenSettings};
use latchkey::services::NewClientInput;

use crate::helpers::{
    assert_oauth_error, jwt_parts, spawn_app, spawn_app_with, str_of, Backend, TestApp, PASSWORD,
};
use crate::scenarios;

scenarios!(
    default_audience_comes_from_configuration,
    client_default_audience_is_used_when_none_is_requested,
    resource_or_audience_must_be_one_the_client_may_request,
    a_token_for_one_api_is_rejected_by_another,
    a_refresh_keeps_the_audience_granted_at_sign_in,
);

async fn client_with_audiences(app: &TestApp) -> String {
    app.admin()
        .create_client(NewClientInput {
            client_id: Some("reports".into()),
            name: "reports".into(),
            kind: ClientKind::Confidential,
            grant_types: vec!["client_credentials".into()],
            scopes: vec![],
            redirect_uris: vec![],
            audiences: vec![
                "https://orders.example.com".into(),
                "https://billing.example.com".into(),
            ],
            default_audience: Some("https://orders.example.com".into()),
            token_settings: ClientTokenSettings::default(),
        })
        .await
        .unwrap()
        .client_secret
        .unwrap()
}

async fn aud_of(app: &TestApp, extra: &[(&str, &str)], secret: &str) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", "reports"),
        ("client_secret", secret),
    ];
    form.extend_from_slice(extra);
    app.token_json(&form).await
}

async fn default_audience_comes_from_configuration(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("LATCHKEY_DEFAULT_AUDIENCE", "https://api.example.com")],
    )
    .await;
    let f = app.fixture().await;
    let (_, body) = app
        .client_credentials(&f.billing_id, &f.billing_secret)
        .await;
    assert_eq!(
        jwt_parts(str_of(&body, "access_token")).1["aud"],
        "https://api.example.com"
    );
}

async fn client_default_audience_is_used_when_none_is_requested(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = client_with_audiences(&app).await;
    let (_, body) = aud_of(&app, &[], &secret).await;
    assert_eq!(
        jwt_parts(str_of(&body, "access_token")).1["aud"],
        "https://orders.example.com"
    );
}

async fn resource_or_audience_must_be_one_the_client_may_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = client_with_audiences(&app).await;
    let (status, body) = aud_of(
        &app,
        &[("resource", "https://billing.example.com")],
        &secret,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        jwt_parts(str_of(&body, "access_token")).1["aud"],
        "https://billing.example.com"
    );
    let (status, body) = aud_of(
        &app,
        &[("audience", "https://billing.example.com")],
        &secret,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for bad in [
        vec![("resource", "https://payroll.example.com")],
        vec![("resource", "not-a-uri")],
        vec![
            ("resource", "https://orders.example.com"),
            ("audience", "https://billing.example.com"),
        ],
    ] {
        let (status, body) = aud_of(&app, &bad, &secret).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_target")),
            "{bad:?}"
        );
    }
}

async fn a_token_for_one_api_is_rejected_by_another(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = client_with_audiences(&app).await;
    let (_, body) = aud_of(&app, &[("resource", "https://orders.example.com")], &secret).await;
    let token = str_of(&body, "access_token");
    let jwks: jsonwebtoken::jwk::JwkSet = app.get_json("/.well-known/jwks.json").await;
    let kid = decode_header(token).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let validation = |aud: &str| {
        let mut v = Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_audience(&[aud]);
        v.set_issuer(&[app.settings.issuer()]);
        v
    };
    assert!(
        decode::<serde_json::Value>(token, &key, &validation("https://orders.example.com")).is_ok()
    );
    assert!(
        decode::<serde_json::Value>(token, &key, &validation("https://billing.example.com"))
            .is_err()
    );
}

async fn refresh_as_spa(
    app: &TestApp,
    token: &str,
    extra: Option<(&str, String)>,
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", "spa"),
    ];
    if let Some((k, v)) = &extra {
        form.push((k, v.as_str()));
    }
    app.token_json(&form).await
}

/// RFC 8707 §2.2: a refresh-token family is bound to the audience granted at sign-in. A refresh
/// may name that audience again, but not switch to another one the client could request at
/// sign-in, nor to the issuer (whose tokens work on Latchkey's own API).
async fn a_refresh_keeps_the_audience_granted_at_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    app.admin()
        .create_client(NewClientInput {
            client_id: Some("spa".into()),
            name: "spa".into(),
            kind: ClientKind::Public,
            grant_types: vec!["password".into(), "refresh_token".into()],
            scopes: vec![],
            redirect_uris: vec![],
            audiences: vec!["https://a.example".into(), "https://b.example".into()],
            default_audience: None,
            token_settings: ClientTokenSettings::default(),
        })
        .await
        .unwrap();
    let (status, body) = app
        .token_json(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", PASSWORD),
            ("client_id", "spa"),
            ("resource", "https://a.example"),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_parts(str_of(&body, "access_token")).1["aud"],
        "https://a.example"
    );
    let refresh_token = str_of(&body, "refresh_token").to_owned();
    let issuer = app.settings.issuer().to_owned();
    for wanted in [
        ("resource", "https://b.example".to_owned()),
        ("audience", "https://b.example".to_owned()),
        ("resource", issuer.clone()),
        ("audience", issuer.clone()),
    ] {
        let (status, body) = refresh_as_spa(&app, &refresh_token, Some(wanted.clone())).await;
        assert_oauth_error(status, &body, 400, "invalid_target");
        assert!(body.get("access_token").is_none(), "{wanted:?}: {body}");
    }
    // The refused requests left the refresh token valid and its family unrevoked.
    let (status, body) = refresh_as_spa(&app, &refresh_token, None).await;
    assert_eq!(status, 200, "{body}");
    let access = str_of(&body, "access_token");
    assert_eq!(jwt_parts(access).1["aud"], "https://a.example");
    let (status, _) = app
        .send_bearer(reqwest::Method::GET, "/api/v1/me", access, None)
        .await;
    assert_eq!(
        status, 401,
        "a token for a.example does not work on Latchkey's own API"
    );
    // Naming the family's own audience again is fine.
    let (status, body) = refresh_as_spa(
        &app,
        str_of(&body, "refresh_token"),
        Some(("resource", "https://a.example".to_owned())),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_parts(str_of(&body, "access_token")).1["aud"],
        "https://a.example"
    );
}
