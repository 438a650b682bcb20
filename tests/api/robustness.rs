use crate::helpers::{assert_oauth_error, spawn_app, Backend, PASSWORD};
use crate::scenarios;

scenarios!(
    malformed_bodies_get_a_clear_400,
    oversized_bodies_get_413_and_the_server_stays_up,
    unsupported_content_type_gets_415,
    repeated_parameters_are_rejected,
    unknown_paths_and_methods_answer_in_the_error_shape,
    cors_preflight_is_answered_for_configured_origins_only,
    every_route_answers_other_methods_with_405_and_allow,
    options_gets_a_regular_answer_on_every_route,
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

/// Every route and the methods it serves, as registered in `src/http/mod.rs` (and
/// `src/http/api/admin.rs`). A new route belongs here too.
const ROUTES: &[(&str, &[&str])] = &[
    ("/oauth2/token", &["POST"]),
    ("/oauth2/revoke", &["POST"]),
    ("/oauth2/introspect", &["POST"]),
    ("/oauth2/revocations", &["GET"]),
    ("/api/v1/logout", &["POST"]),
    ("/api/v1/logout-all", &["POST"]),
    ("/api/v1/email/verify/resend", &["POST"]),
    ("/api/v1/password/reset/confirm", &["POST"]),
    ("/api/v1/password/change", &["POST"]),
    ("/api/v1/password/required-change", &["POST"]),
    ("/api/v1/magic-link", &["POST"]),
    ("/api/v1/signup", &["POST"]),
    ("/api/v1/signup/invitation", &["GET"]),
    ("/api/v1/email/verify", &["GET", "POST"]),
    ("/api/v1/password/reset", &["GET", "POST"]),
    ("/api/v1/me", &["GET", "PATCH", "DELETE"]),
    ("/.well-known/openid-configuration", &["GET"]),
    ("/.well-known/oauth-authorization-server", &["GET"]),
    ("/.well-known/jwks.json", &["GET"]),
    ("/healthz", &["GET"]),
    ("/readyz", &["GET"]),
    ("/admin/v1/keys", &["GET"]),
    ("/admin/v1/keys/rotate", &["POST"]),
    ("/admin/v1/keys/import", &["POST"]),
    ("/admin/v1/keys/some-kid/retire", &["POST"]),
    ("/admin/v1/keys/some-kid", &["DELETE"]),
];

const ADMIN_TOKEN: &str = "robustness-admin-token-0123456789-abcdefgh";

/// The methods of an `Allow` header, sorted.
fn allowed(r: &reqwest::Response) -> Vec<String> {
    let value = r
        .headers()
        .get("allow")
        .unwrap_or_else(|| panic!("{} {}: no Allow header", r.status(), r.url()))
        .to_str()
        .unwrap();
    let mut methods: Vec<String> = value.split(',').map(|m| m.trim().to_owned()).collect();
    methods.sort();
    methods
}

/// What a route's `Allow` lists: the methods it serves, plus `OPTIONS`, which every route
/// answers.
fn expected_allow(served: &[&str]) -> Vec<String> {
    let mut methods: Vec<String> = served.iter().map(|m| m.to_string()).collect();
    methods.push("OPTIONS".into());
    methods.sort();
    methods
}

/// RFC 9110 §15.5.6: a 405 carries `Allow` with the methods the resource serves; the body
/// is the JSON error shape.
async fn every_route_answers_other_methods_with_405_and_allow(backend: Backend) {
    let app =
        crate::helpers::spawn_app_with(backend, &[("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    let candidates = ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "HEAD"];
    for (path, served) in ROUTES {
        for method in candidates.iter().filter(|m| !served.contains(m)) {
            let r = app
                .http
                .request(method.parse().unwrap(), app.url(path))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
            assert_eq!(allowed(&r), expected_allow(served), "{method} {path}");
            if *method == "HEAD" {
                continue;
            }
            assert_eq!(
                r.headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned()),
                Some("application/json".to_owned()),
                "{method} {path}"
            );
            let json: serde_json::Value = r.json().await.unwrap();
            assert_eq!(json["error"], "method_not_allowed", "{method} {path}");
        }
    }
}

/// `OPTIONS` that is not a CORS preflight (no `Origin`, or no
/// `Access-Control-Request-Method`) is answered on every route with `204` and `Allow`; a
/// preflight the CORS policy refuses gets the JSON error shape.
async fn options_gets_a_regular_answer_on_every_route(backend: Backend) {
    let app = crate::helpers::spawn_app_with(
        backend,
        &[
            ("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN),
            ("LATCHKEY_CORS_ALLOWED_ORIGINS", "https://spa.example.com"),
        ],
    )
    .await;
    for (path, served) in ROUTES {
        for origin in [None, Some("https://spa.example.com")] {
            let mut request = app
                .http
                .request(reqwest::Method::OPTIONS, app.url(path))
                .bearer_auth(ADMIN_TOKEN);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 204, "OPTIONS {path} (origin {origin:?})");
            assert_eq!(allowed(&r), expected_allow(served), "OPTIONS {path}");
            assert!(r.headers().get("content-type").is_none(), "OPTIONS {path}");
            assert!(r.bytes().await.unwrap().is_empty(), "OPTIONS {path}");
        }
    }
    // A preflight without Origin, or from an origin that is not allowed: 400 in the JSON
    // error shape, not the CORS middleware's bare text.
    for origin in [None, Some("https://evil.example.com")] {
        let mut request = app
            .http
            .request(reqwest::Method::OPTIONS, app.url("/oauth2/token"))
            .header("access-control-request-method", "POST");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 400, "preflight from {origin:?}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert!(r.headers().get("access-control-allow-origin").is_none());
        let json: serde_json::Value = r.json().await.unwrap();
        assert_oauth_error(400, &json, 400, "invalid_request");
    }
}
