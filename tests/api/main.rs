//! The behavioural suite: every scenario runs on each cell of the backend matrix (database x
//! Redis, `helpers::Backend`), and the cell is part of the test name
//! (`<module>::postgres_redis::<scenario>`; storage scenarios `<module>::sqlite::<scenario>`).
//! PostgreSQL tests need a server (LK_TEST_POSTGRES_URL, default
//! postgres://postgres@127.0.0.1:5432/postgres) and fail loudly without one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod accounts;
mod admin_clients;
mod admin_users;
mod architecture;
mod audience;
mod authorization_code;
mod browser;
mod browser_security;
mod cli;
mod client_credentials;
mod contract;
mod database_busy;
mod denylist_contract;
mod example_resource_server;
mod federation;
mod federation_mfa;
mod hardening;
mod introspection;
mod jwks;
mod key_lifecycle;
mod logout;
mod magic_link_pages;
mod mail;
mod mfa;
mod mfa_policy;
mod multi_instance;
mod openapi_routes;
mod openidconnect_interop;
mod passkeys;
mod password_grant;
mod password_policy;
mod properties;
mod redis_outage;
mod refresh_grace;
mod refresh_grant;
mod revocation;
mod revocation_feed;
mod robustness;
mod shutdown;
mod signup_precedence;
pub mod smtp_server;
mod throttle;
