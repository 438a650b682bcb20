//! Signing-key lifecycle: scheduled rotation seen by a caching resource server and several
//! instances on one database (`scheduled`), rotation, retirement and removal asked for by an
//! operator (`manual`), the admin API (`admin_api`), the key commands of the CLI (`cli`), and
//! one active key per algorithm (`per_alg`).
//! Here: the scenario list, and the fixtures they share (a long-lived client, the JWKS as a
//! caching resource server sees it, one lifecycle step, PEM files).

use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use latchkey::clock::Clock;
use latchkey::domain::{ClientKind, ClientTokenSettings, SigningAlg};
use latchkey::services::NewClientInput;
use serde_json::Value;

use crate::helpers::{str_of, TestApp};
use crate::scenarios;

mod admin_api;
mod cli;
mod manual;
mod per_alg;
mod scheduled;

use admin_api::*;
use cli::*;
use manual::*;
use per_alg::*;
use scheduled::*;

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
    a_fresh_server_publishes_an_es256_and_an_rs256_key,
    rotation_rotates_every_algorithm_and_old_keys_stay_published_until_removed,
    ensure_alg_adds_an_algorithm_once,
    the_configured_id_token_algorithms_get_a_key_at_start,
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
