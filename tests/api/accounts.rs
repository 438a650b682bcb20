//! Self-service accounts end to end: every flow through the HTTP API, with mail delivered
//! over SMTP to a real server on loopback and the links followed from the delivered mail.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp_server::SmtpServer;

const NEW_PASSWORD: &str = "a fresh and long passphrase 42";
const BOB: &str = "bob@example.com";

async fn signup(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    app.post_json(
        "/api/v1/signup",
        json!({"email": email, "password": password, "display_name": "Bob"}),
    )
    .await
}

/// Signs bob up and returns the token of his verification link.
async fn signed_up_bob(app: &TestApp, smtp: &SmtpServer) -> String {
    let (status, body) = signup(app, BOB, PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    let mail = smtp.wait_for(BOB, MAIL_WAIT).await;
    token_in(&mail, "/api/v1/email/verify")
}

async fn user_view(app: &TestApp, email: &str) -> latchkey::services::UserView {
    app.admin().show_user(email).await.unwrap()
}

async fn signup_sends_a_verification_link_that_verifies_the_address(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    let token = signed_up_bob(&app, &smtp).await;
    assert!(!user_view(&app, BOB).await.email_verified);
    // The link opens a page with a button (a link scanner fetching it uses nothing).
    let page = app
        .http
        .get(app.url(&format!("/api/v1/email/verify?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(!user_view(&app, BOB).await.email_verified);
    // Pressing the button posts the form, with the password chosen at sign-up (the click
    // alone proves only the mailbox: see hardening.rs).
    let done = app
        .http
        .post(app.url("/api/v1/email/verify"))
        .form(&[("token", token.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status().as_u16(), 200);
    assert!(done
        .text()
        .await
        .unwrap()
        .contains("bob@example.com is confirmed"));
    assert!(user_view(&app, BOB).await.email_verified);
    // Single use.
    let (status, body) = app
        .post_json("/api/v1/email/verify", json!({"token": token}))
        .await;
    assert_oauth_error(status, &body, 400, "invalid_or_expired_token");
    // The new account signs in (verification is optional by default).
    let (status, _) = app.password_grant(BOB, PASSWORD, "web").await;
    assert_eq!(status, 200);
}

async fn signing_up_with_an_existing_address_answers_the_same_and_tells_the_owner(
    backend: Backend,
) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    let new = signup(&app, BOB, PASSWORD).await;
    let existing = signup(&app, "Alice@Example.com", NEW_PASSWORD).await;
    assert_eq!(new, existing, "the same status and body");
    let warning = smtp.wait_for("alice@example.com", MAIL_WAIT).await;
    assert_eq!(warning.subject, "You already have a Latchkey account");
    assert!(!warning.text().contains("token="), "no link for a stranger");
    // Alice's account is untouched: her password still works, the stranger's does not.
    assert_eq!(app.login("alice@example.com").await["token_type"], "Bearer");
    let (status, _) = app
        .password_grant("alice@example.com", NEW_PASSWORD, "web")
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        app.wait_for_audit("signup_existing_email").await[0]
            .event
            .user_id
            .as_deref(),
        Some(user_view(&app, "alice@example.com").await.id.as_str())
    );
}

async fn mandatory_verification_keeps_unverified_users_from_tokens(backend: Backend) {
    let (app, smtp) =
        spawn_mail_app(backend, &[("LATCHKEY_EMAIL_VERIFICATION", "mandatory")]).await;
    app.fixture().await;
    let token = signed_up_bob(&app, &smtp).await;
    let (status, body) = app.password_grant(BOB, PASSWORD, "web").await;
    assert_oauth_error(status, &body, 400, "email_verification_required");
    // A wrong password still gets the generic answer: nothing is revealed without it.
    let (status, body) = app.password_grant(BOB, NEW_PASSWORD, "web").await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = app
        .post_json(
            "/api/v1/email/verify",
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"email": BOB, "email_verified": true}));
    let (status, _) = app.password_grant(BOB, PASSWORD, "web").await;
    assert_eq!(status, 200);
}

async fn verification_links_expire_and_a_resend_supersedes_them(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    let first = signed_up_bob(&app, &smtp).await;
    // Resend: a new link; the first stops working.
    let (status, body) = app
        .post_json("/api/v1/email/verify/resend", json!({"email": BOB}))
        .await;
    assert_eq!(status, 202, "{body}");
    let second = token_in(&smtp.wait_for(BOB, MAIL_WAIT).await, "/api/v1/email/verify");
    assert_ne!(first, second);
    let (status, body) = app
        .post_json("/api/v1/email/verify", json!({"token": first}))
        .await;
    assert_oauth_error(status, &body, 400, "invalid_or_expired_token");
    // A second resend within the cooldown is refused with Retry-After.
    let r = app
        .http
        .post(app.url("/api/v1/email/verify/resend"))
        .json(&json!({"email": BOB}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "too_many_requests"
    );
    // After 24 hours the link has expired.
    app.clock.advance(86_400);
    let (status, body) = app
        .post_json("/api/v1/email/verify", json!({"token": second}))
        .await;
    assert_oauth_error(status, &body, 400, "invalid_or_expired_token");
    let page = app
        .http
        .get(app.url(&format!("/api/v1/email/verify?token={second}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 400);
    assert!(page.text().await.unwrap().contains("cannot be used"));
    // An unknown address gets the same answer as a known one.
    let known = app
        .post_json("/api/v1/email/verify/resend", json!({"email": BOB}))
        .await;
    let unknown = app
        .post_json(
            "/api/v1/email/verify/resend",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(known, unknown);
    let fresh = token_in(&smtp.wait_for(BOB, MAIL_WAIT).await, "/api/v1/email/verify");
    let (status, _) = app
        .post_json(
            "/api/v1/email/verify",
            json!({"token": fresh, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(smtp.count_to("nobody@example.com"), 0);
}

async fn closed_and_invite_only_sign_up(backend: Backend) {
    let (closed, _smtp) = spawn_mail_app(backend, &[("LATCHKEY_SIGNUP", "closed")]).await;
    let (status, body) = signup(&closed, BOB, PASSWORD).await;
    assert_oauth_error(status, &body, 403, "signup_disabled");

    let (app, smtp) = spawn_mail_app(backend, &[("LATCHKEY_SIGNUP", "invite")]).await;
    app.fixture().await;
    let (status, body) = signup(&app, BOB, PASSWORD).await;
    assert_oauth_error(status, &body, 403, "invite_required");
    let invite = app
        .services
        .accounts
        .invite(BOB, &["manager".to_owned()])
        .await
        .unwrap();
    let mail = smtp.wait_for(BOB, MAIL_WAIT).await;
    let token = token_in(&mail, "/api/v1/signup/invitation");
    assert!(invite.link.ends_with(&token));
    // The invitation page, then sign-up without repeating the address.
    let page = app
        .http
        .get(app.url(&format!("/api/v1/signup/invitation?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let (status, body) = app
        .post_json(
            "/api/v1/signup",
            json!({"email": "mallory@example.com", "password": PASSWORD, "invite_token": token}),
        )
        .await;
    assert_oauth_error(status, &body, 400, "invalid_request");
    let (status, body) = app
        .post_json(
            "/api/v1/signup",
            json!({"password": PASSWORD, "invite_token": token}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let bob = user_view(&app, BOB).await;
    assert!(bob.email_verified, "the invitation proved the address");
    assert_eq!(bob.roles, ["manager"]);
    // Used once.
    let (status, body) = app
        .post_json(
            "/api/v1/signup",
            json!({"email": "carol@example.com", "password": PASSWORD, "invite_token": token}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

async fn sign_up_reports_every_broken_password_rule_and_bad_input(backend: Backend) {
    let (app, _smtp) = spawn_mail_app(backend, &[]).await;
    let (status, body) = signup(&app, BOB, "1234").await;
    assert_oauth_error(status, &body, 400, "invalid_password");
    let rules: Vec<&str> = body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"too_short") && rules.contains(&"entirely_numeric"),
        "{body}"
    );
    for bad in [
        json!({"email": "not-an-email", "password": PASSWORD}),
        json!({"email": BOB}),
        json!({"email": BOB, "password": PASSWORD, "is_admin": true}),
        json!({"email": BOB, "password": PASSWORD, "display_name": "x".repeat(300)}),
        json!({"email": BOB, "password": PASSWORD, "attributes": {"role": "admin"}}),
        json!({"email": format!("{}@example.com", "a".repeat(300)), "password": PASSWORD}),
        json!({"email": BOB, "password": 12345678901i64}),
    ] {
        let (status, body) = app.post_json("/api/v1/signup", bad.clone()).await;
        assert_eq!(status, 400, "{bad} -> {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let raw = |ct: &'static str, bytes: Vec<u8>| {
        app.http
            .post(app.url("/api/v1/signup"))
            .header("content-type", ct)
            .body(bytes)
            .send()
    };
    let r = raw(
        "application/json",
        b"{\"email\":\"bob@example.com\",\"password\":\"\xff\xfe\"}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = raw("text/plain", b"hello".to_vec()).await.unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let r = raw("application/json", vec![b' '; 20_000]).await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert!(
        app.admin().show_user(BOB).await.is_err(),
        "nothing was created"
    );
}

async fn a_password_reset_sets_a_new_password_and_revokes_every_token(backend: Backend) {
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

async fn reset_requests_do_not_reveal_whether_an_account_exists(backend: Backend) {
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

async fn reset_links_expire_and_die_with_a_newer_link_or_a_password_change(backend: Backend) {
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

async fn changing_the_password_revokes_the_other_sessions(backend: Backend) {
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

async fn a_forced_password_change_is_the_only_way_in(backend: Backend) {
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

async fn users_read_and_update_their_own_profile(backend: Backend) {
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

async fn deleting_the_account_needs_the_password_and_removes_it(backend: Backend) {
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

async fn magic_grant(app: &TestApp, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        (
            "grant_type",
            "urn:latchkey:params:oauth:grant-type:magic-link",
        ),
        ("client_id", "spa"),
    ];
    form.extend_from_slice(extra);
    app.token_json(&form).await
}

async fn magic_links_sign_in_by_link_or_code_once(backend: Backend) {
    let (app, smtp) = spawn_mail_app(
        backend,
        &[(
            "LATCHKEY_MAGIC_LINK_URL",
            "https://app.example/magic?token={token}",
        )],
    )
    .await;
    app.fixture().await;
    spa_client(&app).await;
    let request = || {
        app.post_json(
            "/api/v1/magic-link",
            json!({"email": "alice@example.com", "client_id": "spa"}),
        )
    };
    let (status, body) = request().await;
    assert_eq!(status, 202, "{body}");
    let mail = smtp.wait_for("alice@example.com", MAIL_WAIT).await;
    let token = token_in(&mail, "https://app.example/magic");
    let (status, tokens) = magic_grant(&app, &[("token", &token)]).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    let (_, claims) = jwt_parts(str_of(&tokens, "access_token"));
    assert_eq!(claims["client_id"], "spa");
    let (status, body) = magic_grant(&app, &[("token", &token)]).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // By code.
    app.clock.advance(61);
    request().await;
    let code = code_in(&smtp.wait_for("alice@example.com", MAIL_WAIT).await);
    // Alice's code is no code for another address.
    let (status, _) = magic_grant(&app, &[("email", BOB), ("code", &code)]).await;
    assert_eq!(status, 400);
    let (status, body) =
        magic_grant(&app, &[("email", "alice@example.com"), ("code", &code)]).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = magic_grant(&app, &[("email", "alice@example.com"), ("code", &code)]).await;
    assert_eq!(status, 400);
    // Five wrong codes kill the link, even for the right code afterwards.
    app.clock.advance(61);
    request().await;
    let code = code_in(&smtp.wait_for("alice@example.com", MAIL_WAIT).await);
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    for _ in 0..5 {
        let (status, _) =
            magic_grant(&app, &[("email", "alice@example.com"), ("code", wrong)]).await;
        assert_eq!(status, 400);
    }
    app.clock.advance(901); // past any back-off the failures started
    let (status, _) = magic_grant(&app, &[("email", "alice@example.com"), ("code", &code)]).await;
    assert_eq!(status, 400);
    // Expired after 15 minutes; and a link for one client does not work for another.
    request().await;
    let token = token_in(
        &smtp.wait_for("alice@example.com", MAIL_WAIT).await,
        "https://app.example/magic",
    );
    public_client(app.admin(), "other", &["magic_link"], &["orders.read"]).await;
    let other = app
        .token_json(&[
            (
                "grant_type",
                "urn:latchkey:params:oauth:grant-type:magic-link",
            ),
            ("client_id", "other"),
            ("token", &token),
        ])
        .await;
    assert_oauth_error(other.0, &other.1, 400, "invalid_grant");
    app.clock.advance(901);
    let (status, _) = magic_grant(&app, &[("token", &token)]).await;
    assert_eq!(status, 400);
    // A client not allowed the grant cannot ask for links.
    let (status, body) = app
        .post_json(
            "/api/v1/magic-link",
            json!({"email": "alice@example.com", "client_id": "web"}),
        )
        .await;
    assert_oauth_error(status, &body, 400, "unauthorized_client");
}

async fn magic_link_requests_do_not_reveal_whether_an_account_exists(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    spa_client(&app).await;
    let known = app
        .post_json(
            "/api/v1/magic-link",
            json!({"email": "alice@example.com", "client_id": "spa"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/v1/magic-link",
            json!({"email": "nobody@example.com", "client_id": "spa"}),
        )
        .await;
    assert_eq!(known, unknown);
    let mail = smtp.wait_for("alice@example.com", MAIL_WAIT).await;
    assert!(
        !mail.text().contains("token="),
        "no app URL configured: code only"
    );
    code_in(&mail);
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    while app.wait_for_audit("magic_link_requested").await.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(smtp.count_to("nobody@example.com"), 0);
}

async fn failed_logins_back_off_per_account_and_address(backend: Backend) {
    let (app, _smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    for _ in 0..5 {
        let (status, body) = app
            .password_grant("alice@example.com", "wrong password here", "web")
            .await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
    }
    // The sixth failure starts a delay; during it even the right password is refused,
    // with Retry-After, for an unknown account exactly as for a known one.
    for account in ["alice@example.com", "ghost@example.com"] {
        if account == "ghost@example.com" {
            for _ in 0..6 {
                app.password_grant(account, "wrong password here", "web")
                    .await;
            }
        } else {
            app.password_grant(account, "wrong password here", "web")
                .await;
        }
        let r = app
            .token(&[
                ("grant_type", "password"),
                ("username", account),
                ("password", PASSWORD),
                ("client_id", "web"),
            ])
            .await;
        assert_eq!(r.status().as_u16(), 400, "{account}");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1, "{retry}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .contains("too many"));
    }
    app.clock.advance(60);
    let (status, _) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 200);
    // Success forgave the pair: one more failure does not start a delay.
    app.password_grant("alice@example.com", "wrong password here", "web")
        .await;
    let (status, _) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 200);
    let lockouts = app.wait_for_audit("lockout").await;
    assert!(lockouts
        .iter()
        .all(|e| e.event.ip.as_deref() == Some("127.0.0.1")));
}

async fn the_audit_trail_records_who_did_what_from_where(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    signed_up_bob(&app, &smtp).await;
    app.password_grant(BOB, "wrong password here", "web").await;
    app.http
        .post(app.url("/oauth2/token"))
        .header("user-agent", "audit-test/1.0")
        .form(&[
            ("grant_type", "password"),
            ("username", BOB),
            ("password", PASSWORD),
            ("client_id", "web"),
        ])
        .send()
        .await
        .unwrap();
    let bob = user_view(&app, BOB).await.id;
    let signup = app.wait_for_audit("signup").await;
    assert_eq!(signup[0].event.user_id.as_deref(), Some(bob.as_str()));
    let failed = app.wait_for_audit("login_failed").await;
    assert_eq!(failed[0].event.user_id.as_deref(), Some(bob.as_str()));
    assert_eq!(failed[0].event.client_id.as_deref(), Some("web"));
    assert_eq!(failed[0].event.ip.as_deref(), Some("127.0.0.1"));
    let ok = app.wait_for_audit("login_succeeded").await;
    let last = ok.last().unwrap();
    assert_eq!(last.event.user_agent.as_deref(), Some("audit-test/1.0"));
    assert_eq!(last.event.detail["method"], "password");
    assert!(signup[0].id < failed[0].id && failed[0].id < last.id);
}

async fn a_magic_link_on_an_unverified_account_ends_what_its_sign_up_left(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    spa_client(&app).await;
    // A stranger signs up with bob's address (verification is optional) and signs in.
    let (status, _) = signup(&app, BOB, "the stranger's passphrase").await;
    assert_eq!(status, 202);
    smtp.wait_for(BOB, MAIL_WAIT).await;
    let stranger = app.login_as_with(BOB, "the stranger's passphrase").await;
    // Bob, who owns the mailbox, signs in with a magic link.
    app.clock.advance(61);
    app.post_json(
        "/api/v1/magic-link",
        json!({"email": BOB, "client_id": "spa"}),
    )
    .await;
    let code = code_in(&smtp.wait_for(BOB, MAIL_WAIT).await);
    let (status, bob) = magic_grant(&app, &[("email", BOB), ("code", &code)]).await;
    assert_eq!(status, 200, "{bob}");
    // The stranger's session and password are gone; bob's session works.
    let (status, _) = app.refresh(str_of(&stranger, "refresh_token")).await;
    assert_eq!(status, 400);
    let (status, _) = app
        .password_grant(BOB, "the stranger's passphrase", "web")
        .await;
    assert_eq!(status, 400);
    let (status, _) = app.refresh_as("spa", str_of(&bob, "refresh_token")).await;
    assert_eq!(status, 200);
    let me = user_view(&app, BOB).await;
    assert!(me.email_verified && !me.has_password);
}

crate::scenarios!(
    a_magic_link_on_an_unverified_account_ends_what_its_sign_up_left,
    signup_sends_a_verification_link_that_verifies_the_address,
    signing_up_with_an_existing_address_answers_the_same_and_tells_the_owner,
    mandatory_verification_keeps_unverified_users_from_tokens,
    verification_links_expire_and_a_resend_supersedes_them,
    closed_and_invite_only_sign_up,
    sign_up_reports_every_broken_password_rule_and_bad_input,
    a_password_reset_sets_a_new_password_and_revokes_every_token,
    reset_requests_do_not_reveal_whether_an_account_exists,
    reset_links_expire_and_die_with_a_newer_link_or_a_password_change,
    changing_the_password_revokes_the_other_sessions,
    a_forced_password_change_is_the_only_way_in,
    users_read_and_update_their_own_profile,
    deleting_the_account_needs_the_password_and_removes_it,
    magic_links_sign_in_by_link_or_code_once,
    magic_link_requests_do_not_reveal_whether_an_account_exists,
    failed_logins_back_off_per_account_and_address,
    the_audit_trail_records_who_did_what_from_where,
);
