//! The refresh grace window (README, Tokens): a client may allow a used refresh token to be
//! presented again for a few seconds, answering the same successor (a lost response, two tabs
//! refreshing at once), without weakening reuse detection outside the window.

use std::collections::BTreeSet;

use latchkey::services::ClientUpdate;
use serde_json::Value;

use crate::helpers::{
    assert_oauth_error, public_client, resource_server, spawn_app, spawn_app_with, str_of, Backend,
    TestApp,
};
use crate::scenarios;

scenarios!(
    a_lost_response_is_retried_with_the_same_successor,
    a_retry_after_the_window_revokes_the_family,
    more_retries_than_the_window_admits_revoke_the_family,
    concurrent_refreshes_inside_the_window_all_succeed_on_one_chain,
    a_retry_by_another_client_revokes_the_family,
    ending_the_session_inside_the_window_ends_the_retries,
    the_server_default_applies_to_clients_without_a_window_of_their_own,
);

/// The fixture, with the client `web` given a grace window of `secs` seconds and `uses`
/// retries.
async fn grace_app(backend: Backend, secs: i64, uses: i64) -> TestApp {
    let app = spawn_app(backend).await;
    app.fixture().await;
    set_grace(&app, Some(secs), Some(uses)).await;
    app
}

async fn set_grace(app: &TestApp, secs: Option<i64>, uses: Option<i64>) {
    let v = app
        .admin()
        .update_client(
            "web",
            ClientUpdate {
                refresh_grace_secs: Some(secs),
                refresh_grace_uses: Some(uses),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((v.refresh_grace_secs, v.refresh_grace_uses), (secs, uses));
}

fn refresh_token_of(body: &Value) -> String {
    str_of(body, "refresh_token").to_owned()
}

async fn a_lost_response_is_retried_with_the_same_successor(backend: Backend) {
    let app = grace_app(backend, 30, 1).await;
    let rs = resource_server(&app).await;
    let t0 = refresh_token_of(&app.login("alice@example.com").await);
    let (status, lost) = app.refresh(&t0).await;
    assert_eq!(status, 200, "{lost}");
    app.clock.advance(5);
    // The answer never arrived: the app presents the same token again.
    let (status, retried) = app.refresh(&t0).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(
        refresh_token_of(&retried),
        refresh_token_of(&lost),
        "the retry answers the same successor"
    );
    let access = str_of(&retried, "access_token");
    assert_ne!(
        access,
        str_of(&lost, "access_token"),
        "a fresh access token"
    );
    assert_eq!(retried["scope"], lost["scope"]);
    assert!(app.is_active(&rs, access).await, "an ordinary access token");
    let events = app.wait_for_audit("refresh_token_retry").await;
    assert_eq!(events.len(), 1);
    let e = &events[0].event;
    assert_eq!(
        (
            e.client_id.as_deref(),
            &e.detail["retry"],
            &e.detail["retries_left"]
        ),
        (Some("web"), &serde_json::json!(1), &serde_json::json!(0))
    );
    // The chain goes on from the successor.
    let (status, next) = app.refresh(&refresh_token_of(&retried)).await;
    assert_eq!(status, 200, "{next}");
    // Once the successor is used, the first token is reuse: the family is revoked.
    let (status, body) = app.refresh(&t0).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = app.refresh(&refresh_token_of(&next)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert!(
        !app.is_active(&rs, access).await,
        "the retry's access token dies with its family"
    );
}

async fn a_retry_after_the_window_revokes_the_family(backend: Backend) {
    let app = grace_app(backend, 10, 5).await;
    let t0 = refresh_token_of(&app.login("alice@example.com").await);
    let (status, first) = app.refresh(&t0).await;
    assert_eq!(status, 200);
    app.clock.advance(10);
    let (status, body) = app.refresh(&t0).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = app.refresh(&refresh_token_of(&first)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}

async fn more_retries_than_the_window_admits_revoke_the_family(backend: Backend) {
    let app = grace_app(backend, 30, 2).await;
    let t0 = refresh_token_of(&app.login("alice@example.com").await);
    let (_, first) = app.refresh(&t0).await;
    for retry in 1..=2 {
        let (status, body) = app.refresh(&t0).await;
        assert_eq!(status, 200, "retry {retry}: {body}");
        assert_eq!(refresh_token_of(&body), refresh_token_of(&first));
    }
    let (status, body) = app.refresh(&t0).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = app.refresh(&refresh_token_of(&first)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}

async fn concurrent_refreshes_inside_the_window_all_succeed_on_one_chain(backend: Backend) {
    let app = grace_app(backend, 30, 8).await;
    for _ in 0..2 {
        let t0 = refresh_token_of(&app.login("alice@example.com").await);
        let answers = futures::future::join_all((0..8).map(|_| app.refresh(&t0))).await;
        for (status, body) in &answers {
            assert_eq!(*status, 200, "{body}");
        }
        let successors: BTreeSet<String> =
            answers.iter().map(|(_, b)| refresh_token_of(b)).collect();
        assert_eq!(
            successors.len(),
            1,
            "one successor, one chain: {successors:?}"
        );
        let access: BTreeSet<&str> = answers
            .iter()
            .map(|(_, b)| str_of(b, "access_token"))
            .collect();
        assert_eq!(access.len(), 8, "each answer has its own access token");
        // The one chain goes on...
        let t1 = successors.into_iter().next().unwrap();
        let (status, b2) = app.refresh(&t1).await;
        assert_eq!(status, 200, "{b2}");
        let (status, b3) = app.refresh(&refresh_token_of(&b2)).await;
        assert_eq!(status, 200, "{b3}");
        // ...and nothing else of the family is alive: the first token is reuse now.
        let (status, _) = app.refresh(&t0).await;
        assert_eq!(status, 400);
        let (status, _) = app.refresh(&refresh_token_of(&b3)).await;
        assert_eq!(status, 400, "the reuse revoked the family");
    }
}

async fn a_retry_by_another_client_revokes_the_family(backend: Backend) {
    let app = grace_app(backend, 30, 5).await;
    public_client(
        app.admin(),
        "other",
        &["password", "refresh_token"],
        &["orders.read", "orders.write"],
    )
    .await;
    let t0 = refresh_token_of(&app.login("alice@example.com").await);
    let (_, first) = app.refresh(&t0).await;
    let (status, body) = app.refresh_as("other", &t0).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = app.refresh(&t0).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = app.refresh(&refresh_token_of(&first)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}

async fn ending_the_session_inside_the_window_ends_the_retries(backend: Backend) {
    let app = grace_app(backend, 30, 5).await;
    for how in ["logout", "revocation", "logout-all", "password"] {
        app.clock.advance(1);
        let t0 = refresh_token_of(&app.login("alice@example.com").await);
        let (status, first) = app.refresh(&t0).await;
        assert_eq!(status, 200, "{how}: {first}");
        let access = str_of(&first, "access_token");
        match how {
            "logout" => assert_eq!(
                app.post_bearer("/api/v1/logout", access).await.status(),
                204
            ),
            "logout-all" => assert_eq!(
                app.post_bearer("/api/v1/logout-all", access).await.status(),
                204
            ),
            "revocation" => assert_eq!(app.revoke_public(&refresh_token_of(&first)).await, 200),
            _ => {
                app.admin()
                    .set_password(
                        "alice@example.com",
                        Some(secrecy::SecretString::from("another long passphrase")),
                    )
                    .await
                    .unwrap();
            }
        }
        let (status, body) = app.refresh(&t0).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        if how == "password" {
            app.admin()
                .set_password(
                    "alice@example.com",
                    Some(secrecy::SecretString::from(crate::helpers::PASSWORD)),
                )
                .await
                .unwrap();
        }
    }
}

async fn the_server_default_applies_to_clients_without_a_window_of_their_own(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LATCHKEY_TOKENS_REFRESH_GRACE_SECS", "30"),
            ("LATCHKEY_TOKENS_REFRESH_GRACE_USES", "2"),
        ],
    )
    .await;
    app.fixture().await;
    assert_eq!(app.settings.tokens.refresh_grace.as_secs(), 30);
    assert_eq!(app.settings.tokens.refresh_grace_uses, 2);
    let t0 = refresh_token_of(&app.login("alice@example.com").await);
    let (_, first) = app.refresh(&t0).await;
    for _ in 0..2 {
        let (status, body) = app.refresh(&t0).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(refresh_token_of(&body), refresh_token_of(&first));
    }
    // A client may turn it off for itself: strict rotation again.
    set_grace(&app, Some(0), None).await;
    let t0 = refresh_token_of(&app.login("alice@example.com").await);
    let (status, _) = app.refresh(&t0).await;
    assert_eq!(status, 200);
    let (status, body) = app.refresh(&t0).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}
