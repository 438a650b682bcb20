//! Several instances on one database (and one Redis) behave as one service, and the embedded
//! denylist survives a restart.

use std::time::{Duration, Instant};

use crate::helpers::{
    confidential_client, resource_server, spawn_app, spawn_instance_like, str_of, Backend,
};
use crate::scenarios;

scenarios!(
    a_token_revoked_on_one_instance_is_rejected_by_another_within_a_second,
    revocations_survive_a_restart,
    a_client_re_keyed_on_one_instance_loses_its_tokens_on_another_within_a_second,
    a_refresh_retried_on_another_instance_answers_the_same_successor,
);

async fn a_token_revoked_on_one_instance_is_rejected_by_another_within_a_second(backend: Backend) {
    let a = spawn_app(backend).await;
    a.fixture().await;
    let rs = resource_server(&a).await;
    let b = spawn_instance_like(&a, &[]).await;
    for kind in ["access_token", "session", "user"] {
        a.clock.advance(1);
        b.clock.set(latchkey::clock::Clock::now(a.clock.as_ref()));
        let tokens = a.login("alice@example.com").await;
        let access = str_of(&tokens, "access_token");
        assert!(
            b.is_active(&rs, access).await,
            "{kind}: B accepts A's token"
        );
        let revoked_at = Instant::now();
        match kind {
            "access_token" => assert_eq!(a.revoke_public(access).await, 200),
            "session" => {
                assert_eq!(a.post_bearer("/api/v1/logout", access).await.status(), 204)
            }
            _ => assert_eq!(
                a.post_bearer("/api/v1/logout-all", access).await.status(),
                204
            ),
        }
        loop {
            if !b.is_active(&rs, access).await {
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "{kind}: B still accepts the token a second after A revoked it"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, _) = b.refresh(str_of(&tokens, "refresh_token")).await;
        if kind != "access_token" {
            assert_eq!(status, 400, "{kind}: B refuses the session's refresh token");
        }
    }
}

async fn revocations_survive_a_restart(backend: Backend) {
    let a = spawn_app(backend).await;
    a.fixture().await;
    let rs = resource_server(&a).await;
    let revoked = a.login("alice@example.com").await;
    let kept = a.login("alice@example.com").await;
    a.revoke_public(str_of(&revoked, "access_token")).await;
    // A new process on the same database (and Redis): what it knows comes from storage.
    let restarted = spawn_instance_like(&a, &[]).await;
    assert!(
        !restarted
            .is_active(&rs, str_of(&revoked, "access_token"))
            .await
    );
    assert!(
        restarted
            .is_active(&rs, str_of(&kept, "access_token"))
            .await
    );
}

async fn a_client_re_keyed_on_one_instance_loses_its_tokens_on_another_within_a_second(
    backend: Backend,
) {
    let a = spawn_app(backend).await;
    let rs = resource_server(&a).await;
    let secret = confidential_client(a.admin(), "cc", &["client_credentials"], &[]).await;
    let b = spawn_instance_like(&a, &[]).await;
    let (status, body) = a.client_credentials("cc", &secret).await;
    assert_eq!(status, 200, "{body}");
    let access = str_of(&body, "access_token");
    assert!(b.is_active(&rs, access).await, "B accepts A's token");
    // The client stays enabled: only the client watermark can tell B.
    a.admin().rotate_client_secret("cc").await.unwrap();
    let revoked_at = Instant::now();
    while b.is_active(&rs, access).await {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "B still accepts the token a second after A re-keyed its client"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_refresh_retried_on_another_instance_answers_the_same_successor(backend: Backend) {
    let a = spawn_app(backend).await;
    a.fixture().await;
    let rs = resource_server(&a).await;
    a.admin()
        .update_client(
            "web",
            latchkey::services::ClientUpdate {
                refresh_grace_secs: Some(Some(30)),
                refresh_grace_uses: Some(Some(2)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let b = spawn_instance_like(&a, &[]).await;
    let t0 = str_of(&a.login("alice@example.com").await, "refresh_token").to_owned();
    let (status, lost) = a.refresh(&t0).await;
    assert_eq!(status, 200, "{lost}");
    // The retry lands on the other instance (a load balancer): same successor, and its access
    // token is good on both.
    let (status, retried) = b.refresh(&t0).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(
        str_of(&retried, "refresh_token"),
        str_of(&lost, "refresh_token")
    );
    let access = str_of(&retried, "access_token").to_owned();
    assert!(a.is_active(&rs, &access).await);
    assert!(b.is_active(&rs, &access).await);
    // The chain moves on on B; the first token, back on A, is reuse: the family dies
    // everywhere.
    let (status, next) = b.refresh(str_of(&retried, "refresh_token")).await;
    assert_eq!(status, 200, "{next}");
    let (status, _) = a.refresh(&t0).await;
    assert_eq!(status, 400);
    let (status, _) = b.refresh(str_of(&next, "refresh_token")).await;
    assert_eq!(status, 400);
    let revoked_at = Instant::now();
    while b.is_active(&rs, &access).await {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "B still accepts the retry's access token a second after A revoked the family"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
