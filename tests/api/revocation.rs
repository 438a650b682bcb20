//! RFC 7009 revocation, and what revocation does to the tokens around the revoked one.

use crate::helpers::{
    assert_oauth_error, confidential_client, jwt_parts, public_client, resource_server, spawn_app,
    str_of, Backend, TestApp, PASSWORD,
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
    disabling_a_client_revokes_its_tokens,
    deleting_a_client_revokes_its_tokens,
    rotating_a_client_secret_revokes_its_tokens,
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
        .revoke_family(
            &latchkey::domain::FamilyId::from_trusted(str_of(&claims, "sid").into()),
            "test",
            app.clock.now()
        )
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

/// What an operator does to a client in the scenarios below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientChange {
    Disable,
    Delete,
    RotateSecret,
}

/// The tokens a confidential client `cc` holds, for the client itself and for alice.
struct ClientTokens {
    secret: String,
    client_access: String,
    user_access: String,
    user_refresh: String,
}

async fn tokens_of_a_client(app: &TestApp) -> ClientTokens {
    app.fixture().await;
    let secret = confidential_client(
        app.admin(),
        "cc",
        &["client_credentials", "password", "refresh_token"],
        &[],
    )
    .await;
    let (status, client) = app.client_credentials("cc", &secret).await;
    assert_eq!(status, 200, "{client}");
    let (status, user) = app
        .token_json(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", PASSWORD),
            ("client_id", "cc"),
            ("client_secret", secret.as_str()),
        ])
        .await;
    assert_eq!(status, 200, "{user}");
    ClientTokens {
        secret,
        client_access: str_of(&client, "access_token").to_owned(),
        user_access: str_of(&user, "access_token").to_owned(),
        user_refresh: str_of(&user, "refresh_token").to_owned(),
    }
}

async fn feed_after(app: &TestApp, rs: &str, since: &str) -> serde_json::Value {
    let r = app
        .http
        .get(app.url(&format!("/oauth2/revocations?since={since}")))
        .basic_auth("rs", Some(rs))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Disabling, deleting or re-keying a client revokes every token it holds: its own and its
/// users' access tokens (introspection, Latchkey's bearer endpoints and the revocation feed)
/// and its refresh tokens.
async fn a_client_change_revokes_its_tokens(backend: Backend, change: ClientChange) {
    let app = spawn_app(backend).await;
    let t = tokens_of_a_client(&app).await;
    let rs = resource_server(&app).await;
    for token in [&t.client_access, &t.user_access, &t.user_refresh] {
        assert!(app.is_active(&rs, token).await, "{change:?}: active before");
    }
    let (status, _) = app
        .send_bearer(reqwest::Method::GET, "/api/v1/me", &t.user_access, None)
        .await;
    assert_eq!(status, 200, "{change:?}");
    let start = feed_after(&app, &rs, "0").await;
    let cursor = str_of(&start, "next_cursor").to_owned();

    let new_secret = match change {
        ClientChange::Disable => {
            app.admin().set_client_enabled("cc", false).await.unwrap();
            None
        }
        ClientChange::Delete => {
            app.admin().delete_client("cc").await.unwrap();
            None
        }
        ClientChange::RotateSecret => {
            app.admin()
                .rotate_client_secret("cc")
                .await
                .unwrap()
                .client_secret
        }
    };

    for token in [&t.client_access, &t.user_access, &t.user_refresh] {
        assert!(
            !app.is_active(&rs, token).await,
            "{change:?}: introspection still calls a token of the client active"
        );
    }
    let (status, body) = app
        .send_bearer(reqwest::Method::GET, "/api/v1/me", &t.user_access, None)
        .await;
    assert_eq!(status, 401, "{change:?}: {body}");
    let (status, body) = app
        .token_json(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t.user_refresh.as_str()),
            ("client_id", "cc"),
            ("client_secret", new_secret.as_deref().unwrap_or(&t.secret)),
        ])
        .await;
    match change {
        ClientChange::RotateSecret => assert_oauth_error(status, &body, 400, "invalid_grant"),
        _ => assert_oauth_error(status, &body, 401, "invalid_client"),
    }

    let page = feed_after(&app, &rs, &cursor).await;
    let entries = page["revocations"].as_array().unwrap();
    let watermark = entries
        .iter()
        .find(|e| e["type"] == "client")
        .unwrap_or_else(|| panic!("{change:?}: no client entry in {page}"));
    assert_eq!(watermark["client_id"], "cc", "{page}");
    for token in [&t.client_access, &t.user_access] {
        let iat = jwt_parts(token).1["iat"].as_i64().unwrap();
        assert!(watermark["not_after"].as_i64().unwrap() >= iat, "{page}");
    }
    assert!(watermark.get("sub").is_none(), "{page}");

    if let Some(new_secret) = new_secret {
        // Tokens obtained with the new secret after the change work.
        app.clock.advance(1);
        let (status, body) = app.client_credentials("cc", &new_secret).await;
        assert_eq!(status, 200, "{body}");
        assert!(app.is_active(&rs, str_of(&body, "access_token")).await);
    }
}

async fn disabling_a_client_revokes_its_tokens(backend: Backend) {
    a_client_change_revokes_its_tokens(backend, ClientChange::Disable).await;
}

async fn deleting_a_client_revokes_its_tokens(backend: Backend) {
    a_client_change_revokes_its_tokens(backend, ClientChange::Delete).await;
}

async fn rotating_a_client_secret_revokes_its_tokens(backend: Backend) {
    a_client_change_revokes_its_tokens(backend, ClientChange::RotateSecret).await;
}
