//! Second factors after a federated sign-in (issue 15), through the fake Google of
//! `federation::fake_idp`: a user with a factor is asked for it after Google too (unless
//! `mfa.after_federation` is off and no policy covers them), a user a policy covers sets one
//! up first, and a native app's token exchange answers `mfa_required` like the password grant.

use serde_json::{json, Value};

use crate::authorization_code::{
    allow_consent, authorize_url, browser_client, exchange, query_of, Browser, Page, VERIFIER,
};
use crate::federation::fake_idp::Tamper;
use crate::federation::{
    app_for_native_apps, app_with_idp, exchange_id_token, google, through_provider, ANDROID,
};
use crate::helpers::*;
use crate::mfa::{code_at, enrol, second_step};
use crate::scenarios;
use latchkey::clock::Clock;

scenarios!(
    a_user_with_a_factor_is_asked_for_it_after_google,
    with_after_federation_off_google_is_trusted_unless_a_policy_covers_the_user,
    a_native_app_s_token_exchange_answers_mfa_required,
    a_password_alone_links_no_provider_to_an_account_with_a_second_factor,
);

const ALICE: &str = "alice@example.com";

fn is_second_step(page: &Page) -> bool {
    page.html.contains("action=\"/login/mfa\"")
}

async fn id_token_of(app: &TestApp, location: &str) -> Value {
    let q = query_of(location);
    let (status, body) = exchange(app, &q["code"], VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    jwt_parts(str_of(&body, "id_token")).1
}

/// Alice has a password and an authenticator app; her Google identity (same verified
/// address) is joined to her account. Signing in with Google leads to the code page, with no
/// session yet; the code completes it, and the ID token names both.
async fn a_user_with_a_factor_is_asked_for_it_after_google(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    app.fixture().await;
    let body = app.login(ALICE).await;
    let (_, secret, _) = enrol(&app, str_of(&body, "access_token")).await;
    browser_client(&app, "spa").await;
    idp.sign_in_as(google(ALICE, true, "g-alice"));
    let mut b = Browser::new();
    let page = b
        .get(&authorize_url(&app, "spa", &[("idp_hint", "google")]))
        .await;
    let start = page.location.clone().unwrap();
    let page = through_provider(&mut b, &app.url(&start)).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(is_second_step(&page), "{}", page.html);
    assert!(!b.has_cookie("__Host-latchkey_session") && !b.has_cookie("latchkey_session"));
    app.clock.advance(30);
    let next = second_step(
        &app,
        &mut b,
        &page,
        "otp",
        &code_at(&secret, app.clock.now()),
    )
    .await;
    let location = allow_consent(&app, &mut b, next).await;
    let id = id_token_of(&app, &location).await;
    assert_eq!(id["amr"], json!(["otp", "mfa", "fed", "google"]), "{id}");
    assert_eq!(id["acr"], "urn:latchkey:acr:mfa", "{id}");
}

/// `mfa.after_federation = false`: Google's sign-in is enough for a user with a factor no
/// policy covers; a user a role covers is still asked, and one without a factor sets one up.
async fn with_after_federation_off_google_is_trusted_unless_a_policy_covers_the_user(
    backend: Backend,
) {
    let (app, idp) = app_with_idp(backend, &[("LATCHKEY_MFA_AFTER_FEDERATION", "false")]).await;
    app.fixture().await;
    let body = app.login(ALICE).await;
    enrol(&app, str_of(&body, "access_token")).await;
    browser_client(&app, "spa").await;
    idp.sign_in_as(google(ALICE, true, "g-alice"));
    let mut b = Browser::new();
    let page = through_provider(&mut b, &app.url("/federation/google/start")).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);

    // A role that requires a second factor: asked again.
    app.admin()
        .create_role("admin", &[], None, true)
        .await
        .unwrap();
    app.admin()
        .grant_roles(ALICE, &["admin".into()])
        .await
        .unwrap();
    let mut b = Browser::new();
    let page = through_provider(&mut b, &app.url("/federation/google/start")).await;
    assert!(is_second_step(&page), "{}", page.html);

    // A covered user without a factor, new through Google: the enrolment page.
    create_user(app.admin(), "bob@example.com", &["admin"]).await;
    idp.sign_in_as(google("bob@example.com", true, "g-bob"));
    let mut b = Browser::new();
    let page = through_provider(&mut b, &app.url("/federation/google/start")).await;
    assert!(
        page.html.contains("action=\"/login/mfa/enrol\""),
        "{}",
        page.html
    );
}

/// A native app's ID token for a user with a second factor: `403 mfa_required` with an
/// `mfa_token`, completed by the MFA grant (the token-exchange client may use it).
async fn a_native_app_s_token_exchange_answers_mfa_required(backend: Backend) {
    let (app, idp) = app_for_native_apps(backend, &[]).await;
    app.fixture().await;
    let body = app.login(ALICE).await;
    let (_, secret, _) = enrol(&app, str_of(&body, "access_token")).await;
    let claims = json!({"sub": "g-alice", "email": ALICE, "email_verified": true,
                        "nonce": "n-1"});
    let id_token = idp.native_id_token(ANDROID, claims, Tamper::None);
    let (status, body) = exchange_id_token(&app, "mobile", &id_token, &[("nonce", "n-1")]).await;
    assert_oauth_error(status, &body, 403, "mfa_required");
    assert!(body.get("access_token").is_none(), "{body}");
    app.clock.advance(30);
    let (status, body) = app
        .token_json(&[
            ("grant_type", "urn:latchkey:params:oauth:grant-type:mfa"),
            ("client_id", "mobile"),
            ("mfa_token", str_of(&body, "mfa_token")),
            ("otp", &code_at(&secret, app.clock.now())),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}

/// Linking an identity to a local account by its password (the provider did not verify the
/// address): for an account with a second factor the password alone is not enough, so
/// nothing is linked and the page says how to do it.
async fn a_password_alone_links_no_provider_to_an_account_with_a_second_factor(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    app.fixture().await;
    let body = app.login(ALICE).await;
    enrol(&app, str_of(&body, "access_token")).await;
    idp.sign_in_as(google(ALICE, false, "g-alice"));
    let mut b = Browser::new();
    let page = through_provider(&mut b, &app.url("/federation/google/start")).await;
    assert!(
        page.html.contains("action=\"/federation/link\""),
        "{}",
        page.html
    );
    let done = b
        .post(
            &app.url("/federation/link"),
            &[
                ("csrf", &page.field("csrf")),
                ("pending", &page.field("pending")),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 403, "{}", done.html);
    assert!(done.html.contains("uses two-step sign-in"), "{}", done.html);
    let user = app.admin().find_user(ALICE).await.unwrap();
    let links = app
        .services
        .stores
        .social_links
        .list_for_user(&user.id)
        .await
        .unwrap();
    assert!(links.is_empty(), "nothing linked: {links:?}");
}
