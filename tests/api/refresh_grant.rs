use crate::helpers::{assert_oauth_error, jwt_parts, public_client, spawn_app, str_of, Backend};
use crate::scenarios;

scenarios!(
    every_refresh_returns_a_new_refresh_token,
    reusing_a_refresh_token_revokes_the_whole_family,
    reusing_a_token_two_generations_old_revokes_the_family,
    of_two_concurrent_refreshes_with_one_token_exactly_one_wins,
    refresh_token_is_bound_to_its_client,
    refresh_token_expires_after_its_idle_lifetime,
    refresh_token_family_ends_at_its_absolute_lifetime,
    refresh_can_narrow_but_not_widen_the_scope,
    refreshed_access_token_reflects_current_roles,
    unknown_refresh_token_is_an_invalid_grant,
    other_families_survive_a_reuse,
);

async fn every_refresh_returns_a_new_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let mut current = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    let mut seen = vec![current.clone()];
    for _ in 0..3 {
        let (status, body) = app.refresh(&current).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        current = str_of(&body, "refresh_token").to_owned();
        assert!(!seen.contains(&current), "rotation issues a fresh token");
        seen.push(current.clone());
    }
}

async fn reusing_a_refresh_token_revokes_the_whole_family(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let stolen = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    // The attacker refreshes first...
    let (status, attacker) = app.refresh(&stolen).await;
    assert_eq!(status, 200);
    // ...then the victim presents the same (now used) token: reuse.
    let (status, body) = app.refresh(&stolen).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // The attacker's newer token is dead as well.
    let (status, body) = app.refresh(str_of(&attacker, "refresh_token")).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}

async fn reusing_a_token_two_generations_old_revokes_the_family(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let gen0 = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    let (_, b1) = app.refresh(&gen0).await;
    let gen1 = str_of(&b1, "refresh_token").to_owned();
    let (_, b2) = app.refresh(&gen1).await;
    let gen2 = str_of(&b2, "refresh_token").to_owned();
    let (status, _) = app.refresh(&gen0).await;
    assert_eq!(status, 400);
    let (status, body) = app.refresh(&gen2).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the newest generation dies too"
    );
}

async fn of_two_concurrent_refreshes_with_one_token_exactly_one_wins(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    for _ in 0..5 {
        let token = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
        let (a, b) = tokio::join!(app.refresh(&token), app.refresh(&token));
        let wins = [a.0, b.0].iter().filter(|s| **s == 200).count();
        assert_eq!(
            wins, 1,
            "exactly one of two concurrent refreshes succeeds: {a:?} {b:?}"
        );
        let loser = if a.0 == 200 { &b } else { &a };
        assert_eq!(loser.1["error"], "invalid_grant");
    }
}

async fn refresh_token_is_bound_to_its_client(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    public_client(
        app.admin(),
        "other",
        &["password", "refresh_token"],
        &["orders.read", "orders.write"],
    )
    .await;
    let token = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    let (status, body) = app
        .token_json(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &token),
            ("client_id", "other"),
        ])
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, _) = app.refresh(&token).await;
    assert_eq!(
        status, 200,
        "a wrong-client attempt does not burn the token"
    );
}

async fn refresh_token_expires_after_its_idle_lifetime(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let token = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    app.clock
        .advance(app.settings.tokens.refresh_idle_ttl.as_secs() as i64 - 10);
    let (status, body) = app.refresh(&token).await;
    assert_eq!(status, 200, "still inside the idle window");
    let next = str_of(&body, "refresh_token").to_owned();
    app.clock
        .advance(app.settings.tokens.refresh_idle_ttl.as_secs() as i64 + 1);
    let (status, body) = app.refresh(&next).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert_eq!(body["error_description"], "the refresh token has expired");
}

async fn refresh_token_family_ends_at_its_absolute_lifetime(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let mut token = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    let absolute = app.settings.tokens.refresh_absolute_ttl.as_secs() as i64;
    let step = app.settings.tokens.refresh_idle_ttl.as_secs() as i64 / 2;
    let mut elapsed = 0;
    while elapsed + step < absolute {
        app.clock.advance(step);
        elapsed += step;
        let (status, body) = app.refresh(&token).await;
        assert_eq!(
            status, 200,
            "active use keeps the family alive before the absolute limit"
        );
        token = str_of(&body, "refresh_token").to_owned();
    }
    app.clock.advance(absolute - elapsed + 1);
    let (status, body) = app.refresh(&token).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}

async fn refresh_can_narrow_but_not_widen_the_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let login = app
        .token_json(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", crate::helpers::PASSWORD),
            ("client_id", "web"),
            ("scope", "orders.read"),
        ])
        .await
        .1;
    let token = str_of(&login, "refresh_token");
    let (status, body) = app
        .token_json(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", "web"),
            ("scope", "orders.read orders.write"),
        ])
        .await;
    assert_oauth_error(status, &body, 400, "invalid_scope");
    let (status, body) = app.refresh(token).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("orders.read")));
}

async fn refreshed_access_token_reflects_current_roles(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let token = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    app.admin()
        .revoke_roles("alice@example.com", &["auditor".into()])
        .await
        .unwrap();
    let (_, body) = app.refresh(&token).await;
    let (_, claims) = jwt_parts(str_of(&body, "access_token"));
    assert_eq!(claims["roles"], serde_json::json!(["manager"]));
    assert_eq!(
        claims["permissions"],
        serde_json::json!(["orders.approve", "orders.view"])
    );
}

async fn unknown_refresh_token_is_an_invalid_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    for bogus in [
        "lkrt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &"x".repeat(5000),
    ] {
        let (status, body) = app.refresh(bogus).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
    }
}

async fn other_families_survive_a_reuse(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let phone = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    let laptop = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    app.refresh(&phone).await;
    app.refresh(&phone).await; // reuse: revokes the phone's family only
    let (status, _) = app.refresh(&laptop).await;
    assert_eq!(status, 200);
}
