//! Federated sign-in through fake Google and GitHub servers on loopback: new and returning
//! users, the linking rules, forged and replayed callbacks, ID tokens that fail a check,
//! GitHub's emails, provider failures, closed sign-up and disabled users.

pub mod fake_idp;

use serde_json::json;

use crate::authorization_code::{
    allow_consent, authorize_url, browser_client, exchange, query_of, sign_in_alone, Browser, Page,
    VERIFIER,
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
    a_github_account_without_a_verified_email_signs_up_without_one,
    closed_sign_up_and_disabled_users_are_refused,
    starting_sign_ins_is_limited_per_network,
    a_native_app_exchanges_a_google_id_token_once,
    exchanged_id_tokens_that_fail_a_check_are_refused_and_create_nothing,
    token_exchange_follows_the_linking_rules_and_the_client_s_grants,
    signed_in_users_list_add_and_remove_links_through_the_api,
    the_account_page_links_and_unlinks_providers,
    an_invitation_can_be_accepted_through_a_provider,
    a_provider_already_linked_to_the_account_proves_it,
    slow_and_garbled_providers_end_on_a_page_and_create_nothing,
    a_generic_provider_from_the_configuration_file_signs_users_in,
);

pub(crate) async fn app_with_idp(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, FakeIdp) {
    let idp = FakeIdp::start().await;
    let mut env = idp.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    (spawn_app_with(backend, &pairs).await, idp)
}

/// Starts at `start` (a Latchkey URL), goes to the provider, and comes back to the callback;
/// the page the callback answers.
pub(crate) async fn through_provider(browser: &mut Browser, start: &str) -> Page {
    let page = browser.get(start).await;
    assert_eq!(page.status, 303, "start: {}", page.html);
    let at_provider = page.location.unwrap();
    let page = browser.get(&at_provider).await;
    assert_eq!(page.status, 302, "provider: {}", page.html);
    browser.get(&page.location.unwrap()).await
}

pub(crate) fn google(email: &str, verified: bool, sub: &str) -> serde_json::Value {
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
    assert_eq!(id["amr"], json!(["fed", "google"]));
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

    // No verified primary address: no automatic linking with the local account that has
    // that address, and a new user with no address at all.
    let local = create_user(app.admin(), "unverified@example.com", &[]).await;
    idp.sign_in_as(json!({"id": 7, "login": "nomail"}));
    idp.set_emails(
        json!([{"email": "unverified@example.com", "primary": true, "verified": false}]),
    );
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &app.url("/federation/github/start")).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
    let link = link_of(&app, "github", "7").await.expect("a link");
    assert_ne!(
        link.user_id.as_str(),
        local,
        "never joined to the unverified address"
    );
    let user = user_by_id(&app, &link.user_id).await;
    assert_eq!(user.email, None);
    assert!(!user.email_verified);
    let stored = user_by_email(&app, "unverified@example.com").await.unwrap();
    assert_eq!(stored.id.as_str(), local, "the local account is untouched");
}

async fn user_by_id(app: &TestApp, id: &latchkey::domain::UserId) -> latchkey::domain::User {
    app.services
        .stores
        .users
        .find_by_id(id)
        .await
        .unwrap()
        .expect("the user")
}

/// A GitHub account without a verified address signs up with none (issue 13): it comes back
/// to the same user, its ID token and userinfo carry no `email`, its account page says it has
/// none, and an operator can give it one. With `email_verification = "mandatory"` no user is
/// created (every account needs a verified address).
async fn a_github_account_without_a_verified_email_signs_up_without_one(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    browser_client(&app, "spa").await;
    idp.sign_in_as(json!({"id": 99, "login": "quiet", "name": "Quiet Octo"}));
    idp.set_emails(json!([{"email": "quiet@example.com", "primary": true, "verified": false}]));
    for round in 0..2 {
        let mut browser = Browser::new();
        let page = browser
            .get(&authorize_url(&app, "spa", &[("idp_hint", "github")]))
            .await;
        assert_eq!(page.status, 303, "{}", page.html);
        let page = through_provider(&mut browser, &app.url(&page.location.unwrap())).await;
        // Consent the first time; the second time it was given already.
        let location = match round {
            0 => allow_consent(&app, &mut browser, page).await,
            _ => page.location.expect("straight back to the app"),
        };
        let q = query_of(&location);
        let (status, body) = exchange(&app, &q["code"], VERIFIER).await;
        assert_eq!(status, 200, "{body}");
        let (_, id) = jwt_parts(str_of(&body, "id_token"));
        assert_eq!(id["amr"], json!(["fed", "github"]));
        assert_eq!(id["name"], "Quiet Octo");
        for claim in ["email", "email_verified", "preferred_username"] {
            assert!(id.get(claim).is_none(), "round {round}: {claim} in {id}");
        }
        let info = app
            .http
            .get(app.url("/oauth2/userinfo"))
            .bearer_auth(str_of(&body, "access_token"))
            .send()
            .await
            .unwrap();
        assert_eq!(info.status(), 200);
        let info: serde_json::Value = info.json().await.unwrap();
        assert!(info.get("email").is_none(), "{info}");
        assert_eq!(info["sub"], id["sub"]);
    }
    let link = link_of(&app, "github", "99").await.expect("one link");
    assert!(user_by_email(&app, "quiet@example.com").await.is_none());

    // The account page says there is no address.
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &app.url("/federation/github/start")).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
    let page = browser.get(&app.url("/account")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("None: you sign in through GitHub"),
        "{}",
        page.html
    );

    // An operator gives it an address: stored, not verified until proven.
    let view = app
        .admin()
        .update_user(
            link.user_id.as_str(),
            latchkey::services::UserUpdate {
                email: Some("Quiet@Example.com".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(view.email.as_deref(), Some("quiet@example.com"));
    assert!(!view.email_verified);
    let user = user_by_email(&app, "quiet@example.com")
        .await
        .expect("found by it now");
    assert_eq!(user.id, link.user_id);

    // Every account must have a verified address: no user, the same page as before.
    let (strict, idp) =
        app_with_idp(backend, &[("LATCHKEY_EMAIL_VERIFICATION", "mandatory")]).await;
    idp.sign_in_as(json!({"id": 100, "login": "quieter"}));
    idp.set_emails(json!([]));
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &strict.url("/federation/github/start")).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(
        page.html.contains("No verified email address"),
        "{}",
        page.html
    );
    assert!(link_of(&strict, "github", "100").await.is_none());
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

const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The Android app's client id at Google (an extra audience of the provider).
pub(crate) const ANDROID: &str = "android-app.apps.example";

pub(crate) async fn app_for_native_apps(
    backend: Backend,
    extra: &[(&str, &str)],
) -> (TestApp, FakeIdp) {
    let mut env = vec![("LATCHKEY_FEDERATION_GOOGLE_EXTRA_AUDIENCES", ANDROID)];
    env.extend_from_slice(extra);
    let (app, idp) = app_with_idp(backend, &env).await;
    latchkey_public_client(
        &app,
        "mobile",
        &["token_exchange", "refresh_token"],
        &["openid", "profile"],
    )
    .await;
    (app, idp)
}

async fn latchkey_public_client(app: &TestApp, id: &str, grants: &[&str], scopes: &[&str]) {
    public_client(app.admin(), id, grants, scopes).await;
}

pub(crate) async fn exchange_id_token(
    app: &TestApp,
    client: &str,
    id_token: &str,
    extra: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("client_id", client),
        ("subject_token", id_token),
        ("subject_token_type", ID_TOKEN_TYPE),
    ];
    form.extend_from_slice(extra);
    app.token_json(&form).await
}

/// RFC 8693 from a native app: Google's SDK gave the app an ID token for its own client id
/// (an extra audience) with the app's nonce; Latchkey answers with its own tokens, once.
async fn a_native_app_exchanges_a_google_id_token_once(backend: Backend) {
    let (app, idp) = app_for_native_apps(backend, &[]).await;
    let claims = json!({"sub": "g-native", "email": "nat@example.com", "email_verified": true,
                        "name": "Nat Native", "nonce": "app-nonce-1"});
    let id_token = idp.native_id_token(ANDROID, claims.clone(), Tamper::None);
    let (status, body) =
        exchange_id_token(&app, "mobile", &id_token, &[("nonce", "app-nonce-1")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "Bearer");
    let user = user_by_email(&app, "nat@example.com")
        .await
        .expect("a user");
    assert!(user.email_verified);
    assert_eq!(
        link_of(&app, "google", "g-native").await.unwrap().user_id,
        user.id
    );
    let (_, at) = jwt_parts(str_of(&body, "access_token"));
    assert_eq!(at["sub"], user.id.as_str());
    assert_eq!(at["client_id"], "mobile");
    // The refresh token works as any other.
    let (status, refreshed) = app
        .refresh_as("mobile", str_of(&body, "refresh_token"))
        .await;
    assert_eq!(status, 200, "{refreshed}");

    // The same ID token again: a replay.
    let (status, again) =
        exchange_id_token(&app, "mobile", &id_token, &[("nonce", "app-nonce-1")]).await;
    assert_oauth_error(status, &again, 400, "invalid_grant");
    assert!(
        str_of(&again, "error_description").contains("exchanged already"),
        "{again}"
    );

    // A fresh token of the same person signs in the same user (Latchkey's own client id at
    // Google is an audience too).
    let fresh = idp.native_id_token(fake_idp::CLIENT_ID, claims.clone(), Tamper::None);
    let (status, body) = exchange_id_token(&app, "mobile", &fresh, &[]).await;
    assert_eq!(status, 200, "{body}");
    let (_, at) = jwt_parts(str_of(&body, "access_token"));
    assert_eq!(at["sub"], user.id.as_str());

    // A token issued to another app, or with another nonce than the app sent: refused.
    let foreign = idp.native_id_token("someone-else", claims.clone(), Tamper::None);
    let (status, body) = exchange_id_token(&app, "mobile", &foreign, &[]).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let other_nonce = idp.native_id_token(ANDROID, claims.clone(), Tamper::None);
    let (status, body) =
        exchange_id_token(&app, "mobile", &other_nonce, &[("nonce", "app-nonce-2")]).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    // A token with several audiences must name one of ours as azp.
    let extra_aud = idp.native_id_token(
        ANDROID,
        merge(
            &claims,
            json!({"aud": [ANDROID, "someone-else"], "azp": "someone-else"}),
        ),
        Tamper::None,
    );
    let (status, body) = exchange_id_token(&app, "mobile", &extra_aud, &[]).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let events = app.wait_for_audit("federation_failed").await;
    assert!(events.len() >= 4, "{events:?}");
}

fn merge(a: &serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    let mut a = a.clone();
    if let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

async fn exchanged_id_tokens_that_fail_a_check_are_refused_and_create_nothing(backend: Backend) {
    let (app, idp) = app_for_native_apps(backend, &[]).await;
    for (i, tamper) in [
        Tamper::BadSignature,
        Tamper::Expired,
        Tamper::WrongIssuer,
        Tamper::AlgNone,
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("n{i}@example.com");
        let id_token = idp.native_id_token(
            ANDROID,
            json!({"sub": format!("g-n{i}"), "email": email, "email_verified": true}),
            tamper,
        );
        let (status, body) = exchange_id_token(&app, "mobile", &id_token, &[]).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        assert!(user_by_email(&app, &email).await.is_none(), "{tamper:?}");
    }
    // Not a JWT at all, or far too large.
    for junk in ["not-a-jwt".to_owned(), "a".repeat(15_000)] {
        let (status, body) = exchange_id_token(&app, "mobile", &junk, &[]).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
    }
}

async fn token_exchange_follows_the_linking_rules_and_the_client_s_grants(backend: Backend) {
    let (app, idp) = app_for_native_apps(backend, &[]).await;
    let id_token = |sub: &str, email: &str, verified: bool| {
        idp.native_id_token(
            ANDROID,
            json!({"sub": sub, "email": email, "email_verified": verified}),
            Tamper::None,
        )
    };
    // The request's shape (RFC 8693 §2.1).
    let t = id_token("g-shape", "shape@example.com", true);
    let (status, body) = app
        .token_json(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("client_id", "mobile"),
            ("subject_token", &t),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ])
        .await;
    assert_oauth_error(status, &body, 400, "invalid_request");
    let (status, body) = exchange_id_token(
        &app,
        "mobile",
        &t,
        &[(
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:refresh_token",
        )],
    )
    .await;
    assert_oauth_error(status, &body, 400, "invalid_request");
    let (status, body) = exchange_id_token(&app, "mobile", &t, &[("actor_token", "x")]).await;
    assert_oauth_error(status, &body, 400, "invalid_request");
    let (status, body) = app
        .token_json(&[("grant_type", TOKEN_EXCHANGE), ("client_id", "mobile")])
        .await;
    assert_oauth_error(status, &body, 400, "invalid_request");
    // A client not allowed the grant.
    latchkey_public_client(&app, "other", &["password"], &["openid"]).await;
    let (status, body) = exchange_id_token(&app, "other", &t, &[]).await;
    assert_oauth_error(status, &body, 400, "unauthorized_client");
    assert!(user_by_email(&app, "shape@example.com").await.is_none());

    // Both sides verified the address: joined to the local account.
    let alice = create_user(app.admin(), "alice@example.com", &[]).await;
    let (status, body) = exchange_id_token(
        &app,
        "mobile",
        &id_token("g-alice", "alice@example.com", true),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, at) = jwt_parts(str_of(&body, "access_token"));
    assert_eq!(at["sub"], alice.as_str());
    // The provider did not verify it: not joined, and the app is told to link first.
    create_user(app.admin(), "bob@example.com", &[]).await;
    let (status, body) = exchange_id_token(
        &app,
        "mobile",
        &id_token("g-bob", "bob@example.com", false),
        &[],
    )
    .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert!(link_of(&app, "google", "g-bob").await.is_none());
    // A disabled user gets the password grant's refusal.
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
    let (status, body) = exchange_id_token(
        &app,
        "mobile",
        &id_token("g-alice", "alice@example.com", true),
        &[],
    )
    .await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert!(
        str_of(&body, "error_description").contains("disabled"),
        "{body}"
    );

    // Closed sign-up: no new user from a native token either.
    let (app, idp) = app_for_native_apps(backend, &[("LATCHKEY_SIGNUP", "closed")]).await;
    let t = idp.native_id_token(
        ANDROID,
        json!({"sub": "g-closed", "email": "closed@example.com", "email_verified": true}),
        Tamper::None,
    );
    let (status, body) = exchange_id_token(&app, "mobile", &t, &[]).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    assert!(user_by_email(&app, "closed@example.com").await.is_none());
}

async fn me_links(app: &TestApp, token: &str) -> (u16, serde_json::Value) {
    let r = app
        .http
        .get(app.url("/api/v1/me/links"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    json_answer(r).await
}

async fn add_link(
    app: &TestApp,
    token: &str,
    id_token: &str,
    password: &str,
) -> (u16, serde_json::Value) {
    let r = app
        .http
        .post(app.url("/api/v1/me/links"))
        .bearer_auth(token)
        .json(
            &json!({"subject_token": id_token, "subject_token_type": ID_TOKEN_TYPE,
                      "password": password}),
        )
        .send()
        .await
        .unwrap();
    json_answer(r).await
}

async fn delete_link(app: &TestApp, token: &str, id: &str) -> (u16, Option<serde_json::Value>) {
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/me/links/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.ok())
}

/// `/api/v1/me/links`: a signed-in user lists their links, adds one from a native app's ID
/// token (with their password), and removes one, but never the last way to sign in.
async fn signed_in_users_list_add_and_remove_links_through_the_api(backend: Backend) {
    let (app, idp) = app_for_native_apps(backend, &[]).await;
    app.fixture().await;
    let alice = str_of(&app.login("alice@example.com").await, "access_token").to_owned();
    let (status, body) = me_links(&app, &alice).await;
    assert_eq!((status, &body), (200, &json!({"links": []})));

    let id_token = |sub: &str, email: &str| {
        idp.native_id_token(
            ANDROID,
            json!({"sub": sub, "email": email, "email_verified": true, "name": "Al Google"}),
            Tamper::None,
        )
    };
    // The password first: an access token alone cannot add a way in.
    let t = id_token("g-al", "al.personal@example.com");
    let (status, body) = add_link(&app, &alice, &t, "not the password").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_credentials");
    assert!(link_of(&app, "google", "g-al").await.is_none());
    let t = id_token("g-al", "al.personal@example.com");
    let (status, link) = add_link(&app, &alice, &t, PASSWORD).await;
    assert_eq!(status, 201, "{link}");
    assert_eq!(link["provider"], "google");
    assert_eq!(link["email"], "al.personal@example.com");
    assert_eq!(link["display_name"], "Al Google");
    let (_, body) = me_links(&app, &alice).await;
    assert_eq!(body["links"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["links"][0]["id"], link["id"]);
    // The same ID token again is a replay; a bad one is refused.
    let (status, body) = add_link(&app, &alice, &t, PASSWORD).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");
    let bad = idp.native_id_token(
        ANDROID,
        json!({"sub": "g-x", "email": "x@example.com", "email_verified": true}),
        Tamper::BadSignature,
    );
    let (status, body) = add_link(&app, &alice, &bad, PASSWORD).await;
    assert_oauth_error(status, &body, 400, "invalid_grant");

    // An identity of another account cannot be taken over.
    let (status, body) =
        exchange_id_token(&app, "mobile", &id_token("g-nat", "nat@example.com"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let nat = str_of(&body, "access_token").to_owned();
    let (status, body) = add_link(
        &app,
        &alice,
        &id_token("g-nat", "nat@example.com"),
        PASSWORD,
    )
    .await;
    assert_oauth_error(status, &body, 409, "conflict");

    // Nat signed up through Google and has no password: the only link stays, and adding
    // one through the API needs a password Nat does not have.
    let (_, body) = me_links(&app, &nat).await;
    let nat_link = body["links"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = delete_link(&app, &nat, &nat_link).await;
    assert_eq!(status, 409);
    assert_eq!(body.unwrap()["error"], "last_sign_in_method");
    let (status, body) = add_link(
        &app,
        &nat,
        &id_token("g-nat2", "nat2@example.com"),
        "whatever",
    )
    .await;
    assert_oauth_error(status, &body, 400, "invalid_request");
    // Alice may not remove Nat's link; her own goes.
    let (status, _) = delete_link(&app, &alice, &nat_link).await;
    assert_eq!(status, 404);
    let (status, _) = delete_link(&app, &alice, link["id"].as_str().unwrap()).await;
    assert_eq!(status, 204);
    let (status, _) = delete_link(&app, &alice, link["id"].as_str().unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) = delete_link(&app, &alice, "not-a-link-id").await;
    assert_eq!(status, 404);
    assert!(link_of(&app, "google", "g-al").await.is_none());
    app.wait_for_audit("federation_unlinked").await;

    // Without a user behind the token: refused.
    let r = app
        .http
        .get(app.url("/api/v1/me/links"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// The account page lists the user's links, links another provider through the provider's
/// sign-in (bound to the signed-in user), and removes a link.
async fn the_account_page_links_and_unlinks_providers(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    create_user(app.admin(), "carol@example.com", &[]).await;
    let mut browser = Browser::new();
    sign_in_alone(&app, &mut browser, "carol@example.com").await;
    let account = browser.get(&app.url("/account")).await;
    assert_eq!(account.status, 200, "{}", account.html);
    assert!(account.html.contains("Link Google"), "{}", account.html);
    assert!(account.html.contains("Link GitHub"), "{}", account.html);
    idp.sign_in_as(json!({"id": 99, "login": "carol-gh", "name": "Carol GH"}));
    idp.set_emails(json!([{"email": "carol@work.example", "primary": true, "verified": true}]));
    let page = browser
        .post(
            &app.url("/account/links/add"),
            &[("csrf", &account.field("csrf")), ("provider", "github")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.html);
    let page = browser.get(&page.location.unwrap()).await;
    assert_eq!(page.status, 302, "{}", page.html);
    let page = browser.get(&page.location.unwrap()).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
    let carol = user_by_email(&app, "carol@example.com").await.unwrap();
    assert_eq!(
        link_of(&app, "github", "99").await.unwrap().user_id,
        carol.id
    );
    // The email of the account did not change.
    assert_eq!(carol.email.as_ref().unwrap().as_str(), "carol@example.com");
    let account = browser.get(&app.url("/account")).await;
    assert!(
        account.html.contains("carol@work.example"),
        "{}",
        account.html
    );
    // An unknown provider, and a forged form, do nothing.
    let page = browser
        .post(
            &app.url("/account/links/add"),
            &[("csrf", &account.field("csrf")), ("provider", "nobody")],
        )
        .await;
    assert_eq!(page.status, 404, "{}", page.html);
    let page = browser
        .post(
            &app.url("/account/links/remove"),
            &[("csrf", "forged"), ("link_id", &account.field("link_id"))],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(link_of(&app, "github", "99").await.is_some());
    let page = browser
        .post(
            &app.url("/account/links/remove"),
            &[
                ("csrf", &account.field("csrf")),
                ("link_id", &account.field("link_id")),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("unlinked"), "{}", page.html);
    assert!(link_of(&app, "github", "99").await.is_none());
    // Signed out: the forms send the browser to sign in.
    let page = Browser::new()
        .post(
            &app.url("/account/links/add"),
            &[("csrf", "x"), ("provider", "google")],
        )
        .await;
    assert_ne!(page.status, 200, "{}", page.html);
}

/// With invite-only sign-up, an invitation's page offers the providers too: the account is
/// created for the invited address only (as the provider verified it), with the invited
/// roles, and the invitation is used up.
async fn an_invitation_can_be_accepted_through_a_provider(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[("LATCHKEY_SIGNUP", "invite")]).await;
    app.admin()
        .create_role("member", &["docs.read".into()], None, false)
        .await
        .unwrap();
    let invite = |email: &'static str| {
        let app = &app;
        async move {
            let view = app
                .services
                .accounts
                .invite(Email::parse(email), &["member".into()])
                .await
                .unwrap();
            query_of(&view.link)["token"].clone()
        }
    };
    // No invitation: refused.
    idp.sign_in_as(google("dora@example.com", true, "g-dora"));
    let page = through_provider(&mut Browser::new(), &app.url("/federation/google/start")).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(user_by_email(&app, "dora@example.com").await.is_none());

    let token = invite("dora@example.com").await;
    let page = Browser::new()
        .get(&app.url(&format!("/api/v1/signup/invitation?token={token}")))
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("Continue with Google"), "{}", page.html);
    let start = format!("/federation/google/start?invitation={token}");
    // The provider asserts another address: refused, and the invitation is still good.
    idp.sign_in_as(google("mallory@example.com", true, "g-mallory"));
    let page = through_provider(&mut Browser::new(), &app.url(&start)).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(user_by_email(&app, "mallory@example.com").await.is_none());
    // The invited address, unverified by the provider: refused too.
    idp.sign_in_as(google("dora@example.com", false, "g-dora"));
    let page = through_provider(&mut Browser::new(), &app.url(&start)).await;
    assert_eq!(page.status, 403, "{}", page.html);
    // The invited address, verified: the account, its link and the invited roles.
    idp.sign_in_as(google("dora@example.com", true, "g-dora"));
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &app.url(&start)).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
    let dora = user_by_email(&app, "dora@example.com")
        .await
        .expect("a user");
    assert!(dora.email_verified);
    assert_eq!(
        link_of(&app, "google", "g-dora").await.unwrap().user_id,
        dora.id
    );
    let roles = app
        .services
        .stores
        .users
        .role_names(&dora.id)
        .await
        .unwrap();
    assert_eq!(roles, vec!["member".to_owned()]);
    // The invitation is used up.
    idp.sign_in_as(google("dora2@example.com", true, "g-dora2"));
    let page = Browser::new().get(&app.url(&start)).await;
    assert_eq!(page.status, 400, "{}", page.html);
    let page = Browser::new()
        .get(&app.url("/federation/google/start?invitation=forged"))
        .await;
    assert_eq!(page.status, 400, "{}", page.html);
}

/// The proof page's other way: signing in at a provider already linked to the local account
/// proves it, and links the new identity; an identity not linked to it proves nothing.
async fn a_provider_already_linked_to_the_account_proves_it(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[]).await;
    let erin = create_user(app.admin(), "erin@example.com", &[]).await;
    // GitHub is linked to erin (both sides verified the address).
    idp.sign_in_as(json!({"id": 555, "login": "erin-gh"}));
    idp.set_emails(json!([{"email": "erin@example.com", "primary": true, "verified": true}]));
    let page = through_provider(&mut Browser::new(), &app.url("/federation/github/start")).await;
    assert_eq!(page.status, 303, "{}", page.html);
    assert_eq!(
        link_of(&app, "github", "555")
            .await
            .unwrap()
            .user_id
            .as_str(),
        erin
    );

    // Google asserts the address without verifying it (with a large profile, which the
    // pending link must not carry into the cookie): the proof page offers GitHub.
    let mut browser = Browser::new();
    idp.sign_in_as(merge(
        &google("erin@example.com", false, "g-erin"),
        json!({"bio": "b".repeat(6000)}),
    ));
    let proof = through_provider(&mut browser, &app.url("/federation/google/start")).await;
    assert_eq!(proof.status, 200, "{}", proof.html);
    assert!(
        proof.html.contains("Continue with GitHub"),
        "{}",
        proof.html
    );
    let start = |page: &Page, csrf: Option<&str>| {
        vec![
            (
                "csrf".to_owned(),
                csrf.map_or_else(|| page.field("csrf"), str::to_owned),
            ),
            ("pending".to_owned(), page.field("pending")),
            ("provider".to_owned(), "github".to_owned()),
        ]
    };
    // A forged form goes nowhere.
    let link_start = app.url("/federation/link/proof");
    let page = post_fields(&mut browser, &link_start, &start(&proof, Some("forged"))).await;
    assert_eq!(page.status, 403, "{}", page.html);
    // Another GitHub identity (not linked to erin) proves nothing.
    idp.sign_in_as(json!({"id": 556, "login": "someone"}));
    idp.set_emails(json!([{"email": "someone@example.com", "primary": true, "verified": true}]));
    let page = post_fields(&mut browser, &link_start, &start(&proof, None)).await;
    assert_eq!(page.status, 303, "{}", page.html);
    let page = browser.get(&page.location.unwrap()).await;
    let page = browser.get(&page.location.unwrap()).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(link_of(&app, "google", "g-erin").await.is_none());
    assert!(user_by_email(&app, "someone@example.com").await.is_none());
    // Erin's own GitHub proves it: Google is linked and erin is signed in.
    idp.sign_in_as(json!({"id": 555, "login": "erin-gh"}));
    idp.set_emails(json!([{"email": "erin@example.com", "primary": true, "verified": true}]));
    let page = post_fields(&mut browser, &link_start, &start(&proof, None)).await;
    assert_eq!(page.status, 303, "{}", page.html);
    let page = browser.get(&page.location.unwrap()).await;
    let page = browser.get(&page.location.unwrap()).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
    assert!(browser.has_cookie("latchkey_session"));
    assert_eq!(
        link_of(&app, "google", "g-erin")
            .await
            .unwrap()
            .user_id
            .as_str(),
        erin
    );
}

async fn post_fields(b: &mut Browser, url: &str, fields: &[(String, String)]) -> Page {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    b.post(url, &pairs).await
}

/// A provider that is slow past `federation.timeout`, or answers something that is not
/// JSON, ends on the "cannot be reached" page and leaves nothing behind.
async fn slow_and_garbled_providers_end_on_a_page_and_create_nothing(backend: Backend) {
    let (app, idp) = app_with_idp(backend, &[("LATCHKEY_FEDERATION_TIMEOUT", "1s")]).await;
    for (tamper, email) in [
        (Tamper::Slow, "slow@example.com"),
        (Tamper::Garbage, "garbled@example.com"),
    ] {
        idp.sign_in_as(google(email, true, &format!("g-{email}")));
        idp.tamper(tamper);
        let mut browser = Browser::new();
        let started = std::time::Instant::now();
        let page = through_provider(&mut browser, &app.url("/federation/google/start")).await;
        assert_eq!(page.status, 502, "{tamper:?}: {}", page.html);
        assert!(page.html.contains("cannot be reached"), "{}", page.html);
        assert!(
            page.html.contains("Back to sign in"),
            "a way back: {}",
            page.html
        );
        if tamper == Tamper::Slow {
            assert!(started.elapsed() < std::time::Duration::from_millis(2900));
        }
        assert!(user_by_email(&app, email).await.is_none(), "{tamper:?}");
        assert!(!browser.has_cookie("latchkey_session"));
    }
}

/// A generic OpenID Connect provider configured in the file, with its own claim names and
/// `link_existing = "never"`; its upstream tokens kept (encrypted) as `store_tokens` asks.
async fn a_generic_provider_from_the_configuration_file_signs_users_in(backend: Backend) {
    let idp = FakeIdp::start().await;
    let toml = format!(
        r#"
[[federation.oidc]]
id = "corp"
display_name = "Corp SSO"
issuer = "{base}"
client_id = "{client}"
client_secret = "{secret}"
scopes = ["openid", "email"]
claims = {{ email = "mail", email_verified = "mail_ok", name = "cn" }}
link_existing = "never"
store_tokens = true
"#,
        base = idp.base,
        client = fake_idp::CLIENT_ID,
        secret = fake_idp::CLIENT_SECRET,
    );
    let app = spawn_app_with_config(backend, &toml, &[]).await;
    let page = Browser::new().get(&app.url("/login")).await;
    assert!(
        page.html.contains("Continue with Corp SSO"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("Continue with Google"), "{}", page.html);
    idp.sign_in_as(json!({"sub": "c-1", "mail": "pat@corp.example", "mail_ok": true, "cn": "Pat"}));
    let mut browser = Browser::new();
    let page = through_provider(&mut browser, &app.url("/federation/corp/start")).await;
    assert_eq!(page.location.as_deref(), Some("/account"), "{}", page.html);
    let pat = user_by_email(&app, "pat@corp.example")
        .await
        .expect("a user");
    assert!(pat.email_verified);
    assert_eq!(pat.display_name.as_deref(), Some("Pat"));
    // The upstream tokens are kept, and only encrypted.
    let sealed = tokens_enc(&app, "corp", "c-1").await.expect("tokens kept");
    assert!(!String::from_utf8_lossy(&sealed).contains("at-fake"));
    // link_existing = "never": an existing verified account is not joined automatically.
    create_user(app.admin(), "quinn@corp.example", &[]).await;
    idp.sign_in_as(json!({"sub": "c-2", "mail": "quinn@corp.example", "mail_ok": true}));
    let page = through_provider(&mut Browser::new(), &app.url("/federation/corp/start")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("Link your Corp SSO account"),
        "{}",
        page.html
    );
    assert!(link_of(&app, "corp", "c-2").await.is_none());
}

/// The upstream tokens kept on a link (encrypted), read straight from the database.
async fn tokens_enc(app: &TestApp, provider: &str, subject: &str) -> Option<Vec<u8>> {
    const Q: &str = "SELECT tokens_enc FROM social_links WHERE provider = $1 AND subject = $2";
    if app.db.url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
        sqlx::query_scalar::<_, Option<Vec<u8>>>(Q)
            .bind(provider)
            .bind(subject)
            .fetch_one(&pool)
            .await
            .unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
        sqlx::query_scalar::<_, Option<Vec<u8>>>(Q)
            .bind(provider)
            .bind(subject)
            .fetch_one(&pool)
            .await
            .unwrap()
    }
}
