//! With the Redis denylist, an unreachable Redis fails closed (503) and the service recovers
//! by itself when Redis is back, even a Redis that restarted empty. Runs a private
//! redis-server on a free port so the test can stop and restart it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{
    fresh_database, require_redis, resource_server, spawn_app_on, str_of, Backend, Database,
};

/// A redis-server of the test's own, on a port it chooses, stopped on drop (also used by
/// the throttle's fallback test).
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server is required for this test (scripts/test.sh installs it): {e}")
            });
        Self {
            port,
            child: Some(child),
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_unreachable_redis_fails_closed_and_recovers_without_a_restart() {
    an_unreachable_redis_fails_closed_and_recovers_without_a_restart(Database::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_unreachable_redis_fails_closed_and_recovers_without_a_restart() {
    an_unreachable_redis_fails_closed_and_recovers_without_a_restart(Database::Postgres).await
}

async fn an_unreachable_redis_fails_closed_and_recovers_without_a_restart(database: Database) {
    let mut redis = PrivateRedis::start(free_port());
    let url = redis.url();
    let started = Instant::now();
    loop {
        let client = redis::Client::open(url.as_str()).unwrap();
        if client.get_multiplexed_async_connection().await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "private redis did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    require_redis(&url).await;
    let mut db = fresh_database(Backend {
        database,
        redis: false,
    })
    .await;
    db.redis_env = vec![
        ("LATCHKEY_REDIS_URL".into(), url.clone()),
        ("LATCHKEY_REDIS_KEY_PREFIX".into(), "outage:".into()),
    ];
    let app = spawn_app_on(db, &[("LATCHKEY_REDIS_TIMEOUT_MS", "200")]).await;
    app.fixture().await;
    let rs = resource_server(&app).await;
    let before = app.login("alice@example.com").await;
    let during = app.login("alice@example.com").await;
    let kept = app.login("alice@example.com").await;
    app.revoke_public(str_of(&before, "access_token")).await;
    assert!(app.is_active(&rs, str_of(&kept, "access_token")).await);

    redis.stop();
    let (status, body) = app
        .introspect_as("rs", &rs, str_of(&kept, "access_token"))
        .await;
    assert_eq!(status, 503, "fail closed: {body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    let r = app
        .post_bearer("/api/v1/logout", str_of(&kept, "access_token"))
        .await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ready["checks"]["denylist"], "unavailable");
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Revoking while Redis is down is recorded in the log and reaches Redis later.
    assert_eq!(
        app.revoke_public(str_of(&during, "access_token")).await,
        200
    );
    // Tokens are still issued: the token endpoint does not consult the denylist.
    let (status, _) = app.refresh(str_of(&kept, "refresh_token")).await;
    assert_eq!(status, 200);

    // Redis comes back empty (it keeps nothing on disk): the log is replayed into it.
    let mut redis = PrivateRedis::start(redis.port);
    let back = Instant::now();
    loop {
        let (status, body) = app
            .introspect_as("rs", &rs, str_of(&kept, "access_token"))
            .await;
        if status == 200 {
            assert_eq!(body["active"], true);
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "the service did not recover after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (what, t) in [("before", &before), ("during", &during)] {
        let (status, body) = app
            .introspect_as("rs", &rs, str_of(t, "access_token"))
            .await;
        assert_eq!(
            (status, body["active"].as_bool()),
            (200, Some(false)),
            "a token revoked {what} the outage stays revoked"
        );
    }
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    redis.stop();
}
