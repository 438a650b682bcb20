//! Graceful shutdown (issue 16): `latchkey serve` as a process, stopped with SIGTERM right
//! after a request queued a mail whose first delivery attempt the SMTP server refuses. The
//! listener closes at once, the mail is still delivered (its retry comes during the drain),
//! and the process exits 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latchkey::crypto::MasterKey;

use crate::helpers::*;
use crate::smtp_server::SmtpServer;

crate::scenarios!(cells [sqlite_embedded, postgres_redis]:
    sigterm_closes_the_listener_drains_the_mail_and_exits_zero,
);

fn latchkey(db: &TestDatabase, master_key: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_")) {
        cmd.env_remove(k);
    }
    cmd.env("LATCHKEY_DATABASE_URL", &db.url)
        .env("LATCHKEY_MASTER_KEY", master_key)
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "64")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .env("LATCHKEY_LOG_LEVEL", "info")
        .envs(db.redis_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd
}

async fn sigterm_closes_the_listener_drains_the_mail_and_exits_zero(backend: Backend) {
    let db = fresh_database(backend).await;
    let master_key = MasterKey::generate_base64();
    let created = latchkey(&db, &master_key, &[])
        .args([
            "users",
            "create",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(PASSWORD.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let smtp = SmtpServer::start().await;
    // The first attempt is refused (a transient failure): the mail waits for its retry.
    smtp.refuse_next(1);
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut server = latchkey(
        &db,
        &master_key,
        &[
            ("LATCHKEY_BIND", format!("127.0.0.1:{port}")),
            ("LATCHKEY_WORKERS", "1".into()),
            ("LATCHKEY_SHUTDOWN_TIMEOUT", "20s".into()),
            ("LATCHKEY_MAIL_TRANSPORT", "smtp".into()),
            ("LATCHKEY_SMTP_HOST", "127.0.0.1".into()),
            ("LATCHKEY_SMTP_PORT", smtp.port().to_string()),
            ("LATCHKEY_SMTP_SECURITY", "none".into()),
            ("LATCHKEY_MAIL_FROM", "Latchkey <id@example.com>".into()),
        ],
    )
    .arg("serve")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let http = reqwest::Client::new();
    let up = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "the server did not come up"
        );
        if let Some(status) = server.try_wait().unwrap() {
            panic!("the server exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let r = http
        .post(format!("{base}/api/v1/password/reset"))
        .json(&serde_json::json!({"email": "bob@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let stop = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // The listener closes at once (well before the mail's retry).
    let mut closed = false;
    for _ in 0..40 {
        if http.get(format!("{base}/healthz")).send().await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "the listener still answers after SIGTERM");

    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            stop.elapsed() < Duration::from_secs(30),
            "the server did not exit within 30 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = {
        use std::io::Read;
        let mut s = String::new();
        server
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    assert!(status.success(), "exit status {status}:\n{log}");
    assert_eq!(smtp.refused(), 1, "the first attempt was refused:\n{log}");
    assert_eq!(
        smtp.count_to("bob@example.com"),
        1,
        "the queued mail was delivered before the exit:\n{log}"
    );
    assert!(log.contains("stopping"), "{log}");
}
