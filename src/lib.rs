//! Latchkey: a standalone OAuth 2.0 / OpenID Connect identity provider.
//!
//! Data flows one way: `http` -> `services` -> (`domain`, `crypto`, `storage` traits);
//! `startup` is the composition root and the only module that names concrete adapters.

pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod federation;
pub mod http;
pub mod mail_transport;
pub mod outbound;
pub mod services;
pub mod startup;
pub mod storage;
pub mod telemetry;
