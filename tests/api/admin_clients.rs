//! The client endpoints of the admin API: register clients for browser sign-in, read them,
//! change their settings with `PATCH`, refuse what the rules refuse, audit every write.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    create_user, resource_server, spawn_app_with, str_of, Backend, TestApp, PASSWORD,
};
use crate::scenarios;

scenarios!(
    databases:
    admin_api_registers_a_client_for_browser_sign_in,
    admin_api_patch_changes_client_settings,
    admin_api_refuses_bad_client_settings_and_unknown_clients,
    admin_api_client_paths_need_the_admin_token,
    admin_api_patch_leaves_issued_tokens_alone,
);

const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghijklmnop";

async fn admin_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)]).await
}

async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    (status, r.json().await.unwrap_or(Value::Null))
}

fn spa_body() -> Value {
    json!({
        "name": "spa",
        "kind": "public",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["http://127.0.0.1:5173/callback"],
        "post_logout_redirect_uris": ["http://127.0.0.1:5173/"],
        "allowed_origins": ["http://127.0.0.1:5173"],
        "first_party": true,
    })
}

async fn admin_api_registers_a_client_for_browser_sign_in(backend: Backend) {
    let app = admin_app(backend).await;
    let (status, spa) = call(&app, Method::POST, "/admin/v1/clients", Some(spa_body())).await;
    assert_eq!(status, 201, "{spa}");
    let id = str_of(&spa, "client_id").to_owned();
    assert_eq!(spa["kind"], "public");
    assert_eq!(spa["enabled"], true);
    assert_eq!(
        spa["grant_types"],
        json!(["refresh_token", "authorization_code"])
    );
    assert_eq!(
        spa["redirect_uris"],
        json!(["http://127.0.0.1:5173/callback"])
    );
    assert_eq!(
        spa["post_logout_redirect_uris"],
        json!(["http://127.0.0.1:5173/"])
    );
    assert_eq!(spa["allowed_origins"], json!(["http://127.0.0.1:5173"]));
    assert_eq!(spa["first_party"], true);
    assert_eq!(spa["backchannel_logout_uri"], Value::Null);
    assert_eq!(spa["id_token_signed_response_alg"], "RS256");
    assert_eq!(
        (&spa["refresh_grace_secs"], &spa["refresh_grace_uses"]),
        (&Value::Null, &Value::Null),
        "no grace window of its own: the server default"
    );
    assert!(spa.get("client_secret").is_none());

    let (status, web) = call(
        &app,
        Method::POST,
        "/admin/v1/clients",
        Some(json!({
            "client_id": "portal",
            "name": "Portal",
            "kind": "confidential",
            "grant_types": ["authorization_code", "refresh_token"],
            "scopes": ["openid", "profile"],
            "redirect_uris": ["https://portal.example.com/callback"],
            "backchannel_logout_uri": "https://portal.example.com/backchannel",
            "id_token_signed_response_alg": "ES256",
            "access_token_ttl": 300,
            "refresh_grace_secs": 20,
            "refresh_grace_uses": 2,
        })),
    )
    .await;
    assert_eq!(status, 201, "{web}");
    assert!(str_of(&web, "client_secret").len() >= 43);
    assert_eq!(
        (&web["refresh_grace_secs"], &web["refresh_grace_uses"]),
        (&json!(20), &json!(2))
    );
    assert_eq!(web["first_party"], false);
    assert_eq!(web["post_logout_redirect_uris"], json!([]));
    assert_eq!(
        web["backchannel_logout_uri"],
        "https://portal.example.com/backchannel"
    );
    assert_eq!(web["id_token_signed_response_alg"], "ES256");
    assert_eq!(web["access_token_ttl"], 300);

    let (status, shown) = call(&app, Method::GET, &format!("/admin/v1/clients/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(shown, spa);
    let (status, list) = call(&app, Method::GET, "/admin/v1/clients", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(c, "client_id"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&id.as_str()) && ids.contains(&"portal"));
    assert!(list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c.get("client_secret").is_none()));

    let (status, dup) = call(
        &app,
        Method::POST,
        "/admin/v1/clients",
        Some(json!({"client_id": "portal", "name": "again", "kind": "public", "grant_types": ["password"]})),
    )
    .await;
    assert_eq!(status, 409, "{dup}");
    assert_eq!(dup["error"], "conflict");

    // The hosted pages sign in (and bind their magic links) under `latchkey-account`: no
    // client may take that id, or it could redeem links asked for on the pages.
    let (status, reserved) = call(
        &app,
        Method::POST,
        "/admin/v1/clients",
        Some(json!({"client_id": "latchkey-account", "name": "x", "kind": "public", "grant_types": ["magic_link"]})),
    )
    .await;
    assert_eq!(status, 409, "{reserved}");
    assert_eq!(reserved["error"], "conflict");

    let events = app.wait_for_audit("admin_client_created").await;
    assert_eq!(events.len(), 2);
    let portal = events
        .iter()
        .find(|e| e.event.detail["client_id"] == "portal")
        .expect("the portal's creation is audited");
    assert_eq!(portal.event.detail["kind"], "confidential");
    assert!(portal.event.ip.is_some());
    assert!(
        !serde_json::to_string(&portal.event.detail)
            .unwrap()
            .contains(str_of(&web, "client_secret")),
        "the secret is never audited"
    );
}

async fn admin_api_patch_changes_client_settings(backend: Backend) {
    let app = admin_app(backend).await;
    let (status, spa) = call(&app, Method::POST, "/admin/v1/clients", Some(spa_body())).await;
    assert_eq!(status, 201);
    let path = format!("/admin/v1/clients/{}", str_of(&spa, "client_id"));
    let patch = |body: Value| {
        let app = &app;
        let path = path.clone();
        async move {
            let (status, v) = call(app, Method::PATCH, &path, Some(body)).await;
            assert_eq!(status, 200, "{v}");
            v
        }
    };

    let v = patch(json!({"name": "Single-page app"})).await;
    assert_eq!(v["name"], "Single-page app");
    assert_eq!(v["first_party"], true, "absent members stay");
    assert_eq!(v["redirect_uris"], spa["redirect_uris"]);

    let v = patch(json!({
        "redirect_uris": ["http://127.0.0.1:5173/cb2", "com.example.spa:/cb"],
        "post_logout_redirect_uris": ["http://127.0.0.1:5173/bye"],
        "allowed_origins": ["http://127.0.0.1:5173", "https://spa.example.com"],
        "first_party": false,
        "backchannel_logout_uri": "https://spa.example.com/bc",
        "id_token_signed_response_alg": "EdDSA",
        "grant_types": ["authorization_code"],
        "scopes": ["openid", "email"],
        "audiences": ["orders"],
        "default_audience": "orders",
        "access_token_ttl": 120,
        "refresh_idle_ttl": 3600,
        "refresh_absolute_ttl": 7200,
        "refresh_grace_secs": 30,
        "refresh_grace_uses": 4,
    }))
    .await;
    assert_eq!(
        v["redirect_uris"],
        json!(["http://127.0.0.1:5173/cb2", "com.example.spa:/cb"]),
        "a list replaces the whole list"
    );
    assert_eq!(
        v["post_logout_redirect_uris"],
        json!(["http://127.0.0.1:5173/bye"])
    );
    assert_eq!(
        v["allowed_origins"],
        json!(["http://127.0.0.1:5173", "https://spa.example.com"])
    );
    assert_eq!(v["first_party"], false);
    assert_eq!(v["backchannel_logout_uri"], "https://spa.example.com/bc");
    assert_eq!(v["id_token_signed_response_alg"], "EdDSA");
    assert_eq!(v["grant_types"], json!(["authorization_code"]));
    assert_eq!(v["audiences"], json!(["orders"]));
    assert_eq!(v["default_audience"], "orders");
    assert_eq!(v["access_token_ttl"], 120);
    assert_eq!(v["refresh_idle_ttl"], 3600);
    assert_eq!(v["refresh_absolute_ttl"], 7200);
    assert_eq!(
        (&v["refresh_grace_secs"], &v["refresh_grace_uses"]),
        (&json!(30), &json!(4))
    );
    assert_eq!(v["created_at"], spa["created_at"]);

    let v = patch(json!({
        "backchannel_logout_uri": null,
        "default_audience": null,
        "access_token_ttl": null,
        "refresh_grace_uses": null,
        "post_logout_redirect_uris": [],
    }))
    .await;
    assert_eq!(v["backchannel_logout_uri"], Value::Null, "null clears");
    assert_eq!(v["default_audience"], Value::Null);
    assert_eq!(v["access_token_ttl"], Value::Null);
    assert_eq!(v["refresh_idle_ttl"], 3600, "absent stays");
    assert_eq!(v["refresh_grace_secs"], 30);
    assert_eq!(
        v["refresh_grace_uses"],
        Value::Null,
        "back to the server default"
    );
    assert_eq!(v["post_logout_redirect_uris"], json!([]));

    let unchanged = patch(json!({})).await;
    assert_eq!(unchanged, v, "an empty patch changes nothing");

    let (status, shown) = call(&app, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(shown, v, "the change is stored");

    let events = app.wait_for_audit("admin_client_updated").await;
    assert_eq!(events.len(), 3, "one per patch that changed something");
    let fields: Vec<&Value> = events.iter().map(|e| &e.event.detail["fields"]).collect();
    assert!(fields.contains(&&json!(["name"])), "{fields:?}");
    assert!(fields.contains(&&json!([
        "default_audience",
        "access_token_ttl",
        "refresh_grace_uses",
        "post_logout_redirect_uris",
        "backchannel_logout_uri"
    ])));
}

async fn admin_api_refuses_bad_client_settings_and_unknown_clients(backend: Backend) {
    let app = admin_app(backend).await;
    let create = |body: Value| {
        let app = &app;
        async move { call(app, Method::POST, "/admin/v1/clients", Some(body)).await }
    };
    let base = |extra: Value| {
        let mut b =
            json!({"name": "x", "kind": "confidential", "grant_types": ["authorization_code"]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (extra, needle) in [
        (
            json!({"redirect_uris": ["com.example.app:/cb"]}),
            "private-use schemes are for public clients",
        ),
        (
            json!({"redirect_uris": ["http://app.example.com/cb"]}),
            "must be https",
        ),
        (
            json!({"redirect_uris": ["https://app.example.com/cb#x"]}),
            "fragment",
        ),
        (json!({}), "needs at least one redirect URI"),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "allowed_origins": ["https://a.example.com/"]}),
            "allowed_origins",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "id_token_signed_response_alg": "HS256"}),
            "id_token_signed_response_alg",
        ),
        (json!({"kind": "secret"}), "kind"),
        (
            json!({"name": "bad\u{0}name", "redirect_uris": ["https://a.example.com/cb"]}),
            "control characters",
        ),
        (json!({"grant_types": ["implicit"]}), "unknown grant type"),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "refresh_grace_secs": 301}),
            "refresh_grace_secs",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "refresh_grace_secs": -1}),
            "refresh_grace_secs",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "refresh_grace_uses": 0}),
            "refresh_grace_uses",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "refresh_grace_uses": 101}),
            "refresh_grace_uses",
        ),
    ] {
        let (status, body) = create(base(extra.clone())).await;
        assert_eq!(status, 400, "{extra}: {body}");
        assert_eq!(body["error"], "invalid_request");
        assert!(
            str_of(&body, "error_description").contains(needle),
            "{needle:?} not in {body}"
        );
    }
    for bad in [
        json!({"name": "x", "kind": "public", "grant_types": ["password"], "colour": "red"}),
        json!({"name": "x", "kind": "public"}),
        json!({"name": "x", "kind": "public", "grant_types": ["password"], "first_party": "yes"}),
    ] {
        let (status, body) = create(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request");
    }
    let (_, list) = call(&app, Method::GET, "/admin/v1/clients", None).await;
    assert_eq!(list["clients"], json!([]), "nothing was registered");

    let (status, web) = create(base(
        json!({"client_id": "web", "redirect_uris": ["https://web.example.com/cb"]}),
    ))
    .await;
    assert_eq!(status, 201, "{web}");
    for (body, needle) in [
        (
            json!({"redirect_uris": ["com.example.app:/cb"], "name": "changed"}),
            "private-use",
        ),
        (
            json!({"redirect_uris": []}),
            "needs at least one redirect URI",
        ),
        (json!({"name": null}), "null"),
        (json!({"redirect_uris": null}), "null"),
        (json!({"first_party": null}), "null"),
        (json!({"kind": "public"}), "kind"),
        (
            json!({"backchannel_logout_uri": "ftp://web.example.com/bc"}),
            "backchannel_logout_uri",
        ),
    ] {
        let (status, answer) = call(
            &app,
            Method::PATCH,
            "/admin/v1/clients/web",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid_request");
        assert!(
            str_of(&answer, "error_description").contains(needle),
            "{needle:?} not in {answer}"
        );
    }
    let r = app
        .http
        .patch(app.url("/admin/v1/clients/web"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a PATCH needs a body");
    for not_an_object in [json!([]), json!(["renamed"]), json!(null), json!("x")] {
        let (status, body) = call(
            &app,
            Method::PATCH,
            "/admin/v1/clients/web",
            Some(not_an_object.clone()),
        )
        .await;
        assert_eq!(status, 400, "{not_an_object}: {body}");
    }
    let (_, shown) = call(&app, Method::GET, "/admin/v1/clients/web", None).await;
    assert_eq!(shown["name"], "x", "refused changes change nothing");
    assert_eq!(
        shown["redirect_uris"],
        json!(["https://web.example.com/cb"])
    );
    assert_eq!(shown["updated_at"], web["updated_at"]);

    for path in [
        "/admin/v1/clients/nobody",
        "/admin/v1/clients/not%20an%20id",
    ] {
        let (status, body) = call(&app, Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"], "not_found");
        let (status, body) = call(&app, Method::PATCH, path, Some(json!({"name": "y"}))).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    let r = app
        .http
        .put(app.url("/admin/v1/clients/web"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(app.audit_is_empty("admin_client_updated").await);
}

async fn admin_api_client_paths_need_the_admin_token(backend: Backend) {
    let app = admin_app(backend).await;
    for (method, path) in [
        (Method::GET, "/admin/v1/clients"),
        (Method::POST, "/admin/v1/clients"),
        (Method::GET, "/admin/v1/clients/web"),
        (Method::PATCH, "/admin/v1/clients/web"),
    ] {
        let r = app
            .http
            .request(method.clone(), app.url(path))
            .json(&spa_body())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
    }
    let off = spawn_app_with(backend, &[]).await;
    for (method, path) in [
        (Method::GET, "/admin/v1/clients"),
        (Method::PATCH, "/admin/v1/clients/web"),
    ] {
        let r = off
            .http
            .request(method.clone(), off.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method} {path} without admin.token");
    }
}

/// Changing a client's settings does not revoke what it was issued.
async fn admin_api_patch_leaves_issued_tokens_alone(backend: Backend) {
    let app = admin_app(backend).await;
    let rs = resource_server(&app).await;
    create_user(app.admin(), "alice@example.com", &[]).await;
    let (status, _) = call(
        &app,
        Method::POST,
        "/admin/v1/clients",
        Some(json!({
            "client_id": "web",
            "name": "web",
            "kind": "public",
            "grant_types": ["password", "refresh_token", "authorization_code"],
            "redirect_uris": ["https://web.example.com/cb"],
        })),
    )
    .await;
    assert_eq!(status, 201);
    let (status, tokens) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 200, "{tokens}");
    let (status, _) = call(
        &app,
        Method::PATCH,
        "/admin/v1/clients/web",
        Some(json!({
            "redirect_uris": ["https://web.example.com/other"],
            "allowed_origins": [],
            "first_party": true,
            "name": "renamed",
        })),
    )
    .await;
    assert_eq!(status, 200);
    assert!(app.is_active(&rs, str_of(&tokens, "access_token")).await);
    let (status, refreshed) = app
        .refresh_as("web", str_of(&tokens, "refresh_token"))
        .await;
    assert_eq!(status, 200, "the refresh token still works: {refreshed}");
}

impl TestApp {
    /// Whether the audit trail holds no event `event` (admin writes are recorded before the
    /// answer).
    async fn audit_is_empty(&self, event: &str) -> bool {
        self.services
            .accounts
            .audit()
            .list(&latchkey::domain::AuditFilter {
                event: Some(event.into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    }
}
