//! Federated sign-in through fake Google and GitHub servers on loopback: new and returning
//! users, the linking rules, forged and replayed callbacks, ID tokens that fail a check,
//! GitHub's emails, provider failures, closed sign-up and disabled users.

mod fake_idp;

use serde_json::json;

use crate::authorization_code::{
    allow_consent, authorize_url, browser_client, exchange, query_of, Browser, Page, VERIFIER,
};
use crate::helpers::*;
use crate::scenarios;
use fake_idp::{FakeIdp, Tamper};
use latchkey::domain::{Email, ProviderId};

scenarios!(
    a_new_user_signs_up_with_google_and_comes_back_to_the_same_account,
    an_application_sends_the_user_straight_to_google_and_gets_fed_in_amr,
    existing_accounts_are_joined_only_when_both_sides_verified_the_address,
    the_owner_proves_the_local_account_before_it_is_linked,
    forged_replayed_and_foreign_callbacks_are_refused,
    id_tokens_that_fail_a_check_are_refused_and_create_nothing,
    github_uses_the_primary_verified_email_only,
    closed_sign_up_and_disabled_users_are_refused,
    starting_sign_ins_is_limited_per_network,
);

async fn app_with_idp(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, FakeIdp) {
    let idp = FakeIdp::start().await;
    let mut env = idp.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    (spawn_app_with(backend, &pairs).await, idp)
}

/// Starts at `start` (a Latchkey URL), goes to the provider, and comes back to the callback;
/// the page the callback answers.
async fn through_provider(browser: &mut Browser, start: &str) -> Page {
    let page = browser.get(start).await;
    assert_eq!(page.status, 303, "start: {}", page.html);
    let at_provider = page.location.unwrap();
    let page = browser.get(&at_provider).await;
    assert_eq!(page.status, 302, "provider: {}", page.html);
    browser.get(&page.location.unwrap()).await
}

fn google(email: &str, verified: bool, sub: &str) -> serde_json::Value {
    json!({"sub": sub, "email": email, "email_verified": verified, "name": "Gina Google",
           "picture": "https://images.example/gina.png"})
}

async fn user_by_email(app: &TestApp, email: &str) -> Option<latchkey::domain::User> {
    app.services
        .stores
        .users
        .find_by_email(&Email::parse(email).unwrap())
        .await
        .unwrap()
}

async fn link_of(app: &TestApp, provider: &str, sub: &str) -> Option<latchkey::domain::SocialLink> {
    app.services
        .stores
        .social_links
        .find(&ProviderId::parse(provider).unwrap(), sub)
        .await
        .unwrap()
}

async fn a_new_user_signs_up_with_google_and_comes_back_to_the_same_account(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    // The sign-in page offers the providers.
    let mut browser = Browser::new();
    let page = browser.get(&app.url("/login")).await;
    assert!(
        page.html.contains("/federation/google/start"),
        "{}",
        page.html
    );
    assert!(page.html.contains("Continue with GitHub"), "{}", page.html);

    idp.sign_in_as(google("gina@example.com", true, "g-1"));
    let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    assert_eq!(page.status, 303, "{}", page.html);
    assert_eq!(page.location.as_deref(), Some("/account"));
    assert!(browser.has_cookie("latchkey_session"));
    assert!(
        !browser.has_cookie("latchkey_federation"),
        "the state cookie is cleared"
    );
    let user = user_by_email(&app, "gina@example.com")
        .await
        .expect("a new user");
    assert!(user.email_verified, "the provider verified the address");
    assert!(user.password_hash.is_none());
    assert_eq!(user.display_name.as_deref(), Some("Gina Google"));
    let link = link_of(&app, "google", "g-1").await.expect("a link");
    assert_eq!(link.user_id, user.id);
    assert_eq!(
        link.avatar_url.as_deref(),
        Some("https://images.example/gina.png")
    );

    // Returning: the same user, in another browser, and no second user.
    let mut other = Browser::new();
    idp.sign_in_as(google("gina@example.com", true, "g-1"));
    let page = through_provider(&mut other, &app.url("/federation/google/start")).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
    let page = other.get(&app.url("/account")).await;
    assert!(page.html.contains("gina@example.com"), "{}", page.html);
    assert_eq!(
        user_by_email(&app, "gina@example.com").await.unwrap().id,
        user.id,
        "no second user"
    );
    let links = app
        .services
        .stores
        .social_links
        .list_for_user(&user.id)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert!(links[0].last_used_at.is_some());
}

async fn an_application_sends_the_user_straight_to_google_and_gets_fed_in_amr(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    browser_client(&app, "spa").await;
    let mut browser = Browser::new();
    idp.sign_in_as(google("gina@example.com", true, "g-1"));
    // idp_hint skips Latchkey's sign-in page.
    let page = browser
        .get(&authorize_url(&app, "spa", &[("idp_hint", "google")]))
        .await;
    assert_eq!(page.status, 303, "{}", page.html);
    let start = page.location.unwrap();
    assert!(
        start.starts_with("/federation/google/start?request="),
        "{start}"
    );
    let page = through_provider(&mut browser, &app.url(&start)).await;
    // Consent as for a password sign-in, then the code.
    let location = allow_consent(&app, &mut browser, page).await;
    let q = query_of(&location);
    let (status, body) = exchange(&app, &q["code"], VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    let (_, id) = jwt_parts(str_of(&body, "id_token"));
    assert_eq!(id["amr"], json!(["fed"]));
    assert_eq!(id["email"], "gina@example.com");
    // An unknown hint shows the usual page.
    let page = Browser::new()
        .get(&authorize_url(&app, "spa", &[("idp_hint", "nobody")]))
        .await;
    assert_eq!(page.status, 200, "{:?} {}", page.location, page.html);
}

async fn existing_accounts_are_joined_only_when_both_sides_verified_the_address(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    let alice = create_user(app.admin(), "alice@example.com", &[]).await;
    // Both verified: joined automatically.
    let mut browser = Browser::new();
    idp.sign_in_as(google("alice@example.com", true, "g-alice"));
    let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
    assert_eq!(
        link_of(&app, "google", "g-alice")
            .await
            .unwrap()
            .user_id
            .as_str(),
        alice
    );

    // The provider did not verify it: the user proves ownership first.
    create_user(app.admin(), "bob@example.com", &[]).await;
    let mut browser = Browser::new();
    idp.sign_in_as(google("bob@example.com", false, "g-bob"));
    let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("action=\"/federation/link\""),
        "{}",
        page.html
    );
    assert!(link_of(&app, "google", "g-bob").await.is_none());
    assert!(!browser.has_cookie("latchkey_session"));

    // The local address was never verified: never taken over.
    let carol = app
        .admin()
        .create_user(latchkey::services::NewUserInput {
            email: "carol@example.com".into(),
            password: Some(secrecy::SecretString::from(PASSWORD)),
            username: None,
            display_name: None,
            roles: vec![],
            active: true,
            email_verified: false,
            attributes: None,
        })
        .await
        .unwrap();
    let mut browser = Browser::new();
    idp.sign_in_as(google("carol@example.com", true, "g-carol"));
    let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    assert!(
        page.html.contains("action=\"/federation/link\""),
        "{}",
        page.html
    );
    assert!(link_of(&app, "google", "g-carol").await.is_none());
    let stored = user_by_email(&app, "carol@example.com").await.unwrap();
    assert_eq!(stored.id.as_str(), carol.id);
    assert!(
        !stored.email_verified,
        "the federated sign-in changed nothing"
    );

    // link_existing = "never": even both verified asks for proof.
    let (app, idp) = app_with_idp(
        backend,
        &[("LATCHKEY_FEDERATION_GOOGLE_LINK_EXISTING", "never")],
    )
    .await;
    create_user(app.admin(), "dave@example.com", &[]).await;
    let mut browser = Browser::new();
    idp.sign_in_as(google("dave@example.com", true, "g-dave"));
    let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    assert!(
        page.html.contains("action=\"/federation/link\""),
        "{}",
        page.html
    );
}

async fn the_owner_proves_the_local_account_before_it_is_linked(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    let bob = create_user(app.admin(), "bob@example.com", &[]).await;
    let mut browser = Browser::new();
    idp.sign_in_as(google("bob@example.com", false, "g-bob"));
    let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    let form = |page: &Page, password: &'static str| {
        vec![
            ("csrf", page.field("csrf")),
            ("pending", page.field("pending")),
            ("password", password.to_owned()),
        ]
    };
    // A wrong password links nothing.
    let fields = form(&page, "not the password");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let again = browser.post(&app.url("/federation/link"), &pairs).await;
    assert_eq!(again.status, 401, "{}", again.html);
    assert!(link_of(&app, "google", "g-bob").await.is_none());
    // A forged pending value links nothing.
    let forged = browser
        .post(
            &app.url("/federation/link"),
            &[
                ("csrf", &page.field("csrf")),
                ("pending", "forged"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, 400, "{}", forged.html);
    // The right password links and signs in.
    let fields = form(&again, PASSWORD);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = browser.post(&app.url("/federation/link"), &pairs).await;
    assert_eq!(done.status, 303, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some("/account"));
    assert_eq!(
        link_of(&app, "google", "g-bob")
            .await
            .unwrap()
            .user_id
            .as_str(),
        bob
    );
    // From now on Google signs bob in directly.
    let mut other = Browser::new();
    idp.sign_in_as(google("bob@example.com", false, "g-bob"));
    let page = through_provider(&mut other, &app.url("/federation/google/start")).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
}

async fn forged_replayed_and_foreign_callbacks_are_refused(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    idp.sign_in_as(google("gina@example.com", true, "g-1"));
    let mut browser = Browser::new();
    let page = browser.get(&app.url("/federation/google/start")).await;
    let page = browser.get(&page.location.unwrap()).await;
    let callback = page.location.unwrap();
    // Another browser (no state cookie) cannot use the answer.
    let mut thief = Browser::new();
    let page = thief.get(&callback).await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert!(
        page.html.contains("Back to sign in"),
        "a way back: {}",
        page.html
    );
    // A wrong state is refused.
    let q = query_of(&callback);
    let bad = app.url(&format!(
        "/federation/google/callback?code={}&state=nope",
        q["code"]
    ));
    assert_eq!(browser.get(&bad).await.status, 400);
    // The right browser completes it once...
    let mut browser2 = Browser::new();
    let page = browser2.get(&app.url("/federation/google/start")).await;
    let page = browser2.get(&page.location.unwrap()).await;
    let callback = page.location.unwrap();
    let saved = browser2.cookies.clone();
    let page = browser2.get(&callback).await;
    assert_eq!(page.status, 303, "{}", page.html);
    // ...and a replay with the same cookie is refused.
    browser2.cookies = saved;
    let page = browser2.get(&callback).await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert!(page.html.contains("used already"), "{}", page.html);
    // The provider's error answer is a page, and the unknown provider a 404.
    let mut browser3 = Browser::new();
    let page = browser3.get(&app.url("/federation/google/start")).await;
    let q = query_of(&page.location.unwrap());
    let denied = app.url(&format!(
        "/federation/google/callback?error=access_denied&state={}",
        url::form_urlencoded::byte_serialize(q["state"].as_bytes()).collect::<String>()
    ));
    let page = browser3.get(&denied).await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert!(page.html.contains("not signed in"), "{}", page.html);
    let page = Browser::new()
        .get(&app.url("/federation/nobody/start"))
        .await;
    assert_eq!(page.status, 404, "{}", page.html);
}

async fn id_tokens_that_fail_a_check_are_refused_and_create_nothing(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    for (i, tamper) in [
        Tamper::BadSignature,
        Tamper::WrongAudience,
        Tamper::WrongIssuer,
        Tamper::Expired,
        Tamper::AlgNone,
        Tamper::WrongNonce,
    ]
    .into_iter()
    .enumerate()
    {
        idp.sign_in_as(google(
            &format!("t{i}@example.com"),
            true,
            &format!("g-t{i}"),
        ));
        idp.tamper(tamper);
        let mut browser = Browser::new();
        let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
        assert_eq!(page.status, 400, "{tamper:?}: {}", page.html);
        assert!(
            user_by_email(&app, &format!("t{i}@example.com"))
                .await
                .is_none(),
            "{tamper:?}"
        );
        assert!(!browser.has_cookie("latchkey_session"), "{tamper:?}");
    }
    // The provider's token endpoint failing is a page too (502).
    idp.sign_in_as(google("down@example.com", true, "g-down"));
    idp.tamper(Tamper::ServerError);
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    assert_eq!(page.status, 502, "{}", page.html);
    assert!(user_by_email(&app, "down@example.com").await.is_none());
}

async fn github_uses_the_primary_verified_email_only(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    idp.sign_in_as(json!({"id": 4242, "login": "octo", "name": "Octo Cat",
                          "avatar_url": "https://avatars.example/octo.png"}));
    idp.set_emails(json!([
        {"email": "other@example.com", "primary": false, "verified": true},
        {"email": "octo@example.com", "primary": true, "verified": true},
    ]));
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &app.url("/federation/github/start")).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
    let user = user_by_email(&app, "octo@example.com")
        .await
        .expect("a user");
    assert!(user.email_verified);
    assert_eq!(
        link_of(&app, "github", "4242").await.unwrap().user_id,
        user.id
    );
    assert!(user_by_email(&app, "other@example.com").await.is_none());

    // No verified primary address: no automatic linking and no user.
    create_user(app.admin(), "unverified@example.com", &[]).await;
    idp.sign_in_as(json!({"id": 7, "login": "nomail"}));
    idp.set_emails(
        json!([{"email": "unverified@example.com", "primary": true, "verified": false}]),
    );
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &app.url("/federation/github/start")).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(link_of(&app, "github", "7").await.is_none());
}

async fn closed_sign_up_and_disabled_users_are_refused(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[("LATCHKEY_SIGNUP", "closed")]).await;
    idp.sign_in_as(google("new@example.com", true, "g-new"));
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(user_by_email(&app, "new@example.com").await.is_none());
    assert!(link_of(&app, "google", "g-new").await.is_none());

    // A linked user who is disabled gets the password sign-in's refusal.
    let alice = create_user(app.admin(), "alice@example.com", &[]).await;
    idp.sign_in_as(google("alice@example.com", true, "g-alice"));
    let page = through_provider(&mut Browser::new(), &app.url("/federation/google/start")).await;
    assert_eq!(page.status, 303, "{}", page.html);
    app.admin()
        .update_user(
            &alice,
            latchkey::services::UserUpdate {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    idp.sign_in_as(google("alice@example.com", true, "g-alice"));
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(page.html.contains("disabled"), "{}", page.html);
    assert!(!browser.has_cookie("latchkey_session"));
}

/// Each start keeps a single-use state until it expires: one network may start
/// `FEDERATION_STARTS_PER_HOUR` an hour, then gets a 429 page with `Retry-After`.
async fn starting_sign_ins_is_limited_per_network(backend: Backend) {
    let (app, _idp) = app_with_idp(backend, &[]).await;
    let cap = latchkey::services::FEDERATION_STARTS_PER_HOUR;
    let mut browser = Browser::new();
    for i in 0..cap {
        let page = browser.get(&app.url("/federation/google/start")).await;
        assert_eq!(page.status, 303, "start {i}: {}", page.html);
    }
    let r = app
        .http
        .get(app.url("/federation/github/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let html = r.text().await.unwrap();
    assert!(html.contains("Back to sign in"), "{html}");
}
