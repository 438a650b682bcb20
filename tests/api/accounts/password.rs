//! Passwords: reset by mailed link, changing the password, and a forced change.

use reqwest::Method;
use serde_json::json;

use super::{user_view, NEW_PASSWORD};
use crate::helpers::*;

pub(super) async fn a_password_reset_sets_a_new_password_and_revokes_every_token(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let before = app.login("alice@example.com").await;
    let (status, body) = app
        .post_json(
            "/api/v1/password/reset",
            json!({"email": "alice@example.com"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let mail = smtp.wait_for("alice@example.com", MAIL_WAIT).await;
    let token = token_in(&mail, "/api/v1/password/reset");
    // The link opens a form for the new password.
    let page = app
        .http
        .get(app.url(&format!("/api/v1/password/reset?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("new_password"));
    // A password the policy refuses keeps the link usable.
    let (status, body) = app
        .post_json(
            "/api/v1/password/reset/confirm",
            json!({"token": token, "new_password": "password"}),
        )
        .await;
    assert_oauth_error(status, &body, 400, "invalid_password");
    let (status, body) = app
        .post_json(
            "/api/v1/password/reset/confirm",
            json!({"token": token, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // Every earlier token is dead; the old password too.
    let (status, _) = app.refresh(str_of(&before, "refresh_token")).await;
    assert_eq!(status, 400);
    assert!(!app.is_active(&rs, str_of(&before, "access_token")).await);
    let (status, _) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 400);
    // Tokens issued in the second of a "revoke everything" watermark are revoked with it
    // (whole-second `iat`): a login right after it is told to retry (README, Accounts).
    app.clock.advance(1);
    let (status, _) = app
        .password_grant("alice@example.com", NEW_PASSWORD, "web")
        .await;
    assert_eq!(status, 200);
    // Single use, and the owner is told.
    let (status, body) = app
        .post_json(
            "/api/v1/password/reset/confirm",
            json!({"token": token, "new_password": "yet another long passphrase"}),
        )
        .await;
    assert_oauth_error(status, &body, 400, "invalid_or_expired_token");
    let notice = smtp.wait_for("alice@example.com", MAIL_WAIT).await;
    assert!(
        notice.subject.to_lowercase().contains("password"),
        "{}",
        notice.subject
    );
    assert!(!app
        .wait_for_audit("password_reset_completed")
        .await
        .is_empty());
}

pub(super) async fn reset_requests_do_not_reveal_whether_an_account_exists(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    let known = app
        .post_json(
            "/api/v1/password/reset",
            json!({"email": "alice@example.com"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/v1/password/reset",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(known, unknown);
    smtp.wait_for("alice@example.com", MAIL_WAIT).await;
    // Once the background step for the unknown address ran, no mail went out for it.
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    loop {
        let events = app.wait_for_audit("password_reset_requested").await;
        if events.len() == 2 {
            assert!(events
                .iter()
                .any(|e| e.event.detail["account_found"] == json!(false)));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(smtp.count_to("nobody@example.com"), 0);
}

pub(super) async fn reset_links_expire_and_die_with_a_newer_link_or_a_password_change(
    backend: Backend,
) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    let request = || {
        app.post_json(
            "/api/v1/password/reset",
            json!({"email": "alice@example.com"}),
        )
    };
    let confirm = |token: String| {
        app.post_json(
            "/api/v1/password/reset/confirm",
            json!({"token": token, "new_password": NEW_PASSWORD}),
        )
    };
    assert_eq!(request().await.0, 202);
    let first = token_in(
        &smtp.wait_for("alice@example.com", MAIL_WAIT).await,
        "/api/v1/password/reset",
    );
    app.clock.advance(61);
    assert_eq!(request().await.0, 202);
    let second = token_in(
        &smtp.wait_for("alice@example.com", MAIL_WAIT).await,
        "/api/v1/password/reset",
    );
    let (status, body) = confirm(first).await;
    assert_oauth_error(status, &body, 400, "invalid_or_expired_token");
    // An hour later the newer one has expired too.
    app.clock.advance(3600);
    let (status, _) = confirm(second.clone()).await;
    assert_eq!(status, 400);
    // A tampered token is refused like an unknown one.
    let mut tampered = second.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, _) = confirm(tampered).await;
    assert_eq!(status, 400);
    // A password set by an operator kills a pending reset.
    assert_eq!(request().await.0, 202);
    let third = token_in(
        &smtp.wait_for("alice@example.com", MAIL_WAIT).await,
        "/api/v1/password/reset",
    );
    app.admin()
        .set_password(
            "alice@example.com",
            Some(secrecy::SecretString::from("an operator chose this one")),
        )
        .await
        .unwrap();
    let (status, _) = confirm(third).await;
    assert_eq!(status, 400);
}

pub(super) async fn changing_the_password_revokes_the_other_sessions(backend: Backend) {
    let (app, _smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    let mine = app.login("alice@example.com").await;
    let other = app.login("alice@example.com").await;
    let bearer = str_of(&mine, "access_token").to_owned();
    let change = |current: &str, new: &str, keep: bool| {
        app.send_bearer(
            Method::POST,
            "/api/v1/password/change",
            &bearer,
            Some(json!({"current_password": current, "new_password": new, "keep_current_session": keep})),
        )
    };
    let (status, body) = change(NEW_PASSWORD, "whatever it is long", true).await;
    assert_oauth_error(status, &body, 400, "invalid_credentials");
    let (status, body) = change(PASSWORD, "alice", true).await;
    assert_oauth_error(status, &body, 400, "invalid_password");
    let (status, body) = change(PASSWORD, NEW_PASSWORD, true).await;
    assert_eq!(status, 204, "{body}");
    // The caller's session lives on; the other one is gone.
    let (status, _) = app.refresh(str_of(&other, "refresh_token")).await;
    assert_eq!(status, 400);
    let (status, renewed) = app.refresh(str_of(&mine, "refresh_token")).await;
    assert_eq!(status, 200, "{renewed}");
    let (status, _) = app
        .send_bearer(Method::GET, "/api/v1/me", &bearer, None)
        .await;
    assert_eq!(status, 200);
    // Without keeping it, the caller's own token dies too.
    let (status, _) = app
        .send_bearer(
            Method::POST,
            "/api/v1/password/change",
            str_of(&renewed, "access_token"),
            Some(json!({"current_password": NEW_PASSWORD, "new_password": "the third passphrase here"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .send_bearer(
            Method::GET,
            "/api/v1/me",
            str_of(&renewed, "access_token"),
            None,
        )
        .await;
    assert_oauth_error(status, &body, 401, "invalid_token");
    // Tokens issued in the second of a "revoke everything" watermark are revoked with it
    // (whole-second `iat`): a login right after it is told to retry (README, Accounts).
    app.clock.advance(1);
    let (status, _) = app
        .password_grant("alice@example.com", "the third passphrase here", "web")
        .await;
    assert_eq!(status, 200);
}

pub(super) async fn a_forced_password_change_is_the_only_way_in(backend: Backend) {
    let (app, _smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    let session = app.login("alice@example.com").await;
    app.clock.advance(1);
    app.admin()
        .update_user(
            "alice@example.com",
            latchkey::services::UserUpdate {
                must_change_password: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Setting the flag ends the sessions too (often the answer to a suspected compromise).
    let (status, _) = app.refresh(str_of(&session, "refresh_token")).await;
    assert_eq!(status, 400);
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_oauth_error(status, &body, 400, "password_change_required");
    // Wrong credentials get the generic answer.
    let (status, body) = app
        .password_grant("alice@example.com", NEW_PASSWORD, "web")
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let required = |current: &str| {
        app.post_json(
            "/api/v1/password/required-change",
            json!({"email": "alice@example.com", "current_password": current, "new_password": NEW_PASSWORD}),
        )
    };
    let (status, body) = required("not the password at all").await;
    assert_oauth_error(status, &body, 400, "invalid_credentials");
    let (status, body) = required(PASSWORD).await;
    assert_eq!(status, 204, "{body}");
    assert!(
        !user_view(&app, "alice@example.com")
            .await
            .must_change_password
    );
    // Tokens issued in the second of a "revoke everything" watermark are revoked with it
    // (whole-second `iat`): a login right after it is told to retry (README, Accounts).
    app.clock.advance(1);
    let (status, _) = app
        .password_grant("alice@example.com", NEW_PASSWORD, "web")
        .await;
    assert_eq!(status, 200);
    // Nothing pending any more.
    let (status, body) = app
        .post_json(
            "/api/v1/password/required-change",
            json!({"email": "alice@example.com", "current_password": NEW_PASSWORD, "new_password": "one more long passphrase"}),
        )
        .await;
    assert_oauth_error(status, &body, 400, "invalid_request");
}
