//! Use cases. Services never mention actix, sqlx, redis or lettre.

mod access_tokens;
mod accounts;
mod admin;
mod admin_auth;
mod audit;
mod authn;
mod client_registry;
mod introspection;
mod keys;
mod mail;
mod password_rules;
mod revocation;
mod throttle;
mod tokens;

pub use access_tokens::{AccessTokenClaims, AccessTokenRejection, AccessTokenVerifier};
pub use accounts::{
    AccountError, AccountService, InviteView, PasswordChange, ProfileUpdate, ProfileView,
    SignupInput, SignupProof, VerifiedEmail,
};
pub use admin::{
    AdminError, AdminService, ClientOidcInput, ClientUpdate, ClientView, CreatedClient,
    NewClientInput, NewUserInput, RoleView, UserUpdate, UserView,
};
pub use admin_auth::{AdminAuthError, AdminCredential, AdminGate};
pub use audit::{detail, events, AuditContext, AuditLog};
pub use authn::{
    AuthMethod, Authenticator, AuthnError, AuthnSettings, Confirmation, MagicCredential, Refusal,
    SignedIn, VerifiedPassword, MAGIC_CODE_MAX_ATTEMPTS,
};
pub use client_registry::{ClientAuthError, ClientCredentials, ClientRegistry};
pub use introspection::{Introspection, IntrospectionCaller, IntrospectionService};
pub use keys::{KeyError, KeyPolicy, KeyService, KeyView, TickReport};
pub use mail::{
    Escape, KindTemplates, Mail, MailBody, MailError, MailKind, MailStats, MailTemplates,
    MailTransport, Mailer, MailerOptions, RenderedMail, Template, TemplateError, TemplateSources,
    TransportError, COMMON_VARS,
};
pub use password_rules::PasswordRules;
pub use revocation::{
    FeedEntry, RevocationError, RevocationFeedPage, RevocationService, FEED_MAX_LIMIT,
};
pub use throttle::{
    client_key, AdminAttempt, FailureOutcome, LimitedAction, LoginGuard, RequestLimit, Throttle,
    ThrottlePolicy, Throttled,
};
pub use tokens::{
    GrantRequest, IssuedTokens, TokenError, TokenRequest, TokenService, TokenServiceSettings,
};

use std::sync::Arc;

use crate::storage::{
    AccountTokenStore, AuditStore, ClientStore, HealthCheck, RefreshTokenStore, RevocationStore,
    RoleStore, SigningKeyStore, UserStore,
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
    pub account_tokens: Arc<dyn AccountTokenStore>,
    pub audit: Arc<dyn AuditStore>,
}
