//! Self-service accounts end to end: every flow through the HTTP API, with mail delivered
//! over SMTP to a real server on loopback and the links followed from the delivered mail.
//! One file per flow: `signup` (and verification), `password` (reset and change), `profile`
//! (and deletion), `magic_link`, `login` (the back-off and the audit trail). Here: the
//! shared helpers and the scenario list.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp_server::SmtpServer;

mod login;
mod magic_link;
mod password;
mod profile;
mod signup;

use login::*;
use magic_link::*;
use password::*;
use profile::*;
use signup::*;

const NEW_PASSWORD: &str = "a fresh and long passphrase 42";
const BOB: &str = "bob@example.com";

async fn signup(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    app.post_json(
        "/api/v1/signup",
        json!({"email": email, "password": password, "display_name": "Bob"}),
    )
    .await
}

/// Signs bob up and returns the token of his verification link.
async fn signed_up_bob(app: &TestApp, smtp: &SmtpServer) -> String {
    let (status, body) = signup(app, BOB, PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    let mail = smtp.wait_for(BOB, MAIL_WAIT).await;
    token_in(&mail, "/api/v1/email/verify")
}

async fn user_view(app: &TestApp, email: &str) -> latchkey::services::UserView {
    app.admin().show_user(email).await.unwrap()
}

crate::scenarios!(
    a_magic_link_on_an_unverified_account_ends_what_its_sign_up_left,
    signup_sends_a_verification_link_that_verifies_the_address,
    signing_up_with_an_existing_address_answers_the_same_and_tells_the_owner,
    mandatory_verification_keeps_unverified_users_from_tokens,
    verification_links_expire_and_a_resend_supersedes_them,
    closed_and_invite_only_sign_up,
    sign_up_reports_every_broken_password_rule_and_bad_input,
    a_password_reset_sets_a_new_password_and_revokes_every_token,
    reset_requests_do_not_reveal_whether_an_account_exists,
    reset_links_expire_and_die_with_a_newer_link_or_a_password_change,
    changing_the_password_revokes_the_other_sessions,
    a_forced_password_change_is_the_only_way_in,
    users_read_and_update_their_own_profile,
    deleting_the_account_needs_the_password_and_removes_it,
    magic_links_sign_in_by_link_or_code_once,
    magic_link_requests_do_not_reveal_whether_an_account_exists,
    failed_logins_back_off_per_account_and_address,
    the_audit_trail_records_who_did_what_from_where,
);
