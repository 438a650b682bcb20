//! The browser sign-in flow end to end, in a real browser (Debian's Chromium driven by
//! playwright-core from node; `tests/e2e/`), against relying parties we did not write:
//! - the example SPA (`examples/spa`, oidc-client-ts) with the example resource server
//!   (`examples/resource-server`, offline JWT validation and the revocation feed), signing in,
//!   refreshing, calling the API and signing out, with the back-channel logout token checked
//!   against the JWKS;
//! - openid-client (v6, OpenID Certified) as a public client with PKCE and as a confidential
//!   client with client_secret_basic.
//!
//! Screenshots of the hosted pages (desktop 1280x900 and phone 390x844) are kept in
//! `target/e2e-screenshots/<test>/`. Chromium, node and the node packages are provisioned by
//! scripts/test.sh; without them these tests fail, they never skip.
//!
//! Cells: SQLite (embedded) and PostgreSQL with Redis, the two ends of the matrix: a browser
//! scenario costs seconds of Chromium on a 2-core machine, and the other two cells add no
//! code path the flow's own HTTP tests do not already cover on them.

pub mod harness;

use std::time::Duration;

use crate::helpers::{spawn_app, spawn_app_with, str_of, Backend, TestApp, PASSWORD};
use harness::{
    assert_screenshots, cell, cli, require_tools, run_script, screenshot_dir,
    start_resource_server, start_spa, verify_with_jwks, BackchannelSink,
};
use latchkey::services::NewUserInput;
use secrecy::SecretString;

crate::scenarios!(cells [sqlite_embedded, postgres_redis]:
    example_spa_signs_in_refreshes_calls_the_api_and_signs_out,
    openid_client_public_client_with_pkce,
    openid_client_confidential_client_with_client_secret_basic,
    the_sign_in_page_lets_its_form_end_at_the_client,
    the_hosted_pages_work_without_javascript,
    example_spa_signs_in_through_google,
    the_second_step_of_a_sign_in_in_chromium,
    two_step_sign_in_is_turned_on_from_the_account_page,
    a_policy_takes_the_user_through_enrolment_in_chromium,
    a_signed_in_user_is_stepped_up_in_chromium,
);

/// Chromium applies the page's CSP `form-action` to the redirect that answers a form post:
/// with `form-action 'self'` alone, POST /login's 302 to the client was blocked and nobody
/// could sign in (found by the SPA test above). The sign-in page must allow the client's
/// redirect origin, and only that one. (Plain HTTP, no browser needed.)
async fn the_sign_in_page_lets_its_form_end_at_the_client(backend: Backend) {
    let app = spawn_app(backend).await;
    crate::authorization_code::browser_client(&app, "spa").await;
    let url = crate::authorization_code::authorize_url(&app, "spa", &[]);
    let page = app.http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let form_action = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("form-action"))
        .unwrap_or_else(|| panic!("no form-action in {csp}"));
    assert_eq!(
        form_action, "form-action 'self' http://127.0.0.1:5173",
        "{csp}"
    );
}

const EMAIL: &str = "alice@example.com";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

async fn user(app: &TestApp) -> String {
    app.admin()
        .create_user(NewUserInput {
            email: EMAIL.into(),
            password: Some(SecretString::from(PASSWORD)),
            username: Some("alice".into()),
            display_name: Some("Alice Example".into()),
            roles: vec![],
            active: true,
            email_verified: true,
            attributes: None,
        })
        .await
        .unwrap()
        .id
}

/// The resource-server client of the example API (reads the revocation feed).
fn resource_server_client(app: &TestApp) -> (String, String) {
    let rs = cli(
        app,
        &[
            "clients",
            "create",
            "--name",
            "example-api",
            "--client-id",
            "example-api",
            "--confidential",
            "--grant",
            "client_credentials",
            "--scope",
            "latchkey.introspect",
            "--json",
        ],
    );
    (
        "example-api".into(),
        str_of(&rs, "client_secret").to_owned(),
    )
}

/// Waits until the token endpoint answers a CORS preflight from `origin`: a client registered
/// by the CLI (another process) reaches a running server's CORS policy through its background
/// refresh, every few seconds.
async fn wait_for_cors(app: &TestApp, origin: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answer = app
            .http
            .request(reqwest::Method::OPTIONS, app.url("/oauth2/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        let allowed = answer
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            == Some(origin);
        if allowed {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the token endpoint still refuses CORS from the registered origin {origin} ({})",
            answer.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn example_spa_signs_in_refreshes_calls_the_api_and_signs_out(backend: Backend) {
    // No server-wide CORS origin (LATCHKEY_CORS_ALLOWED_ORIGINS): the client's registered
    // --allowed-origin must be enough.
    require_tools();
    let shots = screenshot_dir(&format!("spa-{}", cell(backend)));
    let spa = start_spa().await;
    let origin = spa.url.trim_end_matches('/').to_owned();
    let app = spawn_app(backend).await;
    let issuer = app.settings.issuer().to_owned();
    let user_id = user(&app).await;
    let sink = BackchannelSink::start().await;

    // The client, registered as examples/README.md says, plus the back-channel URI.
    let redirect = format!("{origin}/callback");
    let post_logout = format!("{origin}/");
    let client = cli(
        &app,
        &[
            "clients",
            "create",
            "--name",
            "spa",
            "--client-id",
            "spa",
            "--public",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            &redirect,
            "--post-logout-redirect-uri",
            &post_logout,
            "--allowed-origin",
            &origin,
            "--backchannel-logout-uri",
            &sink.url,
            "--first-party",
            "--json",
        ],
    );
    assert_eq!(str_of(&client, "client_id"), "spa", "{client}");
    let registered = std::time::Instant::now();
    let (rs_id, rs_secret) = resource_server_client(&app);
    let api = start_resource_server(&app, &rs_id, &rs_secret, &origin, &[]).await;
    wait_for_cors(&app, &origin).await;
    eprintln!(
        "CORS allowed the registered origin {:?} after the CLI registered it",
        registered.elapsed()
    );

    let spa_url = format!("{origin}/?issuer={issuer}&client_id=spa&api={}", api.url);
    let result = run_script(
        "spa_flow.mjs",
        &[
            ("SPA_URL", spa_url),
            ("LK_ISSUER", issuer.clone()),
            ("LK_USERNAME", EMAIL.into()),
            ("LK_PASSWORD", PASSWORD.into()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await;
    let spa_log = spa.output();
    let api_log = api.output();

    // The request the library made: code flow with PKCE S256, a nonce and a state.
    let query = &result["authorize_query"];
    assert_eq!(query["response_type"], "code", "{query}");
    assert_eq!(query["code_challenge_method"], "S256", "{query}");
    assert_eq!(str_of(query, "code_challenge").len(), 43, "{query}");
    assert!(!str_of(query, "state").is_empty() && !str_of(query, "nonce").is_empty());
    assert_eq!(
        result["consent"], false,
        "a first-party client is not asked for consent"
    );

    // The ID token, as the app showed it, and as the JWKS verifies it.
    let claims = &result["claims"];
    assert_eq!(claims["sub"], user_id.as_str(), "{claims}");
    assert_eq!(claims["iss"], issuer.as_str(), "{claims}");
    assert_eq!(claims["email"], EMAIL, "{claims}");
    assert_eq!(claims["nonce"], query["nonce"], "{claims}");
    let (id_header, id_claims) = verify_with_jwks(&app, str_of(&result, "id_token"), "spa").await;
    assert_eq!(&id_claims, claims, "the app shows the ID token's claims");
    assert_eq!(id_header["alg"], "RS256", "the default ID token algorithm");
    let sid = str_of(&id_claims, "sid").to_owned();
    let (_, refreshed_id) =
        verify_with_jwks(&app, str_of(&result, "refreshed_id_token"), "spa").await;
    assert_eq!(refreshed_id["sub"], user_id.as_str());

    // The API accepted the refreshed access token.
    assert_eq!(result["api"]["status"], 200, "{}\n{api_log}", result["api"]);
    let me = &result["api"]["body"];
    assert_eq!(me["sub"], user_id.as_str(), "{me}");
    assert_eq!(me["client_id"], "spa", "{me}");
    assert!(
        str_of(me, "scope").split(' ').any(|s| s == "openid"),
        "{me}"
    );

    // The sign-out reached the client's back channel, signed by a key of the JWKS.
    let logout_token = sink.first_token(Duration::from_secs(10)).await;
    let (header, logout) = verify_with_jwks(&app, &logout_token, "spa").await;
    assert_eq!(header["typ"], "logout+jwt", "{header}");
    assert_eq!(logout["sub"], user_id.as_str(), "{logout}");
    assert_eq!(logout["sid"], sid.as_str(), "{logout}");
    assert!(logout["events"][BACKCHANNEL_EVENT].is_object(), "{logout}");
    assert!(logout.get("nonce").is_none(), "{logout}");
    assert!(logout["jti"].is_string(), "{logout}");
    assert_eq!(sink.count(), 1, "one session ended, one logout token");

    // The session's access tokens are refused by the API once the feed says so.
    let access = str_of(&result, "refreshed_access_token");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = app
            .http
            .get(format!("{}/api/me", api.url))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        if answer.status() == 401 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the API still accepts the signed-out session's token ({}):\n{api_log}",
            answer.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert_screenshots(
        &shots,
        &result["screenshots"],
        &[
            "sign-in-desktop",
            "sign-in-phone",
            "sign-in-error-desktop",
            "sign-in-error-phone",
            "spa-signed-in",
            "spa-api-answer",
        ],
    );
    eprintln!(
        "spa flow ({}): {} ms in the browser; screenshots in {}\n{spa_log}",
        cell(backend),
        result["elapsed_ms"],
        shots.display()
    );
    drop(api);
    drop(spa);
    sink.stop().await;
}

/// openid-client's RP: discovery, code + PKCE + nonce + state, the code grant with the ID
/// token checked (signature too), userinfo, refresh, end session. The public client is
/// first-party and signs out with `id_token_hint`; the confidential one (client_secret_basic)
/// is a third party, so asked for consent, and signs out without a hint, so confirmed.
async fn openid_client_flow(backend: Backend, confidential: bool) {
    require_tools();
    let kind = if confidential {
        "confidential"
    } else {
        "public"
    };
    let shots = screenshot_dir(&format!("openid-client-{kind}-{}", cell(backend)));
    let app = spawn_app_with(backend, &[]).await;
    let issuer = app.settings.issuer().to_owned();
    let user_id = user(&app).await;
    // The relying party's side of the browser's trips: its redirect URIs answer a page.
    let rp = BackchannelSink::start().await;
    let redirect = format!("{}/cb", rp.origin);
    let post_logout = format!("{}/signed-out", rp.origin);
    let client_id = format!("rp-{kind}");
    let mut args = vec![
        "clients",
        "create",
        "--name",
        &client_id,
        "--client-id",
        &client_id,
        if confidential {
            "--confidential"
        } else {
            "--public"
        },
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--redirect-uri",
        &redirect,
        "--post-logout-redirect-uri",
        &post_logout,
        "--json",
    ];
    if !confidential {
        // A third party's client is asked for consent; the public one here is first-party.
        args.push("--first-party");
    }
    let client = cli(&app, &args);
    let mut env = vec![
        ("LK_ISSUER", issuer.clone()),
        ("LK_CLIENT_ID", client_id.clone()),
        ("LK_REDIRECT_URI", redirect),
        ("LK_POST_LOGOUT_REDIRECT_URI", post_logout.clone()),
        ("LK_USERNAME", EMAIL.to_owned()),
        ("LK_PASSWORD", PASSWORD.to_owned()),
        ("SCREENSHOT_DIR", shots.display().to_string()),
    ];
    if confidential {
        env.push((
            "LK_CLIENT_SECRET",
            str_of(&client, "client_secret").to_owned(),
        ));
        // This one signs out without id_token_hint: Latchkey asks the user first.
        env.push(("LK_LOGOUT_HINT", "0".to_owned()));
    }
    let result = run_script("openid_client.mjs", &env).await;

    assert_eq!(
        result["consent"], confidential,
        "consent only for the third party"
    );
    let claims = &result["claims"];
    assert_eq!(claims["sub"], user_id.as_str(), "{claims}");
    assert_eq!(claims["iss"], issuer.as_str(), "{claims}");
    assert_eq!(claims["aud"], client_id.as_str(), "{claims}");
    let userinfo = &result["userinfo"];
    assert_eq!(userinfo["sub"], user_id.as_str(), "{userinfo}");
    assert_eq!(userinfo["email"], EMAIL, "{userinfo}");
    assert_eq!(result["refreshed_claims"]["sub"], user_id.as_str());
    let landed = rp.landed();
    assert!(landed[0].starts_with("/cb?code="), "{landed:?}");
    assert!(
        landed.last().unwrap().starts_with("/signed-out?state="),
        "{landed:?}"
    );
    assert_eq!(
        result["logout_confirmation"], confidential,
        "a sign-out without id_token_hint is confirmed, one with it is not: {}",
        result["end_session_query"]
    );
    let mut expected = vec!["sign-in-desktop", "sign-in-phone"];
    if confidential {
        expected.extend([
            "consent-desktop",
            "consent-phone",
            "logout-confirm-desktop",
            "logout-confirm-phone",
        ]);
    }
    assert_screenshots(&shots, &result["screenshots"], &expected);
}

async fn openid_client_public_client_with_pkce(backend: Backend) {
    openid_client_flow(backend, false).await;
}

async fn openid_client_confidential_client_with_client_secret_basic(backend: Backend) {
    openid_client_flow(backend, true).await;
}

/// The pages the app flows above do not reach, in Chromium with JavaScript off
/// (`tests/e2e/pages_tour.mjs`): magic link (request, code, wrong code, landing), the account
/// page, the form_post answer (its button), forgot password, sign-out confirmation and the
/// signed-out page, each captured at both widths.
async fn the_hosted_pages_work_without_javascript(backend: Backend) {
    use crate::authorization_code::{Browser, CHALLENGE};
    require_tools();
    let shots = screenshot_dir(&format!("pages-{}", cell(backend)));
    let (app, smtp) = crate::helpers::spawn_mail_app(backend, &[]).await;
    let issuer = app.settings.issuer().to_owned();
    user(&app).await;
    let rp = BackchannelSink::start().await;
    let redirect = format!("{}/cb", rp.origin);
    cli(
        &app,
        &[
            "clients",
            "create",
            "--name",
            "Tour",
            "--client-id",
            "tour",
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            &redirect,
            "--first-party",
            "--json",
        ],
    );
    // A link asked for on the pages (by another browser: links work in any browser).
    let mut other = Browser::new();
    let page = other.get(&app.url("/login/magic")).await;
    let asked = other
        .post(
            &app.url("/login/magic"),
            &[("csrf", &page.field("csrf")), ("email", EMAIL)],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.html);
    let mail = smtp.wait_for(EMAIL, crate::helpers::MAIL_WAIT).await;
    let token = crate::helpers::token_in(&mail, "/login/magic/link");
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", "tour")
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid")
        .append_pair("state", "tour-state")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("response_mode", "form_post");
    let result = run_script(
        "pages_tour.mjs",
        &[
            ("LK_ISSUER", issuer.clone()),
            (
                "MAGIC_LINK",
                format!("{issuer}/login/magic/link?token={token}"),
            ),
            (
                "FORM_POST_URL",
                format!("{issuer}/oauth2/authorize?{}", q.finish()),
            ),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await;
    assert_eq!(result["magic_request_autocomplete"], "email", "{result}");
    assert_eq!(result["code_autocomplete"], "one-time-code", "{result}");
    assert!(
        str_of(&result, "wrong_code").contains("not correct"),
        "{result}"
    );
    assert!(str_of(&result, "account").contains(EMAIL), "{result}");
    assert_eq!(result["form_post_action"], redirect.as_str(), "{result}");
    let fields: Vec<&str> = result["form_post_fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for f in ["code", "state", "iss"] {
        assert!(fields.contains(&f), "form_post carries {f}: {result}");
    }
    assert!(
        str_of(&result, "forgot_answer").contains("Check your email")
            || str_of(&result, "forgot_answer").contains("If an account uses"),
        "{result}"
    );
    assert_eq!(result["logout_has_way_back"], 1, "{result}");
    assert!(
        str_of(&result, "signed_out").contains("signed out"),
        "{result}"
    );
    harness::assert_screenshots(
        &shots,
        &result["screenshots"],
        &[
            "magic-request",
            "magic-code",
            "magic-code-wrong",
            "magic-landing",
            "account",
            "form-post",
            "forgot",
            "forgot-sent",
            "logout-confirm",
            "signed-out",
        ],
    );
    rp.stop().await;
}

/// The example SPA signs a user in through "Continue with Google" (a fake Google on
/// loopback speaking OpenID Connect), and a second person proves their existing account on
/// the proof page before Google is linked to it; a GitHub account without a verified address
/// gets an account without one. The pages are screenshotted.
async fn example_spa_signs_in_through_google(backend: Backend) {
    use crate::federation::fake_idp::FakeIdp;
    require_tools();
    let shots = screenshot_dir(&format!("federation-{}", cell(backend)));
    let spa = start_spa().await;
    let origin = spa.url.trim_end_matches('/').to_owned();
    let idp = FakeIdp::start().await;
    let env = idp.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_app_with(backend, &pairs).await;
    let issuer = app.settings.issuer().to_owned();
    // An existing account whose address Google will assert without verifying it.
    let bob = app
        .admin()
        .create_user(NewUserInput {
            email: "bob@example.com".into(),
            password: Some(SecretString::from(PASSWORD)),
            username: None,
            display_name: Some("Bob Example".into()),
            roles: vec![],
            active: true,
            email_verified: true,
            attributes: None,
        })
        .await
        .unwrap()
        .id;
    let client = cli(
        &app,
        &[
            "clients",
            "create",
            "--name",
            "spa",
            "--client-id",
            "spa",
            "--public",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            &format!("{origin}/callback"),
            "--post-logout-redirect-uri",
            &format!("{origin}/"),
            "--allowed-origin",
            &origin,
            "--first-party",
            "--json",
        ],
    );
    assert_eq!(str_of(&client, "client_id"), "spa", "{client}");
    wait_for_cors(&app, &origin).await;
    idp.queue(vec![
        serde_json::json!({"sub": "g-gina", "email": "gina@example.com", "email_verified": true,
                           "name": "Gina Google"}),
        serde_json::json!({"sub": "g-bob", "email": "bob@example.com", "email_verified": false,
                           "name": "Bob at Google"}),
        serde_json::json!({"id": 77, "login": "quiet", "name": "Quiet Octo"}),
    ]);
    idp.set_emails(serde_json::json!([
        {"email": "quiet@example.com", "primary": true, "verified": false}
    ]));
    let spa_url = format!("{origin}/?issuer={issuer}&client_id=spa&api=http://127.0.0.1:9");
    let result = run_script(
        "federation_flow.mjs",
        &[
            ("SPA_URL", spa_url),
            ("LK_ISSUER", issuer.clone()),
            ("LK_PROOF_PASSWORD", PASSWORD.into()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await;
    let spa_log = spa.output();
    // Gina is a new user, signed in by Google: `fed` in the ID token.
    let claims = &result["claims"];
    assert_eq!(claims["email"], "gina@example.com", "{claims}\n{spa_log}");
    assert_eq!(
        claims["amr"],
        serde_json::json!(["fed", "google"]),
        "{claims}"
    );
    let gina = app
        .services
        .stores
        .users
        .find_by_email(&latchkey::domain::Email::parse("gina@example.com").unwrap())
        .await
        .unwrap()
        .expect("gina was created");
    assert_eq!(claims["sub"], gina.id.as_str(), "{claims}");
    // Bob proved his account: Google is linked to it, and the account page shows it.
    let proof = str_of(&result, "proof_text");
    assert!(proof.contains("bob@example.com"), "{proof}");
    let account = str_of(&result, "account_text");
    assert!(account.contains("Google"), "{account}");
    let link = app
        .services
        .stores
        .social_links
        .find(
            &latchkey::domain::ProviderId::parse("google").unwrap(),
            "g-bob",
        )
        .await
        .unwrap()
        .expect("bob's Google link");
    assert_eq!(link.user_id.as_str(), bob);
    // The GitHub account without a verified address has an account without one.
    let no_email = str_of(&result, "no_email_text");
    assert!(
        no_email.contains("None: you sign in through GitHub"),
        "{no_email}"
    );
    let quiet = app
        .services
        .stores
        .social_links
        .find(
            &latchkey::domain::ProviderId::parse("github").unwrap(),
            "77",
        )
        .await
        .unwrap()
        .expect("the GitHub link");
    let quiet = app
        .services
        .stores
        .users
        .find_by_id(&quiet.user_id)
        .await
        .unwrap()
        .expect("its user");
    assert_eq!(quiet.email, None);
    assert_screenshots(
        &shots,
        &result["screenshots"],
        &[
            "sign-in-with-providers-desktop",
            "sign-in-with-providers-phone",
            "spa-signed-in-with-google",
            "federation-proof-desktop",
            "federation-proof-phone",
            "account-with-links-desktop",
            "account-with-links-phone",
            "account-without-email-desktop",
            "account-without-email-phone",
        ],
    );
    eprintln!(
        "federation flow ({}): {} ms in the browser; screenshots in {}",
        cell(backend),
        result["elapsed_ms"],
        shots.display()
    );
    drop(spa);
}

/// A user with an authenticator app signs in on the hosted pages in Chromium: the password,
/// then the code page (a wrong code first), then the account page; and with a recovery code
/// in a fresh browser. The pages are screenshotted.
async fn the_second_step_of_a_sign_in_in_chromium(backend: Backend) {
    use latchkey::clock::Clock;
    require_tools();
    let shots = screenshot_dir(&format!("mfa-{}", cell(backend)));
    let app = spawn_app(backend).await;
    let access = {
        app.fixture().await;
        let body = app.login("alice@example.com").await;
        str_of(&body, "access_token").to_owned()
    };
    let (_, secret, codes) = crate::mfa::enrol(&app, &access).await;
    let now = app.clock.now() + 30;
    let code = crate::mfa::code_at(&secret, now);
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 5) % 1_000_000);
    let result = run_script(
        "mfa_flow.mjs",
        &[
            ("LK_ISSUER", app.settings.issuer().to_owned()),
            ("LK_EMAIL", "alice@example.com".into()),
            ("LK_PASSWORD", PASSWORD.into()),
            ("LK_WRONG_CODE", wrong),
            ("LK_CODE", code),
            ("LK_RECOVERY_CODE", codes[0].clone()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await;
    let error = str_of(&result, "error_text");
    assert!(error.contains("That code is not correct"), "{error}");
    let account = str_of(&result, "account_text");
    assert!(account.contains("alice@example.com"), "{account}");
    assert_screenshots(
        &shots,
        &result["screenshots"],
        &[
            "sign-in-second-step-desktop",
            "sign-in-second-step-phone",
            "sign-in-second-step-wrong-code-desktop",
            "sign-in-second-step-wrong-code-phone",
            "sign-in-recovery-code-desktop",
            "sign-in-recovery-code-phone",
        ],
    );
}

/// A user turns on two-step sign-in on the account page in Chromium: the QR code page, the
/// code from the key computed by the script, the recovery codes shown once, the account page
/// listing the app; then signing in asks for a code.
async fn two_step_sign_in_is_turned_on_from_the_account_page(backend: Backend) {
    use latchkey::clock::Clock;
    require_tools();
    let shots = screenshot_dir(&format!("mfa-enrol-{}", cell(backend)));
    let app = spawn_app(backend).await;
    app.fixture().await;
    let result = run_script(
        "mfa_enrol.mjs",
        &[
            ("LK_ISSUER", app.settings.issuer().to_owned()),
            ("LK_EMAIL", "alice@example.com".into()),
            ("LK_PASSWORD", PASSWORD.into()),
            ("LK_NOW", app.clock.now().to_string()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await;
    let codes = result["recovery_codes"].as_array().expect("codes");
    assert_eq!(codes.len(), 10, "{result}");
    let account = str_of(&result, "account_text");
    assert!(account.contains("Authenticator app"), "{account}");
    assert!(
        account.contains("10 unused recovery codes left"),
        "{account}"
    );
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 403, "two-step sign-in is on: {body}");
    assert_eq!(body["error"], "mfa_required");
    assert_screenshots(
        &shots,
        &result["screenshots"],
        &[
            "account-without-second-factor-desktop",
            "account-without-second-factor-phone",
            "add-authenticator-app-desktop",
            "add-authenticator-app-phone",
            "recovery-codes-desktop",
            "recovery-codes-phone",
            "account-with-second-factor-desktop",
            "account-with-second-factor-phone",
        ],
    );
}

/// Issue 15: with `mfa.required = "required"` and a grace period, a user without a second
/// factor who signs in in Chromium gets "Set up two-step sign-in" (QR code, key, "Set up
/// later"); the code from the key turns it on, the recovery codes are shown once, and the
/// account page follows. The pages are screenshotted.
async fn a_policy_takes_the_user_through_enrolment_in_chromium(backend: Backend) {
    use latchkey::clock::Clock;
    require_tools();
    let shots = screenshot_dir(&format!("mfa-forced-{}", cell(backend)));
    let app = spawn_app_with(
        backend,
        &[
            ("LATCHKEY_MFA_REQUIRED", "required"),
            ("LATCHKEY_MFA_ENROLMENT_GRACE", "7d"),
        ],
    )
    .await;
    app.fixture().await;
    let result = run_script(
        "mfa_forced_enrol.mjs",
        &[
            ("LK_ISSUER", app.settings.issuer().to_owned()),
            ("LK_EMAIL", "alice@example.com".into()),
            ("LK_PASSWORD", PASSWORD.into()),
            ("LK_NOW", app.clock.now().to_string()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await;
    assert_eq!(result["heading"], "Set up two-step sign-in", "{result}");
    assert_eq!(result["later_offered"], true, "{result}");
    assert_eq!(
        result["recovery_codes"].as_array().map(Vec::len),
        Some(10),
        "{result}"
    );
    let account = str_of(&result, "account_text");
    assert!(account.contains("Authenticator app"), "{account}");
    let (status, body) = app
        .password_grant("alice@example.com", PASSWORD, "web")
        .await;
    assert_eq!(status, 403, "two-step sign-in is on: {body}");
    assert_eq!(body["error"], "mfa_required");
    assert_screenshots(
        &shots,
        &result["screenshots"],
        &[
            "forced-enrolment-desktop",
            "forced-enrolment-phone",
            "forced-enrolment-recovery-codes-desktop",
            "forced-enrolment-recovery-codes-phone",
        ],
    );
}

/// Issue 15: step-up in Chromium. Signed in with a password, the user meets an application's
/// `max_age=0`: the page asks for the password of the account already signed in (no user name
/// field), and a wrong one says so; then `acr_values=urn:latchkey:acr:mfa` takes the user, who
/// has no second factor, to the enrolment page without "Set up later". Screenshotted.
async fn a_signed_in_user_is_stepped_up_in_chromium(backend: Backend) {
    require_tools();
    let shots = screenshot_dir(&format!("mfa-step-up-{}", cell(backend)));
    let app = spawn_app(backend).await;
    let user = latchkey::domain::UserId::from_trusted(app.fixture().await.user_id);
    crate::authorization_code::browser_client(&app, "spa").await;
    // The server's clock is a mock: once the script has signed in, it moves on ten seconds, so
    // that max_age=0 finds the sign-in older than the request (the script waits for it).
    let (sessions, clock) = (app.services.sessions.clone(), app.clock.clone());
    let ticker = tokio::spawn(async move {
        loop {
            if sessions.list(&user).await.is_ok_and(|l| !l.is_empty()) {
                clock.advance(10);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let reauth = crate::authorization_code::authorize_url(&app, "spa", &[("max_age", "0")]);
    let acr = crate::authorization_code::authorize_url(
        &app,
        "spa",
        &[("acr_values", "urn:latchkey:acr:mfa")],
    );
    let result = run_script(
        "mfa_step_up.mjs",
        &[
            ("LK_ISSUER", app.settings.issuer().to_owned()),
            ("LK_EMAIL", "alice@example.com".into()),
            ("LK_PASSWORD", PASSWORD.into()),
            ("LK_REAUTH_URL", reauth),
            ("LK_ACR_URL", acr),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await;
    ticker.abort();
    let text = str_of(&result, "reauth_text");
    assert!(text.contains("Signed in as alice@example.com"), "{text}");
    assert_eq!(result["username_fields"], 0, "{result}");
    let error = str_of(&result, "error_text");
    assert!(error.contains("The password is not correct"), "{error}");
    assert_eq!(result["later_offered"], false, "{result}");
    assert_screenshots(
        &shots,
        &result["screenshots"],
        &[
            "step-up-password-desktop",
            "step-up-password-phone",
            "step-up-password-wrong-desktop",
            "step-up-password-wrong-phone",
            "step-up-enrolment-desktop",
            "step-up-enrolment-phone",
        ],
    );
}
