//! What the browser scenarios run beside the app: the example SPA's static server
//! (`examples/spa/serve.mjs`), the example resource server (`examples/resource-server`, built
//! by scripts/test.sh), a loopback listener that records back-channel logout tokens, the node
//! scripts of `tests/e2e/` (playwright-core driving Debian's Chromium), the operator CLI that
//! registers the clients, and the checks of a JWT against Latchkey's JWKS.
//!
//! Nothing here skips: a missing node, `tests/e2e/node_modules`, Chromium or resource-server
//! binary fails the test with the command that provides it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command};
use std::time::Instant;

use serde_json::Value;

use crate::helpers::{Backend, Database, TestApp};

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long one node script may take (a browser scenario takes 5 to 20 s on 2 cores).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target folder this test binary was built in (`target/debug/deps/api-*` ->
/// `target`), where scripts/test.sh also builds the resource-server example.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo().join("target"))
}

/// The short name of a backend cell, for folder names.
pub fn cell(backend: Backend) -> &'static str {
    match (backend.database, backend.redis) {
        (Database::Sqlite, false) => "sqlite_embedded",
        (Database::Sqlite, true) => "sqlite_redis",
        (Database::Postgres, false) => "postgres_embedded",
        (Database::Postgres, true) => "postgres_redis",
    }
}

/// Fails loudly unless everything the browser tests need is installed.
pub fn require_tools() {
    let provide = "scripts/test.sh provisions it";
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is required for the browser tests and was not found ({node:?}); {provide}"
    );
    for package in ["playwright-core", "openid-client", "oidc-client-ts"] {
        let dir = repo().join("tests/e2e/node_modules").join(package);
        assert!(
            dir.is_dir(),
            "{} is missing: run `npm ci` in tests/e2e ({provide})",
            dir.display()
        );
    }
    assert!(
        Path::new(CHROMIUM).exists(),
        "Chromium is required for the browser tests and is missing at {CHROMIUM}: \
         `apt-get install chromium` ({provide})"
    );
}

/// Where a test's screenshots go: `target/e2e-screenshots/<name>/`, emptied first.
pub fn screenshot_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("e2e-screenshots").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Asserts that each file is a PNG of some size, and that `names` (parts of file names) are
/// among them.
pub fn assert_screenshots(dir: &Path, taken: &Value, names: &[&str]) {
    let taken: Vec<PathBuf> = taken
        .as_array()
        .expect("screenshots list")
        .iter()
        .map(|p| PathBuf::from(p.as_str().expect("path")))
        .collect();
    for file in &taken {
        assert!(
            file.starts_with(dir),
            "{} is outside {}",
            file.display(),
            dir.display()
        );
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            bytes.len() > 2000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a screenshot",
            file.display()
        );
    }
    for name in names {
        assert!(
            taken.iter().any(|f| f
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(name))),
            "no screenshot named *{name}* among {taken:?}"
        );
    }
}

/// A child process whose output is kept (printed when the test fails) and which is killed
/// when dropped. Plain `std::process` with reader threads: the suite's tokio has no
/// `process` feature, and adding one would rebuild the whole dependency tree for tests.
pub struct Service {
    pub url: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

/// Reads `stream` line by line into `log` on a thread; sends each "listening on URL" URL.
fn collect(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
    urls: Option<std::sync::mpsc::Sender<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let (Some(tx), Some(url)) = (&urls, line.split("listening on ").nth(1)) {
                let _ = tx.send(url.trim().to_owned());
            }
            log.lock().unwrap().push(line);
        }
    })
}

impl Service {
    /// Starts `cmd` and waits for the line `... listening on http://ADDR` on either stream.
    pub async fn start(name: &str, mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        collect(
            child.stdout.take().expect("stdout"),
            log.clone(),
            Some(tx.clone()),
        );
        collect(child.stderr.take().expect("stderr"), log.clone(), Some(tx));
        let mut service = Self {
            url: String::new(),
            child,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.try_recv() {
                Ok(url) => {
                    service.url = url;
                    return service;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
            }
            if Instant::now() > deadline || matches!(service.child.try_wait(), Ok(Some(_))) {
                // Give the reader threads a moment to drain what the process said.
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{name} did not start (no \"listening on\" line):\n{}",
            service.output()
        );
    }

    pub fn output(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `examples/spa/serve.mjs` on a free port.
pub async fn start_spa() -> Service {
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("examples/spa/serve.mjs"))
        .env("SPA_PORT", "0")
        .env(
            "OIDC_CLIENT_TS_DIR",
            repo().join("tests/e2e/node_modules/oidc-client-ts"),
        );
    Service::start("the example SPA server", cmd).await
}

/// The example resource server on a free port, reading the feed as `rs_client`.
pub async fn start_resource_server(
    app: &TestApp,
    rs_client: &str,
    rs_secret: &str,
    allowed_origin: &str,
    extra_env: &[(&str, &str)],
) -> Service {
    let binary = std::env::var_os("LK_E2E_RESOURCE_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug").join("latchkey-resource-server"));
    assert!(
        binary.exists(),
        "the example resource server is not built at {}: run `cargo build --manifest-path \
         examples/resource-server/Cargo.toml --target-dir target` (scripts/test.sh does)",
        binary.display()
    );
    let mut cmd = Command::new(binary);
    cmd.env("LATCHKEY_ISSUER", app.settings.issuer())
        .env("RS_BIND", "127.0.0.1:0")
        .env("RS_CLIENT_ID", rs_client)
        .env("RS_CLIENT_SECRET", rs_secret)
        .env("RS_ALLOWED_ORIGIN", allowed_origin)
        .env("RS_REVOCATION_POLL_MS", "250")
        .envs(extra_env.iter().copied());
    Service::start("the example resource server", cmd).await
}

/// Runs `tests/e2e/<script>` with `env`; returns its `E2E_RESULT` object, or fails with the
/// script's output.
pub async fn run_script(script: &str, env: &[(&str, String)]) -> Value {
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(repo().join("tests/e2e").join(script))
        .current_dir(repo().join("tests/e2e"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node {script}: {e}"));
    let (out, err) = (Arc::default(), Arc::default());
    let readers = [
        collect(child.stdout.take().expect("stdout"), Arc::clone(&out), None),
        collect(child.stderr.take().expect("stderr"), Arc::clone(&err), None),
    ];
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for reader in readers {
        let _ = reader.join();
    }
    let stdout = out.lock().unwrap().join("\n");
    let stderr = err.lock().unwrap().join("\n");
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("E2E_RESULT "))
        .filter(|_| status.is_some_and(|s| s.success()));
    match result {
        Some(json) => {
            eprintln!(
                "{script}: {:.1} s\n{stderr}",
                started.elapsed().as_secs_f64()
            );
            serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("{script}: bad result {e}: {json}"))
        }
        None => panic!(
            "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            status.map_or_else(
                || format!("killed after {SCRIPT_TIMEOUT:?}"),
                |s| s.to_string()
            )
        ),
    }
}

/// Runs the operator CLI (the real binary) against the app's database; returns its JSON.
pub fn cli(app: &TestApp, args: &[&str]) -> Value {
    use secrecy::ExposeSecret;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_")) {
        cmd.env_remove(k);
    }
    let master = app
        .settings
        .keys
        .master_key
        .as_ref()
        .expect("test apps have a master key")
        .expose_secret()
        .to_owned();
    let out = cmd
        .args(args)
        .env("LATCHKEY_DATABASE_URL", &app.db.url)
        .env("LATCHKEY_MASTER_KEY", master)
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "64")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .env("LATCHKEY_LOG_LEVEL", "warn")
        .output()
        .expect("run latchkey");
    assert!(
        out.status.success(),
        "latchkey {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "latchkey {args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// What a relying party's loopback server saw.
#[derive(Default)]
struct Seen {
    logout_tokens: Vec<String>,
    /// The URLs browsers were sent to (redirect and post-logout redirect URIs).
    landed: Vec<String>,
}

/// A relying party's loopback server: records back-channel logout requests POSTed to
/// `/backchannel-logout` (`logout_token=<JWT>`, form-encoded, answered 200) and answers every
/// GET (the redirect URIs a browser is sent to) with a small page, recording the URL.
pub struct BackchannelSink {
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// `<origin>/backchannel-logout`
    pub url: String,
    seen: Arc<Mutex<Seen>>,
    handle: actix_web::dev::ServerHandle,
}

impl BackchannelSink {
    pub async fn start() -> Self {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        type Shared = web::Data<Arc<Mutex<Seen>>>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let shared = web::Data::new(seen.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route(
                    "/backchannel-logout",
                    web::post().to(
                        |form: web::Form<std::collections::HashMap<String, String>>,
                         seen: Shared| async move {
                            match form.get("logout_token") {
                                Some(t) => {
                                    seen.lock().unwrap().logout_tokens.push(t.clone());
                                    HttpResponse::Ok().finish()
                                }
                                None => HttpResponse::BadRequest().finish(),
                            }
                        },
                    ),
                )
                .default_service(web::get().to(|req: HttpRequest, seen: Shared| async move {
                    if req.path() != "/favicon.ico" {
                        seen.lock().unwrap().landed.push(req.uri().to_string());
                    }
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(
                            "<!doctype html><title>client</title><p>The client got the answer.</p>",
                        )
                }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind the back-channel listener");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            origin: format!("http://127.0.0.1:{port}"),
            url: format!("http://127.0.0.1:{port}/backchannel-logout"),
            seen,
            handle,
        }
    }

    /// Waits up to `within` for the first logout token.
    pub async fn first_token(&self, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(t) = self.seen.lock().unwrap().logout_tokens.first() {
                return t.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no back-channel logout token arrived at {} within {within:?}",
                self.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().logout_tokens.len()
    }

    /// The paths and queries browsers were sent to, in order.
    pub fn landed(&self) -> Vec<String> {
        self.seen.lock().unwrap().landed.clone()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Verifies `jwt`'s signature against the app's JWKS with jsonwebtoken (an implementation
/// independent of Latchkey's signer), with `iss` = the issuer and `aud` = `audience`;
/// returns the header and the claims.
pub async fn verify_with_jwks(app: &TestApp, jwt: &str, audience: &str) -> (Value, Value) {
    use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
    let header = decode_header(jwt).expect("a JWS header");
    let kid = header.kid.clone().expect("a kid");
    let jwks: JwkSet = app.get_json("/.well-known/jwks.json").await;
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let key = DecodingKey::from_jwk(jwk).expect("a usable JWK");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[app.settings.issuer()]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["iss", "aud", "iat"]);
    let claims = decode::<Value>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("{jwt} does not verify against the JWKS: {e}"))
        .claims;
    let (header_json, _) = crate::helpers::jwt_parts(jwt);
    (header_json, claims)
}
