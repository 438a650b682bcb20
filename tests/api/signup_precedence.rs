//! Addresses are parsed at the edge (the handler, the CLI), yet a request with several faults
//! keeps its answer: the sign-up policy and the invitation come before a malformed address.

use latchkey::domain::Email;
use latchkey::services::AccountError;
use serde_json::json;

use crate::helpers::{assert_oauth_error, spawn_app, spawn_app_with, Backend};
use crate::scenarios;

scenarios!(databases: a_malformed_address_is_refused_after_the_sign_up_policy);

async fn a_malformed_address_is_refused_after_the_sign_up_policy(backend: Backend) {
    let body = json!({"email": "not-an-email", "password": "correct horse battery staple"});

    let closed = spawn_app_with(backend, &[("LATCHKEY_SIGNUP", "closed")]).await;
    let (status, answer) = closed.post_json("/api/v1/signup", body.clone()).await;
    assert_oauth_error(status, &answer, 403, "signup_disabled");
    let invitation = closed
        .services
        .accounts
        .invite(Email::parse("not-an-email"), &[])
        .await;
    assert!(
        matches!(invitation, Err(AccountError::InvalidRequest(ref m)) if m.starts_with("sign-up is closed")),
        "{invitation:?}"
    );

    let invite_only = spawn_app_with(backend, &[("LATCHKEY_SIGNUP", "invite")]).await;
    let (status, answer) = invite_only.post_json("/api/v1/signup", body.clone()).await;
    assert_oauth_error(status, &answer, 403, "invite_required");

    let open = spawn_app(backend).await;
    let (status, answer) = open.post_json("/api/v1/signup", body).await;
    assert_eq!(status, 400, "{answer}");
}
