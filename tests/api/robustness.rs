use crate::helpers::{assert_oauth_error, spawn_app, Backend, PASSWORD};
use crate::scenarios;

scenarios!(
    malformed_bodies_get_a_clear_400,
    oversized_bodies_get_413_and_the_server_stays_up,
    unsupported_content_type_gets_415,
    repeated_parameters_are_rejected,
    unknown_paths_and_methods_answer_in_the_error_shape,
    cors_preflight_is_answered_for_configured_origins_only,
);

async fn post_raw(
    app: &crate::helpers::TestApp,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let r = app
        .http
        .post(app.url("/oauth2/token"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

async fn malformed_bodies_get_a_clear_400(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{not json".to_vec()),
        ("application/json", b"[1,2,3]".to_vec()),
        ("application/json", br#"{"grant_type": 5}"#.to_vec()),
        (
            "application/json",
            br#"{"grant_type": "password", "username": ["a"]}"#.to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=password&username=%FF%FE&password=x&client_id=web".to_vec(),
        ),
        ("application/x-www-form-urlencoded", b"".to_vec()),
        ("application/json", vec![0xff, 0xfe, 0x00]),
    ];
    for (ct, body) in cases {
        let (status, json) = post_raw(&app, ct, body.clone()).await;
        assert_eq!(
            status,
            400,
            "{ct} {:?} -> {json}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(json["error"], "invalid_request");
        assert!(json["error_description"].is_string());
    }
    app.login("alice@example.com").await;
}

async fn oversized_bodies_get_413_and_the_server_stays_up(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let huge = format!(
        "grant_type=password&client_id=web&username=alice@example.com&password={}",
        "a".repeat(1 << 20)
    );
    let (status, json) =
        post_raw(&app, "application/x-www-form-urlencoded", huge.into_bytes()).await;
    assert_oauth_error(status, &json, 413, "invalid_request");
    let (status, _) = post_raw(
        &app,
        "application/json",
        format!("{{\"password\":\"{}\"}}", "b".repeat(20_000)).into_bytes(),
    )
    .await;
    assert_eq!(status, 413);
    // A long but admissible password is refused without hashing a megabyte.
    let (status, json) = app
        .token_json(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", &"p".repeat(10_000)),
            ("client_id", "web"),
        ])
        .await;
    assert_oauth_error(status, &json, 400, "invalid_grant");
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.login("alice@example.com").await;
}

async fn unsupported_content_type_gets_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, json) = post_raw(&app, "text/plain", b"grant_type=password".to_vec()).await;
    assert_oauth_error(status, &json, 415, "invalid_request");
}

async fn repeated_parameters_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let body = format!("grant_type=password&username=alice@example.com&password={PASSWORD}&client_id=web&client_id=web");
    let (status, json) =
        post_raw(&app, "application/x-www-form-urlencoded", body.into_bytes()).await;
    assert_oauth_error(status, &json, 400, "invalid_request");
    let body = format!(
        r#"{{"grant_type":"password","username":"alice@example.com","password":"{PASSWORD}","client_id":"web","client_id":"other"}}"#
    );
    let (status, json) = post_raw(&app, "application/json", body.into_bytes()).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("invalid_request")),
        "a repeated JSON member is refused too: {json}"
    );
    let (status, _) = post_raw(
        &app,
        "application/json",
        br#"{"grant_type":"password"} trailing"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
}

async fn unknown_paths_and_methods_answer_in_the_error_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.http.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["error"], "not_found");
    let r = app.http.get(app.url("/oauth2/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = app
        .http
        .post(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

async fn cors_preflight_is_answered_for_configured_origins_only(backend: Backend) {
    let app = crate::helpers::spawn_app_with(
        backend,
        &[("LATCHKEY_CORS_ALLOWED_ORIGINS", "https://spa.example.com")],
    )
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/oauth2/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://spa.example.com").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://spa.example.com"
    );
    let denied = preflight("https://evil.example.com").await.unwrap();
    assert!(denied
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
