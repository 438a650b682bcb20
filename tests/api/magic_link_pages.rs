//! Magic-link sign-in on the hosted pages: ask for a link, then type the code or follow the
//! link; the pending authorization request continues either way, and the link is used once.

use crate::authorization_code::{
    allow_consent, authorize_url, browser_client, query_of, Browser, Page, REDIRECT, VERIFIER,
};
use crate::helpers::*;
use crate::scenarios;

scenarios!(
    the_code_from_the_mail_signs_in_and_continues_the_request,
    the_link_signs_in_once_and_resumes_the_request_from_its_cookie,
    asking_for_a_link_reveals_nothing_and_refuses_forged_forms,
    without_magic_links_the_pages_are_not_offered,
);

const ALICE: &str = "alice@example.com";

/// Opens the sign-in page of an authorization request, follows its magic-link link and asks
/// for a link for `email`; returns the page that asks for the code.
async fn ask_for_link(app: &TestApp, browser: &mut Browser, email: &str) -> Page {
    let page = browser.get(&authorize_url(app, "spa", &[])).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let request = page.field("request");
    let encoded: String = url::form_urlencoded::byte_serialize(request.as_bytes()).collect();
    assert!(
        page.html
            .contains(&format!("/login/magic?request={encoded}")),
        "the sign-in page links to the magic-link page: {}",
        page.html
    );
    let page = browser
        .get(&app.url(&format!("/login/magic?request={encoded}")))
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("autocomplete=\"email\""),
        "{}",
        page.html
    );
    browser
        .post(
            &app.url("/login/magic"),
            &[
                ("csrf", &page.field("csrf")),
                ("request", &page.field("request")),
                ("email", email),
            ],
        )
        .await
}

/// Allows the consent page and exchanges the code; returns the ID token's claims.
async fn consent_and_exchange(
    app: &TestApp,
    browser: &mut Browser,
    page: Page,
) -> serde_json::Value {
    let location = allow_consent(app, browser, page).await;
    let q = query_of(&location);
    assert_eq!(q["state"], "st-123");
    let (status, body) = app
        .token_json(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    jwt_parts(str_of(&body, "id_token")).1
}

async fn the_code_from_the_mail_signs_in_and_continues_the_request(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    let user = create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    let page = ask_for_link(&app, &mut browser, ALICE).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("autocomplete=\"one-time-code\""),
        "{}",
        page.html
    );
    assert!(
        browser.has_cookie("latchkey_magic"),
        "the request is kept for the link"
    );
    let mail = smtp.wait_for(ALICE, MAIL_WAIT).await;
    let code = code_in(&mail);
    assert!(
        mail.text().contains(&app.url("/login/magic/link?token=")),
        "the mail links to the hosted landing page: {}",
        mail.text()
    );

    // A wrong code: the same page again, nothing signed in.
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let again = browser
        .post(
            &app.url("/login/magic/code"),
            &[
                ("csrf", &page.field("csrf")),
                ("request", &page.field("request")),
                ("email", &page.field("email")),
                ("code", wrong),
            ],
        )
        .await;
    assert_eq!(again.status, 401, "{}", again.html);
    assert!(again.html.contains("not correct"), "{}", again.html);
    assert!(!browser.has_cookie("latchkey_session"));

    let signed_in = browser
        .post(
            &app.url("/login/magic/code"),
            &[
                ("csrf", &again.field("csrf")),
                ("request", &again.field("request")),
                ("email", &again.field("email")),
                ("code", &code),
                ("remember", "on"),
            ],
        )
        .await;
    assert!(browser.has_cookie("latchkey_session"));
    assert!(
        !browser.has_cookie("latchkey_magic"),
        "the cookie is cleared"
    );
    let id = consent_and_exchange(&app, &mut browser, signed_in).await;
    assert_eq!(id["sub"], user);
    assert_eq!(id["amr"], serde_json::json!(["otp"]));
    assert_eq!(id["nonce"], "n-456");

    // The code was used: a second sign-in with it fails.
    let mut other = Browser::new();
    let page = other.get(&app.url("/login/magic")).await;
    let reused = other
        .post(
            &app.url("/login/magic/code"),
            &[
                ("csrf", &page.field("csrf")),
                ("email", ALICE),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(reused.status, 401, "{}", reused.html);
}

async fn the_link_signs_in_once_and_resumes_the_request_from_its_cookie(backend: Backend) {
    let (app, smtp) = spawn_mail_app(backend, &[]).await;
    let user = create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    let page = ask_for_link(&app, &mut browser, ALICE).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let mail = smtp.wait_for(ALICE, MAIL_WAIT).await;
    let token = token_in(&mail, "/login/magic/link");
    let link = app.url(&format!("/login/magic/link?token={token}"));

    // Opening the link (a mail scanner does too) does not use it.
    for _ in 0..2 {
        let landing = browser.get(&link).await;
        assert_eq!(landing.status, 200, "{}", landing.html);
        assert!(
            landing.html.contains("App spa"),
            "names the app: {}",
            landing.html
        );
    }
    let landing = browser.get(&link).await;
    let signed_in = browser
        .post(
            &app.url("/login/magic/link"),
            &[
                ("csrf", &landing.field("csrf")),
                ("token", &landing.field("token")),
            ],
        )
        .await;
    assert!(browser.has_cookie("latchkey_session"));
    let id = consent_and_exchange(&app, &mut browser, signed_in).await;
    assert_eq!(id["sub"], user);
    assert_eq!(id["amr"], serde_json::json!(["otp"]));

    // Used once: the link now opens the expired page, and posting it again fails.
    let again = browser.get(&link).await;
    assert_eq!(again.status, 400, "{}", again.html);
    assert!(again.html.contains("cannot be used"), "{}", again.html);
    let posted = browser
        .post(
            &app.url("/login/magic/link"),
            &[("csrf", &landing.field("csrf")), ("token", &token)],
        )
        .await;
    assert_eq!(posted.status, 400, "{}", posted.html);

    // A link opened in another browser (no pending request there) signs in to the account page.
    app.clock.advance(61);
    let mut phone = Browser::new();
    let page = phone.get(&app.url("/login/magic")).await;
    let asked = phone
        .post(
            &app.url("/login/magic"),
            &[("csrf", &page.field("csrf")), ("email", ALICE)],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.html);
    let token = token_in(&smtp.wait_for(ALICE, MAIL_WAIT).await, "/login/magic/link");
    let mut laptop = Browser::new();
    let landing = laptop
        .get(&app.url(&format!("/login/magic/link?token={token}")))
        .await;
    assert_eq!(landing.status, 200, "{}", landing.html);
    let done = laptop
        .post(
            &app.url("/login/magic/link"),
            &[("csrf", &landing.field("csrf")), ("token", &token)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some("/account"));
    assert!(laptop.has_cookie("latchkey_session"));
}

async fn asking_for_a_link_reveals_nothing_and_refuses_forged_forms(backend: Backend) {
    let (app, smtp) = spawn_mail_app(
        backend,
        &[(
            "LATCHKEY_MAGIC_LINK_URL",
            "https://app.example/magic?token={token}",
        )],
    )
    .await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    let known = ask_for_link(&app, &mut browser, ALICE).await;
    let mut other = Browser::new();
    let unknown = ask_for_link(&app, &mut other, "nobody@example.com").await;
    assert_eq!(known.status, unknown.status);
    let strip = |p: &Page, email: &str| {
        p.html
            .replace(email, "EMAIL")
            .replace(&p.field("csrf"), "CSRF")
            .replace(&p.field("request"), "REQUEST")
    };
    assert_eq!(
        strip(&known, ALICE),
        strip(&unknown, "nobody@example.com"),
        "the same page whether or not the address has an account"
    );
    smtp.wait_for(ALICE, MAIL_WAIT).await;

    // A form without the browser's CSRF token, or with another browser's.
    let page = browser.get(&app.url("/login/magic")).await;
    let mut stranger = Browser::new();
    let forged = stranger
        .post(
            &app.url("/login/magic"),
            &[("csrf", &page.field("csrf")), ("email", ALICE)],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    let forged = stranger
        .post(
            &app.url("/login/magic/code"),
            &[("email", ALICE), ("code", "12345678")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.html);

    // An address that is no address, with markup: refused, echoed escaped.
    let xss = "\"><script>alert(1)</script>";
    let page = browser.get(&app.url("/login/magic")).await;
    let bad = browser
        .post(
            &app.url("/login/magic"),
            &[("csrf", &page.field("csrf")), ("email", xss)],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.html);
    assert!(!bad.html.contains("<script>alert"), "{}", bad.html);

    // A link an application asked for (through the API) is no link for the pages.
    public_client(app.admin(), "app", &["magic_link"], &["orders.read"]).await;
    app.clock.advance(61);
    let (status, body) = app
        .post_json(
            "/api/v1/magic-link",
            serde_json::json!({"email": ALICE, "client_id": "app"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let token = token_in(
        &smtp.wait_for(ALICE, MAIL_WAIT).await,
        "https://app.example/magic",
    );
    let page = browser
        .get(&app.url(&format!("/login/magic/link?token={token}")))
        .await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert!(!page.html.contains(ALICE), "{}", page.html);
    let page = browser.get(&app.url("/login/magic")).await;
    let posted = browser
        .post(
            &app.url("/login/magic/link"),
            &[("csrf", &page.field("csrf")), ("token", &token)],
        )
        .await;
    assert_eq!(posted.status, 400, "{}", posted.html);
    assert!(!browser.has_cookie("latchkey_session"));

    // A landing link that is no link: the expired page, never a form.
    let page = browser
        .get(&app.url("/login/magic/link?token=not-a-token"))
        .await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert!(!page.html.contains("<form"), "{}", page.html);
}

async fn without_magic_links_the_pages_are_not_offered(backend: Backend) {
    let (app, _smtp) = spawn_mail_app(backend, &[("LATCHKEY_MAGIC_LINKS", "false")]).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    let page = browser.get(&authorize_url(&app, "spa", &[])).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(!page.html.contains("/login/magic"), "{}", page.html);
    let page = browser.get(&app.url("/login/magic")).await;
    assert_eq!(page.status, 404, "{}", page.html);
    let page = browser.get(&app.url("/login/magic/link?token=x")).await;
    assert_eq!(page.status, 404, "{}", page.html);
}
