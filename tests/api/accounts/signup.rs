//! Sign-up and address verification: the mailed link, existing addresses, mandatory
//! verification, expiry and resend, closed and invite-only sign-up, input checks.

use serde_json::{json, Value};

use super::{signed_up_bob, signup, user_view, BOB, NEW_PASSWORD};
use crate::helpers::*;

pub(super) async fn signup_sends_a_verification_link_that_verifies_the_address(backend: Backend) {
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

pub(super) async fn signing_up_with_an_existing_address_answers_the_same_and_tells_the_owner(
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

pub(super) async fn mandatory_verification_keeps_unverified_users_from_tokens(backend: Backend) {
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

pub(super) async fn verification_links_expire_and_a_resend_supersedes_them(backend: Backend) {
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

pub(super) async fn closed_and_invite_only_sign_up(backend: Backend) {
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
        .invite(latchkey::domain::Email::parse(BOB), &["manager".to_owned()])
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

pub(super) async fn sign_up_reports_every_broken_password_rule_and_bad_input(backend: Backend) {
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
