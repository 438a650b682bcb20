//! The JSON endpoints: parse the request, call a service, map the result through the one
//! JSON error mapping ([`error::ApiError`]).

pub(super) mod accounts;
pub(super) mod admin;
pub(super) mod discovery;
pub(super) mod error;
pub(super) mod extract;
pub(super) mod health;
pub(super) mod links;
pub(super) mod mfa;
pub(super) mod revocation;
pub(super) mod session;
pub(super) mod token;
pub(super) mod userinfo;
