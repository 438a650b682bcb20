//! The revocation feed, used by resource servers that validate JWTs offline.

use serde_json::Value;

use crate::helpers::{
    assert_oauth_error, jwt_parts, resource_server, spawn_app, str_of, Backend, TestApp,
};
use crate::scenarios;

scenarios!(
    the_feed_lists_revoked_tokens_sessions_and_users_after_a_cursor,
    the_feed_forgets_entries_once_their_tokens_have_expired,
    the_feed_needs_a_confidential_client_and_a_valid_query,
);

async fn feed(app: &TestApp, rs: &str, query: &str) -> (u16, Value) {
    let r = app
        .http
        .get(app.url(&format!("/oauth2/revocations{query}")))
        .basic_auth("rs", Some(rs))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn the_feed_lists_revoked_tokens_sessions_and_users_after_a_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let rs = resource_server(&app).await;
    let (status, start) = feed(&app, &rs, "").await;
    assert_eq!(status, 200, "{start}");
    assert_eq!(start["revocations"], serde_json::json!([]));
    assert_eq!(start["has_more"], false);
    let cursor = str_of(&start, "next_cursor").to_owned();

    let one = app.login("alice@example.com").await;
    let two = app.login("alice@example.com").await;
    let three = app.login("alice@example.com").await;
    app.revoke_public(str_of(&one, "access_token")).await;
    app.post_bearer("/api/v1/logout", str_of(&two, "access_token"))
        .await;
    app.post_bearer("/api/v1/logout-all", str_of(&three, "access_token"))
        .await;

    let (_, page) = feed(&app, &rs, &format!("?since={cursor}")).await;
    let entries = page["revocations"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["access_token", "session", "access_token", "user"],
        "{page}"
    );
    let (_, one_claims) = jwt_parts(str_of(&one, "access_token"));
    let (_, two_claims) = jwt_parts(str_of(&two, "access_token"));
    assert_eq!(entries[0]["jti"], one_claims["jti"]);
    assert_eq!(entries[0]["exp"], one_claims["exp"]);
    assert_eq!(entries[1]["sid"], two_claims["sid"]);
    assert_eq!(entries[2]["jti"], two_claims["jti"]);
    assert_eq!(entries[3]["sub"], f.user_id.as_str());
    let (_, three_claims) = jwt_parts(str_of(&three, "access_token"));
    assert!(entries[3]["not_after"].as_i64().unwrap() >= three_claims["iat"].as_i64().unwrap());
    let cursors: Vec<i64> = entries
        .iter()
        .map(|e| str_of(e, "cursor").parse().unwrap())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    assert_eq!(page["next_cursor"], entries[3]["cursor"]);

    // Nothing new after the last cursor.
    let (_, empty) = feed(
        &app,
        &rs,
        &format!("?since={}", str_of(&page, "next_cursor")),
    )
    .await;
    assert_eq!(empty["revocations"], serde_json::json!([]));
    assert_eq!(empty["next_cursor"], page["next_cursor"]);

    // Paging.
    let (_, first) = feed(&app, &rs, &format!("?since={cursor}&limit=3")).await;
    assert_eq!(first["revocations"].as_array().unwrap().len(), 3);
    assert_eq!(first["has_more"], true);
    let (_, rest) = feed(
        &app,
        &rs,
        &format!("?since={}&limit=3", str_of(&first, "next_cursor")),
    )
    .await;
    assert_eq!(rest["revocations"].as_array().unwrap().len(), 1);
    assert_eq!(rest["has_more"], false);
}

async fn the_feed_forgets_entries_once_their_tokens_have_expired(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let tokens = app.login("alice@example.com").await;
    app.revoke_public(str_of(&tokens, "access_token")).await;
    let (_, page) = feed(&app, &rs, "").await;
    assert_eq!(page["revocations"].as_array().unwrap().len(), 1);
    app.clock.advance(600);
    let (_, page) = feed(&app, &rs, "").await;
    assert_eq!(
        page["revocations"],
        serde_json::json!([]),
        "the revoked token has expired, so the entry is not needed any more"
    );
    assert_eq!(app.services.revocations.purge_expired().await.unwrap(), 1);
}

async fn the_feed_needs_a_confidential_client_and_a_valid_query(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let rs = resource_server(&app).await;
    let r = app
        .http
        .get(app.url("/oauth2/revocations?client_id=web"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "who asks is checked first");
    for q in [
        "?client_id=web",
        "?since=1&since=2",
        "?since=abc",
        "?since=-1",
        "?limit=0",
        "?limit=1001",
        "?limit=x",
        "?limit=",
    ] {
        let (status, body) = feed(&app, &rs, q).await;
        assert_oauth_error(status, &body, 400, "invalid_request");
    }
    let (status, body) = feed(&app, &rs, "?since=99").await;
    assert_oauth_error(status, &body, 400, "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("ahead"),
        "a cursor from the future (a restored database) is refused: {body}"
    );
    let r = app
        .http
        .get(app.url("/oauth2/revocations"))
        .basic_auth(&f.billing_id, Some(&f.billing_secret))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_oauth_error(status, &body, 403, "unauthorized_client");
    let r = app
        .http
        .get(app.url("/oauth2/revocations"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_oauth_error(status, &body, 401, "invalid_client");
    let r = app
        .http
        .get(app.url("/oauth2/revocations"))
        .basic_auth("web", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a public client cannot read the feed");
    let r = app
        .http
        .post(app.url("/oauth2/revocations"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}
