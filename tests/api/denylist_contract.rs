//! Storage contract of `TokenDenylist`, checked against each adapter (embedded, Redis) on each
//! database.

use std::sync::Arc;

use latchkey::domain::{Revocation, TokenIdentity};
use latchkey::storage::TokenDenylist;

use crate::helpers::{fresh_database, test_settings, Backend};
use crate::scenarios;

scenarios!(denylist_contract, denylist_replays_the_log_it_missed);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn token<'a>(jti: &'a str, sid: Option<&'a str>, sub: &'a str, iat: i64) -> TokenIdentity<'a> {
    TokenIdentity {
        sid,
        ..client_token(jti, sub, "c0", iat)
    }
}

fn client_token<'a>(jti: &'a str, sub: &'a str, client_id: &'a str, iat: i64) -> TokenIdentity<'a> {
    TokenIdentity {
        jti,
        sid: None,
        sub,
        client_id,
        iat,
    }
}

async fn setup(
    backend: Backend,
) -> (
    latchkey::services::Stores,
    Arc<dyn TokenDenylist>,
    crate::helpers::TestDatabase,
) {
    let db = fresh_database(backend).await;
    let settings = test_settings(&db, &[]);
    let stores = latchkey::startup::connect_stores(&settings).await.unwrap();
    let denylist = latchkey::startup::build_denylist(&settings, &stores).unwrap();
    (stores, denylist, db)
}

async fn denylist_contract(backend: Backend) {
    let (stores, d, _db) = setup(backend).await;
    let t = now();
    d.sync(t).await.unwrap();
    d.ping().await.unwrap();
    let clean = token("j1", Some("s1"), "u1", t - 10);
    assert!(!d.is_denied(&clean, t).await.unwrap());
    let entries = vec![
        Revocation::AccessToken {
            jti: "j1".into(),
            expires_at: t + 60,
        },
        Revocation::Family {
            family_id: "s2".into(),
            expires_at: t + 60,
        },
        Revocation::User {
            user_id: "u3".into(),
            not_after: t - 5,
            expires_at: t + 60,
        },
    ];
    stores.revocations.append(&entries, t).await.unwrap();
    d.add(&entries).await.unwrap();
    assert!(d.is_denied(&clean, t).await.unwrap(), "by jti");
    assert!(
        d.is_denied(&token("j2", Some("s2"), "u2", t), t)
            .await
            .unwrap(),
        "by session"
    );
    assert!(
        !d.is_denied(&token("j2", None, "u2", t), t).await.unwrap(),
        "a token without a session"
    );
    assert!(
        d.is_denied(&token("j3", None, "u3", t - 5), t)
            .await
            .unwrap(),
        "issued at the watermark"
    );
    assert!(
        !d.is_denied(&token("j3", None, "u3", t - 4), t)
            .await
            .unwrap(),
        "issued after the watermark"
    );
    // A lower watermark never lowers the stored one.
    d.add(&[Revocation::User {
        user_id: "u3".into(),
        not_after: t - 100,
        expires_at: t + 60,
    }])
    .await
    .unwrap();
    assert!(d
        .is_denied(&token("j3", None, "u3", t - 5), t)
        .await
        .unwrap());
    // A client watermark: every token of the client (user tokens included) issued at or
    // before it, and nothing of another client, whatever its `sub`.
    let client = [Revocation::Client {
        client_id: "c4".into(),
        not_after: t - 5,
        expires_at: t + 60,
    }];
    stores.revocations.append(&client, t).await.unwrap();
    d.add(&client).await.unwrap();
    assert!(
        d.is_denied(&client_token("j4", "c4", "c4", t - 5), t)
            .await
            .unwrap(),
        "the client's own token, issued at the watermark"
    );
    assert!(
        d.is_denied(&client_token("j5", "u5", "c4", t - 50), t)
            .await
            .unwrap(),
        "a user token of the client, issued before the watermark"
    );
    assert!(
        !d.is_denied(&client_token("j6", "u5", "c4", t - 4), t)
            .await
            .unwrap(),
        "issued after the client watermark"
    );
    assert!(
        !d.is_denied(&client_token("j7", "c4", "c5", t - 50), t)
            .await
            .unwrap(),
        "another client's token whose sub is the revoked client's id"
    );
    // A lower client watermark never lowers the stored one.
    d.add(&[Revocation::Client {
        client_id: "c4".into(),
        not_after: t - 100,
        expires_at: t + 60,
    }])
    .await
    .unwrap();
    assert!(d
        .is_denied(&client_token("j4", "c4", "c4", t - 5), t)
        .await
        .unwrap());
    // Entries that expired no longer deny (Redis expires keys in real time).
    let expired = Revocation::AccessToken {
        jti: "old".into(),
        expires_at: t - 1,
    };
    d.add(std::slice::from_ref(&expired)).await.unwrap();
    assert!(!d
        .is_denied(&token("old", None, "u9", t - 100), t)
        .await
        .unwrap());
}

async fn denylist_replays_the_log_it_missed(backend: Backend) {
    let (stores, d, db) = setup(backend).await;
    let t = now();
    d.sync(t).await.unwrap();
    // Written by another instance (or while this denylist was unreachable): only in the log.
    stores
        .revocations
        .append(
            &[
                Revocation::AccessToken {
                    jti: "elsewhere".into(),
                    expires_at: t + 60,
                },
                Revocation::Client {
                    client_id: "c-elsewhere".into(),
                    not_after: t,
                    expires_at: t + 60,
                },
            ],
            t,
        )
        .await
        .unwrap();
    let id = token("elsewhere", None, "u", t - 1);
    let of_client = client_token("j", "u", "c-elsewhere", t - 1);
    d.sync(t).await.unwrap();
    assert!(d.is_denied(&id, t).await.unwrap());
    assert!(
        d.is_denied(&of_client, t).await.unwrap(),
        "a client watermark"
    );
    if backend.redis {
        // Redis restarted empty: every check fails closed until the log is replayed.
        let prefix = db
            .redis_env
            .iter()
            .find(|(k, _)| k == "LATCHKEY_REDIS_KEY_PREFIX")
            .map(|(_, v)| v.clone())
            .unwrap();
        let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!keys.is_empty());
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        assert!(d.is_denied(&id, t).await.is_err(), "fails closed");
        assert!(d.ping().await.is_err());
        d.sync(t).await.unwrap();
        assert!(d.is_denied(&id, t).await.unwrap());
        assert!(d.is_denied(&of_client, t).await.unwrap());
        d.ping().await.unwrap();
    }
}
