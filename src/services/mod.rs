//! Use cases. Services never mention actix, sqlx or redis.

mod admin;
mod admin_auth;
mod client_registry;
mod keys;
mod tokens;

pub use admin::{
    AdminError, AdminService, ClientView, CreatedClient, NewClientInput, NewUserInput, RoleView,
    UserUpdate, UserView,
};
pub use admin_auth::AdminCredential;
pub use client_registry::{ClientAuthError, ClientCredentials, ClientRegistry};
pub use keys::{KeyError, KeyPolicy, KeyService, KeyView, TickReport};
pub use tokens::{
    GrantRequest, IssuedTokens, TokenError, TokenRequest, TokenService, TokenServiceSettings,
};

use std::sync::Arc;

use crate::storage::{
    ClientStore, HealthCheck, RefreshTokenStore, RoleStore, SigningKeyStore, UserStore,
};

/// Every store a service may need, as trait objects.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub roles: Arc<dyn RoleStore>,
    pub clients: Arc<dyn ClientStore>,
    pub keys: Arc<dyn SigningKeyStore>,
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    pub health: Arc<dyn HealthCheck>,
}
