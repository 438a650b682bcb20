//! Use cases. Services never mention actix, sqlx or redis.

mod access_tokens;
mod admin;
mod admin_auth;
mod client_registry;
mod introspection;
mod keys;
mod mail;
mod revocation;
mod throttle;
mod tokens;

pub use access_tokens::{AccessTokenRejection, AccessTokenVerifier};
pub use admin::{
    AdminError, AdminService, ClientView, CreatedClient, NewClientInput, NewUserInput, RoleView,
    UserUpdate, UserView,
};
pub use admin_auth::AdminCredential;
pub use client_registry::{ClientAuthError, ClientCredentials, ClientRegistry};
pub use introspection::{Introspection, IntrospectionCaller, IntrospectionService};
pub use keys::{KeyError, KeyPolicy, KeyService, KeyView, TickReport};
pub use mail::{Mail, MailError, MailKind, Mailer};
pub use revocation::{
    FeedEntry, RevocationError, RevocationFeedPage, RevocationService, FEED_MAX_LIMIT,
};
pub use throttle::{FailureOutcome, LimitedAction, Throttle, ThrottlePolicy, Throttled};
pub use tokens::{
    GrantRequest, IssuedTokens, TokenError, TokenRequest, TokenService, TokenServiceSettings,
};

use std::sync::Arc;

use crate::storage::{
    ClientStore, HealthCheck, RefreshTokenStore, RevocationStore, RoleStore, SigningKeyStore,
    UserStore,
};

/// Every store a service may need, as trait objects.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub roles: Arc<dyn RoleStore>,
    pub clients: Arc<dyn ClientStore>,
    pub keys: Arc<dyn SigningKeyStore>,
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    pub revocations: Arc<dyn RevocationStore>,
    pub health: Arc<dyn HealthCheck>,
}
