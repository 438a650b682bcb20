use std::sync::Arc;

use latchkey::clock::{Clock, MockClock};
use latchkey::config::Settings;
use latchkey::crypto::MasterKey;
use latchkey::domain::{ClientKind, ClientTokenSettings};
use latchkey::services::{AdminService, NewClientInput, NewUserInput};
use latchkey::startup::Application;
use latchkey::startup::Services;
use secrecy::SecretString;
use serde_json::Value;

mod backend;

pub use backend::{Backend, Database};

pub fn postgres_admin_url() -> String {
    std::env::var("LK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("LK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Fails loudly when the test Redis is not reachable.
pub async fn require_redis(url: &str) {
    let client = redis::Client::open(url).expect("redis url");
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!(
            "Redis is required for the redis tests and is not reachable at {url}: {e}. \
             Run scripts/test.sh, which provisions it, or set LK_TEST_REDIS_URL."
        ),
        Err(_) => panic!("Redis at {url} did not answer PING within 5 s"),
    }
}

/// A fresh, empty database for one test (SQLite files live in a temp dir removed on drop),
/// and for Redis tests the Redis URL with a key prefix of the test's own.
pub struct TestDatabase {
    pub url: String,
    /// `LATCHKEY_*` settings that put the shared state (denylist, throttle) in Redis; empty
    /// when Redis is off.
    pub redis_env: Vec<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// An SQLite database at `path` (the caller owns the folder), with Redis off.
    pub fn sqlite_at(path: std::path::PathBuf) -> Self {
        Self {
            url: format!("sqlite://{}", path.display()),
            redis_env: vec![],
            _dir: None,
        }
    }
}

/// The `LATCHKEY_*` settings for `backend`'s Redis cell: none when Redis is off, else the test
/// Redis with a key prefix of the caller's own.
pub async fn redis_env(backend: Backend) -> Vec<(String, String)> {
    if !backend.redis {
        return vec![];
    }
    let url = redis_url();
    require_redis(&url).await;
    vec![
        ("LATCHKEY_REDIS_URL".to_owned(), url),
        (
            "LATCHKEY_REDIS_KEY_PREFIX".to_owned(),
            format!("lk_test_{}:", uuid::Uuid::new_v4().simple()),
        ),
    ]
}

pub async fn fresh_database(backend: Backend) -> TestDatabase {
    let redis_env = redis_env(backend).await;
    match backend.database {
        Database::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
            TestDatabase {
                url,
                redis_env,
                _dir: Some(dir),
            }
        }
        Database::Postgres => {
            use sqlx::Connection;
            let admin = postgres_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required for the postgres tests and is not reachable at {admin}: {e}. \
                     Run scripts/test.sh, which provisions it, or set LK_TEST_POSTGRES_URL."
                )
            });
            let name = format!("lk_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin.clone());
            TestDatabase {
                url: format!("{base}/{name}"),
                redis_env,
                _dir: None,
            }
        }
    }
}

/// Settings for a test app on `db`, with cheap argon2 and any extra `LATCHKEY_*` overrides.
pub fn test_settings(db: &TestDatabase, extra: &[(&str, &str)]) -> Settings {
    test_settings_from(db, None, extra)
}

/// As [`test_settings`], over a configuration file.
pub fn test_settings_from(
    db: &TestDatabase,
    file: Option<&std::path::Path>,
    extra: &[(&str, &str)],
) -> Settings {
    let mut env: Vec<(String, String)> = vec![
        ("LATCHKEY_BIND".into(), "127.0.0.1:0".into()),
        ("LATCHKEY_DATABASE_URL".into(), db.url.clone()),
        ("LATCHKEY_DATABASE_MAX_CONNECTIONS".into(), "8".into()),
        ("LATCHKEY_MASTER_KEY".into(), MasterKey::generate_base64()),
        ("LATCHKEY_ARGON2_MEMORY_KIB".into(), "64".into()),
        ("LATCHKEY_ARGON2_ITERATIONS".into(), "1".into()),
        ("LATCHKEY_HASHING_THREADS".into(), "2".into()),
        ("LATCHKEY_WORKERS".into(), "1".into()),
        ("LATCHKEY_LOG_LEVEL".into(), "warn".into()),
    ];
    env.extend(db.redis_env.iter().cloned());
    for (k, v) in extra {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    Settings::load(file, env).unwrap_or_else(|e| panic!("test settings: {e}"))
}

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub clock: Arc<MockClock>,
    pub services: Services,
    pub settings: Settings,
    pub db: TestDatabase,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let db = fresh_database(backend).await;
    spawn_app_on(db, extra).await
}

pub async fn spawn_app_on(db: TestDatabase, extra: &[(&str, &str)]) -> TestApp {
    let settings = test_settings(&db, extra);
    spawn_app_with_settings(db, settings).await
}

/// A test app whose configuration file is `toml` (then the `LATCHKEY_*` overrides).
pub async fn spawn_app_with_config(
    backend: Backend,
    toml: &str,
    extra: &[(&str, &str)],
) -> TestApp {
    let db = fresh_database(backend).await;
    let file = std::env::temp_dir().join(format!("latchkey-test-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&file, toml).unwrap();
    let settings = test_settings_from(&db, Some(&file), extra);
    let _ = std::fs::remove_file(&file);
    spawn_app_with_settings(db, settings).await
}

async fn spawn_app_with_settings(db: TestDatabase, settings: Settings) -> TestApp {
    let clock = Arc::new(MockClock::starting_now());
    let (app, services) = Application::build(&settings, clock.clone())
        .await
        .unwrap_or_else(|e| panic!("application failed to start: {e:#}"));
    let address = format!("http://127.0.0.1:{}", app.port());
    let settings = app.settings().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        clock,
        services,
        settings,
        db,
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A public client `web` (password + refresh), a confidential `billing`
/// (client_credentials), a role `manager` and a user alice with it.
pub struct Fixture {
    pub user_id: String,
    pub billing_id: String,
    pub billing_secret: String,
}

/// Registers a client with the given grants and scopes; returns its secret if confidential.
pub async fn client_with(
    admin: &AdminService,
    kind: ClientKind,
    id: &str,
    grants: &[&str],
    scopes: &[&str],
) -> Option<String> {
    admin
        .create_client(NewClientInput {
            client_id: Some(id.into()),
            name: id.into(),
            kind,
            grant_types: grants.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            redirect_uris: vec![],
            audiences: vec![],
            default_audience: None,
            token_settings: ClientTokenSettings::default(),
        })
        .await
        .unwrap()
        .client_secret
}

pub async fn public_client(admin: &AdminService, id: &str, grants: &[&str], scopes: &[&str]) {
    client_with(admin, ClientKind::Public, id, grants, scopes).await;
}

pub async fn confidential_client(
    admin: &AdminService,
    id: &str,
    grants: &[&str],
    scopes: &[&str],
) -> String {
    client_with(admin, ClientKind::Confidential, id, grants, scopes)
        .await
        .unwrap()
}

pub async fn create_user(admin: &AdminService, email: &str, roles: &[&str]) -> String {
    admin
        .create_user(NewUserInput {
            email: email.into(),
            password: Some(SecretString::from(PASSWORD)),
            username: None,
            display_name: None,
            roles: roles.iter().map(|s| s.to_string()).collect(),
            active: true,
            email_verified: true,
            attributes: None,
        })
        .await
        .unwrap()
        .id
}

impl TestApp {
    pub fn admin(&self) -> &AdminService {
        &self.services.admin
    }

    pub async fn fixture(&self) -> Fixture {
        let admin = self.admin();
        admin
            .create_role(
                "manager",
                &["orders.view".into(), "orders.approve".into()],
                None,
                false,
            )
            .await
            .unwrap();
        admin
            .create_role(
                "auditor",
                &["orders.view".into(), "audit.read".into()],
                None,
                false,
            )
            .await
            .unwrap();
        public_client(
            admin,
            "web",
            &["password", "refresh_token"],
            &["orders.read", "orders.write"],
        )
        .await;
        let billing_secret =
            confidential_client(admin, "billing", &["client_credentials"], &["orders.read"]).await;
        let user_id = create_user(admin, "alice@example.com", &["manager", "auditor"]).await;
        Fixture {
            user_id,
            billing_id: "billing".into(),
            billing_secret,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GETs a JSON document.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path_or_url: &str) -> T {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.url(path_or_url)
        };
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The password grant for `email` through the public client `client_id`.
    pub async fn password_grant(
        &self,
        email: &str,
        password: &str,
        client_id: &str,
    ) -> (u16, Value) {
        self.token_json(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
            ("client_id", client_id),
        ])
        .await
    }

    /// The client_credentials grant with client_secret_post.
    pub async fn client_credentials(&self, client_id: &str, secret: &str) -> (u16, Value) {
        self.token_json(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .await
    }

    /// POSTs a form to the token endpoint.
    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/oauth2/token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn token_json(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self.token(form).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn login(&self, email: &str) -> Value {
        let (status, body) = self
            .token_json(&[
                ("grant_type", "password"),
                ("username", email),
                ("password", PASSWORD),
                ("client_id", "web"),
            ])
            .await;
        assert_eq!(status, 200, "login failed: {body}");
        body
    }

    /// The password grant through `web`, asserting success.
    pub async fn login_as_with(&self, email: &str, password: &str) -> Value {
        let (status, body) = self.password_grant(email, password, "web").await;
        assert_eq!(status, 200, "login failed: {body}");
        body
    }

    pub async fn refresh_as(&self, client_id: &str, refresh_token: &str) -> (u16, Value) {
        self.token_json(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.token_json(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "web"),
        ])
        .await
    }
}

/// Decodes a JWT's header and claims without verifying (tests verify separately).
pub fn jwt_parts(jwt: &str) -> (Value, Value) {
    use base64::Engine;
    let mut it = jwt.split('.');
    let dec = |p: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    };
    let header = dec(it.next().unwrap());
    let claims = dec(it.next().unwrap());
    (header, claims)
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// Asserts an RFC 6749 §5.2 error answer.
#[track_caller]
pub fn assert_oauth_error(status: u16, body: &Value, expected_status: u16, expected_error: &str) {
    assert_eq!(
        (status, body["error"].as_str()),
        (expected_status, Some(expected_error)),
        "{body}"
    );
}

/// Another instance on the same database, master key, issuer and denylist (Redis prefix), as
/// a second process of a scaled-out deployment (or the same one after a restart) would be.
pub async fn spawn_instance_like(app: &TestApp, extra: &[(&str, &str)]) -> TestApp {
    use secrecy::ExposeSecret;
    let master = app
        .settings
        .keys
        .master_key
        .as_ref()
        .map(|k| k.expose_secret().to_owned())
        .expect("test apps have a master key");
    let db = TestDatabase {
        url: app.db.url.clone(),
        redis_env: app.db.redis_env.clone(),
        _dir: None,
    };
    let issuer = app.settings.issuer().to_owned();
    let mut env: Vec<(&str, &str)> = vec![
        ("LATCHKEY_MASTER_KEY", master.as_str()),
        ("LATCHKEY_ISSUER", issuer.as_str()),
    ];
    env.extend_from_slice(extra);
    let other = spawn_app_on(db, &env).await;
    other.clock.set(app.clock.now());
    other
}

/// A confidential resource-server client `rs` that may introspect and read the feed.
pub async fn resource_server(app: &TestApp) -> String {
    confidential_client(
        app.admin(),
        "rs",
        &["client_credentials"],
        &["latchkey.introspect"],
    )
    .await
}

impl TestApp {
    /// Activates or deactivates a user, as an operator.
    pub async fn set_active(&self, email: &str, active: bool) {
        self.admin()
            .update_user(
                email,
                latchkey::services::UserUpdate {
                    active: Some(active),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }

    /// POSTs a form with HTTP Basic client authentication.
    pub async fn post_basic(
        &self,
        path: &str,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .basic_auth(client_id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Introspects `token` as the confidential client `client_id`.
    pub async fn introspect_as(&self, client_id: &str, secret: &str, token: &str) -> (u16, Value) {
        let r = self
            .post_basic("/oauth2/introspect", client_id, secret, &[("token", token)])
            .await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// Whether `token` introspects as active (asserting a 200 answer).
    pub async fn is_active(&self, rs_secret: &str, token: &str) -> bool {
        let (status, body) = self.introspect_as("rs", rs_secret, token).await;
        assert_eq!(status, 200, "{body}");
        body["active"].as_bool().unwrap()
    }

    /// Revokes `token` as the public client `web`.
    pub async fn revoke_public(&self, token: &str) -> u16 {
        self.http
            .post(self.url("/oauth2/revoke"))
            .form(&[("token", token), ("client_id", "web")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// POSTs to a bearer-authenticated endpoint.
    pub async fn post_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// An app that delivers its mail over SMTP to a real test server on loopback.
pub async fn spawn_mail_app(
    backend: Backend,
    extra: &[(&str, &str)],
) -> (TestApp, crate::smtp_server::SmtpServer) {
    let smtp = crate::smtp_server::SmtpServer::start().await;
    let port = smtp.port().to_string();
    let mut env: Vec<(&str, &str)> = vec![
        ("LATCHKEY_MAIL_TRANSPORT", "smtp"),
        ("LATCHKEY_SMTP_HOST", "127.0.0.1"),
        ("LATCHKEY_SMTP_PORT", port.as_str()),
        ("LATCHKEY_SMTP_SECURITY", "none"),
        ("LATCHKEY_MAIL_FROM", "Latchkey <id@example.com>"),
    ];
    env.extend_from_slice(extra);
    (spawn_app_with(backend, &env).await, smtp)
}

/// How long a test waits for a mail.
pub const MAIL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The token in the first link of a mail's text part that contains `path`.
pub fn token_in(mail: &crate::smtp_server::ReceivedMail, path: &str) -> String {
    let link = mail
        .text()
        .split_whitespace()
        .find(|w| w.contains(path))
        .unwrap_or_else(|| panic!("no link with {path} in {}", mail.text()));
    link.split("token=")
        .nth(1)
        .unwrap_or_else(|| panic!("no token in {link}"))
        .to_owned()
}

/// The 8-digit code of a magic-link mail.
pub fn code_in(mail: &crate::smtp_server::ReceivedMail) -> String {
    mail.text()
        .split_whitespace()
        .find(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {}", mail.text()))
        .to_owned()
}

impl TestApp {
    /// POSTs JSON; returns the status and the JSON body (`null` for an empty body).
    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        json_answer(r).await
    }

    /// Sends JSON with a bearer token.
    pub async fn send_bearer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        json_answer(req.send().await.unwrap()).await
    }

    /// Waits until the audit trail holds an event `event` (recorded after the answer by a
    /// background step) and returns the events of that type.
    pub async fn wait_for_audit(&self, event: &str) -> Vec<latchkey::domain::LoggedAuditEvent> {
        let deadline = tokio::time::Instant::now() + MAIL_WAIT;
        loop {
            let found = self
                .services
                .accounts
                .audit()
                .list(&latchkey::domain::AuditFilter {
                    event: Some(event.into()),
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap();
            if !found.is_empty() {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no audit event {event}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

pub async fn json_answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, body)
}

/// A public client `spa` that may use the password, refresh-token and magic-link grants.
pub async fn spa_client(app: &TestApp) {
    public_client(
        app.admin(),
        "spa",
        &["password", "refresh_token", "magic_link"],
        &["orders.read"],
    )
    .await;
}
