//! The security scenarios of browser sign-in, driven over plain HTTP like
//! `authorization_code.rs` (whose `Browser` and helpers they reuse): what an attacker can try
//! against the authorization endpoint, the sign-in, consent and account pages, the session
//! cookie, the code grant and logout, and what must come of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use latchkey::clock::Clock;
use latchkey::domain::{ClientKind, ClientTokenSettings};
use latchkey::services::{ClientOidcInput, NewClientInput};
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

use crate::authorization_code::{
    authorize_url, browser_client, query_of, sign_in_alone, Browser, Page, CHALLENGE, REDIRECT,
    VERIFIER,
};
use crate::helpers::{
    assert_oauth_error, create_user, json_answer, jwt_parts, public_client, resource_server,
    spawn_app, spawn_app_with, str_of, Backend, TestApp, PASSWORD,
};
use crate::scenarios;

scenarios!(
    unregistered_redirect_uris_never_redirect,
    pkce_is_enforced_at_both_ends,
    a_reused_code_revokes_what_its_first_use_issued,
    an_expired_code_is_refused,
    a_code_is_bound_to_the_client_it_was_issued_to,
    prompt_and_max_age_are_honoured,
    denying_consent_answers_access_denied,
    forms_without_the_browsers_csrf_token_change_nothing,
    signing_in_always_issues_a_new_session_cookie,
    echoed_parameters_are_escaped_and_pages_carry_security_headers,
    no_redirect_parameter_leads_to_a_foreign_host,
    a_tampered_or_expired_session_cookie_is_signed_out,
    a_disabled_user_is_signed_out_and_their_codes_fail,
    a_session_whose_user_is_inactive_ends_at_its_next_use,
    rp_initiated_logout_ends_the_session_and_its_tokens,
    backchannel_logout_tokens_reach_the_clients_without_delaying_the_user,
    the_sign_in_page_is_throttled_like_the_password_grant,
);

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const SESSION: &str = "latchkey_session";
/// Where `spa` may send the user after logout.
const LOGGED_OUT: &str = "http://127.0.0.1:5173/signed-out";
const XSS: &str = "\"><script>alert(1)</script>";
/// `XSS` as the pages escape it.
const XSS_ESCAPED: &str = "&quot;&gt;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;";
const JS: &str = "javascript:alert(1)";

// ---- helpers ------------------------------------------------------------------------------

/// Registers a client for browser sign-in (code and refresh grants, `orders.read`); returns
/// its secret if confidential.
async fn register(
    app: &TestApp,
    id: &str,
    kind: ClientKind,
    redirect_uris: &[&str],
    oidc: ClientOidcInput,
) -> Option<String> {
    app.admin()
        .create_client_with(
            NewClientInput {
                client_id: Some(id.into()),
                name: format!("App {id}"),
                kind,
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                scopes: vec!["orders.read".into()],
                redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
                audiences: vec![],
                default_audience: None,
                token_settings: ClientTokenSettings::default(),
            },
            oidc,
        )
        .await
        .unwrap()
        .client_secret
}

/// `spa` (public, third party) with `LOGGED_OUT` as its post-logout redirect URI.
async fn spa_with_logout(app: &TestApp, backchannel: Option<String>) {
    register(
        app,
        "spa",
        ClientKind::Public,
        &[REDIRECT],
        ClientOidcInput {
            post_logout_redirect_uris: vec![LOGGED_OUT.into()],
            backchannel_logout_uri: backchannel,
            ..Default::default()
        },
    )
    .await;
}

/// The parameters of `authorize_url` for `client`, with `changes`: a value replaces the
/// parameter, an empty value removes it.
fn params(client: &str, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email orders.read"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in changes {
        p.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            p.push((k.to_string(), v.to_string()));
        }
    }
    p
}

fn query(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// The authorize URL for `client` with `changes` (see `params`).
fn url_with(app: &TestApp, client: &str, changes: &[(&str, &str)]) -> String {
    app.url(&format!(
        "/oauth2/authorize?{}",
        query(&params(client, changes))
    ))
}

fn logout_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    app.url(&format!("/oauth2/logout?{q}"))
}

fn is_sign_in(page: &Page) -> bool {
    page.html.contains("action=\"/login\"")
}

fn is_consent(page: &Page) -> bool {
    page.html.contains("action=\"/consent\"")
}

/// Posts the sign-in form of `page` as `who`.
async fn post_sign_in(app: &TestApp, b: &mut Browser, page: &Page, who: &str, pw: &str) -> Page {
    let csrf = page.field("csrf");
    let request = page.field("request");
    b.post(
        &app.url("/login"),
        &[
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("username", who),
            ("password", pw),
        ],
    )
    .await
}

fn is_reauth(page: &Page) -> bool {
    page.html.contains("action=\"/login/reauth\"")
}

/// Posts the re-authentication form of `page` (issue 15: `max_age` of a signed-in user).
async fn post_reauth(app: &TestApp, b: &mut Browser, page: &Page, pw: &str) -> Page {
    let csrf = page.field("csrf");
    let request = page.field("request");
    b.post(
        &app.url("/login/reauth"),
        &[
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("password", pw),
        ],
    )
    .await
}

/// Posts the consent form of `page` with `decision`.
async fn post_consent(app: &TestApp, b: &mut Browser, page: &Page, decision: &str) -> Page {
    let csrf = page.field("csrf");
    let request = page.field("request");
    b.post(
        &app.url("/consent"),
        &[
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("decision", decision),
        ],
    )
    .await
}

/// Opens `url` and goes through the pages it leads to, signing in as `who` and allowing
/// the consent when asked; returns the last answer (a redirect, or another page).
async fn through(app: &TestApp, b: &mut Browser, url: &str, who: &str) -> Page {
    let mut page = b.get(url).await;
    for _ in 0..3 {
        if page.status != 200 {
            break;
        }
        page = if is_sign_in(&page) {
            post_sign_in(app, b, &page, who, PASSWORD).await
        } else if is_consent(&page) {
            post_consent(app, b, &page, "allow").await
        } else {
            break;
        };
    }
    page
}

/// The code `url` ends with, signing in as `who` and consenting if asked.
async fn code_as(app: &TestApp, b: &mut Browser, url: &str, who: &str) -> String {
    let page = through(app, b, url, who).await;
    assert_eq!(page.status, 302, "{}", page.html);
    let location = page.location.unwrap();
    query_of(&location)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {location}"))
}

async fn code_via(app: &TestApp, b: &mut Browser, url: &str) -> String {
    code_as(app, b, url, ALICE).await
}

/// The code grant as a public client.
async fn redeem(
    app: &TestApp,
    client: &str,
    code: &str,
    redirect: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("client_id", client),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    app.token_json(&form).await
}

/// The code grant as a public client at `REDIRECT` with `VERIFIER`, asserting success.
async fn tokens_for(app: &TestApp, client: &str, code: &str) -> Value {
    let (status, body) = redeem(app, client, code, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The code grant as a confidential client (HTTP Basic).
async fn redeem_confidential(
    app: &TestApp,
    client: &str,
    secret: &str,
    code: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    json_answer(app.post_basic("/oauth2/token", client, secret, &form).await).await
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> u16 {
    app.http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Whether a browser holding only the session cookie `value` is signed in.
async fn authenticates(app: &TestApp, value: &str) -> bool {
    let mut b = Browser::new();
    b.cookies.insert(SESSION.into(), value.into());
    let page = b.get(&app.url("/account")).await;
    match page.status {
        200 => true,
        303 => {
            assert_eq!(page.location.as_deref(), Some("/login"));
            false
        }
        other => panic!("GET /account answered {other}: {}", page.html),
    }
}

/// An error sent back to `REDIRECT`, with `state` and `iss`, and no code.
#[track_caller]
fn assert_error_redirect(app: &TestApp, page: &Page, error: &str) {
    assert_eq!(page.status, 302, "{}", page.html);
    let location = page.location.as_deref().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let q = query_of(location);
    assert_eq!(
        q.get("error").map(String::as_str),
        Some(error),
        "{location}"
    );
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.settings.issuer());
    assert!(!q.contains_key("code"), "{location}");
}

/// An error page: never a redirect, never a form that posts elsewhere.
#[track_caller]
fn assert_error_page(page: &Page, what: &str) {
    assert_eq!(page.status, 400, "{what}: {}", page.html);
    assert!(
        page.location.is_none(),
        "{what}: redirected to {:?}",
        page.location
    );
    assert!(!page.html.contains("form_post.js"), "{what}: {}", page.html);
}

/// A character in the middle of `s`, changed.
fn flip(s: &str) -> String {
    let mut bytes = s.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The form-post response page's target and fields.
fn form_post_of(page: &Page) -> (String, HashMap<String, String>) {
    let action_at = page.html.find("action=\"").expect("a form") + "action=\"".len();
    let action = &page.html[action_at..];
    let action = unescape(&action[..action.find('"').unwrap()]);
    let mut fields = HashMap::new();
    for part in page.html.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = part.split_once("\" value=\"").unwrap();
        let value = &rest[..rest.find('"').unwrap()];
        fields.insert(unescape(name), unescape(value));
    }
    (action, fields)
}

/// The `Set-Cookie` header that sets `name`.
fn set_cookie(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no cookie {name} set: {headers:?}"))
}

/// Fetches like `Browser::get`, keeping the headers.
async fn get_seen(b: &mut Browser, url: &str) -> (Page, HeaderMap) {
    let r = b
        .http
        .get(url)
        .header("cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    let headers = r.headers().clone();
    (b.keep(r).await, headers)
}

/// Posts like `Browser::post`, keeping the headers.
async fn post_seen(b: &mut Browser, url: &str, form: &[(&str, &str)]) -> (Page, HeaderMap) {
    let r = b
        .http
        .post(url)
        .header("cookie", b.cookie_header())
        .form(form)
        .send()
        .await
        .unwrap();
    let headers = r.headers().clone();
    (b.keep(r).await, headers)
}

/// What every answer of the pages must be: no raw payload, no script URL where a browser
/// would follow it, a redirect only to the registered URI or a page of ours, and the
/// security headers.
#[track_caller]
fn assert_safe(what: &str, page: &Page, headers: &HeaderMap) {
    assert_ne!(page.status, 500, "{what}: {}", page.html);
    assert!(
        !page.html.contains(XSS),
        "{what}: raw payload in {}",
        page.html
    );
    assert!(
        !page.html.contains("<script>alert"),
        "{what}: {}",
        page.html
    );
    let lower = page.html.to_ascii_lowercase();
    for attr in ["href=\"", "action=\"", "src=\"", "formaction=\""] {
        for scheme in ["javascript", "data:", "vbscript"] {
            assert!(
                !lower.contains(&format!("{attr}{scheme}")),
                "{what}: {attr}{scheme} in {}",
                page.html
            );
        }
    }
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{what}: no {name} header on {}", page.status))
    };
    if let Some(location) = &page.location {
        assert!(
            location.starts_with(REDIRECT)
                || location.starts_with(LOGGED_OUT)
                || location.starts_with('/'),
            "{what}: redirected to {location}"
        );
        assert!(
            !location.contains(['<', '>', '"', ' ']),
            "{what}: unencoded {location}"
        );
        assert_eq!(header("cache-control"), "no-store", "{what}");
        return;
    }
    assert!(
        header("content-type").starts_with("text/html"),
        "{what}: {}",
        header("content-type")
    );
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    let csp = header("content-security-policy");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(
        directives.contains(&"frame-ancestors 'none'"),
        "{what}: {csp}"
    );
    let scripts = directives
        .iter()
        .find(|d| d.starts_with("script-src "))
        .or_else(|| directives.iter().find(|d| d.starts_with("default-src ")))
        .unwrap_or_else(|| panic!("{what}: no script policy in {csp}"));
    assert!(!scripts.contains("'unsafe-inline'"), "{what}: {csp}");
    assert!(!scripts.contains("'unsafe-eval'"), "{what}: {csp}");
    assert!(!scripts.contains('*'), "{what}: {csp}");
}

// ---- 1. redirect URIs ---------------------------------------------------------------------

async fn unregistered_redirect_uris_never_redirect(backend: Backend) {
    let app = spawn_app(backend).await;
    browser_client(&app, "spa").await;
    register(
        &app,
        "web",
        ClientKind::Confidential,
        &[REDIRECT],
        ClientOidcInput::default(),
    )
    .await;
    let mut b = Browser::new();
    let for_spa = [
        "http://127.0.0.1:5173/other",
        "http://127.0.0.1:5173/callback/",
        "http://127.0.0.1:5173/callback/../callback",
        "http://127.0.0.1:5173/CALLBACK",
        "https://evil.example.com/callback",
        "http://evil.example.com:5173/callback",
        "http://localhost:5173/callback",
        "http://[::1]:5173/callback",
        "http://127.0.0.2:5173/callback",
        "http://127.0.0.1:5173@evil.example.com/callback",
        "HTTP://127.0.0.1:5173/callback",
        "https://127.0.0.1:5173/callback",
        "http://127.0.0.1:5173/callback?x=1",
        "http://127.0.0.1:5173/callback?next=https://evil.example.com",
        "http://127.0.0.1:5173/callback#f",
        "//evil.example.com/callback",
        "/callback",
        "javascript:alert(1)",
        "javascript://127.0.0.1:5173/callback",
        "data:text/html,<script>alert(1)</script>",
    ];
    let for_web = [
        "http://127.0.0.1:5174/callback",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:80/callback",
        "http://127.0.0.1:5173/callback?x=1",
        "https://evil.example.com/callback",
        "javascript:alert(1)",
    ];
    let cases = for_spa
        .iter()
        .map(|u| ("spa", *u))
        .chain(for_web.iter().map(|u| ("web", *u)));
    for (client, bad) in cases {
        for mode in ["query", "form_post"] {
            let what = format!("{client} {bad} {mode}");
            let changes = [("redirect_uri", bad), ("response_mode", mode)];
            let page = b.get(&url_with(&app, client, &changes)).await;
            assert_error_page(&page, &what);
            assert!(
                page.html.contains("not registered"),
                "{what}: {}",
                page.html
            );
            let pairs = params(client, &changes);
            let form: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let page = b.post(&app.url("/oauth2/authorize"), &form).await;
            assert_error_page(&page, &format!("POST {what}"));
        }
    }
    // The registered URI repeated with another: refused, not the first one taken.
    let mut repeated = params("spa", &[]);
    repeated.push(("redirect_uri".into(), "https://evil.example.com/cb".into()));
    let page = b
        .get(&app.url(&format!("/oauth2/authorize?{}", query(&repeated))))
        .await;
    assert_error_page(&page, "repeated redirect_uri");
    // No client, or an unknown one.
    for client in ["", "nobody", XSS] {
        let page = b.get(&url_with(&app, client, &[])).await;
        assert_error_page(&page, client);
    }
    // The registered URIs work: exactly for the web client, any loopback port for the
    // public one (RFC 8252 §7.3).
    for (client, uri) in [
        ("web", REDIRECT),
        ("spa", REDIRECT),
        ("spa", "http://127.0.0.1:61234/callback"),
    ] {
        let page = b
            .get(&url_with(&app, client, &[("redirect_uri", uri)]))
            .await;
        assert_eq!(page.status, 200, "{client} {uri}: {}", page.html);
        assert!(is_sign_in(&page), "{}", page.html);
    }
}

// ---- 2. PKCE ------------------------------------------------------------------------------

async fn pkce_is_enforced_at_both_ends(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let secret = register(
        &app,
        "web",
        ClientKind::Confidential,
        &[REDIRECT],
        ClientOidcInput {
            first_party: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut b = Browser::new();
    // At the authorization endpoint: errors sent back to the client.
    let refusals: [(&str, &[(&str, &str)]); 7] = [
        (
            "spa",
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ),
        ("spa", &[("code_challenge_method", "plain")]),
        (
            "spa",
            &[
                ("code_challenge_method", "plain"),
                ("code_challenge", VERIFIER),
            ],
        ),
        ("spa", &[("code_challenge_method", "")]),
        ("spa", &[("code_challenge", "too-short")]),
        ("spa", &[("code_challenge_method", "S512")]),
        ("web", &[("code_challenge_method", "plain")]),
    ];
    for (client, changes) in refusals {
        let page = b.get(&url_with(&app, client, changes)).await;
        assert_error_redirect(&app, &page, "invalid_request");
    }

    // At the token endpoint: a missing verifier, then a wrong one; each uses the code up.
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let (status, body) = redeem(&app, "spa", &code, REDIRECT, None).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = redeem(&app, "spa", &code, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let other_verifier = "x".repeat(43);
    for wrong in [other_verifier.as_str(), "short", CHALLENGE] {
        let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
        let (status, body) = redeem(&app, "spa", &code, REDIRECT, Some(wrong)).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        let (status, body) = redeem(&app, "spa", &code, REDIRECT, Some(VERIFIER)).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
    }
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    tokens_for(&app, "spa", &code).await;

    // A confidential client may go without PKCE...
    let no_pkce = [("code_challenge", ""), ("code_challenge_method", "")];
    let code = code_via(&app, &mut b, &url_with(&app, "web", &no_pkce)).await;
    let (status, body) = redeem_confidential(&app, "web", &secret, &code, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string());
    // ...but a verifier for a request without a challenge is refused,
    let code = code_via(&app, &mut b, &url_with(&app, "web", &no_pkce)).await;
    let (status, body) = redeem_confidential(&app, "web", &secret, &code, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // and a challenge it sent must be answered.
    let code = code_via(&app, &mut b, &url_with(&app, "web", &[])).await;
    let (status, body) = redeem_confidential(&app, "web", &secret, &code, None).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let code = code_via(&app, &mut b, &url_with(&app, "web", &[])).await;
    let (status, body) = redeem_confidential(&app, "web", &secret, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{body}");
}

// ---- 3. a reused code ---------------------------------------------------------------------

async fn a_reused_code_revokes_what_its_first_use_issued(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let rs = resource_server(&app).await;
    let mut b = Browser::new();
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let first = tokens_for(&app, "spa", &code).await;
    let access = str_of(&first, "access_token");
    let refresh = str_of(&first, "refresh_token");
    assert!(app.is_active(&rs, access).await);
    assert_eq!(userinfo_status(&app, access).await, 200);

    let (status, again) = redeem(&app, "spa", &code, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &again, 400, "invalid_grant");
    assert!(again.get("access_token").is_none());
    assert!(!app.is_active(&rs, access).await, "the access token");
    assert_eq!(userinfo_status(&app, access).await, 401);
    let (status, body) = app.refresh_as("spa", refresh).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // A third use is refused as well.
    let (status, body) = redeem(&app, "spa", &code, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // Other sign-ins of the user are not touched.
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let other = tokens_for(&app, "spa", &code).await;
    assert!(app.is_active(&rs, str_of(&other, "access_token")).await);
}

// ---- 4. an expired code -------------------------------------------------------------------

async fn an_expired_code_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let mut b = Browser::new();
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    app.clock.advance(61);
    let (status, body) = redeem(&app, "spa", &code, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // Within its minute, a code works.
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    app.clock.advance(59);
    tokens_for(&app, "spa", &code).await;
}

// ---- 5. a code of another client ----------------------------------------------------------

async fn a_code_is_bound_to_the_client_it_was_issued_to(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    browser_client(&app, "other").await;
    let secret = register(
        &app,
        "web",
        ClientKind::Confidential,
        &[REDIRECT],
        ClientOidcInput::default(),
    )
    .await
    .unwrap();
    let mut b = Browser::new();
    // Another public client presents spa's code, with spa's verifier and redirect URI: refused,
    // and the code is used up: spa's own use fails afterwards, and nothing was issued.
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let (status, body) = redeem(&app, "other", &code, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert!(body.get("access_token").is_none());
    let (status, body) = redeem(&app, "spa", &code, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // A confidential client, authenticated with its own secret: the same.
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let (status, body) = redeem_confidential(&app, "web", &secret, &code, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = redeem(&app, "spa", &code, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // The client's own code works, and once used another client cannot use it either; that
    // second use, whoever makes it, revokes what the first use issued (RFC 6749 §4.1.2: the
    // code has leaked).
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let tokens = tokens_for(&app, "spa", &code).await;
    let (status, body) = redeem(&app, "other", &code, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let (status, body) = app
        .refresh_as("spa", str_of(&tokens, "refresh_token"))
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let r = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(str_of(&tokens, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the first use's access token is revoked");
}

// ---- 6. prompt and max_age ----------------------------------------------------------------

async fn prompt_and_max_age_are_honoured(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let mut b = Browser::new();
    let url = |extra: &[(&str, &str)]| authorize_url(&app, "spa", extra);

    // prompt=none without a session.
    let page = b.get(&url(&[("prompt", "none")])).await;
    assert_error_redirect(&app, &page, "login_required");
    // With a session (signed in on the account pages) but no consent for this third party.
    sign_in_alone(&app, &mut b, ALICE).await;
    let page = b.get(&url(&[("prompt", "none")])).await;
    assert_error_redirect(&app, &page, "consent_required");
    // Once consented, prompt=none answers a code.
    let page = b.get(&url(&[])).await;
    assert!(is_consent(&page), "{}", page.html);
    let page = post_consent(&app, &mut b, &page, "allow").await;
    assert!(query_of(page.location.as_deref().unwrap()).contains_key("code"));
    let page = b.get(&url(&[("prompt", "none")])).await;
    assert_eq!(page.status, 302, "{}", page.html);
    assert!(query_of(page.location.as_deref().unwrap()).contains_key("code"));

    // prompt=consent: the consent page, though consent is stored.
    let page = b.get(&url(&[("prompt", "consent")])).await;
    assert_eq!(page.status, 200);
    assert!(is_consent(&page), "{}", page.html);

    // prompt=login: the sign-in page, though signed in; max_age=0: the user confirms their
    // password for the session they have (issue 15: the account is fixed, the session keeps
    // its id). Either completes the request, and the ID token says when.
    for extra in [("prompt", "login"), ("max_age", "0")] {
        app.clock.advance(1);
        let page = b.get(&url(&[extra])).await;
        assert_eq!(page.status, 200, "{extra:?}: {}", page.html);
        let page = if extra.0 == "prompt" {
            assert!(is_sign_in(&page), "{extra:?}: {}", page.html);
            post_sign_in(&app, &mut b, &page, ALICE, PASSWORD).await
        } else {
            assert!(is_reauth(&page), "{extra:?}: {}", page.html);
            assert!(page.html.contains(ALICE), "{}", page.html);
            let wrong = post_reauth(&app, &mut b, &page, "not the password").await;
            assert_eq!(wrong.status, 401, "{}", wrong.html);
            assert!(is_reauth(&wrong), "{}", wrong.html);
            post_reauth(&app, &mut b, &wrong, PASSWORD).await
        };
        assert_eq!(page.status, 302, "{extra:?}: {}", page.html);
        let code = query_of(page.location.as_deref().unwrap())["code"].clone();
        let tokens = tokens_for(&app, "spa", &code).await;
        let (_, id) = jwt_parts(str_of(&tokens, "id_token"));
        assert_eq!(id["auth_time"], app.clock.now(), "{extra:?}");
    }
    // A max_age the session meets: no sign-in page.
    let page = b.get(&url(&[("max_age", "3600")])).await;
    assert_eq!(page.status, 302, "{}", page.html);
    // A max_age it does not meet, with prompt=none: login_required.
    app.clock.advance(10);
    let page = b.get(&url(&[("max_age", "5"), ("prompt", "none")])).await;
    assert_error_redirect(&app, &page, "login_required");
    let page = b.get(&url(&[("max_age", "5")])).await;
    assert!(is_reauth(&page), "{}", page.html);

    // max_age=0 with the consent page: a re-authentication during this request is fresh
    // enough, however long the user then reads the consent page.
    app.clock.advance(1);
    let page = b
        .get(&url(&[("max_age", "0"), ("prompt", "consent")]))
        .await;
    assert!(is_reauth(&page), "{}", page.html);
    let page = post_reauth(&app, &mut b, &page, PASSWORD).await;
    assert!(is_consent(&page), "{}", page.html);
    app.clock.advance(5);
    let page = post_consent(&app, &mut b, &page, "allow").await;
    assert_eq!(
        page.status, 302,
        "signed in for this very request, yet asked again: {}",
        page.html
    );
    assert!(query_of(page.location.as_deref().unwrap()).contains_key("code"));
}

// ---- 7. denied consent --------------------------------------------------------------------

async fn denying_consent_answers_access_denied(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let mut b = Browser::new();
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    let page = post_sign_in(&app, &mut b, &page, ALICE, PASSWORD).await;
    assert!(is_consent(&page), "{}", page.html);
    let page = post_consent(&app, &mut b, &page, "deny").await;
    assert_error_redirect(&app, &page, "access_denied");
    // Nothing was approved.
    let page = b
        .get(&authorize_url(&app, "spa", &[("prompt", "none")]))
        .await;
    assert_error_redirect(&app, &page, "consent_required");
    // With form_post, the error is posted back to the registered URI.
    let page = b
        .get(&authorize_url(
            &app,
            "spa",
            &[("response_mode", "form_post")],
        ))
        .await;
    assert!(is_consent(&page), "{}", page.html);
    let page = post_consent(&app, &mut b, &page, "deny").await;
    assert_eq!(page.status, 200, "{}", page.html);
    let (action, fields) = form_post_of(&page);
    assert_eq!(action, REDIRECT);
    assert_eq!(fields["error"], "access_denied");
    assert_eq!(fields["state"], "st-123");
    assert_eq!(fields["iss"], app.settings.issuer());
    assert!(!fields.contains_key("code"));
}

// ---- 8. CSRF ------------------------------------------------------------------------------

/// A form with `csrf` (or without the field at all) and `rest`.
fn form<'a>(csrf: Option<&'a str>, rest: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f: Vec<(&str, &str)> = csrf.map(|c| ("csrf", c)).into_iter().collect();
    f.extend_from_slice(rest);
    f
}

async fn forms_without_the_browsers_csrf_token_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    create_user(app.admin(), BOB, &[]).await;
    browser_client(&app, "spa").await;
    let mut attacker = Browser::new();
    let theirs = attacker.get(&app.url("/login")).await.field("csrf");
    let forged = [Some(theirs.as_str()), Some(""), None];

    // The sign-in form.
    let mut victim = Browser::new();
    let sign_in = victim.get(&authorize_url(&app, "spa", &[])).await;
    let request = sign_in.field("request");
    let mine = sign_in.field("csrf");
    let credentials = [
        ("request", request.as_str()),
        ("username", ALICE),
        ("password", PASSWORD),
    ];
    for csrf in forged {
        let page = victim
            .post(&app.url("/login"), &form(csrf, &credentials))
            .await;
        assert_eq!(page.status, 403, "{csrf:?}: {}", page.html);
        assert!(!victim.has_cookie(SESSION));
    }
    // The victim's token is no use in another browser either.
    let page = attacker
        .post(&app.url("/login"), &form(Some(mine.as_str()), &credentials))
        .await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(!attacker.has_cookie(SESSION));

    // The consent form.
    let consent = victim
        .post(&app.url("/login"), &form(Some(mine.as_str()), &credentials))
        .await;
    assert!(is_consent(&consent), "{}", consent.html);
    let request = consent.field("request");
    for csrf in forged {
        let page = victim
            .post(
                &app.url("/consent"),
                &form(
                    csrf,
                    &[("request", request.as_str()), ("decision", "allow")],
                ),
            )
            .await;
        assert_eq!(page.status, 403, "{csrf:?}: {}", page.html);
        assert!(page.location.is_none());
    }
    let page = victim
        .get(&authorize_url(&app, "spa", &[("prompt", "none")]))
        .await;
    assert_error_redirect(&app, &page, "consent_required");
    code_via(&app, &mut victim, &authorize_url(&app, "spa", &[])).await;

    // The logout confirmation.
    let confirm = victim.get(&logout_url(&app, &[])).await;
    assert_eq!(confirm.status, 200, "{}", confirm.html);
    assert!(confirm.html.contains("action=\"/oauth2/logout/confirm\""));
    let request = confirm.field("request");
    for csrf in forged {
        let page = victim
            .post(
                &app.url("/oauth2/logout/confirm"),
                &form(csrf, &[("request", request.as_str())]),
            )
            .await;
        assert_eq!(page.status, 403, "{csrf:?}: {}", page.html);
        assert!(victim.has_cookie(SESSION));
    }
    let session = victim.cookies[SESSION].clone();
    assert!(authenticates(&app, &session).await);

    // Each form of the account page.
    let account = victim.get(&app.url("/account")).await;
    assert_eq!(account.status, 200, "{}", account.html);
    let sid = account.field("session_id");
    let actions: [(&str, Vec<(&str, &str)>); 4] = [
        (
            "/account/password",
            vec![
                ("current_password", PASSWORD),
                ("new_password", "an entirely new passphrase 42"),
            ],
        ),
        ("/account/sessions/end", vec![("session_id", sid.as_str())]),
        ("/account/logout-all", vec![]),
        ("/account/consents/revoke", vec![("client_id", "spa")]),
    ];
    for (path, fields) in &actions {
        for csrf in forged {
            let page = victim.post(&app.url(path), &form(csrf, fields)).await;
            assert_eq!(page.status, 403, "{path} {csrf:?}: {}", page.html);
        }
    }
    // Nothing changed: still signed in, the consent kept, the password the same.
    assert!(authenticates(&app, &session).await);
    let account = victim.get(&app.url("/account")).await;
    assert!(account.html.contains("App spa"), "{}", account.html);
    let page = victim
        .get(&authorize_url(&app, "spa", &[("prompt", "none")]))
        .await;
    assert!(query_of(page.location.as_deref().unwrap()).contains_key("code"));
    sign_in_alone(&app, &mut Browser::new(), ALICE).await;

    // With a genuine token, the account page ends only the user's own sessions.
    let mut bobs = Browser::new();
    sign_in_alone(&app, &mut bobs, BOB).await;
    let bob_sid = bobs.get(&app.url("/account")).await.field("session_id");
    let csrf = victim.get(&app.url("/account")).await.field("csrf");
    let page = victim
        .post(
            &app.url("/account/sessions/end"),
            &[("csrf", csrf.as_str()), ("session_id", bob_sid.as_str())],
        )
        .await;
    assert_eq!(page.status, 404, "{}", page.html);
    assert!(authenticates(&app, &bobs.cookies[SESSION].clone()).await);
}

// ---- 9. session fixation ------------------------------------------------------------------

async fn signing_in_always_issues_a_new_session_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    create_user(app.admin(), BOB, &[]).await;
    browser_client(&app, "spa").await;
    // A real session of another user, which an attacker could plant.
    let mut bobs = Browser::new();
    sign_in_alone(&app, &mut bobs, BOB).await;
    let bob_session = bobs.cookies[SESSION].clone();
    assert!(authenticates(&app, &bob_session).await);
    let chosen = "AttackerChosenValue-0123456789_abcdefghijkl".to_owned();
    for planted in [chosen.clone(), bob_session] {
        let mut b = Browser::new();
        b.cookies.insert(SESSION.into(), planted.clone());
        sign_in_alone(&app, &mut b, ALICE).await;
        let first = b.cookies[SESSION].clone();
        assert_ne!(first, planted, "a new session cookie");
        let account = b.get(&app.url("/account")).await;
        assert!(account.html.contains(ALICE), "{}", account.html);
        assert!(!account.html.contains(BOB), "{}", account.html);
        assert!(!authenticates(&app, &planted).await, "the planted value");
        // Signing in again replaces the session.
        sign_in_alone(&app, &mut b, ALICE).await;
        let second = b.cookies[SESSION].clone();
        assert_ne!(second, first);
        assert!(!authenticates(&app, &first).await, "the replaced session");
        assert!(authenticates(&app, &second).await);
    }
    // The cookies: host-only, HttpOnly, SameSite=Lax, Path=/, for the browser session only;
    // with an https issuer also Secure, with the __Host- prefix.
    let https = spawn_app_with(backend, &[("LATCHKEY_ISSUER", "https://id.example.com")]).await;
    create_user(https.admin(), ALICE, &[]).await;
    for (app, prefix, secure) in [(&app, "", false), (&https, "__Host-", true)] {
        let mut b = Browser::new();
        let (page, headers) = get_seen(&mut b, &app.url("/login")).await;
        let csrf_cookie = set_cookie(&headers, &format!("{prefix}latchkey_csrf"));
        let csrf = page.field("csrf");
        let (page, headers) = post_seen(
            &mut b,
            &app.url("/login"),
            &[
                ("csrf", csrf.as_str()),
                ("username", ALICE),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(page.status, 303, "{}", page.html);
        let session_cookie = set_cookie(&headers, &format!("{prefix}latchkey_session"));
        for cookie in [csrf_cookie, session_cookie] {
            let attrs: Vec<String> = cookie
                .split(';')
                .skip(1)
                .map(|a| a.trim().to_ascii_lowercase())
                .collect();
            for expected in ["httponly", "samesite=lax", "path=/"] {
                assert!(attrs.iter().any(|a| a == expected), "{expected}: {cookie}");
            }
            assert_eq!(attrs.iter().any(|a| a == "secure"), secure, "{cookie}");
            for absent in ["domain", "max-age", "expires"] {
                assert!(!attrs.iter().any(|a| a.starts_with(absent)), "{cookie}");
            }
        }
    }

    // Through the authorization flow too.
    let mut b = Browser::new();
    b.cookies.insert(SESSION.into(), chosen.clone());
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let issued = b.cookies[SESSION].clone();
    assert_ne!(issued, chosen);
    assert!(!authenticates(&app, &chosen).await);
    assert!(authenticates(&app, &issued).await);
    let tokens = tokens_for(&app, "spa", &code).await;
    // prompt=login: signing in again replaces the session.
    app.clock.advance(1);
    let page = b
        .get(&authorize_url(&app, "spa", &[("prompt", "login")]))
        .await;
    assert!(is_sign_in(&page), "{}", page.html);
    let page = post_sign_in(&app, &mut b, &page, ALICE, PASSWORD).await;
    assert_eq!(page.status, 302, "{}", page.html);
    let again = b.cookies[SESSION].clone();
    assert_ne!(again, issued);
    assert!(!authenticates(&app, &issued).await);
    // The replaced session's refresh token (no offline_access) ended with it.
    let (status, body) = app
        .refresh_as("spa", str_of(&tokens, "refresh_token"))
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}

// ---- 10. escaping and headers -------------------------------------------------------------

async fn echoed_parameters_are_escaped_and_pages_carry_security_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    spa_with_logout(&app, None).await;
    let mut signed_in = Browser::new();
    code_via(&app, &mut signed_in, &authorize_url(&app, "spa", &[])).await;
    let echoed = [
        "state",
        "nonce",
        "login_hint",
        "client_id",
        "scope",
        "redirect_uri",
        "ui_locales",
        "prompt",
        "max_age",
        "response_mode",
        "code_challenge",
    ];
    for param in echoed {
        for payload in [XSS, JS] {
            for mode in ["query", "form_post"] {
                let changes = [(param, payload), ("response_mode", mode)];
                let changes = if param == "response_mode" {
                    &changes[..1]
                } else {
                    &changes[..]
                };
                let url = url_with(&app, "spa", changes);
                let mut fresh = Browser::new();
                for (who, b) in [("signed out", &mut fresh), ("signed in", &mut signed_in)] {
                    let what = format!("{who}: {param}={payload} ({mode})");
                    let (page, headers) = get_seen(b, &url).await;
                    assert_safe(&what, &page, &headers);
                    if param == "login_hint" && payload == XSS && who == "signed out" {
                        assert!(is_sign_in(&page), "{what}: {}", page.html);
                        assert!(page.html.contains(XSS_ESCAPED), "{what}: {}", page.html);
                    }
                    if param == "state" && payload == XSS && mode == "form_post" {
                        if who == "signed in" {
                            let (action, fields) = form_post_of(&page);
                            assert_eq!(action, REDIRECT);
                            assert_eq!(fields["state"], XSS);
                            assert!(fields.contains_key("code"));
                            assert!(page.html.contains(XSS_ESCAPED), "{what}: {}", page.html);
                        }
                    } else if let Some(location) = &page.location {
                        let q = query_of(location);
                        if param == "state" {
                            assert_eq!(q["state"], payload, "{what}");
                        }
                    }
                }
            }
        }
    }
    // A failed sign-in: the name typed is kept in its input (in place of the login hint),
    // escaped.
    let mut b = Browser::new();
    let page = b
        .get(&url_with(
            &app,
            "spa",
            &[("login_hint", XSS), ("state", XSS)],
        ))
        .await;
    for username in [XSS, JS] {
        let csrf = page.field("csrf");
        let request = page.field("request");
        let (failed, headers) = post_seen(
            &mut b,
            &app.url("/login"),
            &[
                ("csrf", csrf.as_str()),
                ("request", request.as_str()),
                ("username", username),
                ("password", "not the password"),
            ],
        )
        .await;
        assert_eq!(failed.status, 401, "{}", failed.html);
        assert_safe(&format!("failed sign-in as {username}"), &failed, &headers);
        let kept = if username == XSS {
            XSS_ESCAPED
        } else {
            "value=\"javascript:alert(1)\""
        };
        assert!(failed.html.contains(kept), "{}", failed.html);
    }
    // The consent page, and the code posted back with the state escaped.
    let (consent, headers) = get_seen(
        &mut signed_in,
        &url_with(
            &app,
            "spa",
            &[
                ("prompt", "consent"),
                ("state", XSS),
                ("response_mode", "form_post"),
            ],
        ),
    )
    .await;
    assert!(is_consent(&consent), "{}", consent.html);
    assert_safe("consent page", &consent, &headers);
    let csrf = consent.field("csrf");
    let request = consent.field("request");
    let (posted, headers) = post_seen(
        &mut signed_in,
        &app.url("/consent"),
        &[
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_safe("form post response", &posted, &headers);
    assert_eq!(form_post_of(&posted).1["state"], XSS);
    // The 403 of a forged form, the account page, the logout pages.
    let (forbidden, headers) = post_seen(
        &mut signed_in,
        &app.url("/consent"),
        &[
            ("csrf", "forged"),
            ("request", request.as_str()),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(forbidden.status, 403);
    assert_safe("403 page", &forbidden, &headers);
    let (account, headers) = get_seen(&mut signed_in, &app.url("/account")).await;
    assert_eq!(account.status, 200);
    assert_safe("account page", &account, &headers);
    let (login, headers) = get_seen(&mut Browser::new(), &app.url("/login")).await;
    assert_safe("sign-in page", &login, &headers);
    let logout = logout_url(
        &app,
        &[
            ("client_id", "spa"),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", XSS),
        ],
    );
    let (confirm, headers) = get_seen(&mut signed_in, &logout).await;
    assert_eq!(confirm.status, 200, "{}", confirm.html);
    assert_safe("logout confirmation", &confirm, &headers);
    let csrf = confirm.field("csrf");
    let request = confirm.field("request");
    let (bye, headers) = post_seen(
        &mut signed_in,
        &app.url("/oauth2/logout/confirm"),
        &[("csrf", csrf.as_str()), ("request", request.as_str())],
    )
    .await;
    assert_safe("logout redirect", &bye, &headers);
    assert_eq!(query_of(bye.location.as_deref().unwrap())["state"], XSS);
    let (signed_out, headers) = get_seen(&mut signed_in, &logout_url(&app, &[])).await;
    assert_eq!(signed_out.status, 200);
    assert_safe("signed-out page", &signed_out, &headers);
    let (error, headers) = get_seen(&mut signed_in, &url_with(&app, "nobody", &[])).await;
    assert_safe("error page", &error, &headers);
}

// ---- 11. open redirects -------------------------------------------------------------------

async fn no_redirect_parameter_leads_to_a_foreign_host(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    spa_with_logout(&app, None).await;
    let other_cb = "https://other.example.com/cb";
    let other_bye = "https://other.example.com/bye";
    register(
        &app,
        "other",
        ClientKind::Public,
        &[other_cb],
        ClientOidcInput {
            post_logout_redirect_uris: vec![other_bye.into()],
            ..Default::default()
        },
    )
    .await;
    let mut b = Browser::new();
    // redirect_uri at the authorization endpoint.
    for bad in [
        "https://evil.example.com/callback",
        "//evil.example.com/callback",
        other_cb,
        "http://127.0.0.1:5173/callback@evil.example.com",
        "http://127.0.0.1:5173.evil.example.com/callback",
        "http://127.0.0.1:5173\\@evil.example.com/callback",
        LOGGED_OUT,
    ] {
        let page = b
            .get(&url_with(&app, "spa", &[("redirect_uri", bad)]))
            .await;
        assert_error_page(&page, bad);
    }
    // ID tokens of spa and of other, in one session.
    let code = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let spa_hint = str_of(&tokens_for(&app, "spa", &code).await, "id_token").to_owned();
    let code = code_via(
        &app,
        &mut b,
        &url_with(&app, "other", &[("redirect_uri", other_cb)]),
    )
    .await;
    let (status, body) = redeem(&app, "other", &code, other_cb, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{body}");
    let other_hint = str_of(&body, "id_token").to_owned();
    let evil = "https://evil.example.com/";
    let tampered_hint = flip(&spa_hint);
    let with_query = format!("{LOGGED_OUT}?next={evil}");
    let refused: Vec<Vec<(&str, &str)>> = vec![
        vec![("post_logout_redirect_uri", evil)],
        vec![("post_logout_redirect_uri", LOGGED_OUT)],
        vec![("client_id", "spa"), ("post_logout_redirect_uri", evil)],
        vec![
            ("client_id", "spa"),
            ("post_logout_redirect_uri", with_query.as_str()),
        ],
        vec![("client_id", "spa"), ("post_logout_redirect_uri", JS)],
        vec![
            ("client_id", "spa"),
            ("post_logout_redirect_uri", other_bye),
        ],
        vec![("client_id", "nobody"), ("post_logout_redirect_uri", evil)],
        vec![
            ("id_token_hint", spa_hint.as_str()),
            ("post_logout_redirect_uri", evil),
        ],
        vec![
            ("id_token_hint", spa_hint.as_str()),
            ("post_logout_redirect_uri", other_bye),
        ],
        vec![
            ("id_token_hint", other_hint.as_str()),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ],
        vec![
            ("id_token_hint", other_hint.as_str()),
            ("client_id", "spa"),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ],
        vec![
            ("id_token_hint", tampered_hint.as_str()),
            ("client_id", "spa"),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ],
        vec![
            ("id_token_hint", "not.a.jwt"),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ],
    ];
    for params in &refused {
        let page = b.get(&logout_url(&app, params)).await;
        assert_error_page(&page, &format!("GET logout {params:?}"));
        let page = b.post(&app.url("/oauth2/logout"), params).await;
        assert_error_page(&page, &format!("POST logout {params:?}"));
    }
    // None of them signed the browser out.
    assert!(authenticates(&app, &b.cookies[SESSION].clone()).await);

    // Sealed requests, tampered or carried to another form.
    let mut fresh = Browser::new();
    let sign_in = fresh.get(&authorize_url(&app, "spa", &[])).await;
    let consent = b
        .get(&authorize_url(&app, "spa", &[("prompt", "consent")]))
        .await;
    assert!(is_consent(&consent), "{}", consent.html);
    let confirm = b.get(&logout_url(&app, &[("client_id", "spa")])).await;
    assert!(confirm.html.contains("/oauth2/logout/confirm"));
    let (login_request, consent_request, logout_request) = (
        sign_in.field("request"),
        consent.field("request"),
        confirm.field("request"),
    );
    for request in [
        flip(&login_request),
        logout_request.clone(),
        "x".repeat(9000),
    ] {
        let csrf = sign_in.field("csrf");
        let page = fresh
            .post(
                &app.url("/login"),
                &[
                    ("csrf", csrf.as_str()),
                    ("request", request.as_str()),
                    ("username", ALICE),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_error_page(&page, "tampered sign-in request");
        assert!(!fresh.has_cookie(SESSION));
    }
    for request in [flip(&consent_request), logout_request.clone()] {
        let csrf = consent.field("csrf");
        let page = b
            .post(
                &app.url("/consent"),
                &[
                    ("csrf", csrf.as_str()),
                    ("request", request.as_str()),
                    ("decision", "allow"),
                ],
            )
            .await;
        assert_error_page(&page, "tampered consent request");
    }
    for request in [
        flip(&logout_request),
        consent_request.clone(),
        String::new(),
    ] {
        let csrf = confirm.field("csrf");
        let page = b
            .post(
                &app.url("/oauth2/logout/confirm"),
                &[("csrf", csrf.as_str()), ("request", request.as_str())],
            )
            .await;
        assert_error_page(&page, "tampered logout request");
    }
    assert!(authenticates(&app, &b.cookies[SESSION].clone()).await);
    // The sealed requests expire.
    app.clock.advance(31 * 60);
    let csrf = sign_in.field("csrf");
    let page = fresh
        .post(
            &app.url("/login"),
            &[
                ("csrf", csrf.as_str()),
                ("request", login_request.as_str()),
                ("username", ALICE),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_error_page(&page, "expired sign-in request");
    let csrf = confirm.field("csrf");
    let page = b
        .post(
            &app.url("/oauth2/logout/confirm"),
            &[
                ("csrf", csrf.as_str()),
                ("request", logout_request.as_str()),
            ],
        )
        .await;
    assert_error_page(&page, "expired logout request");
}

// ---- 12. tampered and expired session cookies ---------------------------------------------

async fn a_tampered_or_expired_session_cookie_is_signed_out(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LATCHKEY_SESSIONS_IDLE_TIMEOUT", "120"),
            ("LATCHKEY_SESSIONS_ABSOLUTE_TIMEOUT", "300"),
        ],
    )
    .await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let mut b = Browser::new();
    code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let good = b.cookies[SESSION].clone();
    let signed_out = |page: &Page, what: &str| {
        assert_eq!(page.status, 200, "{what}: {}", page.html);
        assert!(is_sign_in(page), "{what}: {}", page.html);
    };
    for bad in [
        flip(&good),
        good[..good.len() - 1].to_owned(),
        format!("{good}A"),
        good.to_ascii_uppercase(),
        "%%%".to_owned(),
        "\"quoted\"".to_owned(),
        "a".repeat(4000),
        "-".to_owned(),
    ] {
        let mut t = Browser::new();
        t.cookies.insert(SESSION.into(), bad.clone());
        let page = t.get(&authorize_url(&app, "spa", &[])).await;
        signed_out(&page, &bad);
        let page = t
            .get(&authorize_url(&app, "spa", &[("prompt", "none")]))
            .await;
        assert_error_redirect(&app, &page, "login_required");
        assert!(!authenticates(&app, &bad).await, "{bad}");
    }
    // The genuine cookie still works.
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    assert_eq!(page.status, 302, "{}", page.html);

    // Unused past the idle timeout.
    app.clock.advance(121);
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    signed_out(&page, "idle");
    assert!(!authenticates(&app, &good).await);

    // Used all along, past the absolute timeout.
    let mut b = Browser::new();
    code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let cookie = b.cookies[SESSION].clone();
    for step in [100, 100, 90] {
        app.clock.advance(step);
        let page = b.get(&authorize_url(&app, "spa", &[])).await;
        assert_eq!(page.status, 302, "alive after {step}: {}", page.html);
    }
    app.clock.advance(11);
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    signed_out(&page, "absolute");
    assert!(!authenticates(&app, &cookie).await);
}

// ---- 13. a disabled user ------------------------------------------------------------------

async fn a_disabled_user_is_signed_out_and_their_codes_fail(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let mut b = Browser::new();
    let first = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let tokens = tokens_for(&app, "spa", &first).await;
    let pending = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let cookie = b.cookies[SESSION].clone();

    app.set_active(ALICE, false).await;
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(is_sign_in(&page), "{}", page.html);
    let (status, body) = redeem(&app, "spa", &pending, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert_eq!(
        userinfo_status(&app, str_of(&tokens, "access_token")).await,
        401
    );
    let (status, body) = app
        .refresh_as("spa", str_of(&tokens, "refresh_token"))
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // Signing in is refused.
    let page = post_sign_in(&app, &mut b, &page, ALICE, PASSWORD).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(!b.has_cookie(SESSION) || b.cookies[SESSION] == cookie);

    // Enabled again: the old session stays ended.
    app.set_active(ALICE, true).await;
    assert!(!authenticates(&app, &cookie).await);
}

/// The session check itself, without the operator's path (which ends the sessions at once): a
/// user made inactive in the store behind the services' back. The next use of the cookie ends
/// the session (its refresh family is revoked), so it stays ended when the user is active again.
async fn a_session_whose_user_is_inactive_ends_at_its_next_use(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = latchkey::domain::UserId::from_trusted(create_user(app.admin(), ALICE, &[]).await);
    browser_client(&app, "spa").await;
    let mut b = Browser::new();
    let first = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let tokens = tokens_for(&app, "spa", &first).await;
    let cookie = b.cookies[SESSION].clone();
    assert!(authenticates(&app, &cookie).await);

    let set_active = |active: bool| {
        let users = app.services.stores.users.clone();
        let (alice, now) = (alice.clone(), app.clock.now());
        async move {
            let patch = latchkey::storage::UserPatch {
                is_active: Some(active),
                ..Default::default()
            };
            assert!(users.update(&alice, &patch, now).await.unwrap());
        }
    };
    set_active(false).await;
    assert!(!authenticates(&app, &cookie).await);
    set_active(true).await;
    assert!(!authenticates(&app, &cookie).await, "the session was ended");
    let (status, body) = app
        .refresh_as("spa", str_of(&tokens, "refresh_token"))
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
}

// ---- 14. RP-initiated logout --------------------------------------------------------------

async fn rp_initiated_logout_ends_the_session_and_its_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    create_user(app.admin(), BOB, &[]).await;
    spa_with_logout(&app, None).await;
    let mut b = Browser::new();
    let code = code_via(
        &app,
        &mut b,
        &url_with(&app, "spa", &[("scope", "openid orders.read")]),
    )
    .await;
    let online = tokens_for(&app, "spa", &code).await;
    let code = code_via(
        &app,
        &mut b,
        &url_with(
            &app,
            "spa",
            &[("scope", "openid offline_access orders.read")],
        ),
    )
    .await;
    let offline = tokens_for(&app, "spa", &code).await;
    let hint = str_of(&online, "id_token");
    let pending = code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let cookie = b.cookies[SESSION].clone();

    // A valid hint of another user's session: the user confirms first.
    let mut bobs = Browser::new();
    let code = code_as(&app, &mut bobs, &authorize_url(&app, "spa", &[]), BOB).await;
    let bob_hint = str_of(&tokens_for(&app, "spa", &code).await, "id_token").to_owned();
    let page = b
        .get(&logout_url(
            &app,
            &[
                ("id_token_hint", bob_hint.as_str()),
                ("post_logout_redirect_uri", LOGGED_OUT),
            ],
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("/oauth2/logout/confirm"),
        "{}",
        page.html
    );
    assert!(authenticates(&app, &cookie).await);

    // With a hint for this browser's session: signed out at once, back to the client.
    let page = b
        .get(&logout_url(
            &app,
            &[
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", LOGGED_OUT),
                ("state", "bye 1"),
            ],
        ))
        .await;
    assert_eq!(page.status, 302, "{}", page.html);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{LOGGED_OUT}?state=bye+1").as_str())
    );
    assert!(!b.has_cookie(SESSION));
    assert!(!authenticates(&app, &cookie).await);
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    assert!(is_sign_in(&page), "{}", page.html);
    // The session's tokens end with it, but for those granted offline_access.
    let (status, body) = app
        .refresh_as("spa", str_of(&online, "refresh_token"))
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert_eq!(
        userinfo_status(&app, str_of(&online, "access_token")).await,
        401
    );
    let (status, body) = app
        .refresh_as("spa", str_of(&offline, "refresh_token"))
        .await;
    assert_eq!(status, 200, "offline_access survives logout: {body}");
    assert_eq!(
        userinfo_status(&app, str_of(&offline, "access_token")).await,
        200
    );
    // A code of the ended session is no use any more.
    let (status, body) = redeem(&app, "spa", &pending, REDIRECT, Some(VERIFIER)).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");

    // Without a hint: a confirmation page, then signed out and back to the client.
    code_via(&app, &mut b, &authorize_url(&app, "spa", &[])).await;
    let cookie = b.cookies[SESSION].clone();
    let page = b
        .get(&logout_url(
            &app,
            &[
                ("client_id", "spa"),
                ("post_logout_redirect_uri", LOGGED_OUT),
                ("state", "bye-2"),
            ],
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("App spa"), "{}", page.html);
    assert!(authenticates(&app, &cookie).await, "not before confirming");
    let csrf = page.field("csrf");
    let request = page.field("request");
    let page = b
        .post(
            &app.url("/oauth2/logout/confirm"),
            &[("csrf", csrf.as_str()), ("request", request.as_str())],
        )
        .await;
    assert_eq!(page.status, 302, "{}", page.html);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{LOGGED_OUT}?state=bye-2").as_str())
    );
    assert!(!b.has_cookie(SESSION));
    assert!(!authenticates(&app, &cookie).await);
    // Signed out already: the signed-out page, or straight back to the client.
    let page = b.get(&logout_url(&app, &[])).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("signed out"), "{}", page.html);
    let page = b
        .get(&logout_url(
            &app,
            &[
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", LOGGED_OUT),
            ],
        ))
        .await;
    assert_eq!(page.location.as_deref(), Some(LOGGED_OUT));
}

// ---- 15. back-channel logout --------------------------------------------------------------

/// A client's back-channel logout endpoint on loopback: each request's head and logout token
/// go to `tokens`; the answer (200) waits for a permit of `gate`, which starts closed.
struct LogoutEndpoint {
    uri: String,
    tokens: mpsc::UnboundedReceiver<(String, String)>,
    gate: Arc<Semaphore>,
}

impl LogoutEndpoint {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/backchannel", listener.local_addr().unwrap());
        let (tx, tokens) = mpsc::unbounded_channel();
        let gate = Arc::new(Semaphore::new(0));
        let held = gate.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (tx, held) = (tx.clone(), held.clone());
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut conn).await else {
                        return;
                    };
                    let token = url::form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    let _ = tx.send((head, token));
                    let _permit = held.acquire().await;
                    let _ = conn
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Self { uri, tokens, gate }
    }

    /// Lets every held and later request be answered.
    fn open(&self) {
        self.gate.add_permits(1000);
    }

    /// The next logout token for session `sid` (others are skipped).
    async fn token_for(&mut self, sid: &str) -> (String, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (head, token) = tokio::time::timeout_at(deadline, self.tokens.recv())
                .await
                .unwrap_or_else(|_| panic!("no logout token for session {sid}"))
                .unwrap();
            let (_, claims) = jwt_parts(&token);
            if claims["sid"] == sid {
                return (head, token);
            }
        }
    }
}

/// One HTTP/1.1 request: its head and body.
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = conn.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
            return Some((head, body));
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Verifies a logout token against the JWKS (OIDC Back-Channel Logout 1.0 §2.4) and returns
/// its claims.
async fn verified_logout_token(app: &TestApp, head: &str, token: &str, client: &str) -> Value {
    assert!(head.starts_with("POST /backchannel "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/x-www-form-urlencoded"),
        "{head}"
    );
    let header = decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: JwkSet = app.get_json("/.well-known/jwks.json").await;
    let kid = header.kid.as_deref().expect("a kid");
    let key = DecodingKey::from_jwk(jwks.find(kid).expect("the key in the JWKS")).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client]);
    validation.set_issuer(&[app.settings.issuer()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = decode::<Value>(token, &key, &validation).unwrap().claims;
    assert_eq!(claims["aud"], client);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims["iat"].is_i64());
    assert_eq!(
        claims["events"],
        serde_json::json!({ "http://schemas.openid.net/event/backchannel-logout": {} })
    );
    assert!(claims.get("nonce").is_none(), "{claims}");
    claims
}

/// Signs in through `rp` and exchanges the code: the ID token's claims.
async fn signed_in_to_rp(app: &TestApp, b: &mut Browser) -> (String, Value) {
    let code = code_via(app, b, &authorize_url(app, "rp", &[])).await;
    let tokens = tokens_for(app, "rp", &code).await;
    let id_token = str_of(&tokens, "id_token").to_owned();
    let (_, claims) = jwt_parts(&id_token);
    assert!(claims["sid"].is_string(), "{claims}");
    (id_token, claims)
}

async fn backchannel_logout_tokens_reach_the_clients_without_delaying_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = create_user(app.admin(), ALICE, &[]).await;
    let mut endpoint = LogoutEndpoint::start().await;
    register(
        &app,
        "rp",
        ClientKind::Public,
        &[REDIRECT],
        ClientOidcInput {
            post_logout_redirect_uris: vec![LOGGED_OUT.into()],
            backchannel_logout_uri: Some(endpoint.uri.clone()),
            first_party: true,
            ..Default::default()
        },
    )
    .await;

    // RP-initiated logout: the user is back at the client while the delivery is held.
    let mut b = Browser::new();
    let (hint, id) = signed_in_to_rp(&app, &mut b).await;
    let logout = logout_url(
        &app,
        &[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "s1"),
        ],
    );
    let page = tokio::time::timeout(Duration::from_secs(3), b.get(&logout))
        .await
        .expect("the logout waited for the back-channel delivery");
    assert_eq!(page.status, 302, "{}", page.html);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{LOGGED_OUT}?state=s1").as_str())
    );
    let sid = id["sid"].as_str().unwrap();
    let (head, token) = endpoint.token_for(sid).await;
    endpoint.open();
    let claims = verified_logout_token(&app, &head, &token, "rp").await;
    assert_eq!(claims["sid"], id["sid"]);
    assert_eq!(claims["sub"], id["sub"]);
    assert_eq!(claims["sub"], alice);
    assert_eq!(claims["iss"], id["iss"]);

    // "Sign out everywhere" on the account page.
    let mut b = Browser::new();
    let (_, id) = signed_in_to_rp(&app, &mut b).await;
    let account = b.get(&app.url("/account")).await;
    let csrf = account.field("csrf");
    let page = b
        .post(&app.url("/account/logout-all"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    let (head, token) = endpoint.token_for(id["sid"].as_str().unwrap()).await;
    let claims = verified_logout_token(&app, &head, &token, "rp").await;
    assert_eq!(claims["sub"], alice);

    // The session expires (the background loop ends it; here called directly).
    app.clock.advance(1);
    let mut b = Browser::new();
    let (_, id) = signed_in_to_rp(&app, &mut b).await;
    app.clock.advance(8 * 3600 + 1);
    assert!(app.services.sessions.end_expired(100).await.unwrap() >= 1);
    let (head, token) = endpoint.token_for(id["sid"].as_str().unwrap()).await;
    let claims = verified_logout_token(&app, &head, &token, "rp").await;
    assert_eq!(claims["sub"], alice);

    // An operator disables the user.
    app.clock.advance(1);
    let mut b = Browser::new();
    let (_, id) = signed_in_to_rp(&app, &mut b).await;
    app.set_active(ALICE, false).await;
    let (head, token) = endpoint.token_for(id["sid"].as_str().unwrap()).await;
    let claims = verified_logout_token(&app, &head, &token, "rp").await;
    assert_eq!(claims["sub"], alice);
}

// ---- 16. throttling -----------------------------------------------------------------------

async fn the_sign_in_page_is_throttled_like_the_password_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    public_client(app.admin(), "web", &["password"], &["orders.read"]).await;
    let mut b = Browser::new();
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    let mut failures = 0;
    let throttled = loop {
        let (answer, headers) = post_seen(
            &mut b,
            &app.url("/login"),
            &[
                ("csrf", page.field("csrf").as_str()),
                ("request", page.field("request").as_str()),
                ("username", ALICE),
                ("password", "wrong password here"),
            ],
        )
        .await;
        assert_safe("failed sign-in", &answer, &headers);
        if answer.status == 429 {
            break answer;
        }
        assert_eq!(answer.status, 401, "{}", answer.html);
        failures += 1;
        assert!(failures < 20, "never throttled");
    };
    assert!(failures >= 5, "the free failures: {failures}");
    assert!(
        throttled.html.contains("Too many attempts"),
        "{}",
        throttled.html
    );
    assert!(is_sign_in(&throttled), "the page again: {}", throttled.html);
    // During the delay even the right password is refused, on the page and at the password
    // grant alike: one count.
    let answer = post_sign_in(&app, &mut b, &page, ALICE, PASSWORD).await;
    assert_eq!(answer.status, 429, "{}", answer.html);
    assert!(!b.has_cookie(SESSION));
    let r = app
        .token(&[
            ("grant_type", "password"),
            ("username", ALICE),
            ("password", PASSWORD),
            ("client_id", "web"),
        ])
        .await;
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.headers().contains_key("retry-after"));
    // The same audit events as the password grant.
    let failed = audit_events(&app, "login_failed", failures).await;
    for e in &failed[..failures] {
        assert_eq!(e.event.user_id.as_deref(), Some(alice.as_str()));
        assert_eq!(e.event.client_id.as_deref(), Some("spa"));
        assert_eq!(e.event.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.event.detail["method"], "password");
    }
    let lockouts = audit_events(&app, "lockout", 1).await;
    assert_eq!(lockouts[0].event.user_id.as_deref(), Some(alice.as_str()));
    assert_eq!(lockouts[0].event.client_id.as_deref(), Some("spa"));
    // When the delay is over, the right password signs in.
    app.clock.advance(60);
    let answer = post_sign_in(&app, &mut b, &page, ALICE, PASSWORD).await;
    assert!(is_consent(&answer), "{}", answer.html);
    assert!(b.has_cookie(SESSION));
}

/// The audit events `event`, once there are at least `n` (they are written after the answer).
async fn audit_events(
    app: &TestApp,
    event: &str,
    n: usize,
) -> Vec<latchkey::domain::LoggedAuditEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = app.wait_for_audit(event).await;
        if found.len() >= n {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} {event} events, not {n}",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
