//! The key endpoints of the admin API: off without a token, guarded by it, and managing keys.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use latchkey::domain::SigningAlg;
use serde_json::{json, Value};

use super::{
    issue, kid_of, long_lived_client, pkcs8_pem, published_kids, step, CachingResourceServer,
    ADMIN_TOKEN, QUIET,
};
use crate::helpers::{spawn_app_with, str_of, Backend, TestApp};

async fn admin_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[QUIET, ("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)]).await
}

async fn admin_call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(super) async fn the_admin_api_is_disabled_without_a_token(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    for (method, path) in [
        (reqwest::Method::GET, "/admin/v1/keys"),
        (reqwest::Method::POST, "/admin/v1/keys/rotate"),
        (reqwest::Method::DELETE, "/admin/v1/keys/abc"),
        (reqwest::Method::PUT, "/admin/v1/keys"),
        (reqwest::Method::GET, "/admin/v1/keys/import"),
    ] {
        let r = app
            .http
            .request(method, app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
    }
}

pub(super) async fn the_admin_api_requires_the_admin_token(backend: Backend) {
    let app = admin_app(backend).await;
    let wrong = format!("{ADMIN_TOKEN}x");
    let attempts: Vec<Option<String>> = vec![
        None,
        Some(format!("Bearer {wrong}")),
        Some(format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1])),
        Some(format!(
            "Basic {}",
            STANDARD.encode(format!("admin:{ADMIN_TOKEN}"))
        )),
        Some("Bearer".into()),
    ];
    for auth in attempts {
        let mut req = app.http.get(app.url("/admin/v1/keys"));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        assert!(body["error_description"].is_string());
    }
    let r = app
        .http
        .post(app.url("/admin/v1/keys/rotate"))
        .header("authorization", format!("Bearer {wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        app.services.keys.list().await.unwrap().len(),
        2,
        "nothing changed: the ES256 (access tokens) and RS256 (ID tokens) keys of the start"
    );
    let (status, body) = admin_call(&app, reqwest::Method::GET, "/admin/v1/keys", None).await;
    assert_eq!(status, 200, "{body}");
    let r = app
        .http
        .get(app.url("/admin/v1/keys"))
        .header("authorization", format!("bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the scheme is case-insensitive");
}

pub(super) async fn the_admin_api_manages_keys(backend: Backend) {
    use reqwest::Method;
    let app = admin_app(backend).await;
    let secret = long_lived_client(&app).await;
    let (status, body) = admin_call(&app, Method::GET, "/admin/v1/keys", None).await;
    assert_eq!(status, 200);
    let access_key = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["signs_access_tokens"] == true)
        .unwrap();
    let first = str_of(access_key, "kid").to_owned();
    assert_eq!(access_key["state"], "active");
    assert_eq!(kid_of(&issue(&app, &secret).await), first);

    // Rotate: pending by default, published at once.
    let (status, pending) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/rotate",
        Some(json!({"alg": "ES256"})),
    )
    .await;
    assert_eq!(status, 201, "{pending}");
    assert_eq!(
        (pending["state"].as_str(), pending["alg"].as_str()),
        (Some("pending"), Some("ES256"))
    );
    assert_eq!(pending["rotated"].as_array().map(Vec::len), Some(1));
    assert!(pending["activate_at"].is_string());
    let pending_kid = str_of(&pending, "kid").to_owned();
    assert!(published_kids(&app).await.contains(&pending_kid));
    let (status, body) = admin_call(&app, Method::POST, "/admin/v1/keys/rotate", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert_eq!(
        app.services.keys.list().await.unwrap().len(),
        3,
        "rotating every algorithm is refused as a whole while one has a pending key"
    );
    let (status, body) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/rotate",
        Some(json!({"alg": "HS256"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, _) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/rotate",
        Some(json!({"algorithm": "ES256"})),
    )
    .await;
    assert_eq!(status, 400, "unknown members are refused");

    // Withdraw the pending key; import one instead.
    let (status, body) = admin_call(
        &app,
        Method::POST,
        &format!("/admin/v1/keys/{pending_kid}/retire"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("retired")),
        "{body}"
    );
    let (pem, expected_alg) = (pkcs8_pem(SigningAlg::ES256), "ES256");
    let (status, imported) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/import",
        Some(json!({"pem": pem})),
    )
    .await;
    assert_eq!(status, 201, "{imported}");
    assert_eq!(
        (imported["state"].as_str(), imported["alg"].as_str()),
        (Some("pending"), Some(expected_alg))
    );
    let imported_kid = str_of(&imported, "kid").to_owned();
    assert!(published_kids(&app).await.contains(&imported_kid));
    assert_eq!(
        kid_of(&issue(&app, &secret).await),
        first,
        "not signing before activation"
    );
    let (status, body) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/import",
        Some(json!({"pem": pem, "now": true})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "the same key twice: {body}"
    );
    let (status, body) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/import",
        Some(json!({"pem": "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, _) = admin_call(&app, Method::POST, "/admin/v1/keys/import", None).await;
    assert_eq!(status, 400);

    // After the publication delay the imported key signs, and tokens verify against the JWKS.
    app.clock
        .advance(app.settings.keys.publish_ahead.as_secs() as i64);
    assert_eq!(
        step(&app).await.promoted,
        std::slice::from_ref(&imported_kid)
    );
    let token = issue(&app, &secret).await;
    assert_eq!(kid_of(&token), imported_kid);
    let mut rs = CachingResourceServer::new(&app).await;
    rs.verify(&app, &token).await.unwrap();

    // The active key is retired only with a successor.
    let (status, body) = admin_call(
        &app,
        Method::POST,
        &format!("/admin/v1/keys/{imported_kid}/retire"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, urgent) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/rotate",
        Some(json!({"alg": "ES256", "now": true})),
    )
    .await;
    assert_eq!(
        (status, urgent["state"].as_str()),
        (201, Some("active")),
        "{urgent}"
    );
    let urgent_kid = str_of(&urgent, "kid").to_owned();
    assert_eq!(kid_of(&issue(&app, &secret).await), urgent_kid);

    // Remove: the active key only with force; unknown kids are 404.
    let (status, body) = admin_call(
        &app,
        Method::DELETE,
        &format!("/admin/v1/keys/{urgent_kid}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = admin_call(
        &app,
        Method::DELETE,
        &format!("/admin/v1/keys/{first}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("removed")),
        "{body}"
    );
    assert!(!published_kids(&app).await.contains(&first));
    let (status, body) = admin_call(
        &app,
        Method::DELETE,
        &format!("/admin/v1/keys/{first}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, _) = admin_call(
        &app,
        Method::DELETE,
        "/admin/v1/keys/nope?force=maybe",
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = admin_call(&app, Method::POST, "/admin/v1/keys/nope/retire", None).await;
    assert_eq!(status, 404);
    let (status, body) = admin_call(&app, Method::PUT, "/admin/v1/keys", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (_, body) = admin_call(&app, Method::GET, "/admin/v1/keys", None).await;
    let states: Vec<(&str, &str)> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert!(
        states.contains(&(urgent_kid.as_str(), "active")),
        "{states:?}"
    );
    assert!(
        states.contains(&(imported_kid.as_str(), "retired")),
        "{states:?}"
    );
}
