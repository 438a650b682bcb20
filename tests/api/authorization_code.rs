//! The authorization code flow through Latchkey's pages, driven over plain HTTP (the browser
//! suite drives the same pages in Chromium): authorize, sign in, consent, code, token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey::domain::{ClientKind, ClientTokenSettings};
use latchkey::services::NewClientInput;
use serde_json::Value;

use crate::helpers::{create_user, jwt_parts, spawn_app, str_of, Backend, TestApp, PASSWORD};
use crate::scenarios;

scenarios!(
    code_flow_signs_in_consents_and_exchanges_the_code_once,
    unregistered_redirect_uris_get_an_error_page_never_a_redirect,
    pkce_is_required_of_public_clients_and_checked,
    prompt_none_without_a_session_is_login_required,
    a_form_without_the_browsers_csrf_token_is_refused,
    userinfo_accepts_an_openid_token_issued_for_an_api,
    a_failed_sign_in_keeps_the_name_and_consent_lists_who_you_are_first,
);

pub const REDIRECT: &str = "http://127.0.0.1:5173/callback";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub async fn browser_client(app: &TestApp, id: &str) {
    app.admin()
        .create_client(NewClientInput {
            client_id: Some(id.into()),
            name: format!("App {id}"),
            kind: ClientKind::Public,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scopes: vec!["orders.read".into()],
            redirect_uris: vec![REDIRECT.into()],
            audiences: vec![],
            default_audience: None,
            token_settings: ClientTokenSettings::default(),
        })
        .await
        .unwrap();
}

/// A browser without redirects, keeping cookies by hand.
pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: std::collections::BTreeMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub html: String,
}

impl Page {
    /// The value of the hidden input `name`.
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .html
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.html))
            + marker.len();
        let end = self.html[start..].find('"').unwrap() + start;
        self.html[start..end].replace("&#x2f;", "/")
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn keep(&mut self, r: reqwest::Response) -> Page {
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            html: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let r = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }
}

pub fn authorize_url(app: &TestApp, client: &str, extra: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile email orders.read")
        .append_pair("state", "st-123")
        .append_pair("nonce", "n-456")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    app.url(&format!("/oauth2/authorize?{}", q.finish()))
}

/// The query parameters of a redirect.
pub fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

/// Signs in on the page and allows the consent; returns the redirect to the client.
pub async fn sign_in_and_consent(app: &TestApp, browser: &mut Browser, url: &str) -> String {
    let page = browser.get(url).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("autocomplete=\"current-password\""));
    let page = browser
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
    allow_consent(app, browser, page).await
}

/// Answers "Allow" on the consent page; returns the redirect to the client.
pub async fn allow_consent(app: &TestApp, browser: &mut Browser, page: Page) -> String {
    assert_eq!(page.status, 200, "consent page: {}", page.html);
    assert!(page.html.contains("Allow"), "{}", page.html);
    let page = browser
        .post(
            &app.url("/consent"),
            &[
                ("csrf", &page.field("csrf")),
                ("request", &page.field("request")),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(page.status, 302, "{}", page.html);
    page.location.unwrap()
}

pub async fn exchange(app: &TestApp, code: &str, verifier: &str) -> (u16, Value) {
    app.token_json(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("client_id", "spa"),
    ])
    .await
}

async fn code_flow_signs_in_consents_and_exchanges_the_code_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = create_user(app.admin(), "alice@example.com", &[]).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    let location = sign_in_and_consent(&app, &mut browser, &authorize_url(&app, "spa", &[])).await;
    assert!(location.starts_with(REDIRECT), "{location}");
    let q = query_of(&location);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.settings.issuer());
    let code = &q["code"];
    assert_eq!(
        URL_SAFE_NO_PAD.decode(code).unwrap().len(),
        32,
        "a 256-bit code"
    );

    let (status, body) = exchange(&app, code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    let (header, id) = jwt_parts(str_of(&body, "id_token"));
    assert_eq!(header["typ"], "JWT");
    assert_eq!(id["iss"], app.settings.issuer());
    assert_eq!(id["sub"], user);
    assert_eq!(id["aud"], "spa");
    assert_eq!(id["azp"], "spa");
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id["sid"].is_string() && id["auth_time"].is_i64() && id["at_hash"].is_string());
    let access = str_of(&body, "access_token").to_owned();
    let refresh = str_of(&body, "refresh_token").to_owned();

    // userinfo with the access token.
    let info: Value = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], user);
    assert_eq!(info["email"], "alice@example.com");

    // The refresh returns a new ID token for the same sign-in.
    let (status, refreshed) = app.refresh_as("spa", &refresh).await;
    assert_eq!(status, 200, "{refreshed}");
    let (_, id2) = jwt_parts(str_of(&refreshed, "id_token"));
    assert_eq!(id2["sub"], user);
    assert_eq!(id2["auth_time"], id["auth_time"]);
    assert_eq!(id2["sid"], id["sid"]);
    assert!(id2.get("nonce").is_none());

    // A second use of the code fails, and revokes what the first use issued.
    let (status, again) = exchange(&app, code, VERIFIER).await;
    assert_eq!(status, 400, "{again}");
    assert_eq!(again["error"], "invalid_grant");
    let (status, after) = app
        .refresh_as("spa", str_of(&refreshed, "refresh_token"))
        .await;
    assert_eq!(status, 400, "the family is revoked: {after}");
    let r = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the first access token is revoked");

    // Signed in: a new request gets a code at once (consent remembered).
    let page = browser.get(&authorize_url(&app, "spa", &[])).await;
    assert_eq!(page.status, 302, "{}", page.html);
    assert!(query_of(&page.location.unwrap()).contains_key("code"));
}

async fn unregistered_redirect_uris_get_an_error_page_never_a_redirect(backend: Backend) {
    let app = spawn_app(backend).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    for bad in [
        "http://127.0.0.1:5173/other",
        "https://evil.example.com/callback",
        "http://127.0.0.1:5173/callback?x=1",
        "http://127.0.0.1:5173/callback#f",
    ] {
        let url = authorize_url(&app, "spa", &[]).replace(
            &format!(
                "redirect_uri={}",
                url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
            ),
            &format!(
                "redirect_uri={}",
                url::form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>()
            ),
        );
        let page = browser.get(&url).await;
        assert_eq!(page.status, 400, "{bad}: {}", page.html);
        assert!(page.location.is_none());
        assert!(page.html.contains("not registered"), "{}", page.html);
    }
    let page = browser.get(&authorize_url(&app, "nobody", &[])).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
}

async fn pkce_is_required_of_public_clients_and_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), "alice@example.com", &[]).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    // Without a challenge, and with plain: errors sent back to the client.
    let url =
        authorize_url(&app, "spa", &[]).replace(&format!("code_challenge={CHALLENGE}"), "x=1");
    let page = browser.get(&url).await;
    assert_eq!(page.status, 302);
    let q = query_of(page.location.as_deref().unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.settings.issuer());
    let url = authorize_url(&app, "spa", &[])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let page = browser.get(&url).await;
    assert_eq!(
        query_of(page.location.as_deref().unwrap())["error"],
        "invalid_request"
    );
    // A wrong verifier, then a missing one: invalid_grant (the code is used up by the first).
    let location = sign_in_and_consent(&app, &mut browser, &authorize_url(&app, "spa", &[])).await;
    let code = query_of(&location)["code"].clone();
    let (status, body) = exchange(&app, &code, &"x".repeat(43)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = exchange(&app, &code, VERIFIER).await;
    assert_eq!(status, 400, "single use, even after a failed exchange");
}

async fn prompt_none_without_a_session_is_login_required(backend: Backend) {
    let app = spawn_app(backend).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    let page = browser
        .get(&authorize_url(&app, "spa", &[("prompt", "none")]))
        .await;
    assert_eq!(page.status, 302);
    let q = query_of(page.location.as_deref().unwrap());
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "st-123");
}

async fn a_form_without_the_browsers_csrf_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), "alice@example.com", &[]).await;
    browser_client(&app, "spa").await;
    let mut victim = Browser::new();
    let page = victim.get(&authorize_url(&app, "spa", &[])).await;
    let request = page.field("request");
    // Another browser's token, then none at all.
    let mut attacker = Browser::new();
    let other = attacker.get(&authorize_url(&app, "spa", &[])).await;
    for csrf in [other.field("csrf"), String::new()] {
        let page = victim
            .post(
                &app.url("/login"),
                &[
                    ("csrf", csrf.as_str()),
                    ("request", request.as_str()),
                    ("username", "alice@example.com"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "{}", page.html);
        assert!(!victim.has_cookie("latchkey_session"));
    }
}

async fn userinfo_accepts_an_openid_token_issued_for_an_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = create_user(app.admin(), "alice@example.com", &[]).await;
    app.admin()
        .create_client(NewClientInput {
            client_id: Some("spa".into()),
            name: "App".into(),
            kind: ClientKind::Public,
            grant_types: vec!["authorization_code".into()],
            scopes: vec!["orders.read".into()],
            redirect_uris: vec![REDIRECT.into()],
            audiences: vec![latchkey::domain::Audience::parse("https://api.example.com")
                .unwrap()
                .into_string()],
            default_audience: None,
            token_settings: ClientTokenSettings::default(),
        })
        .await
        .unwrap();
    let mut browser = Browser::new();
    let url = authorize_url(&app, "spa", &[("resource", "https://api.example.com")]);
    let location = sign_in_and_consent(&app, &mut browser, &url).await;
    let code = query_of(&location)["code"].clone();
    let (status, body) = exchange(&app, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = jwt_parts(str_of(&body, "access_token"));
    assert_eq!(claims["aud"], "https://api.example.com");
    let r = app
        .http
        .get(app.url("/oauth2/userinfo"))
        .bearer_auth(str_of(&body, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], user);
}

async fn a_failed_sign_in_keeps_the_name_and_consent_lists_who_you_are_first(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), "alice@example.com", &[]).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    // Scopes asked in an odd order: the consent page still starts with who you are.
    let url = authorize_url(&app, "spa", &[]).replace(
        "scope=openid+profile+email+orders.read",
        "scope=orders.read+email+openid",
    );
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let wrong = browser
        .post(
            &app.url("/login"),
            &[
                ("csrf", &page.field("csrf")),
                ("request", &page.field("request")),
                ("username", "alice@example.com"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.html);
    assert!(
        wrong.html.contains("value=\"alice@example.com\""),
        "the name typed is kept: {}",
        wrong.html
    );
    let consent = browser
        .post(
            &app.url("/login"),
            &[
                ("csrf", &wrong.field("csrf")),
                ("request", &wrong.field("request")),
                ("username", "alice@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(consent.status, 200, "{}", consent.html);
    let who = consent
        .html
        .find("Confirm who you are")
        .expect("openid is listed");
    let email = consent
        .html
        .find("See your email address")
        .expect("email is listed");
    let orders = consent
        .html
        .find("orders.read")
        .expect("orders.read is listed");
    assert!(who < email && email < orders, "{}", consent.html);
}

/// Signs in on the sign-in page on its own (no application asking).
pub async fn sign_in_alone(app: &TestApp, b: &mut Browser, who: &str) {
    let page = b.get(&app.url("/login")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let csrf = page.field("csrf");
    let page = b
        .post(
            &app.url("/login"),
            &[
                ("csrf", csrf.as_str()),
                ("username", who),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.html);
    assert_eq!(page.location.as_deref(), Some("/account"));
}
