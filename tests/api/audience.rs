use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use latchkey::domain::{ClientKind, ClientTokenSettings};
use latchkey::services::NewClientInput;

use crate::helpers::{jwt_parts, spawn_app, spawn_app_with, str_of, Backend, TestApp};
use crate::scenarios;

scenarios!(
    default_audience_comes_from_configuration,
    client_default_audience_is_used_when_none_is_requested,
    resource_or_audience_must_be_one_the_client_may_request,
    a_token_for_one_api_is_rejected_by_another,
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
