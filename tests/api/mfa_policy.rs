//! MFA policies and step-up (issue 15), on every backend: a role, a client or the server
//! requiring a second factor; enrolment forced at the next sign-in on the hosted pages, with
//! a grace period; `mfa_enrollment_required` at the token endpoint; the last factor kept while
//! a policy covers the user; `mfa.required = "off"`; and the step-up of a live session for
//! `acr_values` and `max_age` (the missing factor only, the session keeping its id). Codes
//! are computed by the test's own RFC 6238 (`mfa::code_at`).

use latchkey::clock::Clock;
use latchkey::services::ClientUpdate;
use reqwest::Method;
use serde_json::{json, Value};

use crate::authorization_code::{
    allow_consent, authorize_url, browser_client, exchange, query_of, Browser, Page, REDIRECT,
    VERIFIER,
};
use crate::helpers::*;
use crate::mfa::{code_at, enrol, second_step};
use crate::scenarios;

scenarios!(
    a_role_requiring_mfa_takes_its_holders_through_enrolment_at_the_next_sign_in,
    a_client_requiring_mfa_covers_the_sign_ins_for_it_and_steps_up_a_session,
    required_everywhere_with_a_grace_period_can_be_put_off_until_it_ends,
    the_token_endpoint_refuses_covered_users_without_a_factor,
    the_last_factor_stays_while_a_policy_requires_one,
    with_mfa_off_nothing_new_is_enrolled_but_factors_are_still_asked,
    acr_values_steps_up_a_one_factor_session_with_the_second_factor_only,
    max_age_asks_a_user_with_a_second_factor_for_that_factor_only,
);

const ALICE: &str = "alice@example.com";
const ACR_MFA: &str = "urn:latchkey:acr:mfa";

fn is_enrolment(page: &Page) -> bool {
    page.html.contains("action=\"/login/mfa/enrol\"")
}

fn is_second_step(page: &Page) -> bool {
    page.html.contains("action=\"/login/mfa\"")
}

fn is_consent(page: &Page) -> bool {
    page.html.contains("action=\"/consent\"")
}

fn has_session(b: &Browser) -> bool {
    b.has_cookie("__Host-latchkey_session") || b.has_cookie("latchkey_session")
}

/// The authorization request's page, then the password of `who` on it.
async fn sign_in(app: &TestApp, b: &mut Browser, url: &str, who: &str) -> Page {
    let page = b.get(url).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let mut form = vec![
        ("csrf", page.field("csrf")),
        ("username", who.to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    if page.html.contains("name=\"request\"") {
        form.push(("request", page.field("request")));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post(&app.url("/login"), &form).await
}

/// The key the enrolment page shows (base32), decoded.
fn secret_of(page: &Page) -> Vec<u8> {
    let start = page.html.find("<code class=\"key\">").expect("the key") + 18;
    let end = start + page.html[start..].find("</code>").expect("the key's end");
    data_encoding::BASE32_NOPAD
        .decode(&page.html.as_bytes()[start..end])
        .expect("base32")
}

/// Posts the enrolment page's form: a code, or `skip`.
async fn post_enrol(app: &TestApp, b: &mut Browser, page: &Page, otp: Option<&str>) -> Page {
    let mut form = vec![
        ("csrf", page.field("csrf")),
        ("enrolment_token", page.field("enrolment_token")),
        ("factor_id", page.field("factor_id")),
    ];
    match otp {
        Some(code) => form.push(("otp", code.to_owned())),
        None => form.push(("skip", "1".to_owned())),
    }
    if page.html.contains("name=\"request\"") {
        form.push(("request", page.field("request")));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post(&app.url("/login/mfa/enrol"), &form).await
}

/// The enrolment page done right: a wrong code first (the same app shown again), then the
/// right one; returns the secret and the recovery-codes page. `step_up`: the browser has a
/// session already (it is stepped up); else none starts before the code.
async fn enrol_on_page(
    app: &TestApp,
    b: &mut Browser,
    page: Page,
    step_up: bool,
) -> (Vec<u8>, Page) {
    assert!(is_enrolment(&page), "{}", page.html);
    assert!(page.html.contains("<svg"), "a QR code: {}", page.html);
    assert_eq!(
        has_session(b),
        step_up,
        "no new session before the second factor"
    );
    let secret = secret_of(&page);
    let now = app.clock.now();
    let wrong = format!(
        "{:06}",
        (code_at(&secret, now).parse::<u32>().unwrap() + 5) % 1_000_000
    );
    let again = post_enrol(app, b, &page, Some(&wrong)).await;
    assert_eq!(again.status, 400, "{}", again.html);
    assert!(
        again.html.contains("That code is not correct"),
        "{}",
        again.html
    );
    assert_eq!(again.field("factor_id"), page.field("factor_id"));
    assert_eq!(secret_of(&again), secret, "the same app, shown again");
    let codes = post_enrol(app, b, &again, Some(&code_at(&secret, now))).await;
    assert_eq!(codes.status, 200, "{}", codes.html);
    assert!(
        codes.html.contains("action=\"/login/continue\""),
        "{}",
        codes.html
    );
    assert_eq!(
        codes.html.matches("<li><code>").count(),
        10,
        "{}",
        codes.html
    );
    assert!(has_session(b), "the session starts with the codes page");
    // The enrolment token was used up.
    let used = post_enrol(app, b, &again, Some(&code_at(&secret, now + 30))).await;
    assert_eq!(used.status, 400, "{}", used.html);
    assert!(used.html.contains("Please sign in again"), "{}", used.html);
    (secret, codes)
}

/// "I have saved them": on with the request.
async fn continue_after_codes(app: &TestApp, b: &mut Browser, codes: &Page) -> Page {
    let mut form = vec![("csrf", codes.field("csrf"))];
    if codes.html.contains("name=\"request\"") {
        form.push(("request", codes.field("request")));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post(&app.url("/login/continue"), &form).await
}

/// The ID token of a redirect carrying a code (for `spa`).
async fn id_token_of(app: &TestApp, location: &str) -> Value {
    let q = query_of(location);
    let (status, body) = exchange(app, &q["code"], VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    jwt_parts(str_of(&body, "id_token")).1
}

/// The ID token of a redirect carrying a code for `client`.
async fn id_token_for(app: &TestApp, client: &str, location: &str) -> Value {
    let q = query_of(location);
    let (status, body) = app
        .token_json(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    jwt_parts(str_of(&body, "id_token")).1
}

/// A redirect to the client with `error`.
fn assert_redirect_error(page: &Page, error: &str) {
    assert_eq!(page.status, 302, "{}", page.html);
    let q = query_of(page.location.as_deref().unwrap());
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{q:?}");
}

/// A role with `--require-mfa`: its holder, without a factor, sets one up on the way in (QR
/// code, a code, the recovery codes once), and only then is signed in, with both factors. A
/// user without the role signs in as before; next time the holder is asked for the code.
async fn a_role_requiring_mfa_takes_its_holders_through_enrolment_at_the_next_sign_in(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = app.admin();
    let role = admin.create_role("admin", &[], None, true).await.unwrap();
    assert!(role.require_mfa);
    admin.create_role("staff", &[], None, false).await.unwrap();
    create_user(admin, ALICE, &["admin"]).await;
    create_user(admin, "bob@example.com", &["staff"]).await;
    browser_client(&app, "spa").await;

    let mut b = Browser::new();
    let page = sign_in(&app, &mut b, &authorize_url(&app, "spa", &[]), ALICE).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        !page.html.contains("name=\"skip\""),
        "no grace period: no way to put it off"
    );
    let (secret, codes) = enrol_on_page(&app, &mut b, page, false).await;
    let next = continue_after_codes(&app, &mut b, &codes).await;
    let location = allow_consent(&app, &mut b, next).await;
    let id = id_token_of(&app, &location).await;
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]), "{id}");
    assert_eq!(id["acr"], ACR_MFA, "{id}");
    app.wait_for_audit("mfa_enrolment_required").await;
    app.wait_for_audit("mfa_factor_added").await;

    // Bob's role requires nothing: his password is enough.
    let mut b = Browser::new();
    let page = sign_in(
        &app,
        &mut b,
        &authorize_url(&app, "spa", &[]),
        "bob@example.com",
    )
    .await;
    assert!(is_consent(&page), "{}", page.html);

    // Alice's next sign-in asks for her code.
    app.clock.advance(60);
    let mut b = Browser::new();
    let page = sign_in(&app, &mut b, &authorize_url(&app, "spa", &[]), ALICE).await;
    assert!(is_second_step(&page), "{}", page.html);
    let done = second_step(
        &app,
        &mut b,
        &page,
        "otp",
        &code_at(&secret, app.clock.now()),
    )
    .await;
    assert_eq!(done.status, 302, "consented already: {}", done.html);

    // The role shows the setting, and it can be turned off.
    let shown = admin.show_role("admin").await.unwrap();
    assert!(shown.require_mfa);
    let off = admin.set_role_require_mfa("admin", false).await.unwrap();
    assert!(!off.require_mfa);
}

/// A client with `require_mfa`: a sign-in for it takes a user without a factor through
/// enrolment; a sign-in for another client does not. A session started for the other client
/// is stepped up (not replaced) when the user then goes to the strict one.
async fn a_client_requiring_mfa_covers_the_sign_ins_for_it_and_steps_up_a_session(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    create_user(app.admin(), ALICE, &[]).await;
    browser_client(&app, "spa").await;
    browser_client(&app, "strict").await;
    let view = app
        .admin()
        .update_client(
            "strict",
            ClientUpdate {
                require_mfa: Some(true),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(view.require_mfa);
    // The admin API shows it.
    assert_eq!(
        serde_json::to_value(&view).unwrap()["require_mfa"],
        json!(true)
    );

    let mut b = Browser::new();
    let page = sign_in(&app, &mut b, &authorize_url(&app, "spa", &[]), ALICE).await;
    let location = allow_consent(&app, &mut b, page).await;
    let before = id_token_of(&app, &location).await;
    assert_eq!(before["acr"], "urn:latchkey:acr:1fa", "{before}");

    // prompt=none cannot show the enrolment page.
    let page = b
        .get(&authorize_url(&app, "strict", &[("prompt", "none")]))
        .await;
    assert_redirect_error(&page, "interaction_required");
    // The same browser goes to the strict client: the enrolment page, without a password.
    app.clock.advance(5);
    let page = b.get(&authorize_url(&app, "strict", &[])).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let (_, codes) = enrol_on_page(&app, &mut b, page, true).await;
    let next = continue_after_codes(&app, &mut b, &codes).await;
    let location = allow_consent(&app, &mut b, next).await;
    let after = id_token_for(&app, "strict", &location).await;
    assert_eq!(after["acr"], ACR_MFA, "{after}");
    assert_eq!(after["amr"], json!(["pwd", "otp", "mfa"]), "{after}");
    assert_eq!(
        after["sid"], before["sid"],
        "the session was stepped up, not replaced"
    );
    assert_eq!(after["auth_time"], app.clock.now(), "{after}");
    app.wait_for_audit("session_stepped_up").await;
}

/// `mfa.required = "required"` with a grace period of an hour: "Set up later" is offered and
/// works until the hour is over (counted from the first time the user was asked); then the
/// enrolment cannot be put off, and a session started within the grace is stepped up.
async fn required_everywhere_with_a_grace_period_can_be_put_off_until_it_ends(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LATCHKEY_MFA_REQUIRED", "required"),
            ("LATCHKEY_MFA_ENROLMENT_GRACE", "1h"),
        ],
    )
    .await;
    app.fixture().await;
    browser_client(&app, "spa").await;

    let mut b = Browser::new();
    let page = sign_in(&app, &mut b, &authorize_url(&app, "spa", &[]), ALICE).await;
    assert!(is_enrolment(&page), "{}", page.html);
    assert!(page.html.contains("Set up later"), "{}", page.html);
    let later = post_enrol(&app, &mut b, &page, None).await;
    let location = allow_consent(&app, &mut b, later).await;
    let id = id_token_of(&app, &location).await;
    assert_eq!(id["acr"], "urn:latchkey:acr:1fa", "{id}");
    app.wait_for_audit("mfa_enrolment_skipped").await;
    // Within the grace period, the session is good enough, and the token endpoint answers.
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    assert_eq!(page.status, 302, "{}", page.html);
    let (status, body) = app.password_grant(ALICE, PASSWORD, "web").await;
    assert_eq!(status, 200, "{body}");

    // An hour after the first time asked: no more putting it off.
    app.clock.advance(3_600);
    let page = b
        .get(&authorize_url(&app, "spa", &[("prompt", "none")]))
        .await;
    assert_redirect_error(&page, "interaction_required");
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    assert!(
        is_enrolment(&page),
        "the session is stepped up: {}",
        page.html
    );
    assert!(!page.html.contains("Set up later"), "{}", page.html);
    let mut fresh = Browser::new();
    let page = sign_in(&app, &mut fresh, &authorize_url(&app, "spa", &[]), ALICE).await;
    assert!(is_enrolment(&page), "{}", page.html);
    assert!(!page.html.contains("Set up later"), "{}", page.html);
    // Posting "later" anyway is refused, and no session starts.
    let refused = post_enrol(&app, &mut fresh, &page, None).await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert!(!has_session(&fresh));
    let (status, body) = app.password_grant(ALICE, PASSWORD, "web").await;
    assert_oauth_error(status, &body, 403, "mfa_enrollment_required");
}

/// At the token endpoint a covered user without a factor gets `403 mfa_enrollment_required`
/// (never tokens) from the password grant; a client requiring MFA covers its own grants
/// only; once the user has a factor, `mfa_required` and the MFA grant as before.
async fn the_token_endpoint_refuses_covered_users_without_a_factor(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    public_client(app.admin(), "strict", &["password"], &["orders.read"]).await;
    app.admin()
        .update_client(
            "strict",
            ClientUpdate {
                require_mfa: Some(true),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    let (status, body) = app
        .token_json(&[
            ("grant_type", "password"),
            ("client_id", "strict"),
            ("username", ALICE),
            ("password", PASSWORD),
        ])
        .await;
    assert_oauth_error(status, &body, 403, "mfa_enrollment_required");
    assert!(body.get("access_token").is_none(), "{body}");
    // The other client is not covered.
    let (status, body) = app.password_grant(ALICE, PASSWORD, "web").await;
    assert_eq!(status, 200, "{body}");
    let access = str_of(&body, "access_token").to_owned();
    // A wrong password still reads as one: nothing about the policy leaks.
    let (status, body) = app
        .token_json(&[
            ("grant_type", "password"),
            ("client_id", "strict"),
            ("username", ALICE),
            ("password", "not the password"),
        ])
        .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // With a factor: mfa_required, then the MFA grant.
    let (_, secret, _) = enrol(&app, &access).await;
    let (status, body) = app
        .token_json(&[
            ("grant_type", "password"),
            ("client_id", "strict"),
            ("username", ALICE),
            ("password", PASSWORD),
        ])
        .await;
    assert_oauth_error(status, &body, 403, "mfa_required");
    app.clock.advance(30);
    let (status, body) = app
        .token_json(&[
            ("grant_type", "urn:latchkey:params:oauth:grant-type:mfa"),
            ("client_id", "strict"),
            ("mfa_token", str_of(&body, "mfa_token")),
            ("otp", &code_at(&secret, app.clock.now())),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
}

/// A user a role covers cannot remove their last factor (`409 mfa_required_by_policy`, on
/// the API and the account page); with a second one they can remove either; an operator's
/// reset still removes everything; without the role, the last one goes too.
async fn the_last_factor_stays_while_a_policy_requires_one(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    app.admin()
        .create_role("admin", &[], None, true)
        .await
        .unwrap();
    let body = app.login(ALICE).await;
    let access = str_of(&body, "access_token").to_owned();
    let (first, _, _) = enrol(&app, &access).await;
    app.admin()
        .grant_roles(ALICE, &["admin".into()])
        .await
        .unwrap();
    let (status, body) = app
        .send_bearer(
            Method::DELETE,
            &format!("/api/v1/me/mfa/{first}"),
            &access,
            None,
        )
        .await;
    assert_oauth_error(status, &body, 409, "mfa_required_by_policy");
    // A second authenticator app: then the first can go, but not the second.
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/totp",
            &access,
            Some(json!({"name": "Tablet"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let second = str_of(&body, "id").to_owned();
    let key = data_encoding::BASE32_NOPAD
        .decode(str_of(&body, "secret").as_bytes())
        .unwrap();
    let (status, body) = app
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            &access,
            Some(json!({"id": second, "code": code_at(&key, app.clock.now())})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .send_bearer(
            Method::DELETE,
            &format!("/api/v1/me/mfa/{first}"),
            &access,
            None,
        )
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    let (status, body) = app
        .send_bearer(
            Method::DELETE,
            &format!("/api/v1/me/mfa/{second}"),
            &access,
            None,
        )
        .await;
    assert_oauth_error(status, &body, 409, "mfa_required_by_policy");

    // The account page says so too.
    let mut b = Browser::new();
    let page = sign_in(&app, &mut b, &app.url("/login"), ALICE).await;
    assert!(is_second_step(&page), "{}", page.html);
    let done = second_step(
        &app,
        &mut b,
        &page,
        "otp",
        &code_at(&key, app.clock.now() + 30),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.html);
    let account = b.get(&app.url("/account")).await;
    let removed = b
        .post(
            &app.url("/account/mfa/remove"),
            &[("csrf", &account.field("csrf")), ("factor_id", &second)],
        )
        .await;
    assert!(
        removed
            .html
            .contains("Two-step sign-in is required for your account"),
        "{}",
        removed.html
    );

    // Without the role, the last factor may go.
    app.admin()
        .revoke_roles(ALICE, &["admin".into()])
        .await
        .unwrap();
    let (status, body) = app
        .send_bearer(
            Method::DELETE,
            &format!("/api/v1/me/mfa/{second}"),
            &access,
            None,
        )
        .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    // An operator's reset works whatever the policy (audited).
    app.admin()
        .grant_roles(ALICE, &["admin".into()])
        .await
        .unwrap();
    let (third, _, _) = enrol(&app, &access).await;
    let _ = third;
    let user = app.admin().find_user(ALICE).await.unwrap();
    assert_eq!(app.services.mfa.reset(&user).await.unwrap(), 1);
    app.wait_for_audit("mfa_reset").await;
}

/// `mfa.required = "off"`: enrolling is refused (`403 mfa_enrollment_disabled`), but a
/// factor enrolled before is still asked for (fail closed).
async fn with_mfa_off_nothing_new_is_enrolled_but_factors_are_still_asked(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let body = app.login(ALICE).await;
    let access = str_of(&body, "access_token").to_owned();
    enrol(&app, &access).await;
    let off = spawn_instance_like(&app, &[("LATCHKEY_MFA_REQUIRED", "off")]).await;
    let (status, body) = off.password_grant(ALICE, PASSWORD, "web").await;
    assert_oauth_error(status, &body, 403, "mfa_required");
    create_user(off.admin(), "bob@example.com", &[]).await;
    let body = off.login("bob@example.com").await;
    let bob = str_of(&body, "access_token").to_owned();
    let (status, body) = off
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/totp",
            &bob,
            Some(json!({"name": "Phone"})),
        )
        .await;
    assert_oauth_error(status, &body, 403, "mfa_enrollment_disabled");
    // Passkeys are second factors too.
    let (status, body) = off
        .send_bearer(
            Method::POST,
            "/api/v1/me/mfa/passkeys",
            &bob,
            Some(json!({})),
        )
        .await;
    assert_oauth_error(status, &body, 403, "mfa_enrollment_disabled");
}

/// A session signed in with a password, for a user who has a second factor (enrolled after
/// the sign-in): `acr_values=urn:latchkey:acr:mfa` asks for the code only (no password),
/// then the session's `amr` and `acr` are two-factor, its `auth_time` now, its id the same.
/// Without `acr_values` the one-factor session answers, with `acr` saying so; `prompt=none`
/// cannot step up: `interaction_required`.
async fn acr_values_steps_up_a_one_factor_session_with_the_second_factor_only(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    browser_client(&app, "spa").await;
    let mut b = Browser::new();
    let page = sign_in(&app, &mut b, &authorize_url(&app, "spa", &[]), ALICE).await;
    let location = allow_consent(&app, &mut b, page).await;
    let first = id_token_of(&app, &location).await;
    assert_eq!(first["acr"], "urn:latchkey:acr:1fa");
    let body = app.login(ALICE).await;
    let (_, secret, _) = enrol(&app, str_of(&body, "access_token")).await;

    // No acr_values: the session answers as it is.
    let page = b.get(&authorize_url(&app, "spa", &[])).await;
    assert_eq!(page.status, 302, "{}", page.html);
    let id = id_token_of(&app, page.location.as_deref().unwrap()).await;
    assert_eq!(id["acr"], "urn:latchkey:acr:1fa", "{id}");
    // prompt=none with acr_values: interaction_required.
    let page = b
        .get(&authorize_url(
            &app,
            "spa",
            &[("acr_values", ACR_MFA), ("prompt", "none")],
        ))
        .await;
    assert_redirect_error(&page, "interaction_required");
    // acr_values: the code page, no password.
    app.clock.advance(120);
    let page = b
        .get(&authorize_url(&app, "spa", &[("acr_values", ACR_MFA)]))
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(is_second_step(&page), "{}", page.html);
    assert!(!page.html.contains("name=\"password\""), "{}", page.html);
    let wrong = format!(
        "{:06}",
        (code_at(&secret, app.clock.now()).parse::<u32>().unwrap() + 7) % 1_000_000
    );
    let again = second_step(&app, &mut b, &page, "otp", &wrong).await;
    assert_eq!(again.status, 401, "{}", again.html);
    let done = second_step(
        &app,
        &mut b,
        &again,
        "otp",
        &code_at(&secret, app.clock.now()),
    )
    .await;
    assert_eq!(done.status, 302, "{}", done.html);
    let id = id_token_of(&app, done.location.as_deref().unwrap()).await;
    assert_eq!(id["acr"], ACR_MFA, "{id}");
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]), "{id}");
    assert_eq!(id["auth_time"], app.clock.now(), "{id}");
    assert_eq!(id["sid"], first["sid"], "the same session");
    // The session now meets it: no page, and prompt=none answers too.
    let page = b
        .get(&authorize_url(
            &app,
            "spa",
            &[("acr_values", ACR_MFA), ("prompt", "none")],
        ))
        .await;
    assert_eq!(page.status, 302, "{}", page.html);
    assert!(query_of(page.location.as_deref().unwrap()).contains_key("code"));
    let discovery: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        discovery["acr_values_supported"],
        json!(["urn:latchkey:acr:1fa", ACR_MFA])
    );
}

/// `max_age` exceeded for a user with a second factor: the code page (the strongest factor
/// they have), not a whole new sign-in; after it, `auth_time` is now. `prompt=none`:
/// `login_required`.
async fn max_age_asks_a_user_with_a_second_factor_for_that_factor_only(backend: Backend) {
    let app = spawn_app(backend).await;
    app.fixture().await;
    let body = app.login(ALICE).await;
    let (_, secret, _) = enrol(&app, str_of(&body, "access_token")).await;
    browser_client(&app, "spa").await;
    let mut b = Browser::new();
    app.clock.advance(30);
    let page = sign_in(&app, &mut b, &authorize_url(&app, "spa", &[]), ALICE).await;
    let next = second_step(
        &app,
        &mut b,
        &page,
        "otp",
        &code_at(&secret, app.clock.now()),
    )
    .await;
    let location = allow_consent(&app, &mut b, next).await;
    let first = id_token_of(&app, &location).await;
    assert_eq!(first["acr"], ACR_MFA);

    app.clock.advance(600);
    let page = b
        .get(&authorize_url(
            &app,
            "spa",
            &[("max_age", "60"), ("prompt", "none")],
        ))
        .await;
    assert_redirect_error(&page, "login_required");
    let page = b
        .get(&authorize_url(&app, "spa", &[("max_age", "60")]))
        .await;
    assert!(is_second_step(&page), "{}", page.html);
    assert!(!page.html.contains("name=\"password\""), "{}", page.html);
    let done = second_step(
        &app,
        &mut b,
        &page,
        "otp",
        &code_at(&secret, app.clock.now()),
    )
    .await;
    assert_eq!(done.status, 302, "{}", done.html);
    let id = id_token_of(&app, done.location.as_deref().unwrap()).await;
    assert_eq!(id["auth_time"], app.clock.now(), "{id}");
    assert_eq!(id["sid"], first["sid"], "{id}");
    assert_eq!(id["acr"], ACR_MFA, "{id}");
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]), "{id}");
}
