//! RFC 7009 revocation, and what revocation does to the tokens around the revoked one.

use crate::helpers::{
    assert_oauth_error, public_client, resource_server, spawn_app, str_of, Backend,
};
use crate::scenarios;

scenarios!(
    revoking_a_refresh_token_revokes_its_family_and_its_access_tokens,
    revoking_an_access_token_denylists_only_that_token,
    unknown_malformed_forged_and_expired_tokens_are_answered_with_200,
    a_client_cannot_revoke_another_clients_token,
    revocation_requires_client_authentication_and_a_token,
    refresh_token_reuse_also_revokes_the_familys_access_tokens,
    confidential_clients_revoke_with_basic_authentication,
    a_family_revoked_without_its_log_entry_is_repaired_when_its_token_comes_back,
);

async fn revoking_a_refresh_token_revokes_its_family_and_its_access_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let first = app.login("alice@example.com").await;
    let (status, second) = app.refresh(str_of(&first, "refresh_token")).await;
    assert_eq!(status, 200, "{second}");
    let other_session = app.login("alice@example.com").await;
    assert!(app.is_active(&rs, str_of(&second, "access_token")).await);

    assert_eq!(
        app.revoke_public(str_of(&second, "refresh_token")).await,
        200
    );

    let (status, body) = app.refresh(str_of(&second, "refresh_token")).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    for t in [&first, &second] {
        assert!(
            !app.is_active(&rs, str_of(t, "access_token")).await,
            "every access token of the family is revoked"
        );
        assert!(!app.is_active(&rs, str_of(t, "refresh_token")).await);
    }
    assert!(
        app.is_active(&rs, str_of(&other_session, "access_token"))
            .await,
        "another session of the same user is untouched"
    );
    let (status, _) = app.refresh(str_of(&other_session, "refresh_token")).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.revoke_public(str_of(&second, "refresh_token")).await,
        200,
        "revoking twice is fine"
    );
}

async fn revoking_an_access_token_denylists_only_that_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let tokens = app.login("alice@example.com").await;
    let access = str_of(&tokens, "access_token");
    let r = app
        .http
        .post(app.url("/oauth2/revoke"))
        .form(&[
            ("token", access),
            ("token_type_hint", "access_token"),
            ("client_id", "web"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.bytes().await.unwrap().is_empty());
    assert!(!app.is_active(&rs, access).await);
    let (status, refreshed) = app.refresh(str_of(&tokens, "refresh_token")).await;
    assert_eq!(status, 200, "the session goes on: {refreshed}");
    assert!(app.is_active(&rs, str_of(&refreshed, "access_token")).await);
    // A wrong hint does not stop the server from finding the token.
    let r = app
        .http
        .post(app.url("/oauth2/revoke"))
        .form(&[
            ("token", str_of(&refreshed, "access_token")),
            ("token_type_hint", "refresh_token"),
            ("client_id", "web"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!app.is_active(&rs, str_of(&refreshed, "access_token")).await);
}

async fn unknown_malformed_forged_and_expired_tokens_are_answered_with_200(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let tokens = app.login("alice@example.com").await;
    let refresh = str_of(&tokens, "refresh_token");
    // Same family and generation, another secret: the tag does not verify.
    let forged = {
        let (head, tail) = refresh.rsplit_once('.').unwrap();
        let (head, _secret) = head.rsplit_once('.').unwrap();
        format!("{head}.{}.{tail}", "A".repeat(43))
    };
    for token in [
        "garbage",
        "",
        "lkrt_00000000000000000000000000000000.0.x.y",
        forged.as_str(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ] {
        let r = app
            .http
            .post(app.url("/oauth2/revoke"))
            .form(&[("token", token), ("client_id", "web")])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if token.is_empty() {
            assert_eq!(status, 400, "an empty token is a malformed request");
        } else {
            assert_eq!(status, 200, "{token}");
        }
    }
    let (status, body) = app.refresh(refresh).await;
    assert_eq!(status, 200, "a forged token revoked nothing: {body}");
    app.clock.advance(601);
    assert_eq!(
        app.revoke_public(str_of(&tokens, "access_token")).await,
        200,
        "an expired access token needs no revocation"
    );
}

async fn a_client_cannot_revoke_another_clients_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    public_client(app.admin(), "mobile", &["password", "refresh_token"], &[]).await;
    let rs = resource_server(&app).await;
    let tokens = app.login("alice@example.com").await;
    for token in ["refresh_token", "access_token"] {
        let r = app
            .http
            .post(app.url("/oauth2/revoke"))
            .form(&[("token", str_of(&tokens, token)), ("client_id", "mobile")])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_oauth_error(status, &body, 400, "unauthorized_client");
    }
    assert!(app.is_active(&rs, str_of(&tokens, "access_token")).await);
    let (status, _) = app.refresh(str_of(&tokens, "refresh_token")).await;
    assert_eq!(status, 200);
}

async fn revocation_requires_client_authentication_and_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let tokens = app.login("alice@example.com").await;
    let r = app
        .post_basic(
            "/oauth2/revoke",
            &f.billing_id,
            "wrong-secret",
            &[("token", str_of(&tokens, "access_token"))],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let r = app
        .http
        .post(app.url("/oauth2/revoke"))
        .form(&[("token", str_of(&tokens, "access_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no client at all");
    let r = app
        .http
        .post(app.url("/oauth2/revoke"))
        .form(&[("client_id", "web")])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_oauth_error(status, &body, 400, "invalid_request");
    let r = app
        .http
        .get(app.url("/oauth2/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

async fn refresh_token_reuse_also_revokes_the_familys_access_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let first = app.login("alice@example.com").await;
    let (_, second) = app.refresh(str_of(&first, "refresh_token")).await;
    assert!(app.is_active(&rs, str_of(&second, "access_token")).await);
    let (status, body) = app.refresh(str_of(&first, "refresh_token")).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert!(
        !app.is_active(&rs, str_of(&second, "access_token")).await,
        "the newest access token of a reused family is dead too"
    );
}

async fn confidential_clients_revoke_with_basic_authentication(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = app.fixture().await;
    let rs = resource_server(&app).await;
    let (_, body) = app
        .client_credentials(&f.billing_id, &f.billing_secret)
        .await;
    let access = str_of(&body, "access_token");
    assert!(app.is_active(&rs, access).await);
    let r = app
        .post_basic(
            "/oauth2/revoke",
            &f.billing_id,
            &f.billing_secret,
            &[("token", access)],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(!app.is_active(&rs, access).await);
}

async fn a_family_revoked_without_its_log_entry_is_repaired_when_its_token_comes_back(
    backend: Backend,
) {
    use latchkey::clock::Clock;
    let app = spawn_app(backend).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let tokens = app.login("alice@example.com").await;
    let (_, claims) = crate::helpers::jwt_parts(str_of(&tokens, "access_token"));
    // As if the log append had failed after the family was revoked in the database.
    assert!(app
        .services
        .stores
        .refresh_tokens
        .revoke_family(str_of(&claims, "sid"), "test", app.clock.now())
        .await
        .unwrap());
    assert!(app.is_active(&rs, str_of(&tokens, "access_token")).await);
    let (status, body) = app.refresh(str_of(&tokens, "refresh_token")).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert!(
        !app.is_active(&rs, str_of(&tokens, "access_token")).await,
        "presenting the revoked family's token wrote the missing entry"
    );
    let entries = app
        .services
        .stores
        .revocations
        .since(0, app.clock.now(), 100)
        .await
        .unwrap();
    let (status, _) = app.refresh(str_of(&tokens, "refresh_token")).await;
    assert_eq!(status, 400);
    assert_eq!(
        app.services
            .stores
            .revocations
            .since(0, app.clock.now(), 100)
            .await
            .unwrap()
            .len(),
        entries.len(),
        "replaying a revoked token writes nothing more"
    );
}
