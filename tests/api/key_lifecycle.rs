//! Signing-key lifecycle: scheduled rotation seen by a caching resource server, several
//! instances on one database, the admin API and the key commands of the CLI.

use std::collections::HashMap;
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use latchkey::clock::Clock;
use latchkey::domain::{ClientKind, ClientTokenSettings, SigningAlg};
use latchkey::services::NewClientInput;
use serde_json::{json, Value};

use crate::helpers::{
    fresh_database, spawn_app_with, spawn_instance_like, str_of, Backend, TestApp, TestDatabase,
};
use crate::scenarios;

scenarios!(
    a_caching_resource_server_never_fails_through_scheduled_rotations,
    two_instances_perform_each_transition_exactly_once,
    manual_rotation_is_pending_until_published_long_enough,
    retiring_the_active_key_needs_a_successor,
    a_pending_key_that_cannot_be_opened_is_never_promoted,
    every_instance_runs_the_lifecycle_in_the_background,
    the_admin_api_is_disabled_without_a_token,
    the_admin_api_requires_the_admin_token,
    the_admin_api_manages_keys,
    cli_rotates_lists_retires_and_imports_keys,
    force_removing_the_active_key_activates_a_replacement,
);

const DAY: i64 = 86_400;
const ADMIN_TOKEN: &str = "test-admin-token-0123456789-abcdefghijklmnop";

/// Background reloads and lifecycle steps would fire only after ten real minutes: tests drive
/// both by hand with the mock clock.
const QUIET: (&str, &str) = ("LATCHKEY_KEY_RELOAD_INTERVAL_SECS", "600");
const EVERY_3_DAYS: (&str, &str) = ("LATCHKEY_KEY_ROTATION_INTERVAL_SECS", "259200");

/// A confidential client_credentials client whose tokens live the longest allowed (a day).
async fn long_lived_client(app: &TestApp) -> String {
    app.admin()
        .create_client(NewClientInput {
            client_id: Some("reports".into()),
            name: "reports".into(),
            kind: ClientKind::Confidential,
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["reports.read".into()],
            redirect_uris: vec![],
            audiences: vec![],
            default_audience: None,
            token_settings: ClientTokenSettings {
                access_token_ttl: Some(DAY),
                ..Default::default()
            },
        })
        .await
        .unwrap()
        .client_secret
        .unwrap()
}

async fn issue(app: &TestApp, secret: &str) -> String {
    let (status, body) = app.client_credentials("reports", secret).await;
    assert_eq!(status, 200, "{body}");
    str_of(&body, "access_token").to_owned()
}

fn kid_of(token: &str) -> String {
    decode_header(token).unwrap().kid.unwrap()
}

/// The served JWKS and its `max-age`.
async fn fetch_jwks(app: &TestApp) -> (JwkSet, i64) {
    let r = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let cache_control = r.headers()["cache-control"].to_str().unwrap().to_owned();
    let max_age = cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in {cache_control:?}"));
    (r.json().await.unwrap(), max_age)
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    let (jwks, _) = fetch_jwks(app).await;
    jwks.keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

/// A resource server that caches the JWKS for its `max-age` (on the mock clock) and never
/// refetches early, not even for an unknown `kid`: the strictest client there is.
struct CachingResourceServer {
    jwks: JwkSet,
    expires_at: i64,
    fetches: usize,
}

impl CachingResourceServer {
    async fn new(app: &TestApp) -> Self {
        let mut rs = Self {
            jwks: JwkSet { keys: vec![] },
            expires_at: i64::MIN,
            fetches: 0,
        };
        rs.refresh_if_stale(app).await;
        rs
    }

    async fn refresh_if_stale(&mut self, app: &TestApp) {
        let now = app.clock.now();
        if now >= self.expires_at {
            let (jwks, max_age) = fetch_jwks(app).await;
            self.jwks = jwks;
            self.expires_at = now + max_age;
            self.fetches += 1;
        }
    }

    /// Verifies signature, issuer, audience and expiry (on the mock clock).
    async fn verify(&mut self, app: &TestApp, token: &str) -> Result<(), String> {
        self.refresh_if_stale(app).await;
        let header = decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("no kid")?;
        let jwk = self
            .jwks
            .find(&kid)
            .ok_or_else(|| format!("unknown kid {kid}"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[app.settings.issuer()]);
        validation.set_audience(&[app.settings.default_audience()]);
        // Expiry is judged on the mock clock below, not on the wall clock.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = decode::<Value>(token, &key, &validation)
            .map_err(|e| format!("{kid}: {e}"))?
            .claims;
        let exp = claims["exp"].as_i64().ok_or("no exp")?;
        if exp <= app.clock.now() {
            return Err("expired".into());
        }
        Ok(())
    }
}

/// One lifecycle step and one reload, as the background tasks would do.
async fn step(app: &TestApp) -> latchkey::services::TickReport {
    let report = app.services.keys.tick().await.unwrap();
    app.services.keys.reload().await.unwrap();
    report
}

async fn a_caching_resource_server_never_fails_through_scheduled_rotations(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET, EVERY_3_DAYS]).await;
    let secret = long_lived_client(&app).await;
    let mut rs = CachingResourceServer::new(&app).await;
    let first_kid = kid_of(&issue(&app, &secret).await);
    let start = app.clock.now();

    // (token, kid, exp) of every token issued.
    let mut issued: Vec<(String, String, i64)> = Vec::new();
    let mut failures = Vec::new();
    let mut verifications = 0;
    let mut created = Vec::new();
    let mut promoted = Vec::new();
    // kid -> mock time at which it left the served JWKS.
    let mut unpublished_at: HashMap<String, i64> = HashMap::new();
    let mut seen: Vec<String> = published_kids(&app).await;

    // Nine days in steps of 1500 s (not a divisor of any interval involved): three
    // scheduled rotations, and the first two keys removed.
    while app.clock.now() < start + 9 * DAY {
        app.clock.advance(1500);
        let report = step(&app).await;
        created.extend(report.created.clone());
        promoted.extend(report.promoted.clone());

        let token = issue(&app, &secret).await;
        let exp = crate::helpers::jwt_parts(&token).1["exp"].as_i64().unwrap();
        issued.push((token.clone(), kid_of(&token), exp));

        let now = app.clock.now();
        for (token, kid, exp) in issued.iter().filter(|(_, _, exp)| *exp > now) {
            verifications += 1;
            if let Err(e) = rs.verify(&app, token).await {
                failures.push(format!(
                    "t+{}: token of {kid} (exp t+{}): {e}",
                    now - start,
                    exp - start
                ));
            }
        }

        let kids = published_kids(&app).await;
        for gone in seen.iter().filter(|k| !kids.contains(k)) {
            unpublished_at.insert(gone.clone(), now);
        }
        seen = kids;
    }

    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    assert!(verifications > 1000, "{verifications}");
    assert_eq!(
        created.len(),
        3,
        "a new key published before every third day"
    );
    assert_eq!(promoted, created, "each pending key was promoted in turn");
    assert!(
        rs.fetches <= (9 * DAY / 3600 + 2) as usize,
        "the resource server refetched only when its cache expired ({})",
        rs.fetches
    );
    // A retired key disappears only after every token it signed expired.
    for (kid, gone) in &unpublished_at {
        let last_exp = issued
            .iter()
            .filter(|(_, k, _)| k == kid)
            .map(|(_, _, exp)| *exp)
            .max()
            .unwrap_or(i64::MIN);
        assert!(
            *gone >= last_exp,
            "{kid} left the JWKS at t+{} before its last token expired (t+{})",
            gone - start,
            last_exp - start
        );
    }
    assert!(
        unpublished_at.contains_key(&first_kid) && unpublished_at.contains_key(&created[0]),
        "the first two keys were removed after their tokens expired: {unpublished_at:?}"
    );
    assert_eq!(unpublished_at.len(), 2, "{unpublished_at:?}");
    let states: Vec<&str> = app
        .services
        .keys
        .list()
        .await
        .unwrap()
        .iter()
        .map(|k| k.state)
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "active").count(), 1);
    assert!(states.contains(&"removed"), "{states:?}");
}

async fn two_instances_perform_each_transition_exactly_once(backend: Backend) {
    let a = spawn_app_with(backend, &[QUIET, EVERY_3_DAYS]).await;
    let b = spawn_instance_like(&a, &[QUIET, EVERY_3_DAYS]).await;
    let secret = long_lived_client(&a).await;
    let publish_ahead = a.settings.keys.publish_ahead.as_secs() as i64;
    let mut now = a.clock.now();
    b.clock.set(now);
    let mut previous = kid_of(&issue(&a, &secret).await);
    assert_eq!(
        kid_of(&issue(&b, &secret).await),
        previous,
        "one active key"
    );

    for round in 0..3 {
        // The active key becomes due: both instances step at the same moment.
        now += 3 * DAY - publish_ahead + 1;
        a.clock.set(now);
        b.clock.set(now);
        let (ra, rb) = tokio::join!(a.services.keys.tick(), b.services.keys.tick());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let created: Vec<String> = ra
            .created
            .iter()
            .chain(rb.created.iter())
            .cloned()
            .collect();
        assert_eq!(
            created.len(),
            1,
            "round {round}: exactly one pending key: {ra:?} {rb:?}"
        );
        let pending = created[0].clone();
        let keys = a.services.keys.list().await.unwrap();
        assert_eq!(keys.iter().filter(|k| k.state == "pending").count(), 1);
        for app in [&a, &b] {
            app.services.keys.reload().await.unwrap();
            assert!(published_kids(app).await.contains(&pending));
            assert_eq!(
                kid_of(&issue(app, &secret).await),
                previous,
                "still signing with the old key"
            );
        }

        // Its time comes: again both step together; exactly one promotes it.
        now += publish_ahead;
        a.clock.set(now);
        b.clock.set(now);
        let (ra, rb) = tokio::join!(a.services.keys.tick(), b.services.keys.tick());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let promoted: Vec<String> = ra
            .promoted
            .iter()
            .chain(rb.promoted.iter())
            .cloned()
            .collect();
        assert_eq!(
            promoted,
            std::slice::from_ref(&pending),
            "round {round}: exactly one promotion: {ra:?} {rb:?}"
        );
        assert!(ra.created.is_none() && rb.created.is_none());
        for app in [&a, &b] {
            app.services.keys.reload().await.unwrap();
            assert_eq!(
                kid_of(&issue(app, &secret).await),
                pending,
                "both sign with the new key"
            );
            let published = published_kids(app).await;
            assert!(
                published.contains(&previous),
                "the retired key stays published"
            );
        }
        let keys = a.services.keys.list().await.unwrap();
        assert_eq!(keys.iter().filter(|k| k.state == "active").count(), 1);
        previous = pending;
    }
    let b_view: Vec<(String, &str)> = b
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    let a_view: Vec<(String, &str)> = a
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(a_view, b_view);
}

async fn manual_rotation_is_pending_until_published_long_enough(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    let secret = long_lived_client(&app).await;
    let old = kid_of(&issue(&app, &secret).await);
    let keys = &app.services.keys;
    let pending = keys.rotate_with(SigningAlg::EdDSA, false).await.unwrap();
    assert_eq!((pending.state, pending.alg), ("pending", "EdDSA"));
    assert!(pending.activate_at.is_some());
    assert!(
        published_kids(&app).await.contains(&pending.kid),
        "published at once"
    );
    assert_eq!(kid_of(&issue(&app, &secret).await), old, "not signing yet");
    let again = keys.rotate_with(SigningAlg::ES256, false).await;
    assert!(
        matches!(&again, Err(latchkey::services::KeyError::Conflict(m)) if m.contains("already pending")),
        "{again:?}"
    );
    app.clock
        .advance(app.settings.keys.publish_ahead.as_secs() as i64 - 1);
    assert_eq!(step(&app).await.promoted, None, "not before its time");
    app.clock.advance(1);
    assert_eq!(
        step(&app).await.promoted.as_deref(),
        Some(pending.kid.as_str())
    );
    assert_eq!(kid_of(&issue(&app, &secret).await), pending.kid);

    // --now: active at once, and a pending key is withdrawn.
    let next = keys.rotate_with(SigningAlg::ES256, false).await.unwrap();
    let urgent = keys.rotate_with(SigningAlg::RS256, true).await.unwrap();
    assert_eq!(urgent.state, "active");
    assert_eq!(kid_of(&issue(&app, &secret).await), urgent.kid);
    let states: HashMap<String, &str> = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(states[&next.kid], "retired", "withdrawn");
    assert_eq!(states[&pending.kid], "retired");
    // A withdrawn key never signed: the next step removes it; the others stay.
    let report = step(&app).await;
    assert_eq!(report.removed, 1);
    let published = published_kids(&app).await;
    assert!(!published.contains(&next.kid));
    assert!(published.contains(&pending.kid) && published.contains(&old));
}

async fn retiring_the_active_key_needs_a_successor(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    let keys = &app.services.keys;
    let active = keys.list().await.unwrap()[0].kid.clone();
    let refused = keys.retire(&active).await;
    assert!(
        matches!(&refused, Err(latchkey::services::KeyError::Conflict(m)) if m.contains("no pending key")),
        "{refused:?}"
    );
    let pending = keys.rotate_with(SigningAlg::ES256, false).await.unwrap();
    let retired = keys.retire(&active).await.unwrap();
    assert_eq!(retired.state, "retired");
    let now_active: Vec<String> = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == "active")
        .map(|k| k.kid)
        .collect();
    assert_eq!(
        now_active,
        std::slice::from_ref(&pending.kid),
        "the pending key took over at once"
    );
    assert!(matches!(
        keys.retire("no-such-kid").await,
        Err(latchkey::services::KeyError::NotFound(_))
    ));
    assert_eq!(
        keys.retire(&active).await.unwrap().state,
        "retired",
        "idempotent"
    );
}

async fn a_pending_key_that_cannot_be_opened_is_never_promoted(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    let secret = long_lived_client(&app).await;
    let active = kid_of(&issue(&app, &secret).await);
    // A pending key whose private part cannot be opened (corrupt, or sealed elsewhere).
    let now = app.clock.now();
    let bogus = latchkey::domain::StoredKey {
        kid: "bogus".into(),
        alg: SigningAlg::ES256,
        state: latchkey::domain::KeyState::Pending,
        public_jwk: "{}".into(),
        private_key_enc: vec![0; 40],
        enc_key_id: "elsewhere".into(),
        created_at: now,
        activate_at: Some(now + app.settings.keys.publish_ahead.as_secs() as i64),
        activated_at: None,
        retired_at: None,
        removed_at: None,
    };
    assert_eq!(
        app.services
            .stores
            .keys
            .insert_pending(&bogus, &active)
            .await
            .unwrap(),
        latchkey::storage::PendingInsert::Inserted
    );
    assert!(app.services.keys.reload().await.is_err(), "fails closed");
    let pending = app
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.state == "pending")
        .unwrap();
    app.clock
        .advance(app.settings.keys.publish_ahead.as_secs() as i64 + 1);
    let report = app.services.keys.tick().await.unwrap();
    assert_eq!(report.promoted, None);
    assert_eq!(
        kid_of(&issue(&app, &secret).await),
        active,
        "still signing with the old key"
    );
    let states: Vec<(String, &str)> = app
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert!(
        states.contains(&(pending.kid.clone(), "pending")),
        "{states:?}"
    );
    assert!(states.contains(&(active, "active")), "{states:?}");
    // Withdrawing it lets the lifecycle go on: it never signed, so the next step removes it.
    assert_eq!(
        app.services.keys.retire(&pending.kid).await.unwrap().state,
        "retired"
    );
    assert_eq!(app.services.keys.tick().await.unwrap().removed, 1);
    app.services.keys.reload().await.unwrap();
    assert!(!published_kids(&app).await.contains(&pending.kid));
}

/// Polls (in real time) until `check` holds, for at most ten seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn every_instance_runs_the_lifecycle_in_the_background(backend: Backend) {
    // Background steps and reloads every second (real time); only the mock clock jumps.
    let fast = ("LATCHKEY_KEY_RELOAD_INTERVAL_SECS", "1");
    let a = spawn_app_with(backend, &[fast, EVERY_3_DAYS]).await;
    let b = spawn_instance_like(&a, &[fast, EVERY_3_DAYS]).await;
    let secret = long_lived_client(&a).await;
    let old = kid_of(&issue(&a, &secret).await);
    let jump = |secs: i64| {
        let now = a.clock.now() + secs;
        a.clock.set(now);
        b.clock.set(now);
    };
    jump(3 * DAY - a.settings.keys.publish_ahead.as_secs() as i64);
    eventually("both instances publish a pending key", || async {
        let keys = a.services.keys.list().await.unwrap();
        match keys.iter().find(|k| k.state == "pending") {
            Some(p) => {
                published_kids(&a).await.contains(&p.kid)
                    && published_kids(&b).await.contains(&p.kid)
            }
            None => false,
        }
    })
    .await;
    let pending = a
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.state == "pending")
        .unwrap()
        .kid;
    assert_eq!(kid_of(&issue(&b, &secret).await), old);
    jump(a.settings.keys.publish_ahead.as_secs() as i64);
    eventually("both instances sign with the new key", || async {
        kid_of(&issue(&a, &secret).await) == pending && kid_of(&issue(&b, &secret).await) == pending
    })
    .await;
    let keys = a.services.keys.list().await.unwrap();
    assert_eq!(keys.iter().filter(|k| k.state == "active").count(), 1);
    assert!(keys.iter().any(|k| k.kid == old && k.state == "retired"));
}

// ---- admin API ----

async fn admin_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[QUIET, ("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)]).await
}

async fn admin_call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn the_admin_api_is_disabled_without_a_token(backend: Backend) {
    let app = spawn_app_with(backend, &[QUIET]).await;
    for (method, path) in [
        (reqwest::Method::GET, "/admin/v1/keys"),
        (reqwest::Method::POST, "/admin/v1/keys/rotate"),
        (reqwest::Method::DELETE, "/admin/v1/keys/abc"),
        (reqwest::Method::PUT, "/admin/v1/keys"),
        (reqwest::Method::GET, "/admin/v1/keys/import"),
    ] {
        let r = app
            .http
            .request(method, app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
    }
}

async fn the_admin_api_requires_the_admin_token(backend: Backend) {
    let app = admin_app(backend).await;
    let wrong = format!("{ADMIN_TOKEN}x");
    let attempts: Vec<Option<String>> = vec![
        None,
        Some(format!("Bearer {wrong}")),
        Some(format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1])),
        Some(format!(
            "Basic {}",
            STANDARD.encode(format!("admin:{ADMIN_TOKEN}"))
        )),
        Some("Bearer".into()),
    ];
    for auth in attempts {
        let mut req = app.http.get(app.url("/admin/v1/keys"));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        assert!(body["error_description"].is_string());
    }
    let r = app
        .http
        .post(app.url("/admin/v1/keys/rotate"))
        .header("authorization", format!("Bearer {wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        app.services.keys.list().await.unwrap().len(),
        1,
        "nothing changed"
    );
    let (status, body) = admin_call(&app, reqwest::Method::GET, "/admin/v1/keys", None).await;
    assert_eq!(status, 200, "{body}");
    let r = app
        .http
        .get(app.url("/admin/v1/keys"))
        .header("authorization", format!("bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the scheme is case-insensitive");
}

async fn the_admin_api_manages_keys(backend: Backend) {
    use reqwest::Method;
    let app = admin_app(backend).await;
    let secret = long_lived_client(&app).await;
    let (status, body) = admin_call(&app, Method::GET, "/admin/v1/keys", None).await;
    assert_eq!(status, 200);
    let first = str_of(&body["keys"][0], "kid").to_owned();
    assert_eq!(body["keys"][0]["state"], "active");

    // Rotate: pending by default, published at once.
    let (status, pending) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/rotate",
        Some(json!({"alg": "EdDSA"})),
    )
    .await;
    assert_eq!(status, 201, "{pending}");
    assert_eq!(
        (pending["state"].as_str(), pending["alg"].as_str()),
        (Some("pending"), Some("EdDSA"))
    );
    assert!(pending["activate_at"].is_string());
    let pending_kid = str_of(&pending, "kid").to_owned();
    assert!(published_kids(&app).await.contains(&pending_kid));
    let (status, body) = admin_call(&app, Method::POST, "/admin/v1/keys/rotate", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/rotate",
        Some(json!({"alg": "HS256"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, _) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/rotate",
        Some(json!({"algorithm": "ES256"})),
    )
    .await;
    assert_eq!(status, 400, "unknown members are refused");

    // Withdraw the pending key; import one instead.
    let (status, body) = admin_call(
        &app,
        Method::POST,
        &format!("/admin/v1/keys/{pending_kid}/retire"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("retired")),
        "{body}"
    );
    let (pem, expected_alg) = (pkcs8_pem(SigningAlg::ES256), "ES256");
    let (status, imported) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/import",
        Some(json!({"pem": pem})),
    )
    .await;
    assert_eq!(status, 201, "{imported}");
    assert_eq!(
        (imported["state"].as_str(), imported["alg"].as_str()),
        (Some("pending"), Some(expected_alg))
    );
    let imported_kid = str_of(&imported, "kid").to_owned();
    assert!(published_kids(&app).await.contains(&imported_kid));
    assert_eq!(
        kid_of(&issue(&app, &secret).await),
        first,
        "not signing before activation"
    );
    let (status, body) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/import",
        Some(json!({"pem": pem, "now": true})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "the same key twice: {body}"
    );
    let (status, body) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/import",
        Some(json!({"pem": "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, _) = admin_call(&app, Method::POST, "/admin/v1/keys/import", None).await;
    assert_eq!(status, 400);

    // After the publication delay the imported key signs, and tokens verify against the JWKS.
    app.clock
        .advance(app.settings.keys.publish_ahead.as_secs() as i64);
    assert_eq!(
        step(&app).await.promoted.as_deref(),
        Some(imported_kid.as_str())
    );
    let token = issue(&app, &secret).await;
    assert_eq!(kid_of(&token), imported_kid);
    let mut rs = CachingResourceServer::new(&app).await;
    rs.verify(&app, &token).await.unwrap();

    // The active key is retired only with a successor.
    let (status, body) = admin_call(
        &app,
        Method::POST,
        &format!("/admin/v1/keys/{imported_kid}/retire"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, urgent) = admin_call(
        &app,
        Method::POST,
        "/admin/v1/keys/rotate",
        Some(json!({"alg": "RS256", "now": true})),
    )
    .await;
    assert_eq!(
        (status, urgent["state"].as_str()),
        (201, Some("active")),
        "{urgent}"
    );
    let urgent_kid = str_of(&urgent, "kid").to_owned();
    assert_eq!(kid_of(&issue(&app, &secret).await), urgent_kid);

    // Remove: the active key only with force; unknown kids are 404.
    let (status, body) = admin_call(
        &app,
        Method::DELETE,
        &format!("/admin/v1/keys/{urgent_kid}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = admin_call(
        &app,
        Method::DELETE,
        &format!("/admin/v1/keys/{first}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("removed")),
        "{body}"
    );
    assert!(!published_kids(&app).await.contains(&first));
    let (status, body) = admin_call(
        &app,
        Method::DELETE,
        &format!("/admin/v1/keys/{first}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, _) = admin_call(
        &app,
        Method::DELETE,
        "/admin/v1/keys/nope?force=maybe",
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = admin_call(&app, Method::POST, "/admin/v1/keys/nope/retire", None).await;
    assert_eq!(status, 404);
    let (status, body) = admin_call(&app, Method::PUT, "/admin/v1/keys", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (_, body) = admin_call(&app, Method::GET, "/admin/v1/keys", None).await;
    let states: Vec<(&str, &str)> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert!(
        states.contains(&(urgent_kid.as_str(), "active")),
        "{states:?}"
    );
    assert!(
        states.contains(&(imported_kid.as_str(), "retired")),
        "{states:?}"
    );
}

// ---- PEM files ----

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A fresh PKCS#8 key of `alg`, generated with aws-lc-rs.
fn pkcs8_pem(alg: SigningAlg) -> String {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    };
    let der: Vec<u8> = match alg {
        SigningAlg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap()
            .to_pkcs8v1()
            .unwrap()
            .as_ref()
            .to_vec(),
        SigningAlg::EdDSA => Ed25519KeyPair::generate()
            .unwrap()
            .to_pkcs8v1()
            .unwrap()
            .as_ref()
            .to_vec(),
        SigningAlg::RS256 => {
            let k = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
            let der: aws_lc_rs::encoding::Pkcs8V1Der = k.as_der().unwrap();
            der.as_ref().to_vec()
        }
    };
    pem("PRIVATE KEY", &der)
}

/// A SEC1 ("EC PRIVATE KEY") P-256 key.
fn sec1_pem() -> String {
    use aws_lc_rs::encoding::{AsDer, EcPrivateKeyRfc5915Der};
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let k = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let der: EcPrivateKeyRfc5915Der = k.private_key().as_der().unwrap();
    pem("EC PRIVATE KEY", der.as_ref())
}

/// A PKCS#1 ("RSA PRIVATE KEY") key from openssl, when it is installed.
fn pkcs1_pem(dir: &std::path::Path) -> Option<String> {
    let path = dir.join("pkcs1.pem");
    let ok = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&path)
        .arg("2048")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let text = std::fs::read_to_string(&path).ok().filter(|_| ok)?;
    text.contains("BEGIN RSA PRIVATE KEY").then_some(text)
}

// ---- CLI ----

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn latchkey(db: &TestDatabase, master: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(args)
        .env("LATCHKEY_DATABASE_URL", &db.url)
        .env("LATCHKEY_MASTER_KEY", master)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn cli_rotates_lists_retires_and_imports_keys(backend: Backend) {
    let db = fresh_database(backend).await;
    let master = latchkey::crypto::MasterKey::generate_base64();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| latchkey(&db, &master, args);
    let ok = |args: &[&str]| -> Value {
        let r = run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", r.stdout))
    };
    let file = |name: &str, text: &str| -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let state_of = |kid: &str| -> String {
        ok(&["keys", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .map(|k| str_of(k, "state").to_owned())
            .unwrap_or_default()
    };

    // No key yet: the first one is active at once; the next is pending.
    let first = ok(&["keys", "rotate", "--json"]);
    assert_eq!(
        (first["state"].as_str(), first["alg"].as_str()),
        (Some("active"), Some("ES256"))
    );
    let first = str_of(&first, "kid").to_owned();
    let pending = ok(&["keys", "rotate", "--alg", "EdDSA", "--json"]);
    assert_eq!(pending["state"], "pending");
    assert!(pending["activate_at"].is_string());
    let pending = str_of(&pending, "kid").to_owned();
    let r = run(&["keys", "rotate"]);
    assert_eq!(r.code, 4, "one pending key at a time: {}", r.stderr);
    assert!(r.stderr.contains("already pending"), "{}", r.stderr);
    let human = run(&["keys", "list"]);
    assert_eq!(human.code, 0);
    assert!(
        human.stdout.contains(&pending) && human.stdout.contains("activates"),
        "{}",
        human.stdout
    );

    // Retire the active key: the pending one takes over; then nothing can take over.
    assert_eq!(
        ok(&["keys", "retire", &first, "--json"])["state"],
        "retired"
    );
    assert_eq!(state_of(&pending), "active");
    let r = run(&["keys", "retire", &pending]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("no pending key"), "{}", r.stderr);
    assert_eq!(run(&["keys", "retire", "no-such-kid"]).code, 3);
    // A kid is base64url and may begin with '-'.
    assert_eq!(run(&["keys", "retire", "-no-such-kid", "--json"]).code, 3);
    assert_eq!(run(&["keys", "remove", "-no-such-kid", "--force"]).code, 3);

    // --now: active at once.
    let urgent = ok(&["keys", "rotate", "--alg", "RS256", "--now", "--json"]);
    assert_eq!(
        (urgent["state"].as_str(), urgent["alg"].as_str()),
        (Some("active"), Some("RS256"))
    );
    assert_eq!(state_of(&pending), "retired");

    // Import: PKCS#8 of every type, SEC1, PKCS#1; the algorithm follows from the key.
    let es = file("es256.pem", &pkcs8_pem(SigningAlg::ES256));
    let imported = ok(&["keys", "import", "--pem", &es, "--json"]);
    assert_eq!(
        (imported["state"].as_str(), imported["alg"].as_str()),
        (Some("pending"), Some("ES256"))
    );
    let mut inputs = vec![
        ("eddsa.pem", pkcs8_pem(SigningAlg::EdDSA), "EdDSA"),
        ("rs256.pem", pkcs8_pem(SigningAlg::RS256), "RS256"),
        ("sec1.pem", sec1_pem(), "ES256"),
    ];
    if let Some(p) = pkcs1_pem(dir.path()) {
        inputs.push(("pkcs1-copy.pem", p, "RS256"));
    }
    let r = run(&["keys", "import", "--pem", &file("x.pem", &inputs[0].1)]);
    assert_eq!(r.code, 4, "a pending key exists: {}", r.stderr);
    for (name, text, alg) in &inputs {
        let k = ok(&[
            "keys",
            "import",
            "--pem",
            &file(name, text),
            "--now",
            "--json",
        ]);
        assert_eq!(
            (k["state"].as_str(), k["alg"].as_str()),
            (Some("active"), Some(*alg)),
            "{name}"
        );
    }
    let r = run(&["keys", "import", "--pem", &es]);
    assert_eq!(r.code, 4, "already stored: {}", r.stderr);

    // Garbage, public keys and missing files are invalid input (exit 2) with a reason.
    for (name, text, expected) in [
        ("garbage.pem", "this is not a key\n", "PEM"),
        (
            "bad.pem",
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            "unsupported or invalid key",
        ),
        (
            "public.pem",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "no private key",
        ),
    ] {
        let r = run(&["keys", "import", "--pem", &file(name, text)]);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(expected), "{name}: {}", r.stderr);
    }
    let r = run(&["keys", "import", "--pem", "/nonexistent/key.pem"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    let keys = ok(&["keys", "list", "--json"]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 4 + inputs.len());
    assert_eq!(keys.iter().filter(|k| k["state"] == "active").count(), 1);
    assert_eq!(keys.iter().filter(|k| k["state"] == "pending").count(), 0);

    // Under another master key no key is added: the servers could never open it.
    let other = latchkey::crypto::MasterKey::generate_base64();
    let fresh = file("fresh.pem", &pkcs8_pem(SigningAlg::EdDSA));
    for args in [
        vec!["keys", "rotate"],
        vec!["keys", "import", "--pem", fresh.as_str(), "--now"],
    ] {
        let r = latchkey(&db, &other, &args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("master key"), "{}", r.stderr);
    }
    assert_eq!(
        ok(&["keys", "list", "--json"]).as_array().unwrap().len(),
        keys.len()
    );
}

async fn force_removing_the_active_key_activates_a_replacement(backend: Backend) {
    let app = spawn_app_with(backend, &[]).await;
    let f = app.fixture().await;
    let keys = &app.services.keys;
    let old = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.state == "active")
        .unwrap()
        .kid;
    assert!(keys.remove(&old, false).await.is_err(), "needs force");
    keys.remove(&old, true).await.unwrap();
    let listed = keys.list().await.unwrap();
    let active: Vec<_> = listed.iter().filter(|k| k.state == "active").collect();
    assert_eq!(active.len(), 1, "{listed:?}");
    assert_ne!(active[0].kid, old);
    assert!(listed.iter().any(|k| k.kid == old && k.state == "removed"));
    let (status, body) = app
        .client_credentials(&f.billing_id, &f.billing_secret)
        .await;
    assert_eq!(status, 200, "{body}");
    let header = decode_header(str_of(&body, "access_token")).unwrap();
    assert_eq!(header.kid.as_deref(), Some(active[0].kid.as_str()));
    let jwks: JwkSet = app.get_json("/.well-known/jwks.json").await;
    assert!(
        jwks.find(&old).is_none(),
        "the removed key is unpublished at once"
    );
}
