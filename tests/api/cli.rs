//! The operator CLI, run as a real process against the test database.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::{fresh_database, spawn_app_on, str_of, Backend, TestDatabase};
use crate::scenarios;

mod clients;
mod users;

use clients::*;
use users::*;

scenarios!(
    cli_covers_the_operator_lifecycle_with_json_and_exit_codes,
    cli_changes_take_effect_for_new_tokens,
    cli_invites_flags_forced_changes_and_tails_the_audit_trail,
    cli_pages_users_with_after_and_offset,
);

scenarios!(
    databases:
    cli_registers_clients_for_browser_sign_in,
    cli_updates_each_client_setting,
    cli_refuses_bad_redirect_uris_with_exit_code_2,
    cli_lists_providers_and_unlinks_only_what_leaves_a_way_in,
    cli_sets_mfa_policies_on_roles_and_clients,
);

struct Cli<'a> {
    db: &'a TestDatabase,
    master_key: String,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

impl Cli<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_with(args, stdin, &[])
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_")) {
            cmd.env_remove(k);
        }
        let mut child = cmd
            .args(args)
            .env("LATCHKEY_DATABASE_URL", &self.db.url)
            .env("LATCHKEY_MASTER_KEY", &self.master_key)
            .env("LATCHKEY_ARGON2_MEMORY_KIB", "64")
            .env("LATCHKEY_ARGON2_ITERATIONS", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        let r = self.run(args, stdin);
        assert_eq!(r.code, 0, "{args:?} failed: {}", r.stderr);
        r.json()
    }
}

async fn cli_covers_the_operator_lifecycle_with_json_and_exit_codes(backend: Backend) {
    let db = fresh_database(backend).await;
    let cli = Cli {
        db: &db,
        master_key: latchkey::crypto::MasterKey::generate_base64(),
    };
    assert_eq!(cli.run(&["migrate"], None).code, 0);

    let role = cli.ok(
        &[
            "roles",
            "create",
            "manager",
            "--permission",
            "orders.view",
            "--permission",
            "orders.approve",
            "--json",
        ],
        None,
    );
    assert_eq!(
        role["permissions"],
        serde_json::json!(["orders.approve", "orders.view"])
    );
    cli.ok(
        &[
            "roles",
            "create",
            "viewer",
            "--permission",
            "orders.view",
            "--json",
        ],
        None,
    );
    assert_eq!(
        cli.run(&["roles", "create", "manager"], None).code,
        4,
        "conflict"
    );
    let role = cli.ok(
        &[
            "roles",
            "add-permission",
            "viewer",
            "reports.read",
            "--json",
        ],
        None,
    );
    assert_eq!(
        role["permissions"],
        serde_json::json!(["orders.view", "reports.read"])
    );
    let role = cli.ok(
        &[
            "roles",
            "remove-permission",
            "viewer",
            "orders.view",
            "--json",
        ],
        None,
    );
    assert_eq!(role["permissions"], serde_json::json!(["reports.read"]));
    assert_eq!(
        cli.ok(&["roles", "list", "--json"], None)
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let user = cli.ok(
        &[
            "users",
            "create",
            "--email",
            "Alice@Example.com",
            "--password-stdin",
            "--role",
            "manager",
            "--display-name",
            "Alice",
            "--attributes",
            r#"{"tenant":"acme"}"#,
            "--json",
        ],
        Some("s3cret-passphrase\n"),
    );
    let id = str_of(&user, "id").to_owned();
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["roles"], serde_json::json!(["manager"]));
    assert_eq!(user["attributes"]["tenant"], "acme");
    assert_eq!(user["has_password"], true);
    assert_eq!(
        cli.run(&["users", "create", "--email", "alice@example.com"], None)
            .code,
        4,
        "duplicate email"
    );
    assert_eq!(
        cli.run(&["users", "create", "--email", "not-an-email"], None)
            .code,
        2,
        "invalid input"
    );
    assert_eq!(
        cli.run(
            &[
                "users",
                "create",
                "--email",
                "bob@example.com",
                "--role",
                "ghost"
            ],
            None
        )
        .code,
        3,
        "unknown role"
    );
    cli.ok(
        &[
            "users",
            "create",
            "--email",
            "bob@example.com",
            "--verified",
            "--json",
        ],
        None,
    );
    cli.ok(
        &[
            "users",
            "create",
            "--email",
            "carol@example.com",
            "--inactive",
            "--json",
        ],
        None,
    );

    let list = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["users", "list", "--json"];
        a.extend_from_slice(args);
        cli.ok(&a, None)
            .as_array()
            .unwrap()
            .iter()
            .map(|u| str_of(u, "email").to_owned())
            .collect()
    };
    assert_eq!(list(&[]).len(), 3);
    assert_eq!(list(&["--active", "false"]), ["carol@example.com"]);
    assert_eq!(list(&["--verified", "true"]), ["bob@example.com"]);
    assert_eq!(list(&["--role", "manager"]), ["alice@example.com"]);
    assert_eq!(list(&["--email-contains", "BO"]), ["bob@example.com"]);

    assert_eq!(
        cli.ok(&["users", "show", &id, "--json"], None)["email"],
        "alice@example.com"
    );
    assert_eq!(
        cli.ok(&["users", "show", "alice@example.com", "--json"], None)["id"],
        id
    );
    assert_eq!(
        cli.run(&["users", "show", "nobody@example.com"], None).code,
        3
    );
    let u = cli.ok(&["users", "grant", &id, "viewer", "--json"], None);
    assert_eq!(u["roles"], serde_json::json!(["manager", "viewer"]));
    let u = cli.ok(&["users", "revoke", &id, "manager", "--json"], None);
    assert_eq!(u["roles"], serde_json::json!(["viewer"]));
    let u = cli.ok(
        &[
            "users",
            "set",
            &id,
            "--active",
            "false",
            "--verified",
            "true",
            "--json",
        ],
        None,
    );
    assert_eq!(
        (u["is_active"].as_bool(), u["email_verified"].as_bool()),
        (Some(false), Some(true))
    );
    // A new address is stored normalised and is not verified until proven.
    let u = cli.ok(
        &[
            "users",
            "set",
            &id,
            "--email",
            "Alice2@Example.com",
            "--json",
        ],
        None,
    );
    assert_eq!(
        (u["email"].as_str(), u["email_verified"].as_bool()),
        (Some("alice2@example.com"), Some(false))
    );
    cli.ok(
        &["users", "create", "--email", "taken@example.com", "--json"],
        None,
    );
    let taken = cli.run(&["users", "set", &id, "--email", "taken@example.com"], None);
    assert_eq!(taken.code, 4, "another user's address: conflict");
    assert_eq!(
        cli.run(&["users", "set", &id, "--email", "nope"], None)
            .code,
        2
    );
    let u = cli.ok(
        &[
            "users",
            "set",
            &id,
            "--email",
            "alice@example.com",
            "--verified",
            "true",
            "--json",
        ],
        None,
    );
    assert_eq!(
        (u["email"].as_str(), u["email_verified"].as_bool()),
        (Some("alice@example.com"), Some(true))
    );
    assert_eq!(
        cli.run(
            &["users", "set-password", &id, "--password-stdin"],
            Some("another-passphrase\n")
        )
        .code,
        0
    );

    let web = cli.ok(
        &[
            "clients",
            "create",
            "--name",
            "web",
            "--public",
            "--grant",
            "password",
            "--grant",
            "refresh_token",
            "--json",
        ],
        None,
    );
    assert!(web.get("client_secret").is_none());
    let billing = cli.ok(
        &[
            "clients",
            "create",
            "--name",
            "billing",
            "--confidential",
            "--grant",
            "client_credentials",
            "--scope",
            "orders.read",
            "--json",
        ],
        None,
    );
    let billing_id = str_of(&billing, "client_id").to_owned();
    assert!(str_of(&billing, "client_secret").len() >= 43);
    assert_eq!(
        cli.run(
            &[
                "clients",
                "create",
                "--name",
                "x",
                "--public",
                "--grant",
                "client_credentials"
            ],
            None
        )
        .code,
        2
    );
    assert_eq!(
        cli.ok(&["clients", "list", "--json"], None)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        cli.ok(&["clients", "disable", &billing_id, "--json"], None)["enabled"],
        false
    );
    assert_eq!(
        cli.ok(&["clients", "enable", &billing_id, "--json"], None)["enabled"],
        true
    );
    let rotated = cli.ok(&["clients", "rotate-secret", &billing_id, "--json"], None);
    assert_ne!(rotated["client_secret"], billing["client_secret"]);
    assert_eq!(
        cli.ok(&["clients", "show", &billing_id, "--json"], None)["name"],
        "billing"
    );
    assert_eq!(cli.run(&["clients", "delete", &billing_id], None).code, 0);
    assert_eq!(cli.run(&["clients", "show", &billing_id], None).code, 3);

    let key = cli.ok(&["keys", "rotate", "--alg", "EdDSA", "--json"], None);
    assert_eq!(key["alg"], "EdDSA");
    // Without --alg: every algorithm in use (EdDSA), and the configured one (ES256) first.
    let key2 = cli.ok(&["keys", "rotate", "--now", "--json"], None);
    assert_eq!(key2["alg"], "ES256");
    let rotated: Vec<&str> = key2["rotated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| str_of(k, "alg"))
        .collect();
    assert_eq!(rotated, ["ES256", "EdDSA"]);
    let keys = cli.ok(&["keys", "list", "--json"], None);
    let mut states: Vec<(&str, &str)> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (str_of(k, "alg"), str_of(k, "state")))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("ES256", "active"),
            ("EdDSA", "active"),
            ("EdDSA", "retired")
        ]
    );
    assert_eq!(cli.run(&["keys", "rotate", "--alg", "HS256"], None).code, 2);
    let kid_in = |state: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["state"] == state)
            .map(|k| str_of(k, "kid").to_owned())
            .unwrap()
    };
    let retired = kid_in("retired");
    let active = kid_in("active");
    assert_eq!(
        cli.run(&["keys", "remove", &active], None).code,
        2,
        "the active key needs --force"
    );
    assert_eq!(
        cli.ok(&["keys", "remove", &retired, "--json"], None)["state"],
        "removed"
    );
    assert_eq!(cli.run(&["keys", "remove", &retired], None).code, 3);

    assert_eq!(cli.run(&["users", "delete", &id], None).code, 0);
    assert_eq!(cli.run(&["users", "delete", &id], None).code, 3);
    assert_eq!(cli.run(&["roles", "delete", "viewer"], None).code, 0);
    assert_eq!(cli.run(&["roles", "show", "viewer"], None).code, 3);
    assert_eq!(
        cli.run(&["users", "list", "--bogus"], None).code,
        2,
        "usage error"
    );
}

async fn cli_changes_take_effect_for_new_tokens(backend: Backend) {
    let db = fresh_database(backend).await;
    let master = latchkey::crypto::MasterKey::generate_base64();
    let cli = Cli {
        db: &db,
        master_key: master.clone(),
    };
    cli.ok(
        &[
            "clients",
            "create",
            "--name",
            "web",
            "--client-id",
            "web",
            "--public",
            "--grant",
            "password",
            "--grant",
            "refresh_token",
            "--json",
        ],
        None,
    );
    cli.ok(
        &[
            "users",
            "create",
            "--email",
            "dave@example.com",
            "--password-stdin",
            "--json",
        ],
        Some("orchard-lantern-47\n"),
    );
    let db_url = db.url.clone();
    let app = spawn_app_on(
        db,
        &[
            ("LATCHKEY_MASTER_KEY", &master),
            ("LATCHKEY_CLIENT_CACHE_TTL_MS", "0"),
        ],
    )
    .await;
    let cli = Cli {
        db: &app.db,
        master_key: master,
    };
    assert_eq!(app.db.url, db_url);
    async fn login_as(app: &crate::helpers::TestApp, pw: &str) -> (u16, serde_json::Value) {
        app.password_grant("dave@example.com", pw, "web").await
    }
    let login = |pw: &'static str| login_as(&app, pw);
    let (status, body) = login("orchard-lantern-47").await;
    assert_eq!(status, 200, "{body}");
    cli.ok(
        &[
            "users",
            "set",
            "dave@example.com",
            "--active",
            "false",
            "--json",
        ],
        None,
    );
    assert_eq!(
        login("orchard-lantern-47").await.0,
        400,
        "deactivation is immediate"
    );
    assert_eq!(app.refresh(str_of(&body, "refresh_token")).await.0, 400);
    cli.ok(
        &[
            "users",
            "set",
            "dave@example.com",
            "--active",
            "true",
            "--json",
        ],
        None,
    );
    assert_eq!(
        cli.run(
            &[
                "users",
                "set-password",
                "dave@example.com",
                "--password-stdin"
            ],
            Some("new-passphrase\n")
        )
        .code,
        0
    );
    assert_eq!(login("orchard-lantern-47").await.0, 400);
    // The CLI runs on the wall clock: move the app's clock to it, past the second of the
    // set-password watermark.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.clock
        .set(latchkey::clock::Clock::now(&latchkey::clock::SystemClock));
    let (status, session) = login("new-passphrase").await;
    assert_eq!(status, 200);
    // An operator logs the user out everywhere from another process: the service learns it
    // from the revocation log within its sync interval.
    let rs = crate::helpers::resource_server(&app).await;
    assert!(app.is_active(&rs, str_of(&session, "access_token")).await);
    cli.ok(
        &["users", "revoke-tokens", "dave@example.com", "--json"],
        None,
    );
    let started = std::time::Instant::now();
    while app.is_active(&rs, str_of(&session, "access_token")).await {
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(app.refresh(str_of(&session, "refresh_token")).await.0, 400);
    assert_eq!(
        cli.run(&["users", "revoke-tokens", "nobody@example.com"], None)
            .code,
        3
    );
    // Past the second of the CLI's (wall-clock) watermark.
    app.clock
        .set(latchkey::clock::Clock::now(&latchkey::clock::SystemClock) + 1);
    assert_eq!(
        login("new-passphrase").await.0,
        200,
        "the account still works"
    );
    cli.ok(&["clients", "disable", "web", "--json"], None);
    assert_eq!(
        login("new-passphrase").await.0,
        401,
        "a disabled client is refused"
    );
}

async fn cli_invites_flags_forced_changes_and_tails_the_audit_trail(backend: Backend) {
    let db = fresh_database(backend).await;
    let cli = Cli {
        db: &db,
        master_key: latchkey::crypto::MasterKey::generate_base64(),
    };
    let outbox = tempfile::tempdir().unwrap();
    let outbox_dir = outbox.path().join("mail");
    let env = [
        ("LATCHKEY_MAIL_OUTBOX_DIR", outbox_dir.to_str().unwrap()),
        ("LATCHKEY_ISSUER", "https://id.example.com"),
    ];
    let ok = |args: &[&str], stdin: Option<&str>| {
        let r = cli.run_with(args, stdin, &env);
        assert_eq!(r.code, 0, "{args:?} failed: {}", r.stderr);
        r
    };
    ok(&["migrate"], None);
    ok(
        &["roles", "create", "staff", "--permission", "orders.view"],
        None,
    );
    ok(
        &[
            "users",
            "create",
            "--email",
            "erin@example.com",
            "--password-stdin",
        ],
        Some("orchard-lantern-47\n"),
    );
    let flagged = ok(
        &[
            "users",
            "set",
            "erin@example.com",
            "--must-change-password",
            "--json",
        ],
        None,
    )
    .json();
    assert_eq!(flagged["must_change_password"], true);
    let lifted = ok(
        &[
            "users",
            "set",
            "erin@example.com",
            "--must-change-password",
            "false",
            "--json",
        ],
        None,
    )
    .json();
    assert_eq!(lifted["must_change_password"], false);

    let invite = ok(
        &[
            "users",
            "invite",
            "--email",
            "frank@example.com",
            "--role",
            "staff",
            "--json",
        ],
        None,
    )
    .json();
    assert_eq!(invite["email"], "frank@example.com");
    assert_eq!(invite["roles"], serde_json::json!(["staff"]));
    let link = str_of(&invite, "link");
    assert!(
        link.starts_with("https://id.example.com/api/v1/signup/invitation?token="),
        "{link}"
    );
    // The invitation was delivered (the development outbox) before the command ended.
    let mails: Vec<String> = std::fs::read_dir(&outbox_dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(mails.len(), 1);
    let mail = crate::smtp_server::ReceivedMail::parse(&mails[0]);
    assert!(mail.text().contains(link), "{}", mail.text());
    assert_eq!(
        cli.run_with(
            &["users", "invite", "--email", "erin@example.com"],
            None,
            &env
        )
        .code,
        4,
        "an existing user cannot be invited"
    );
    assert_eq!(
        cli.run_with(&["users", "invite", "--email", "not-an-email"], None, &env)
            .code,
        2
    );

    let tail = ok(&["audit", "tail", "--json"], None);
    let events: Vec<serde_json::Value> = tail
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let invited = events
        .iter()
        .find(|e| e["event"] == "invite_created")
        .unwrap_or_else(|| panic!("{}", tail.stdout));
    assert_eq!(invited["detail"]["email"], "frank@example.com");
    assert_eq!(invited["ip"], "127.0.0.1");
    let human = ok(
        &["audit", "tail", "-n", "5", "--event", "invite_created"],
        None,
    );
    assert!(human.stdout.contains("invite_created"), "{}", human.stdout);
    assert_eq!(
        cli.run_with(&["audit", "tail", "--limit", "0"], None, &env)
            .code,
        2
    );
    assert_eq!(
        cli.run_with(
            &["audit", "tail", "--user", "nobody@example.com"],
            None,
            &env
        )
        .code,
        3
    );
}

/// `federation list` prints each provider's callback URL; `users links` and `users unlink`
/// show and remove a user's links, but not the last way a user without a password signs in.
async fn cli_lists_providers_and_unlinks_only_what_leaves_a_way_in(backend: Backend) {
    use latchkey::domain::{ExternalIdentity, ProviderId, SocialLink};
    let db = fresh_database(backend).await;
    let master = latchkey::crypto::MasterKey::generate_base64();
    let cli = Cli {
        db: &db,
        master_key: master.clone(),
    };
    let google = [
        ("LATCHKEY_ISSUER", "https://id.example.com"),
        ("LATCHKEY_FEDERATION_GOOGLE_CLIENT_ID", "g-client"),
        ("LATCHKEY_FEDERATION_GOOGLE_CLIENT_SECRET", "g-secret"),
    ];
    let run = cli.run_with(&["federation", "list", "--json"], None, &google);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list = run.json();
    assert_eq!(list[0]["id"], "google");
    assert_eq!(
        list[0]["callback_url"],
        "https://id.example.com/federation/google/callback"
    );
    assert!(!run.stdout.contains("g-secret"));
    let run = cli.run_with(&["federation", "list"], None, &google);
    assert!(
        run.stdout
            .contains("https://id.example.com/federation/google/callback"),
        "{}",
        run.stdout
    );

    // A user without a password and two links: one may go, the last may not.
    let created = cli.ok(
        &["users", "create", "--email", "fed@example.com", "--json"],
        None,
    );
    let user_id = latchkey::domain::UserId::parse(str_of(&created, "id")).unwrap();
    let app = spawn_app_on(db, &[("LATCHKEY_MASTER_KEY", &master)]).await;
    for (provider, sub) in [("google", "g-1"), ("github", "42")] {
        let identity = ExternalIdentity {
            provider: ProviderId::parse(provider).unwrap(),
            subject: sub.into(),
            email: None,
            email_verified: false,
            display_name: None,
            avatar_url: None,
            profile: serde_json::json!({}),
            tokens: None,
        };
        app.services
            .stores
            .social_links
            .link(&SocialLink::new(&identity, &user_id, 1_700_000_000), None)
            .await
            .unwrap();
    }
    let cli = Cli {
        db: &app.db,
        master_key: master.clone(),
    };
    let links = cli.ok(&["users", "links", "fed@example.com", "--json"], None);
    assert_eq!(links.as_array().map(Vec::len), Some(2), "{links}");
    cli.ok(
        &["users", "unlink", "fed@example.com", "github", "--json"],
        None,
    );
    let run = cli.run(&["users", "unlink", "fed@example.com", "google"], None);
    assert_eq!(run.code, 4, "the last way in stays: {}", run.stderr);
    let run = cli.run(&["users", "unlink", "fed@example.com", "nothing"], None);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let links = cli.ok(&["users", "links", "fed@example.com", "--json"], None);
    assert_eq!(links.as_array().map(Vec::len), Some(1), "{links}");
}
