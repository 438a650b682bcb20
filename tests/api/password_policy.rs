//! The password policy on passwords set by operators (CLI and admin service). Sign-up and
//! password change will use the same policy.

use latchkey::services::{AdminError, NewUserInput};
use secrecy::SecretString;

use crate::helpers::{spawn_app_with, Backend};
use crate::scenarios;

scenarios!(
    databases:
    weak_passwords_are_refused_with_every_broken_rule,
    a_breach_corpus_file_refuses_its_passwords,
);

fn new_user(email: &str, password: &str) -> NewUserInput {
    NewUserInput {
        email: email.into(),
        password: Some(SecretString::from(password)),
        username: None,
        display_name: Some("Carol Jones".into()),
        roles: vec![],
        active: true,
        email_verified: true,
        attributes: None,
    }
}

fn rules(e: AdminError) -> Vec<&'static str> {
    match e {
        AdminError::PasswordPolicy(v) => v.into_iter().map(|v| v.rule).collect(),
        other => panic!("expected a policy error, got {other:?}"),
    }
}

async fn weak_passwords_are_refused_with_every_broken_rule(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await;
    let admin = app.admin();
    let e = admin
        .create_user(new_user("carol@example.com", "123456"))
        .await
        .unwrap_err();
    assert_eq!(
        rules(e),
        ["too_short", "entirely_numeric", "too_common"],
        "every broken rule, not only the first"
    );
    let e = admin
        .create_user(new_user("carol@example.com", "carol.jones.1984"))
        .await
        .unwrap_err();
    assert_eq!(rules(e), ["too_similar"]);
    assert!(
        admin.show_user("carol@example.com").await.is_err(),
        "nothing was stored"
    );
    admin
        .create_user(new_user("carol@example.com", "violet-anchor-harbor"))
        .await
        .unwrap();
    let e = admin
        .set_password(
            "carol@example.com",
            Some(SecretString::from("jonesjonesjones")),
        )
        .await
        .unwrap_err();
    assert_eq!(rules(e), ["too_similar"]);
    let e = admin
        .set_password(
            "carol@example.com",
            Some(SecretString::from("x".repeat(2000))),
        )
        .await
        .unwrap_err();
    assert_eq!(rules(e), ["too_long"], "refused before any other work");
    // Rules can be switched off; the length rules stay.
    let relaxed = spawn_app_with(
        backend,
        &[
            ("LATCHKEY_PASSWORD_REJECT_COMMON", "false"),
            ("LATCHKEY_PASSWORD_REJECT_NUMERIC", "false"),
            ("LATCHKEY_PASSWORD_MIN_LENGTH", "6"),
        ],
    )
    .await;
    relaxed
        .admin()
        .create_user(new_user("dan@example.com", "123456"))
        .await
        .unwrap();
    let e = relaxed
        .admin()
        .create_user(new_user("erin@example.com", "12345"))
        .await
        .unwrap_err();
    assert_eq!(rules(e), ["too_short"]);
    // The CLI answers exit code 2 and names every broken rule.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "users",
            "create",
            "--email",
            "frank@example.com",
            "--password-stdin",
        ])
        .env("LATCHKEY_DATABASE_URL", &app.db.url)
        .env(
            "LATCHKEY_MASTER_KEY",
            secrecy::ExposeSecret::expose_secret(app.settings.keys.master_key.as_ref().unwrap()),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"password\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("at least 12 characters") && stderr.contains("most common"),
        "{stderr}"
    );
}

async fn a_breach_corpus_file_refuses_its_passwords(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("breached.txt");
    // SHA-1 of "amber-breached-lantern" in the Pwned Passwords format, and a plain entry.
    std::fs::write(
        &corpus,
        "A353BD8698C9E9AD150E1519379C83068B9C8E46:3\nplain-breached-phrase\n",
    )
    .unwrap();
    let path = corpus.display().to_string();
    let app = spawn_app_with(backend, &[("LATCHKEY_PASSWORD_BREACH_CORPUS_FILE", &path)]).await;
    let e = app
        .admin()
        .create_user(new_user("gina@example.com", "plain-breached-phrase"))
        .await
        .unwrap_err();
    assert_eq!(rules(e), ["breached"]);
    let e = app
        .admin()
        .create_user(new_user("gina@example.com", "amber-breached-lantern"))
        .await
        .unwrap_err();
    assert_eq!(rules(e), ["breached"], "listed by its SHA-1");
    app.admin()
        .create_user(new_user("gina@example.com", "harbor-violet-anchor"))
        .await
        .unwrap();
}
