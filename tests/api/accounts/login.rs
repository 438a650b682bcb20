//! Sign-in as the login pipeline shapes it: the back-off of failed logins per account and
//! address, and the audit trail of who did what from where.

use serde_json::Value;

use super::{signed_up_bob, user_view, BOB};
use crate::helpers::*;

pub(super) async fn failed_logins_back_off_per_account_and_address(backend: Backend) {
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

pub(super) async fn the_audit_trail_records_who_did_what_from_where(backend: Backend) {
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
