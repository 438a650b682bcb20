//! The account itself: reading and updating the profile, deleting the account.

use reqwest::Method;
use serde_json::{json, Value};

use super::NEW_PASSWORD;
use crate::helpers::*;

pub(super) async fn users_read_and_update_their_own_profile(backend: Backend) {
    let (app, _smtp) =
        spawn_mail_app(backend, &[("LATCHKEY_PROFILE_ATTRIBUTES", "locale,theme")]).await;
    let f = app.fixture().await;
    let token = str_of(&app.login("alice@example.com").await, "access_token").to_owned();
    let (status, me) = app
        .send_bearer(Method::GET, "/api/v1/me", &token, None)
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["id"], f.user_id.as_str());
    let (status, me) = app
        .send_bearer(
            Method::PATCH,
            "/api/v1/me",
            &token,
            Some(json!({"display_name": "Alice A.", "attributes": {"locale": "fr-CH", "theme": "dark"}})),
        )
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["display_name"], "Alice A.");
    assert_eq!(
        me["attributes"],
        json!({"locale": "fr-CH", "theme": "dark"})
    );
    let (status, me) = app
        .send_bearer(
            Method::PATCH,
            "/api/v1/me",
            &token,
            Some(json!({"display_name": null, "attributes": {"theme": null}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["display_name"], Value::Null);
    assert_eq!(me["attributes"], json!({"locale": "fr-CH"}));
    for bad in [
        json!({"attributes": {"is_admin": true}}),
        json!({"display_name": "\u{7}bell"}),
        json!({"email": "evil@example.com"}),
    ] {
        let (status, body) = app
            .send_bearer(Method::PATCH, "/api/v1/me", &token, Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad} -> {body}");
    }
    // Only users' tokens, only with a token.
    let (_, cc) = app.client_credentials("billing", &f.billing_secret).await;
    let (status, body) = app
        .send_bearer(Method::GET, "/api/v1/me", str_of(&cc, "access_token"), None)
        .await;
    assert_oauth_error(status, &body, 403, "access_denied");
    let r = app.http.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

pub(super) async fn deleting_the_account_needs_the_password_and_removes_it(backend: Backend) {
    let (app, _smtp) = spawn_mail_app(backend, &[]).await;
    let f = app.fixture().await;
    let tokens = app.login("alice@example.com").await;
    let token = str_of(&tokens, "access_token");
    let (status, body) = app
        .send_bearer(
            Method::DELETE,
            "/api/v1/me",
            token,
            Some(json!({"password": NEW_PASSWORD})),
        )
        .await;
    assert_oauth_error(status, &body, 400, "invalid_credentials");
    let (status, body) = app
        .send_bearer(
            Method::DELETE,
            "/api/v1/me",
            token,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(app.admin().show_user("alice@example.com").await.is_err());
    let (status, _) = app.refresh(str_of(&tokens, "refresh_token")).await;
    assert_eq!(status, 400);
    let (status, _) = app
        .send_bearer(Method::GET, "/api/v1/me", token, None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 400);
    // The audit trail keeps what happened, not where from.
    let events = app
        .services
        .accounts
        .audit()
        .list(&latchkey::domain::AuditFilter {
            user_id: Some(f.user_id.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.event.event == "account_deleted"));
    assert!(events.iter().any(|e| e.event.event == "login_succeeded"));
    assert!(events
        .iter()
        .all(|e| e.event.ip.is_none() && e.event.user_agent.is_none()));
}
