//! Regression tests for the findings of the security review (issue 10): pre-registration
//! through email verification, the per-IP login limit under parallel bursts, request limits
//! on the token, revocation and introspection endpoints, file modes, ASVS defaults, the
//! admin surface and `X-Forwarded-For` entries with ports. Each failed on the code before
//! its fix.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp_server::SmtpServer;

const BOB: &str = "bob@example.com";
const STRANGER_PASSWORD: &str = "the stranger's passphrase";

crate::scenarios!(
    verifying_an_address_needs_the_password_chosen_at_sign_up,
    a_magic_link_before_the_verification_link_leaves_the_stranger_nothing,
    the_owner_verifies_with_the_password_or_a_session_of_the_sign_up,
    parallel_logins_for_many_accounts_cannot_pass_the_ip_limit_together,
    successful_logins_do_not_count_against_the_ip_limit,
    refresh_and_revocation_loops_of_one_user_are_rate_limited,
    introspection_and_client_token_requests_are_rate_limited_per_client,
    passwords_need_twelve_characters_and_magic_codes_live_ten_minutes,
    forwarded_for_entries_with_ports_are_clients_of_their_own,
    admin_failures_are_throttled_and_admin_writes_audited,
    the_admin_api_can_listen_on_its_own_address,
);

async fn stranger_signs_up_bob(app: &TestApp, smtp: &SmtpServer) -> String {
    let (status, body) = app
        .post_json(
            "/api/v1/signup",
            json!({"email": BOB, "password": STRANGER_PASSWORD}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    token_in(&smtp.wait_for(BOB, MAIL_WAIT).await, "/api/v1/email/verify")
}

async fn owner_signs_in_with_a_magic_code(app: &TestApp, smtp: &SmtpServer) -> Value {
    app.clock.advance(61);
    let (status, _) = app
        .post_json(
            "/api/v1/magic-link",
            json!({"email": BOB, "client_id": "spa"}),
        )
        .await;
    assert_eq!(status, 202);
    let code = code_in(&smtp.wait_for(BOB, MAIL_WAIT).await);
    let (status, body) = app
        .token_json(&[
            (
                "grant_type",
                "urn:latchkey:params:oauth:grant-type:magic-link",
            ),
            ("client_id", "spa"),
            ("email", BOB),
            ("code", &code),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn verified(app: &TestApp, email: &str) -> bool {
    app.admin().show_user(email).await.unwrap().email_verified
}

/// Finding 1, in the order "verification link, then magic link": the mailbox owner's click
/// on the verification link does not adopt a password somebody else chose.
async fn verifying_an_address_needs_the_password_chosen_at_sign_up(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    spa_client(&app).await;
    let token = stranger_signs_up_bob(&app, &smtp).await;
    let stranger = app.login_as_with(BOB, STRANGER_PASSWORD).await;
    // Bob opens the link: without the sign-up's password the address is not confirmed.
    let (status, body) = app
        .post_json("/api/v1/email/verify", json!({"token": token}))
        .await;
    assert_oauth_error(status, &body, 400, "password_required");
    assert!(!verified(&app, BOB).await);
    let (status, body) = app
        .post_json(
            "/api/v1/email/verify",
            json!({"token": token, "password": "not the stranger's password"}),
        )
        .await;
    assert_oauth_error(status, &body, 400, "invalid_credentials");
    assert!(!verified(&app, BOB).await);
    // The hosted page asks for the password too, and says what to do without it.
    let page = app
        .http
        .post(app.url("/api/v1/email/verify"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 400);
    let html = page.text().await.unwrap();
    assert!(html.contains("type=\"password\""), "{html}");
    assert!(html.contains("password reset"), "{html}");
    // Bob then signs in with a magic link: the stranger's password and session end.
    owner_signs_in_with_a_magic_code(&app, &smtp).await;
    let (status, _) = app.password_grant(BOB, STRANGER_PASSWORD, "web").await;
    assert_eq!(status, 400);
    let (status, _) = app.refresh(str_of(&stranger, "refresh_token")).await;
    assert_eq!(status, 400);
    assert!(verified(&app, BOB).await);
}

/// Finding 1, in the order "magic link, then verification link".
async fn a_magic_link_before_the_verification_link_leaves_the_stranger_nothing(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    spa_client(&app).await;
    let token = stranger_signs_up_bob(&app, &smtp).await;
    let stranger = app.login_as_with(BOB, STRANGER_PASSWORD).await;
    let bob = owner_signs_in_with_a_magic_code(&app, &smtp).await;
    // The verification link, opened afterwards, needs no password (there is none left) and
    // brings none back.
    let (status, body) = app
        .post_json("/api/v1/email/verify", json!({"token": token}))
        .await;
    assert!(
        status == 200 || (status == 400 && body["error"] == "invalid_or_expired_token"),
        "{status} {body}"
    );
    let (status, _) = app.password_grant(BOB, STRANGER_PASSWORD, "web").await;
    assert_eq!(status, 400);
    let (status, _) = app.refresh(str_of(&stranger, "refresh_token")).await;
    assert_eq!(status, 400);
    let (status, _) = app.refresh_as("spa", str_of(&bob, "refresh_token")).await;
    assert_eq!(status, 200);
    let me = app.admin().show_user(BOB).await.unwrap();
    assert!(me.email_verified && !me.has_password);
}

/// Finding 1: whoever chose the password confirms with it, or with a session it opened.
async fn the_owner_verifies_with_the_password_or_a_session_of_the_sign_up(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    let token = stranger_signs_up_bob(&app, &smtp).await;
    let (status, body) = app
        .post_json(
            "/api/v1/email/verify",
            json!({"token": token, "password": STRANGER_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"email": BOB, "email_verified": true}));
    assert_eq!(
        app.password_grant(BOB, STRANGER_PASSWORD, "web").await.0,
        200
    );
    // Carol signs in before she confirms (verification is optional): her session proves it.
    let carol = "carol@example.com";
    app.clock.advance(61);
    let (status, _) = app
        .post_json(
            "/api/v1/signup",
            json!({"email": carol, "password": STRANGER_PASSWORD}),
        )
        .await;
    assert_eq!(status, 202);
    let token = token_in(
        &smtp.wait_for(carol, MAIL_WAIT).await,
        "/api/v1/email/verify",
    );
    let session = app.login_as_with(carol, STRANGER_PASSWORD).await;
    let r = app
        .http
        .post(app.url("/api/v1/email/verify"))
        .bearer_auth(str_of(&session, "access_token"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_answer(r).await;
    assert_eq!(status, 200, "{body}");
    assert!(verified(&app, carol).await);
    assert_eq!(app.refresh(str_of(&session, "refresh_token")).await.0, 200);
}

/// A password grant for `email` with a wrong password; whether it was throttled before the
/// password was checked (a `Retry-After` header).
async fn wrong_login(http: reqwest::Client, url: String, email: String) -> bool {
    let r = http
        .post(url)
        .form(&[
            ("grant_type", "password"),
            ("username", email.as_str()),
            ("password", "a wrong password for sure"),
            ("client_id", "web"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    r.headers().contains_key("retry-after")
}

/// Finding 2: sixty simultaneous guesses for sixty accounts from one address, with room for
/// ten failures per address: at most ten reach the password check.
async fn parallel_logins_for_many_accounts_cannot_pass_the_ip_limit_together(backend: Backend) {
    let app = spawn_app_with(backend, &[("LATCHKEY_THROTTLE_IP_MAX_FAILURES", "10")]).await;
    app.fixture().await;
    let tasks: Vec<_> = (0..60)
        .map(|n| {
            tokio::spawn(wrong_login(
                app.http.clone(),
                app.url("/oauth2/token"),
                format!("nobody{n}@example.com"),
            ))
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        if !t.await.unwrap() {
            checked += 1;
        }
    }
    assert!(
        (1..=10).contains(&checked),
        "{checked} of 60 parallel guesses were checked"
    );
    // The address stays refused; another address is not.
    assert!(
        wrong_login(
            app.http.clone(),
            app.url("/oauth2/token"),
            "late@example.com".into()
        )
        .await
    );
}

/// Finding 2: the limit counts attempts before the check and refunds successes, so an
/// address where many users sign in correctly (an office, a NAT) is never refused.
async fn successful_logins_do_not_count_against_the_ip_limit(backend: Backend) {
    let app = spawn_app_with(backend, &[("LATCHKEY_THROTTLE_IP_MAX_FAILURES", "3")]).await;
    app.fixture().await;
    for _ in 0..12 {
        app.login("alice@example.com").await;
    }
    for n in 0..3 {
        assert!(
            !wrong_login(
                app.http.clone(),
                app.url("/oauth2/token"),
                format!("x{n}@example.com")
            )
            .await
        );
    }
    assert!(
        wrong_login(
            app.http.clone(),
            app.url("/oauth2/token"),
            "x9@example.com".into()
        )
        .await
    );
}

fn assert_rate_limited(r: &reqwest::Response) -> u64 {
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    retry
}

/// Finding 5: one user refreshing and revoking in a loop meets a limit (429 + Retry-After in
/// the standard error shape), which passes with time.
async fn refresh_and_revocation_loops_of_one_user_are_rate_limited(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("LATCHKEY_THROTTLE_USER_REQUESTS_PER_MINUTE", "10")],
    )
    .await;
    app.fixture().await;
    let mut refresh = str_of(&app.login("alice@example.com").await, "refresh_token").to_owned();
    let mut limited = None;
    for _ in 0..30 {
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", "web"),
            ])
            .await;
        if r.status().as_u16() == 429 {
            assert_rate_limited(&r);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "too_many_requests", "{body}");
            assert!(body["error_description"].is_string());
            limited = Some(refresh.clone());
            break;
        }
        assert_eq!(r.status().as_u16(), 200);
        let body: Value = r.json().await.unwrap();
        let access = str_of(&body, "access_token").to_owned();
        refresh = str_of(&body, "refresh_token").to_owned();
        // Each access token revoked at once: the loop that filled the revocation log.
        let r = app
            .http
            .post(app.url("/oauth2/revoke"))
            .form(&[("token", access.as_str()), ("client_id", "web")])
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            assert_rate_limited(&r);
            limited = Some(refresh.clone());
            break;
        }
        assert_eq!(r.status().as_u16(), 200);
    }
    let refresh = limited.expect("the loop was never limited");
    // The refused refresh did not use the token up: it works once the minute has passed.
    app.clock.advance(120);
    let (status, body) = app.refresh(&refresh).await;
    assert_eq!(status, 200, "{body}");
}

/// Finding 5: a resource server's introspection calls and a confidential client's token
/// requests have limits per client.
async fn introspection_and_client_token_requests_are_rate_limited_per_client(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            (
                "LATCHKEY_THROTTLE_INTROSPECTIONS_PER_CLIENT_PER_MINUTE",
                "5",
            ),
            ("LATCHKEY_THROTTLE_CLIENT_REQUESTS_PER_MINUTE", "5"),
        ],
    )
    .await;
    let f = app.fixture().await;
    let rs_secret = resource_server(&app).await;
    let access = str_of(&app.login("alice@example.com").await, "access_token").to_owned();
    let mut seen = Vec::new();
    for _ in 0..8 {
        let r = app
            .post_basic(
                "/oauth2/introspect",
                "rs",
                &rs_secret,
                &[("token", access.as_str())],
            )
            .await;
        seen.push(r.status().as_u16());
        if r.status().as_u16() == 429 {
            assert_rate_limited(&r);
        }
    }
    assert_eq!(seen, vec![200, 200, 200, 200, 200, 429, 429, 429]);
    let mut seen = Vec::new();
    for _ in 0..8 {
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &f.billing_id),
                ("client_secret", &f.billing_secret),
            ])
            .await;
        seen.push(r.status().as_u16());
    }
    assert_eq!(seen, vec![200, 200, 200, 200, 200, 429, 429, 429]);
    app.clock.advance(120);
    assert_eq!(
        app.client_credentials(&f.billing_id, &f.billing_secret)
            .await
            .0,
        200
    );
}

/// Finding 7: ASVS 4.0 L2 V2.1.1 (12 characters at least) and V2.7.2 (out-of-band codes
/// live at most 10 minutes).
async fn passwords_need_twelve_characters_and_magic_codes_live_ten_minutes(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    app.fixture().await;
    spa_client(&app).await;
    let (status, body) = app
        .post_json(
            "/api/v1/signup",
            json!({"email": "dora@example.com", "password": "k7#mqv!x2pz"}),
        )
        .await;
    assert_eq!(status, 400, "an 11-character password: {body}");
    let (status, _) = app
        .post_json(
            "/api/v1/magic-link",
            json!({"email": "alice@example.com", "client_id": "spa"}),
        )
        .await;
    assert_eq!(status, 202);
    let code = code_in(&smtp.wait_for("alice@example.com", MAIL_WAIT).await);
    app.clock.advance(601);
    let (status, body) = app
        .token_json(&[
            (
                "grant_type",
                "urn:latchkey:params:oauth:grant-type:magic-link",
            ),
            ("client_id", "spa"),
            ("email", "alice@example.com"),
            ("code", &code),
        ])
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}

/// Finding 9: behind a trusted proxy that appends ports, clients keep buckets of their own.
async fn forwarded_for_entries_with_ports_are_clients_of_their_own(backend: Backend) {
    let app = spawn_app_with(backend, &[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")]).await;
    app.fixture().await;
    let attempt = |forwarded: &'static str, password: &'static str| {
        let http = app.http.clone();
        let url = app.url("/oauth2/token");
        async move {
            http.post(url)
                .header("x-forwarded-for", forwarded)
                .form(&[
                    ("grant_type", "password"),
                    ("username", "alice@example.com"),
                    ("password", password),
                    ("client_id", "web"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // An attacker at 203.0.113.9 (the proxy adds its port) locks its own pair out.
    let mut locked = false;
    for _ in 0..8 {
        let r = attempt("203.0.113.9:51000", "not alice's password").await;
        if r.headers().contains_key("retry-after") {
            locked = true;
            break;
        }
    }
    assert!(locked, "the attacker's pair was never locked");
    // Alice, at another address written as [v6]:port, signs in.
    let r = attempt("[2001:db8:5::7]:443", PASSWORD).await;
    assert_eq!(r.status().as_u16(), 200);
    let r = attempt("198.51.100.4:8080", PASSWORD).await;
    assert_eq!(r.status().as_u16(), 200);
    // The audit trail shows the client addresses, not the proxy's.
    let failed = app.wait_for_audit("login_failed").await;
    assert!(failed
        .iter()
        .all(|e| e.event.ip.as_deref() == Some("203.0.113.9")));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const ADMIN_TOKEN: &str = "an-admin-token-that-is-long-enough-to-be-taken-seriously";

/// Finding 8: wrong admin tokens are throttled per address and audited; every admin write is
/// audited with what changed.
async fn admin_failures_are_throttled_and_admin_writes_audited(backend: Backend) {
    let app = spawn_app_with(backend, &[("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = app
            .http
            .get(app.url("/admin/v1/keys"))
            .bearer_auth("a guess")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status().as_u16() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=901).contains(&retry), "{retry}");
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 10);
    assert_eq!(statuses.last(), Some(&429));
    // Refused while the address is throttled, even with the right token.
    let r = app
        .http
        .get(app.url("/admin/v1/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let failures = app.wait_for_audit("admin_auth_failed").await;
    assert!(failures.len() >= 10, "{}", failures.len());
    app.clock.advance(16 * 60);
    let (status, key) = app
        .send_bearer(
            Method::POST,
            "/admin/v1/keys/rotate",
            ADMIN_TOKEN,
            Some(json!({"alg": "ES256"})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["state"], "pending", "{key}");
    let rotated = app.wait_for_audit("admin_key_rotated").await;
    assert_eq!(rotated[0].event.detail["kid"], key["kid"]);
    assert_eq!(rotated[0].event.detail["alg"], "ES256");
    let kid = str_of(&key, "kid").to_owned();
    let (status, _) = app
        .send_bearer(
            Method::POST,
            &format!("/admin/v1/keys/{kid}/retire"),
            ADMIN_TOKEN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let retired = app.wait_for_audit("admin_key_retired").await;
    assert_eq!(retired[0].event.detail["kid"], kid.as_str());
}

/// Finding 8: with `admin.bind`, the admin API is served there and nowhere else.
async fn the_admin_api_can_listen_on_its_own_address(backend: Backend) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let app = spawn_app_with(
        backend,
        &[
            ("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN),
            ("LATCHKEY_ADMIN_BIND", bind.as_str()),
        ],
    )
    .await;
    let public = app
        .http
        .get(app.url("/admin/v1/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status().as_u16(), 404);
    let admin = app
        .http
        .get(format!("http://{bind}/admin/v1/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = admin.status().as_u16();
    let body: Value = admin.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(!body["keys"].as_array().unwrap().is_empty());
    // Only the admin API is served there.
    let other = app
        .http
        .get(format!("http://{bind}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
}

/// Finding 6: the SQLite database, its WAL and shared-memory files are the service's alone.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_files_and_their_folder_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let master = latchkey::crypto::MasterKey::generate_base64();
    let same_key = [("LATCHKEY_MASTER_KEY", master.as_str())];
    let db = TestDatabase::sqlite_at(data.join("latchkey.db"));
    let app = spawn_app_on(db, &same_key).await;
    app.fixture().await;
    app.login("alice@example.com").await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data folder");
    for name in ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"] {
        let path = data.join(name);
        assert!(path.exists(), "{name}");
        assert_eq!(mode(&path), 0o600, "{name}");
    }
    // A database created by an earlier version with 0644 is tightened at start-up.
    drop(app);
    std::fs::set_permissions(
        data.join("latchkey.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let db = TestDatabase::sqlite_at(data.join("latchkey.db"));
    let _app = spawn_app_on(db, &same_key).await;
    assert_eq!(mode(&data.join("latchkey.db")), 0o600);
}

/// Finding 7: the production profile refuses an http issuer that is not on loopback.
#[test]
fn production_refuses_a_plain_http_issuer_off_loopback() {
    use latchkey::config::Settings;
    let load = |issuer: &str| {
        Settings::load(
            None,
            [
                ("LATCHKEY_PROFILE", "production"),
                ("LATCHKEY_ISSUER", issuer),
                (
                    "LATCHKEY_MASTER_KEY",
                    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                ),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let err = load("http://id.example.com").unwrap_err();
    assert!(err.contains("https"), "{err}");
    load("https://id.example.com").unwrap();
    load("http://127.0.0.1:8080").unwrap();
    load("http://localhost:8080").unwrap();
    load("http://[::1]:8080").unwrap();
    let dev = Settings::load(None, std::iter::empty()).unwrap();
    assert_eq!(dev.passwords.min_length, 12);
    assert_eq!(dev.accounts.magic_link_ttl.as_secs(), 600);
}
