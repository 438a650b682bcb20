//! Interoperability with the Rust stack's own relying-party crate, `openidconnect`: discovery,
//! the authorization URL with PKCE, state and nonce, the sign-in and consent pages driven over
//! plain HTTP (`authorization_code::Browser`), the code grant, the ID token checked by the
//! crate's verifier (signature against the JWKS, iss, aud, exp, nonce, at_hash), userinfo,
//! and the refresh grant with its new ID token. Tests may use the crate; `src/` may not
//! (architecture rule 9).

use latchkey::domain::{ClientKind, ClientTokenSettings};
use latchkey::services::{ClientOidcInput, NewClientInput};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use crate::authorization_code::{browser_client, query_of, sign_in_and_consent, Browser, REDIRECT};
use crate::helpers::{create_user, spawn_app, Backend, TestApp};
use crate::scenarios;

scenarios!(
    openidconnect_public_client_signs_in_with_pkce_and_refreshes,
    openidconnect_confidential_client_with_es256_id_tokens,
);

async fn openidconnect_public_client_signs_in_with_pkce_and_refreshes(backend: Backend) {
    let app = spawn_app(backend).await;
    let user_id = create_user(app.admin(), "alice@example.com", &[]).await;
    browser_client(&app, "rp").await;
    relying_party(
        &app,
        &user_id,
        "rp",
        None,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    )
    .await;
}

async fn openidconnect_confidential_client_with_es256_id_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let user_id = create_user(app.admin(), "alice@example.com", &[]).await;
    let created = app
        .admin()
        .create_client_with(
            NewClientInput {
                client_id: Some("rp-server".into()),
                name: "Server-side app".into(),
                kind: ClientKind::Confidential,
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                scopes: vec![],
                redirect_uris: vec![REDIRECT.into()],
                audiences: vec![],
                default_audience: None,
                token_settings: ClientTokenSettings::default(),
            },
            ClientOidcInput {
                id_token_alg: Some("ES256".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    relying_party(
        &app,
        &user_id,
        "rp-server",
        created.client_secret,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    )
    .await;
}

/// The whole relying party, as the crate's documentation writes it.
async fn relying_party(
    app: &TestApp,
    user_id: &str,
    client_id: &str,
    secret: Option<String>,
    alg: CoreJwsSigningAlgorithm,
) {
    // The crate's advice: an HTTP client that follows no redirects.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(app.settings.issuer().to_owned()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &http)
        .await
        .unwrap_or_else(|e| panic!("discovery: {e:?}"));
    assert!(
        metadata
            .id_token_signing_alg_values_supported()
            .contains(&alg),
        "{alg:?} not among the ID token algorithms"
    );
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.into()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new();
    let location = sign_in_and_consent(app, &mut browser, url.as_str()).await;
    assert!(location.starts_with(REDIRECT), "{location}");
    let answer = query_of(&location);
    assert_eq!(&answer["state"], state.secret(), "{location}");
    assert_eq!(answer["iss"], issuer.as_str(), "{location}");

    let tokens = client
        .exchange_code(AuthorizationCode::new(answer["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("the code grant: {e:?}"));
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier().set_allowed_algs([alg.clone()]);
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .unwrap_or_else(|e| panic!("the ID token does not verify: {e:?}"));
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    assert_eq!(id_token.signing_alg().unwrap(), &alg);
    let at_hash = claims.access_token_hash().expect("at_hash");
    let computed = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &computed, "at_hash matches the access token");

    let userinfo: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("userinfo: {e:?}"));
    assert_eq!(userinfo.subject().as_str(), user_id);
    assert_eq!(
        userinfo.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );

    let refresh = tokens.refresh_token().expect("a refresh token");
    let refreshed = client
        .exchange_refresh_token(refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("the refresh grant: {e:?}"));
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let new_id = refreshed.id_token().expect("a new ID token on refresh");
    // OpenID Connect Core §12.2: no nonce is required on a refreshed ID token; if one is
    // there, it is the original.
    let original = nonce.secret().clone();
    let new_claims = new_id
        .claims(&id_verifier, |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(n) if *n.secret() == original => Ok(()),
            Some(_) => Err("another nonce".to_owned()),
        })
        .unwrap_or_else(|e| panic!("the refreshed ID token does not verify: {e:?}"));
    assert_eq!(new_claims.subject(), claims.subject());
    assert_eq!(
        new_claims.auth_time(),
        claims.auth_time(),
        "a refresh is not a new sign-in"
    );
}
