//! WebAuthn passkeys (issue 15). In Chromium with a virtual authenticator (the Chrome
//! DevTools Protocol's WebAuthn domain, `tests/e2e/passkey_flow.mjs`): registering a passkey
//! on the account page, signing in with it and no password, a replayed answer refused, and
//! the passkey as the second factor after a password. Over plain HTTP on every backend: where
//! passkeys are offered (a host name, never an IP address), the pages' CSP allowing exactly
//! the inline passkey script by its hash, the options the API gives, and every forged, stale,
//! misdirected or replayed answer refused with the standard answers.
//!
//! Browsers accept only a domain name as a WebAuthn relying party id, so these apps run with
//! the issuer `http://localhost:<port>`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::authorization_code::{sign_in_alone, Browser};
use crate::browser::harness::{
    assert_screenshots, cell, require_tools, run_script, screenshot_dir,
};
use crate::helpers::*;
use crate::scenarios;

scenarios!(
    passkeys_are_offered_only_on_a_host_name,
    the_passkey_pages_run_only_the_hashed_script,
    the_api_starts_a_registration_for_a_discoverable_credential,
    forged_or_misdirected_passkey_answers_are_refused,
);

/// The browser scenario runs on the two ends of the matrix, as the other Chromium tests do.
mod in_chromium {
    use super::*;
    crate::scenarios!(cells [sqlite_embedded, postgres_redis]:
        passkeys_register_sign_in_and_stand_as_second_factor_in_chromium,
    );
}

/// A test app whose issuer is `http://localhost:<port>` (a relying party browsers accept).
pub(crate) async fn spawn_on_localhost(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://localhost:{port}");
    let mut env: Vec<(&str, &str)> = vec![
        ("LATCHKEY_BIND", bind.as_str()),
        ("LATCHKEY_ISSUER", issuer.as_str()),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(backend, &env).await
}

fn b64url(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// The `data-options` of the passkey form on `html`, decoded.
fn options_of(html: &str) -> Value {
    let marker = "data-options=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no passkey form in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    let json = html[start..end]
        .replace("&quot;", "\"")
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

async fn passkeys_are_offered_only_on_a_host_name(backend: Backend) {
    // The development default: an IP address, which no browser takes as a relying party.
    let app = spawn_app(backend).await;
    app.fixture().await;
    let page = app.http.get(app.url("/login")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    assert!(!html.contains("data-passkey"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("autocomplete=\"username\""), "{html}");
    assert!(!csp.contains("script-src"), "{csp}");
    let access = str_of(&app.login("alice@example.com").await, "access_token").to_owned();
    let (status, body) = app
        .send_bearer(Method::POST, "/api/v1/me/mfa/passkeys", &access, None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "passkeys_unavailable");

    // On a host name they are offered; `mfa.passkeys = false` turns them off again.
    let app = spawn_on_localhost(backend, &[]).await;
    let html = app
        .http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-passkey=\"sign-in\""), "{html}");
    assert!(
        html.contains("autocomplete=\"username webauthn\""),
        "the browser's passkey autofill: {html}"
    );
    let options = options_of(&html);
    assert_eq!(options["publicKey"]["rpId"], "localhost", "{options}");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(
        options["publicKey"].get("allowCredentials").is_none()
            || options["publicKey"]["allowCredentials"] == json!([]),
        "discoverable: no credential named: {options}"
    );
    let off = spawn_on_localhost(backend, &[("LATCHKEY_MFA_PASSKEYS", "false")]).await;
    let html = off
        .http
        .get(off.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("data-passkey"), "{html}");
}

/// The pages that offer passkeys run one script, inline, and their CSP allows exactly it:
/// by its SHA-256, with no `'self'`, no `'unsafe-inline'` and no other source.
async fn the_passkey_pages_run_only_the_hashed_script(backend: Backend) {
    use aws_lc_rs::digest;
    let app = spawn_on_localhost(backend, &[]).await;
    app.fixture().await;
    let mut b = Browser::new();
    let login = b.get(&app.url("/login")).await;
    assert_eq!(login.status, 200);
    sign_in_alone(&app, &mut b, "alice@example.com").await;
    let r = b
        .http
        .get(app.url("/account"))
        .header("cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = r.text().await.unwrap();
    assert!(html.contains("data-passkey=\"register\""), "{html}");
    let scripts: Vec<&str> = html.split("<script>").skip(1).collect();
    assert_eq!(scripts.len(), 1, "one script: {html}");
    let body = &scripts[0][..scripts[0].find("</script>").unwrap()];
    let hash =
        data_encoding::BASE64.encode(digest::digest(&digest::SHA256, body.as_bytes()).as_ref());
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap_or_else(|| panic!("no script-src in {csp}"));
    assert_eq!(script_src, format!("script-src 'sha256-{hash}'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline'; script") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(!html.contains(" src="), "no script from elsewhere: {html}");
}

async fn the_api_starts_a_registration_for_a_discoverable_credential(backend: Backend) {
    let app = spawn_on_localhost(backend, &[]).await;
    let fixture = app.fixture().await;
    let access = str_of(&app.login("alice@example.com").await, "access_token").to_owned();
    let (status, body) = app
        .send_bearer(Method::POST, "/api/v1/me/mfa/passkeys", &access, None)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["expires_in"], 600);
    let ceremony = str_of(&body, "ceremony").to_owned();
    let pk = &body["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost", "{body}");
    let user_handle = uuid::Uuid::parse_str(&fixture.user_id).unwrap();
    assert_eq!(pk["user"]["id"], b64url(user_handle.as_bytes()), "{body}");
    assert_eq!(pk["user"]["name"], "alice@example.com");
    let selection = &pk["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{body}");
    assert_eq!(selection["userVerification"], "required", "{body}");
    assert!(pk["challenge"].as_str().unwrap().len() >= 43, "{body}");

    // A garbage answer, or one for another ceremony, is refused; nothing is stored.
    for credential in [json!({"id": "x"}), json!("not json"), json!({})] {
        let (status, body) = app
            .send_bearer(
                Method::POST,
                "/api/v1/me/mfa/passkeys/confirm",
                &access,
                Some(json!({"ceremony": ceremony, "credential": credential})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_passkey", "{body}");
    }
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/passkeys/confirm",
            &access,
            Some(json!({"ceremony": format!("{ceremony}x"), "credential": {}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, overview) = app
        .send_bearer(Method::GET, "/api/v1/me/mfa", &access, None)
        .await;
    assert_eq!(overview["factors"], json!([]), "{overview}");

    // A ceremony is the user's own: bob cannot finish alice's.
    create_user(app.admin(), "bob@example.com", &[]).await;
    let bob = str_of(&app.login("bob@example.com").await, "access_token").to_owned();
    let (_, started) = app
        .send_bearer(Method::POST, "/api/v1/me/mfa/passkeys", &access, None)
        .await;
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/passkeys/confirm",
            &bob,
            Some(json!({"ceremony": started["ceremony"], "credential": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {"attestationObject": "AAAA", "clientDataJSON": "AAAA"}}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_passkey", "{body}");

    // Older than mfa.reauth_within: the start asks for a proof, like every change.
    app.clock.advance(301);
    let (status, body) = app
        .send_bearer(Method::POST, "/api/v1/me/mfa/passkeys", &access, None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "reauthentication_required");
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/passkeys",
            &access,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // The ceremony outlives its ten minutes by nothing.
    let late = str_of(&body, "ceremony").to_owned();
    app.clock.advance(601);
    let access = str_of(&app.login("alice@example.com").await, "access_token").to_owned();
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/passkeys/confirm",
            &access,
            Some(json!({"ceremony": late, "credential": {}, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_passkey", "{body}");
}

async fn forged_or_misdirected_passkey_answers_are_refused(backend: Backend) {
    let app = spawn_on_localhost(backend, &[]).await;
    app.fixture().await;
    let mut b = Browser::new();
    let page = b.get(&app.url("/login")).await;
    let csrf = page.field("csrf");
    let ceremony = page.field("ceremony");
    let user = uuid::Uuid::new_v4();
    let forged = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {
            "authenticatorData": b64url(&[0u8; 37]),
            "clientDataJSON": b64url(br#"{"type":"webauthn.get","challenge":"AAAA","origin":"http://localhost"}"#),
            "signature": b64url(&[1u8; 64]),
            "userHandle": b64url(user.as_bytes()),
        },
        "extensions": {},
    })
    .to_string();
    // Without the form's token: the page again, 403, and nothing checked.
    let r = b
        .post(
            &app.url("/login/passkey"),
            &[("ceremony", &ceremony), ("credential", &forged)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.html);
    assert!(r.html.contains("This form has expired"), "{}", r.html);
    // Nothing sent (a browser without passkeys posting the bare form).
    let r = b
        .post(
            &app.url("/login/passkey"),
            &[("csrf", &csrf), ("ceremony", &ceremony)],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.html);
    assert!(r.html.contains("did not send a passkey"), "{}", r.html);
    // A forged answer: refused, one answer for every reason, the ceremony used up.
    for (c, answer) in [
        (ceremony.as_str(), forged.as_str()),
        (ceremony.as_str(), "{\"id\":1}"),
        ("not-a-ceremony", forged.as_str()),
        (&ceremony[..ceremony.len() - 2], forged.as_str()),
    ] {
        let r = b
            .post(
                &app.url("/login/passkey"),
                &[("csrf", &csrf), ("ceremony", c), ("credential", answer)],
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.html);
        assert!(
            r.html.contains("That passkey was not accepted"),
            "{}",
            r.html
        );
        assert!(
            !b.cookies.keys().any(|k| k.ends_with("latchkey_session")),
            "no session"
        );
        assert!(
            r.html.contains("data-passkey=\"sign-in\""),
            "the page offers a new ceremony: {}",
            r.html
        );
    }
    app.wait_for_audit("login_failed").await;

    // A registration ceremony is not a sign-in ceremony.
    let access = str_of(&app.login("alice@example.com").await, "access_token").to_owned();
    let (_, started) = app
        .send_bearer(Method::POST, "/api/v1/me/mfa/passkeys", &access, None)
        .await;
    let r = b
        .post(
            &app.url("/login/passkey"),
            &[
                ("csrf", &csrf),
                ("ceremony", str_of(&started, "ceremony")),
                ("credential", &forged),
            ],
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.html);

    // A passkey answer given as the second step needs a live mfa_token.
    let r = b
        .post(
            &app.url("/login/passkey"),
            &[
                ("csrf", &csrf),
                ("mfa_token", "forged"),
                ("ceremony", &ceremony),
                ("credential", &forged),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.html);
    assert!(r.html.contains("Please sign in again"), "{}", r.html);
}

/// Registers a passkey on the account page, signs in with it alone, and uses it as the
/// second factor, in Chromium with a virtual authenticator.
async fn passkeys_register_sign_in_and_stand_as_second_factor_in_chromium(backend: Backend) {
    require_tools();
    let shots = screenshot_dir(&format!("passkeys-{}", cell(backend)));
    let app = spawn_on_localhost(backend, &[]).await;
    let fixture = app.fixture().await;
    let result = run_script(
        "passkey_flow.mjs",
        &[
            ("LK_ISSUER", app.settings.issuer().to_owned()),
            ("LK_EMAIL", "alice@example.com".into()),
            ("LK_PASSWORD", PASSWORD.into()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await;
    let codes = result["recovery_codes"].as_array().expect("codes");
    assert_eq!(
        codes.len(),
        10,
        "the first factor brings recovery codes: {result}"
    );
    let account = str_of(&result, "account_text");
    assert!(account.contains("Test laptop"), "{account}");
    assert_eq!(result["autocomplete"], "username webauthn", "{result}");
    assert!(
        str_of(&result, "autofill_text").contains("alice@example.com"),
        "{result}"
    );
    assert!(
        str_of(&result, "cloned_text").contains("That passkey was not accepted"),
        "a cloned authenticator (its counter went back): {result}"
    );
    assert!(
        str_of(&result, "passwordless_text").contains("alice@example.com"),
        "{result}"
    );
    assert_eq!(result["replay_status"], 401, "a replayed answer: {result}");
    assert!(
        str_of(&result, "replay_text").contains("That passkey was not accepted"),
        "{result}"
    );
    assert!(
        str_of(&result, "after_second_factor_text").contains("alice@example.com"),
        "{result}"
    );
    assert!(result["sign_count"].as_i64().unwrap() >= 3, "{result}");

    // What the sessions say: the passkey alone is two factors (hwk + mfa); after the
    // password it is the second one (pwd + hwk + mfa).
    let user = latchkey::domain::UserId::from_trusted(fixture.user_id.clone());
    let sessions = app.services.sign_in.sessions().list(&user).await.unwrap();
    let amrs: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| s.amr.iter().map(|a| a.as_str().to_owned()).collect())
        .collect();
    assert!(
        amrs.iter().any(|a| a == &["hwk", "mfa"]),
        "a passwordless passkey session: {amrs:?}"
    );
    assert!(
        amrs.iter().any(|a| a == &["pwd", "hwk", "mfa"]),
        "a password + passkey session: {amrs:?}"
    );
    let added = app.wait_for_audit("mfa_factor_added").await;
    assert_eq!(
        added[0].event.detail["kind"], "passkey",
        "{:?}",
        added[0].event.detail
    );
    let succeeded = app.wait_for_audit("login_succeeded").await;
    assert!(
        succeeded
            .iter()
            .any(|e| e.event.detail["method"] == "passkey"),
        "{succeeded:?}"
    );
    let second = app.wait_for_audit("mfa_succeeded").await;
    assert!(
        second.iter().any(|e| e.event.detail["method"] == "passkey"),
        "{second:?}"
    );
    assert_screenshots(
        &shots,
        &result["screenshots"],
        &[
            "sign-in-with-passkey-offered-desktop",
            "sign-in-with-passkey-offered-phone",
            "account-add-passkey-desktop",
            "account-add-passkey-phone",
            "passkey-recovery-codes-desktop",
            "passkey-recovery-codes-phone",
            "account-with-passkey-desktop",
            "account-with-passkey-phone",
            "sign-in-passkey-refused-desktop",
            "sign-in-passkey-refused-phone",
            "second-step-with-passkey-desktop",
            "second-step-with-passkey-phone",
        ],
    );
}
