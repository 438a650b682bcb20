//! RFC 7662 introspection of access and refresh tokens.

use latchkey::clock::Clock;
use serde_json::json;

use crate::helpers::{
    assert_oauth_error, confidential_client, fresh_database, jwt_parts, resource_server, spawn_app,
    spawn_app_on, str_of, Backend,
};
use crate::scenarios;

scenarios!(
    an_active_access_token_introspects_with_its_claims,
    refresh_tokens_introspect_while_they_are_current,
    expired_revoked_watermarked_malformed_foreign_and_tampered_tokens_are_inactive,
    introspection_needs_a_confidential_client_or_a_bearer_with_the_introspection_scope,
);

async fn an_active_access_token_introspects_with_its_claims(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let rs = resource_server(&app).await;
    let tokens = app.login("alice@example.com").await;
    let access = str_of(&tokens, "access_token");
    let r = app
        .post_basic(
            "/oauth2/introspect",
            "rs",
            &rs,
            &[("token", access), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    let (_, claims) = jwt_parts(access);
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    for k in [
        "sub",
        "client_id",
        "scope",
        "aud",
        "iss",
        "exp",
        "iat",
        "nbf",
        "jti",
        "sid",
    ] {
        assert_eq!(body[k], claims[k], "{k}");
    }
    assert_eq!(body["sub"], f.user_id.as_str());
    assert_eq!(body["roles"], json!(["auditor", "manager"]));
    assert_eq!(
        body["permissions"],
        json!(["audit.read", "orders.approve", "orders.view"])
    );
    // client_secret_post works as well as Basic.
    let r = app
        .http
        .post(app.url("/oauth2/introspect"))
        .form(&[
            ("token", access),
            ("client_id", "rs"),
            ("client_secret", &rs),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["active"], true);
}

async fn refresh_tokens_introspect_while_they_are_current(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let rs = resource_server(&app).await;
    let first = app.login("alice@example.com").await;
    let refresh = str_of(&first, "refresh_token");
    let (status, body) = app.introspect_as("rs", &rs, refresh).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], "web");
    assert_eq!(body["sub"], f.user_id.as_str());
    assert_eq!(body["scope"], "orders.read orders.write");
    let (_, access_claims) = jwt_parts(str_of(&first, "access_token"));
    assert_eq!(body["sid"], access_claims["sid"]);
    assert!(body["exp"].as_i64().unwrap() > app.clock.now());
    let (_, second) = app.refresh(refresh).await;
    assert!(!app.is_active(&rs, refresh).await, "rotated away");
    assert!(app.is_active(&rs, str_of(&second, "refresh_token")).await);
}

async fn expired_revoked_watermarked_malformed_foreign_and_tampered_tokens_are_inactive(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let inactive = json!({"active": false});

    // Malformed.
    for token in ["abc", "a.b.c", "lkrt_x"] {
        let (status, body) = app.introspect_as("rs", &rs, token).await;
        assert_eq!((status, &body), (200, &inactive), "{token}");
    }
    // Tampered: claims changed under the original signature.
    let tokens = app.login("alice@example.com").await;
    let access = str_of(&tokens, "access_token");
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    let (_, mut claims) = jwt_parts(access);
    claims["scope"] = json!("admin");
    parts[1] = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
    };
    let (_, body) = app.introspect_as("rs", &rs, &parts.join(".")).await;
    assert_eq!(body, inactive, "tampered");
    // Foreign: a valid token of another Latchkey (other keys, other issuer).
    let other = spawn_app_on(fresh_database(backend).await, &[]).await;
    other.fixture().await;
    let foreign = other.login("alice@example.com").await;
    for t in ["access_token", "refresh_token"] {
        let (_, body) = app.introspect_as("rs", &rs, str_of(&foreign, t)).await;
        assert_eq!(body, inactive, "foreign {t}");
    }
    // Revoked by jti.
    assert!(app.is_active(&rs, access).await);
    app.revoke_public(access).await;
    let (_, body) = app.introspect_as("rs", &rs, access).await;
    assert_eq!(body, inactive, "revoked");
    // Watermarked: log out everywhere with another session's token.
    let a = app.login("alice@example.com").await;
    let b = app.login("alice@example.com").await;
    let r = app
        .post_bearer("/api/v1/logout-all", str_of(&b, "access_token"))
        .await;
    assert_eq!(r.status(), 204);
    for t in ["access_token", "refresh_token"] {
        let (_, body) = app.introspect_as("rs", &rs, str_of(&a, t)).await;
        assert_eq!(body, inactive, "watermarked {t}");
    }
    // Expired.
    app.clock.advance(1);
    let fresh = app.login("alice@example.com").await;
    assert!(app.is_active(&rs, str_of(&fresh, "access_token")).await);
    app.clock.advance(600);
    let (_, body) = app
        .introspect_as("rs", &rs, str_of(&fresh, "access_token"))
        .await;
    assert_eq!(body, inactive, "expired");
}

async fn introspection_needs_a_confidential_client_or_a_bearer_with_the_introspection_scope(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let rs = resource_server(&app).await;
    let tokens = app.login("alice@example.com").await;
    let access = str_of(&tokens, "access_token");

    // A public client cannot authenticate, so it cannot introspect.
    let r = app
        .http
        .post(app.url("/oauth2/introspect"))
        .form(&[("token", access), ("client_id", "web")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // No authentication at all.
    let r = app
        .http
        .post(app.url("/oauth2/introspect"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_oauth_error(status, &body, 401, "invalid_client");
    // Wrong secret.
    let (status, body) = app.introspect_as("rs", "not-the-secret", access).await;
    assert_oauth_error(status, &body, 401, "invalid_client");
    // A confidential client without the introspection scope is not a resource server.
    let (status, body) = app
        .introspect_as(&f.billing_id, &f.billing_secret, access)
        .await;
    assert_oauth_error(status, &body, 403, "unauthorized_client");

    // A bearer token with the introspection scope.
    let (_, rs_token) = app
        .token_json(&[
            ("grant_type", "client_credentials"),
            ("client_id", "rs"),
            ("client_secret", &rs),
            ("scope", "latchkey.introspect"),
        ])
        .await;
    let introspect_bearer = |bearer: String| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(app.url("/oauth2/introspect"))
                .bearer_auth(bearer)
                .form(&[("token", access)])
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let challenge = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            (
                status,
                challenge,
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let rs_bearer = str_of(&rs_token, "access_token").to_owned();
    let (status, _, body) = introspect_bearer(rs_bearer.clone()).await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    // A malformed bearer is an RFC 6750 invalid_token, not a client error.
    for auth in ["Bearer", "Bearer a b", "bearer  "] {
        let r = app
            .http
            .post(app.url("/oauth2/introspect"))
            .header("authorization", auth)
            .form(&[("token", access)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{auth}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
    // A bearer token without the scope.
    let (_, billing_token) = app
        .client_credentials(&f.billing_id, &f.billing_secret)
        .await;
    let (status, challenge, body) =
        introspect_bearer(str_of(&billing_token, "access_token").to_owned()).await;
    assert_oauth_error(status, &body, 403, "insufficient_scope");
    assert!(challenge.unwrap().contains("insufficient_scope"));
    // A user's token, even one with a broad scope, is not a resource server's.
    let (status, _, body) = introspect_bearer(access.to_owned()).await;
    assert_oauth_error(status, &body, 403, "insufficient_scope");
    // A revoked bearer token.
    let r = app
        .post_basic("/oauth2/revoke", "rs", &rs, &[("token", &rs_bearer)])
        .await;
    assert_eq!(r.status(), 200);
    let (status, challenge, body) = introspect_bearer(rs_bearer).await;
    assert_oauth_error(status, &body, 401, "invalid_token");
    assert!(challenge.unwrap().starts_with("Bearer"));
    // A client not allowed the scope cannot get such a token in the first place.
    confidential_client(app.admin(), "plain", &["client_credentials"], &["x"]).await;
    let (status, body) = app
        .token_json(&[
            ("grant_type", "client_credentials"),
            ("client_id", "plain"),
            ("client_secret", "irrelevant"),
            ("scope", "latchkey.introspect"),
        ])
        .await;
    assert_eq!(status, 401, "{body}");
}
