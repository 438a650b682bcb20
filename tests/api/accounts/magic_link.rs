//! Magic links: sign-in by link or code, requests that reveal nothing, and a magic link
//! ending what a stranger's sign-up with the same address left.

use serde_json::{json, Value};

use super::{signup, user_view, BOB};
use crate::helpers::*;

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

pub(super) async fn magic_links_sign_in_by_link_or_code_once(backend: Backend) {
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

pub(super) async fn magic_link_requests_do_not_reveal_whether_an_account_exists(backend: Backend) {
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

pub(super) async fn a_magic_link_on_an_unverified_account_ends_what_its_sign_up_left(
    backend: Backend,
) {
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
