//! Second factors (issue 15), on every backend: TOTP enrolment through `/api/v1/me/mfa`, the
//! password grant's `mfa_required` and the MFA grant, recovery codes, replay, drift, brute
//! force, and the rules for removing a factor. TOTP codes are computed here by an
//! implementation of RFC 6238 independent of Latchkey's, checked against the RFC's vectors.

use latchkey::clock::Clock;
use reqwest::Method;
use serde_json::{json, Value};

use crate::authorization_code::{
    allow_consent, authorize_url, browser_client, exchange, query_of, Browser, Page, VERIFIER,
};
use crate::helpers::*;
use crate::scenarios;

scenarios!(
    the_test_totp_matches_rfc_6238,
    an_enrolled_user_completes_the_password_grant_with_a_code,
    recovery_codes_stand_in_for_the_app_once_each,
    codes_drift_by_one_step_and_are_never_accepted_twice,
    wrong_codes_lock_the_account_out_like_wrong_passwords,
    mfa_tokens_are_single_use_short_lived_and_bound_to_their_client,
    changing_factors_needs_a_recent_sign_in_or_a_proof,
    operators_list_and_reset_a_users_factors,
    the_hosted_sign_in_asks_for_the_second_factor,
    magic_links_are_a_first_factor_only,
    the_account_page_adds_and_removes_factors_after_a_recent_sign_in,
);

const MFA: &str = "urn:latchkey:params:oauth:grant-type:mfa";

/// RFC 6238 TOTP (SHA-1, 6 digits) at Unix time `t`, written from the RFC for these tests.
fn rfc6238(secret: &[u8], t: i64, digits: u32) -> String {
    use aws_lc_rs::hmac;
    let counter = (t.div_euclid(30) as u64).to_be_bytes();
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter);
    let h = mac.as_ref();
    let offset = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

pub(crate) fn code_at(secret: &[u8], t: i64) -> String {
    rfc6238(secret, t, 6)
}

/// Appendix B of RFC 6238, SHA-1 rows.
async fn the_test_totp_matches_rfc_6238(_backend: Backend) {
    let secret = b"12345678901234567890";
    for (t, want) in [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ] {
        assert_eq!(rfc6238(secret, t, 8), want, "T = {t}");
    }
}

/// A user with a password and a public client `web` (password and refresh grants), signed
/// in; returns the access token.
async fn signed_in(app: &TestApp) -> String {
    app.fixture().await;
    let body = app.login("alice@example.com").await;
    str_of(&body, "access_token").to_owned()
}

/// Enrols an authenticator app through the API; returns its id, its secret and the
/// recovery codes.
pub(crate) async fn enrol(app: &TestApp, access: &str) -> (String, Vec<u8>, Vec<String>) {
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/totp",
            access,
            Some(json!({"name": "Phone"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = str_of(&body, "id").to_owned();
    let secret = data_encoding::BASE32_NOPAD
        .decode(str_of(&body, "secret").as_bytes())
        .expect("base32");
    assert_eq!(secret.len(), 20);
    let uri = str_of(&body, "otpauth_uri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(
        uri.contains(&format!("secret={}", str_of(&body, "secret"))),
        "{uri}"
    );
    assert!(uri.contains("alice%40example.com"), "{uri}");
    assert!(str_of(&body, "qr_svg").contains("<svg"));
    // A wrong code does not turn it on.
    let now = app.clock.now();
    let wrong = format!(
        "{:06}",
        (code_at(&secret, now).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            access,
            Some(json!({"id": id, "code": wrong})),
        )
        .await;
    assert_oauth_error(status, &body, 400, "invalid_code");
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            access,
            Some(json!({"id": id, "code": code_at(&secret, now)})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["factor"]["id"], id.as_str());
    assert_eq!(body["factor"]["kind"], "totp");
    assert_eq!(body["factor"]["name"], "Phone");
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .expect("recovery codes with the first factor")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (id, secret, codes)
}

async fn mfa_token(app: &TestApp) -> String {
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_oauth_error(status, &body, 403, "mfa_required");
    assert!(body.get("access_token").is_none(), "{body}");
    str_of(&body, "mfa_token").to_owned()
}

async fn mfa_grant(app: &TestApp, token: &str, field: &str, value: &str) -> (u16, Value) {
    app.token_json(&[
        ("grant_type", MFA),
        ("mfa_token", token),
        (field, value),
        ("client_id", "web"),
    ])
    .await
}

async fn an_enrolled_user_completes_the_password_grant_with_a_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let access = signed_in(&app).await;
    let (id, secret, codes) = enrol(&app, &access).await;
    let (status, body) = app
        .send_bearer(Method::GET, "/api/v1/me/mfa", &access, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recovery_codes_left"], 10);
    assert_eq!(body["factors"][0]["id"], id.as_str());
    assert!(body["factors"][0].get("secret").is_none(), "{body}");

    // The wrong password still says only that.
    let (status, body) = app
        .password_grant("alice@example.com", "not the password", "web")
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert!(body.get("mfa_token").is_none());

    let token = mfa_token(&app).await;
    app.clock.advance(30);
    let (status, body) = mfa_grant(&app, &token, "otp", &code_at(&secret, app.clock.now())).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = jwt_parts(str_of(&body, "access_token"));
    assert_eq!(claims["sub"], json!(app_user_id(&app).await));
    // The user's roles and permissions (read with the user in the MFA grant) are those a
    // plain password grant puts in its token.
    let (_, before) = jwt_parts(&access);
    assert_eq!(claims["roles"], json!(["auditor", "manager"]), "{claims}");
    assert_eq!(claims["roles"], before["roles"]);
    assert_eq!(
        claims["permissions"],
        json!(["audit.read", "orders.approve", "orders.view"]),
        "{claims}"
    );
    assert_eq!(claims["permissions"], before["permissions"]);
    // The refresh token works like any other.
    let (status, body) = app.refresh(str_of(&body, "refresh_token")).await;
    assert_eq!(status, 200, "{body}");
    // The same mfa_token again: used up.
    app.clock.advance(30);
    let (status, body) = mfa_grant(&app, &token, "otp", &code_at(&secret, app.clock.now())).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // ... and a used token spends no code: the recovery code sent with it still works.
    let (status, body) = mfa_grant(&app, &token, "recovery_code", &codes[0]).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (_, body) = app
        .send_bearer(Method::GET, "/api/v1/me/mfa", &access, None)
        .await;
    assert_eq!(body["recovery_codes_left"], 10, "{body}");
    let fresh = mfa_token(&app).await;
    let (status, body) = mfa_grant(&app, &fresh, "recovery_code", &codes[0]).await;
    assert_eq!(status, 200, "{body}");
    app.wait_for_audit("mfa_required").await;
    app.wait_for_audit("mfa_succeeded").await;
    app.wait_for_audit("mfa_factor_added").await;
    // The discovery document names the grant.
    let doc: Value = app.get_json("/.well-known/openid-configuration").await;
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(MFA)),
        "{doc}"
    );
}

async fn app_user_id(app: &TestApp) -> String {
    app.services
        .stores
        .users
        .find_by_email(&latchkey::domain::Email::parse("alice@example.com").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

async fn recovery_codes_stand_in_for_the_app_once_each(backend: Backend) {
    let app = spawn_app(backend).await;
    let access = signed_in(&app).await;
    let (_, _, codes) = enrol(&app, &access).await;
    let token = mfa_token(&app).await;
    // Typed with spaces and in capitals: still the code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let (status, body) = mfa_grant(&app, &token, "recovery_code", &typed).await;
    assert_eq!(status, 200, "{body}");
    let events = app.wait_for_audit("recovery_code_used").await;
    assert_eq!(
        events[0].event.detail["codes_left"], 9,
        "{:?}",
        events[0].event.detail
    );
    // Used once: never again.
    let token = mfa_token(&app).await;
    let (status, body) = mfa_grant(&app, &token, "recovery_code", &codes[0]).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = mfa_grant(&app, &token, "recovery_code", &codes[1]).await;
    assert_eq!(status, 200, "{body}");
    // A new set: the old one stops working.
    let (status, body) = app
        .send_bearer(Method::POST, "/api/v1/me/mfa/recovery-codes", &access, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let fresh: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    let token = mfa_token(&app).await;
    let (status, body) = mfa_grant(&app, &token, "recovery_code", &codes[2]).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = mfa_grant(&app, &token, "recovery_code", &fresh[0]).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = app
        .send_bearer(Method::GET, "/api/v1/me/mfa", &access, None)
        .await;
    assert_eq!(body["recovery_codes_left"], 9, "{body}");
}

async fn codes_drift_by_one_step_and_are_never_accepted_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let access = signed_in(&app).await;
    let (_, secret, _) = enrol(&app, &access).await;
    // The enrolment used the current step: its code is spent.
    let token = mfa_token(&app).await;
    let now = app.clock.now();
    let (status, body) = mfa_grant(&app, &token, "otp", &code_at(&secret, now)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // Two steps ahead (the phone's clock a minute fast): refused.
    let (status, body) = mfa_grant(&app, &token, "otp", &code_at(&secret, now + 60)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // One step ahead: accepted.
    let (status, body) = mfa_grant(&app, &token, "otp", &code_at(&secret, now + 30)).await;
    assert_eq!(status, 200, "{body}");
    // And then the current step, now earlier than the one used: refused (no going back).
    app.clock.advance(30);
    let token = mfa_token(&app).await;
    let (status, body) = mfa_grant(&app, &token, "otp", &code_at(&secret, now)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // One step behind (the phone slow) is fine once the step is new.
    app.clock.advance(60);
    let later = app.clock.now();
    let (status, body) = mfa_grant(&app, &token, "otp", &code_at(&secret, later - 30)).await;
    assert_eq!(status, 200, "{body}");
    // Malformed codes are refused like wrong ones.
    let token = mfa_token(&app).await;
    for bad in ["", "12345", "1234567", "abcdef", "12 34 56 78"] {
        let (status, body) = mfa_grant(&app, &token, "otp", bad).await;
        assert!(status == 400, "{bad:?}: {status} {body}");
    }
}

async fn wrong_codes_lock_the_account_out_like_wrong_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    let access = signed_in(&app).await;
    let (_, secret, _) = enrol(&app, &access).await;
    let token = mfa_token(&app).await;
    let right = code_at(&secret, app.clock.now() + 30);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 7) % 1_000_000);
    let mut throttled = None;
    for attempt in 0..30 {
        let r = app
            .token(&[
                ("grant_type", MFA),
                ("mfa_token", &token),
                ("otp", &wrong),
                ("client_id", "web"),
            ])
            .await;
        if r.headers().contains_key("retry-after") {
            throttled = Some(attempt);
            break;
        }
        assert_eq!(r.status().as_u16(), 400);
    }
    let attempt = throttled.expect("wrong codes are throttled");
    assert!(attempt >= 3, "not before a few tries: {attempt}");
    // Locked out: even the right code waits.
    let (status, body) = mfa_grant(&app, &token, "otp", &right).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    app.wait_for_audit("lockout").await;
    app.wait_for_audit("mfa_failed").await;
}

async fn mfa_tokens_are_single_use_short_lived_and_bound_to_their_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let access = signed_in(&app).await;
    let (_, secret, codes) = enrol(&app, &access).await;
    public_client(app.admin(), "other", &["password"], &["orders.read"]).await;
    public_client(app.admin(), "no-password", &["refresh_token"], &[]).await;
    let token = mfa_token(&app).await;
    // Another client: refused, and the token stays usable by its own.
    let (status, body) = app
        .token_json(&[
            ("grant_type", MFA),
            ("mfa_token", &token),
            ("recovery_code", &codes[0]),
            ("client_id", "other"),
        ])
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // A client without the password grant may not use the MFA grant at all.
    let (status, body) = app
        .token_json(&[
            ("grant_type", MFA),
            ("mfa_token", &token),
            ("otp", "123456"),
            ("client_id", "no-password"),
        ])
        .await;
    assert_oauth_error(status, &body, 400, "unauthorized_client");
    // Forged or garbled tokens.
    for forged in ["", "x", &format!("{token}x"), &token[..token.len() / 2]] {
        let (status, body) = mfa_grant(&app, forged, "otp", "123456").await;
        assert!(status == 400, "{forged:?}: {status} {body}");
    }
    // Both factors at once, or none: invalid_request.
    let (status, body) = app
        .token_json(&[
            ("grant_type", MFA),
            ("mfa_token", &token),
            ("otp", "123456"),
            ("recovery_code", &codes[0]),
            ("client_id", "web"),
        ])
        .await;
    assert_oauth_error(status, &body, 400, "invalid_request");
    // Five minutes later: expired.
    app.clock.advance(301);
    let (status, body) = mfa_grant(&app, &token, "otp", &code_at(&secret, app.clock.now())).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // A fresh one works.
    let token = mfa_token(&app).await;
    let (status, body) = mfa_grant(&app, &token, "recovery_code", &codes[0]).await;
    assert_eq!(status, 200, "{body}");
}

async fn changing_factors_needs_a_recent_sign_in_or_a_proof(backend: Backend) {
    let app = spawn_app(backend).await;
    let access = signed_in(&app).await;
    let (id, secret, codes) = enrol(&app, &access).await;
    // Later than mfa.reauth_within (5 minutes) after the sign-in; the access token is still
    // valid (10 minutes).
    app.clock.advance(360);
    let path = format!("/api/v1/me/mfa/{id}");
    let (status, body) = app.send_bearer(Method::DELETE, &path, &access, None).await;
    assert_oauth_error(status, &body, 403, "reauthentication_required");
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/totp",
            &access,
            Some(json!({"name": "Second phone"})),
        )
        .await;
    assert_oauth_error(status, &body, 403, "reauthentication_required");
    let (status, body) = app
        .send_bearer(
            Method::DELETE,
            &path,
            &access,
            Some(json!({"password": "not the password"})),
        )
        .await;
    assert_oauth_error(status, &body, 400, "invalid_credentials");
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/recovery-codes",
            &access,
            Some(json!({"otp": code_at(&secret, app.clock.now())})),
        )
        .await;
    assert_eq!(status, 200, "a current code proves it too: {body}");
    // Unknown or malformed ids: 404.
    for other in ["00000000-0000-4000-8000-000000000000", "nope"] {
        let (status, body) = app
            .send_bearer(
                Method::DELETE,
                &format!("/api/v1/me/mfa/{other}"),
                &access,
                Some(json!({"password": PASSWORD})),
            )
            .await;
        assert_oauth_error(status, &body, 404, "not_found");
    }
    let (status, body) = app
        .send_bearer(
            Method::DELETE,
            &path,
            &access,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    app.wait_for_audit("mfa_factor_removed").await;
    // No factor left: the password grant issues tokens again, and the recovery codes died
    // with the last factor.
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = app
        .send_bearer(
            Method::GET,
            "/api/v1/me/mfa",
            str_of(&body, "access_token"),
            None,
        )
        .await;
    assert_eq!(body, json!({"factors": [], "recovery_codes_left": 0}));
    let _ = codes;
    // A client's own token is not a user's.
    let secret = confidential_client(app.admin(), "svc", &["client_credentials"], &[]).await;
    let (_, body) = app.client_credentials("svc", &secret).await;
    let (status, body) = app
        .send_bearer(
            Method::GET,
            "/api/v1/me/mfa",
            str_of(&body, "access_token"),
            None,
        )
        .await;
    assert!(status == 403 || status == 401, "{status} {body}");
}

/// `latchkey users mfa` and `latchkey users reset-mfa`, run as a process on the app's
/// database with its master key.
fn cli(app: &TestApp, master: &str, args: &[&str]) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(args)
        .env("LATCHKEY_DATABASE_URL", &app.db.url)
        .env("LATCHKEY_MASTER_KEY", master)
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "64")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn operators_list_and_reset_a_users_factors(backend: Backend) {
    let master = latchkey::crypto::MasterKey::generate_base64();
    let app = spawn_app_with(backend, &[("LATCHKEY_MASTER_KEY", &master)]).await;
    let access = signed_in(&app).await;
    let (id, _, _) = enrol(&app, &access).await;
    let (_, out) = cli(
        &app,
        &master,
        &["users", "mfa", "alice@example.com", "--json"],
    );
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["factors"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["factors"][0]["kind"], "totp");
    assert_eq!(listed["recovery_codes_left"], 10);
    assert!(!out.contains("secret"), "{out}");
    let (_, human) = cli(&app, &master, &["users", "mfa", "alice@example.com"]);
    assert!(human.contains("totp  Phone"), "{human}");
    assert!(human.contains("recovery codes left: 10"), "{human}");
    let (_, out) = cli(
        &app,
        &master,
        &["users", "reset-mfa", "alice@example.com", "--json"],
    );
    let reset: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reset["factors_removed"], 1, "{reset}");
    let (_, out) = cli(
        &app,
        &master,
        &["users", "mfa", "alice@example.com", "--json"],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"factors": [], "recovery_codes_left": 0})
    );
    // The phone is gone: the password alone signs in again.
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 200, "{body}");
    app.wait_for_audit("mfa_reset").await;
}

/// Posts the second step's form on `page` with `field` = `value`.
pub(crate) async fn second_step(
    app: &TestApp,
    b: &mut Browser,
    page: &Page,
    field: &str,
    value: &str,
) -> Page {
    let mut form = vec![
        ("csrf", page.field("csrf")),
        ("mfa_token", page.field("mfa_token")),
        (field, value.to_owned()),
    ];
    if page.html.contains("name=\"request\"") {
        form.push(("request", page.field("request")));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post(&app.url("/login/mfa"), &form).await
}

/// Browser sign-in of a user with a second factor: the password page leads to the code
/// page, not to a session; a wrong code keeps the user there; the right code (or a recovery
/// code) continues the authorization request, and the ID token's `amr` says how.
async fn the_hosted_sign_in_asks_for_the_second_factor(backend: Backend) {
    let app = spawn_app(backend).await;
    let access = signed_in(&app).await;
    let (_, secret, codes) = enrol(&app, &access).await;
    browser_client(&app, "spa").await;
    let mut b = Browser::new();
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let page = b
        .post(
            &app.url("/login"),
            &[
                ("csrf", &page.field("csrf")),
                ("request", &page.field("request")),
                ("username", "alice@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("action=\"/login/mfa\""), "{}", page.html);
    assert!(page.html.contains("autocomplete=\"one-time-code\""));
    assert!(!b.has_cookie("__Host-latchkey_session") && !b.has_cookie("latchkey_session"));
    // A wrong code: the same page, with the error.
    let now = app.clock.now() + 30;
    let wrong = format!(
        "{:06}",
        (code_at(&secret, now).parse::<u32>().unwrap() + 3) % 1_000_000
    );
    let again = second_step(&app, &mut b, &page, "otp", &wrong).await;
    assert_eq!(again.status, 401, "{}", again.html);
    assert!(
        again.html.contains("That code is not correct"),
        "{}",
        again.html
    );
    // The right one: consent, then the code for the app.
    let next = second_step(&app, &mut b, &again, "otp", &code_at(&secret, now)).await;
    let location = allow_consent(&app, &mut b, next).await;
    let q = query_of(&location);
    let (status, body) = exchange(&app, &q["code"], VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    let (_, id) = jwt_parts(str_of(&body, "id_token"));
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]), "{id}");
    assert_eq!(id["acr"], "urn:latchkey:acr:mfa", "{id}");
    // The page's form again, with the next code: the mfa_token was used.
    app.clock.advance(30);
    let used = second_step(&app, &mut b, &again, "otp", &code_at(&secret, now + 30)).await;
    assert_eq!(used.status, 400, "{}", used.html);
    assert!(used.html.contains("Please sign in again"), "{}", used.html);

    // A fresh browser, without an application: a recovery code, then the account page.
    let mut b = Browser::new();
    let page = b.get(&app.url("/login")).await;
    let page = b
        .post(
            &app.url("/login"),
            &[
                ("csrf", &page.field("csrf")),
                ("username", "alice@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    let done = second_step(&app, &mut b, &page, "recovery_code", &codes[3]).await;
    assert_eq!(done.status, 303, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some("/account"));
    // The wrong password never reaches the code page.
    let mut b = Browser::new();
    let page = b.get(&app.url("/login")).await;
    let page = b
        .post(
            &app.url("/login"),
            &[
                ("csrf", &page.field("csrf")),
                ("username", "alice@example.com"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(page.status, 401, "{}", page.html);
    assert!(!page.html.contains("/login/mfa"));
}

/// A magic link proves the mailbox, not a second factor: at the token endpoint it answers
/// `mfa_required`, and the MFA grant completes it with `amr` from the link.
async fn magic_links_are_a_first_factor_only(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    let access = signed_in(&app).await;
    let (_, secret, _) = enrol(&app, &access).await;
    // The enrolment was mailed to the user.
    let notice = smtp.wait_for("alice@example.com", MAIL_WAIT).await;
    assert!(
        notice.subject.contains("sign-in methods changed"),
        "{}",
        notice.subject
    );
    assert!(
        notice.text().contains("An authenticator app was added."),
        "{}",
        notice.text()
    );
    public_client(
        app.admin(),
        "magic",
        &["password", MAGIC_LINK],
        &["orders.read"],
    )
    .await;
    let (status, _) = app
        .post_json(
            "/api/v1/magic-link",
            json!({"email": "alice@example.com", "client_id": "magic"}),
        )
        .await;
    assert_eq!(status, 202);
    let mail = smtp.wait_for("alice@example.com", MAIL_WAIT).await;
    let code = code_in(&mail);
    let (status, body) = app
        .token_json(&[
            ("grant_type", MAGIC_LINK),
            ("email", "alice@example.com"),
            ("code", &code),
            ("client_id", "magic"),
        ])
        .await;
    assert_oauth_error(status, &body, 403, "mfa_required");
    let (status, body) = app
        .token_json(&[
            ("grant_type", MFA),
            ("mfa_token", str_of(&body, "mfa_token")),
            ("otp", &code_at(&secret, app.clock.now() + 30)),
            ("client_id", "magic"),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
}

const MAGIC_LINK: &str = "urn:latchkey:params:oauth:grant-type:magic-link";

/// The account page's forms: enrolment with a wrong then a right code, the recovery codes
/// shown once; later than `mfa.reauth_within` after the sign-in, changes need the password
/// typed into the form (a wrong one is refused, nothing changes).
async fn the_account_page_adds_and_removes_factors_after_a_recent_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let mut b = Browser::new();
    crate::authorization_code::sign_in_alone(&app, &mut b, "alice@example.com").await;
    let page = b.get(&app.url("/account")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("Add an authenticator app"),
        "{}",
        page.html
    );
    assert!(
        !page.html.contains("id=\"mfa_pw_add\""),
        "recent: no password asked"
    );
    let csrf = page.field("csrf");
    let enrol = b
        .post(&app.url("/account/mfa/totp"), &[("csrf", &csrf)])
        .await;
    assert_eq!(enrol.status, 200, "{}", enrol.html);
    assert!(enrol.html.contains("<svg"), "{}", enrol.html);
    let factor = enrol.field("factor_id");
    let key_start = enrol.html.find("<code class=\"key\">").unwrap() + "<code class=\"key\">".len();
    let key_end = enrol.html[key_start..].find('<').unwrap() + key_start;
    let key: String = enrol.html[key_start..key_end].split_whitespace().collect();
    let secret = data_encoding::BASE32_NOPAD.decode(key.as_bytes()).unwrap();
    let now = app.clock.now();
    let wrong = format!(
        "{:06}",
        (code_at(&secret, now).parse::<u32>().unwrap() + 9) % 1_000_000
    );
    let refused = b
        .post(
            &app.url("/account/mfa/totp/confirm"),
            &[("csrf", &csrf), ("factor_id", &factor), ("code", &wrong)],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.html);
    assert!(
        refused.html.contains("That code is not correct"),
        "{}",
        refused.html
    );
    let on = b
        .post(
            &app.url("/account/mfa/totp/confirm"),
            &[
                ("csrf", &csrf),
                ("factor_id", &factor),
                ("code", &code_at(&secret, now)),
            ],
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.html);
    assert_eq!(on.html.matches("<li><code>").count(), 10, "{}", on.html);

    // Six minutes later: the forms ask for the password.
    app.clock.advance(360);
    let page = b.get(&app.url("/account")).await;
    assert!(page.html.contains("id=\"mfa_pw_codes\""), "{}", page.html);
    let csrf = page.field("csrf");
    let refused = b
        .post(
            &app.url("/account/mfa/remove"),
            &[
                ("csrf", &csrf),
                ("factor_id", &factor),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.html);
    assert!(
        refused.html.contains("The password is not correct."),
        "{}",
        refused.html
    );
    let refused = b
        .post(
            &app.url("/account/mfa/remove"),
            &[("csrf", &csrf), ("factor_id", &factor)],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    let (status, _) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 403, "still on");
    let removed = b
        .post(
            &app.url("/account/mfa/remove"),
            &[
                ("csrf", &csrf),
                ("factor_id", &factor),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.html);
    assert!(
        removed.html.contains("The sign-in method was removed."),
        "{}",
        removed.html
    );
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 200, "{body}");
    // A forged form: no change.
    let forged = b
        .post(
            &app.url("/account/mfa/totp"),
            &[("csrf", "forged"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.html);
}
