//! Storage contract: each trait checked directly against each adapter, one file per store.

use std::collections::BTreeSet;

use latchkey::config::Settings;
use latchkey::domain::*;
use latchkey::services::Stores;

use crate::helpers::{fresh_database, test_settings, Backend, TestDatabase};
use crate::scenarios;

mod account_token_codes;
mod account_tokens;
mod audit;
mod authorization_codes;
mod consents;
mod directory;
mod hot_query_plans;
mod mfa;
mod refresh_tokens;
mod revocations;
mod sessions;
mod signing_keys;
mod user_listing_plans;
mod users_without_email;

use account_token_codes::*;
use account_tokens::*;
use audit::*;
use authorization_codes::*;
use consents::*;
use directory::*;
use hot_query_plans::*;
use mfa::*;
use refresh_tokens::*;
use revocations::*;
use sessions::*;
use signing_keys::*;
use user_listing_plans::*;
use users_without_email::*;

scenarios!(
    databases:
    hot_queries_and_purges_walk_an_index,
    user_store_contract,
    user_listing_walks_an_index_for_every_filter,
    role_store_contract,
    client_store_contract,
    client_store_update_replaces_the_settings,
    signing_key_store_contract,
    signing_key_store_lifecycle_steps_are_compare_and_set,
    signing_key_store_concurrent_transitions_have_one_winner,
    signing_key_store_keeps_one_active_and_one_pending_key_per_algorithm,
    signing_key_store_activates_the_first_key_of_an_algorithm_once,
    signing_key_store_transitions_of_two_algorithms_run_side_by_side,
    existing_keys_survive_the_lifecycle_migration,
    user_store_keeps_users_without_an_email,
    users_and_their_references_survive_the_email_migration,
    refresh_token_store_rotates_once_and_revokes_on_reuse,
    refresh_token_store_concurrent_rotation_has_one_winner,
    refresh_token_store_rejections_and_purge,
    refresh_token_store_revokes_every_family_of_a_user,
    refresh_token_store_admits_retries_inside_the_grace_window,
    refresh_token_store_ends_a_grace_window_when_it_passes_or_the_chain_moves_on,
    refresh_token_store_concurrent_retries_share_one_successor,
    revocation_store_keeps_commit_order_and_forgets_expired_entries,
    revocation_store_purges_past_one_batch_and_keeps_live_entries,
    revocation_store_concurrent_appends_never_let_a_cursor_skip_an_entry,
    account_token_store_finds_and_consumes_a_token_once,
    account_token_store_keeps_purposes_apart,
    account_token_store_expires_tokens_by_the_callers_clock,
    account_token_store_a_newer_token_supersedes_the_unused_older_ones,
    account_token_store_concurrent_consumers_have_one_winner,
    account_token_store_counts_wrong_codes_and_uses_a_link_up_at_the_limit,
    account_token_store_checks_codes_against_the_newest_live_magic_link,
    account_token_store_concurrent_codes_count_every_attempt_and_consume_once,
    account_token_store_invalidates_the_unused_tokens_of_a_purpose,
    account_token_store_purges_expired_tokens_and_used_ones_after_a_day,
    audit_store_appends_in_order_and_lists_the_newest_oldest_first,
    audit_store_follows_the_trail_after_a_position_in_pages,
    audit_store_filters_by_user_and_by_event,
    audit_store_scrubs_a_users_ip_and_user_agent_only,
    audit_store_concurrent_appends_all_land_with_their_own_ids,
    audit_store_appends_a_batch_in_order_in_one_step,
    session_store_creates_and_finds_a_session,
    session_store_finds_a_session_with_its_users_standing,
    session_store_expires_sessions_by_the_callers_clock,
    session_store_adds_each_client_once,
    session_store_lists_a_users_live_sessions_newest_first,
    session_store_ends_a_session_once,
    session_store_ends_every_session_of_a_user_but_one,
    session_store_takes_expired_sessions_once,
    session_store_steps_up_a_live_session,
    authorization_code_store_redeems_a_code_once,
    authorization_code_store_answers_unknown_for_unknown_and_expired_codes,
    authorization_code_store_concurrent_redemptions_have_one_winner,
    authorization_code_store_purges_codes_expired_before_a_time,
    consent_store_grants_merges_lists_and_revokes,
    consent_store_concurrent_grants_keep_every_scope,
    consent_store_forgets_a_deleted_users_consents,
    mfa_store_creates_finds_lists_and_confirms_factors,
    mfa_store_a_new_pending_totp_factor_replaces_the_older_pending_one,
    mfa_store_uses_each_totp_step_once,
    mfa_store_stores_a_used_passkey_only_over_what_was_read,
    mfa_store_concurrent_uses_of_one_totp_step_have_one_winner,
    mfa_store_deletes_one_factor_or_all_of_a_user,
    mfa_store_recovery_codes_are_replaced_as_a_set_and_used_once,
    mfa_store_concurrent_uses_of_one_recovery_code_have_one_winner,
    mfa_store_purges_only_old_unconfirmed_factors,
    mfa_store_forgets_a_deleted_users_factors_and_codes,
    mfa_store_keeps_the_first_enrolment_prompt_and_reads_role_policies,
);

// The session contract again, on the Redis adapter (`build_session_store` with Redis
// configured). A test that cannot reach Redis fails.
scenarios!(
    redis_only:
    session_store_creates_and_finds_a_session,
    session_store_finds_a_session_with_its_users_standing,
    session_store_expires_sessions_by_the_callers_clock,
    session_store_adds_each_client_once,
    session_store_lists_a_users_live_sessions_newest_first,
    session_store_ends_a_session_once,
    session_store_ends_every_session_of_a_user_but_one,
    session_store_takes_expired_sessions_once,
    session_store_steps_up_a_live_session,
);

async fn stores(backend: Backend) -> (Stores, TestDatabase, Settings) {
    let db = fresh_database(backend).await;
    let settings = test_settings(&db, &[]);
    let stores = latchkey::startup::connect_stores(&settings).await.unwrap();
    (stores, db, settings)
}

fn user(email: &str, now: i64) -> User {
    User {
        id: UserId::generate(),
        email: Some(Email::parse(email).unwrap()),
        username: None,
        display_name: Some("Test".into()),
        is_active: true,
        email_verified: false,
        password_hash: Some("$argon2id$dummy".into()),
        attributes: serde_json::Map::new(),
        created_at: now,
        updated_at: now,
        last_login_at: None,
        must_change_password: false,
        password_changed_at: None,
    }
}

fn role(name: &str, perms: &[&str]) -> Role {
    Role {
        id: RoleId::generate(),
        name: RoleName::parse(name).unwrap(),
        description: None,
        permissions: perms
            .iter()
            .map(|p| Permission::parse(p).unwrap())
            .collect(),
        require_mfa: false,
        created_at: 1,
    }
}

fn client(id: &str) -> Client {
    Client {
        id: ClientId::parse(id).unwrap(),
        name: id.into(),
        kind: ClientKind::Public,
        secret_hash: None,
        enabled: true,
        grant_types: BTreeSet::from([GrantType::Password, GrantType::RefreshToken]),
        scopes: Scope::parse("a b").unwrap(),
        redirect_uris: vec!["https://app.example.com/cb".into()],
        audiences: vec![Audience::parse("https://api.example.com").unwrap()],
        default_audience: None,
        token_settings: ClientTokenSettings {
            access_token_ttl: Some(60),
            ..Default::default()
        },
        oidc: Default::default(),
        created_at: 1,
        updated_at: 1,
    }
}
