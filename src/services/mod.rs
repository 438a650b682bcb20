//! Use cases. Services never mention actix, sqlx, redis or lettre.

mod access_tokens;
mod accounts;
mod admin;
mod admin_auth;
mod audit;
mod authn;
mod authorize;
mod backchannel;
mod client_registry;
mod federation;
mod introspection;
mod keys;
mod logout;
mod mail;
mod mfa;
mod password_rules;
mod revocation;
mod sessions;
mod sign_in;
mod sign_in_mfa;
mod throttle;
mod tokens;

pub use access_tokens::{AccessTokenClaims, AccessTokenRejection, AccessTokenVerifier};
pub use accounts::{
    AccountError, AccountService, Invitation, InviteView, PasswordChange, ProfileUpdate,
    ProfileView, SignupInput, SignupProof, VerifiedEmail,
};
pub use admin::{
    AdminError, AdminService, ClientOidcInput, ClientUpdate, ClientView, CreatedClient,
    NewClientInput, NewUserInput, RoleView, UserUpdate, UserView,
};
pub use admin_auth::{AdminAuthError, AdminCredential, AdminGate};
pub use audit::{detail, events, AuditContext, AuditLog};
pub use authn::{
    AuthMethod, Authenticator, AuthnError, AuthnSettings, Confirmation, MagicCredential, MfaPolicy,
    PasskeyChallenge, Refusal, SecondFactor, SecondFactors, SignedIn, VerifiedPassword,
    CEREMONY_TTL as PASSKEY_CEREMONY_TTL, MAGIC_CODE_MAX_ATTEMPTS, MFA_TOKEN_TTL,
};
pub use authorize::{
    AuthorizationRequest, AuthorizationResponse, AuthorizeError, AuthorizeParams, AuthorizeService,
    AuthorizeSettings, ErrorRedirect, Next, PendingRequest, Prompt, ResponseMode, StepUp,
    OIDC_SCOPES,
};
pub use backchannel::{BackchannelLogout, BackchannelSettings, LogoutDelivery};
pub use client_registry::{ClientAuthError, ClientCredentials, ClientRegistry};
pub use federation::{
    Arrived, CallbackParams, Continuation, FederationError, FederationService, FederationSettings,
    PendingLink, PendingView, ProviderInfo, Resolution, Started as FederationStarted,
    UpstreamError, UpstreamProviders, UpstreamStart, VerifiedIdToken,
};
pub use introspection::{Introspection, IntrospectionCaller, IntrospectionService};
pub use keys::{KeyError, KeyPolicy, KeyService, KeyView, RotationView, TickReport};
pub use logout::{LogoutError, LogoutNext, LogoutParams, LogoutService};
pub use mail::{
    Escape, KindTemplates, Mail, MailBody, MailError, MailKind, MailStats, MailTemplates,
    MailTransport, Mailer, MailerOptions, RenderedMail, Template, TemplateError, TemplateSources,
    TransportError, COMMON_VARS,
};
pub use mfa::{
    Caller as MfaCaller, FactorView, MfaError, MfaOverview, MfaService, MfaSettings,
    PasskeyRegistrationStart, Reauthentication, RecoveryCodes, TotpEnrolment, DEFAULT_PASSKEY_NAME,
    RECOVERY_CODES,
};
pub use password_rules::PasswordRules;
pub use revocation::{
    FeedEntry, RevocationError, RevocationFeedPage, RevocationService, UserSessionEnder,
    FEED_MAX_LIMIT,
};
pub use sessions::{
    audit_events as session_events, EndReason, SessionEndListener, SessionPolicy, SessionSecret,
    SessionService, StartedSession,
};
pub use sign_in::{
    amr_of, pages_client, SecondStep, SessionReady, SignInService, ACCOUNT_PAGES_CLIENT,
};
pub use sign_in_mfa::{EnrolmentPage, StepUpStart};
pub use throttle::{
    client_key, AdminAttempt, FailureOutcome, LimitedAction, LoginGuard, RequestLimit, Throttle,
    ThrottlePolicy, Throttled, FEDERATION_STARTS_PER_HOUR,
};
pub use tokens::{
    GrantRequest, IssuedTokens, TokenError, TokenRequest, TokenService, TokenServiceSettings,
    ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE,
};

use std::sync::Arc;

/// Whether `e` was caused by a database that could not be had in time or reached (the
/// storage's `Unavailable`), wherever a service wrapped it: the error mappings answer those
/// with 503 and `Retry-After`, never 500.
pub fn storage_unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    crate::storage::StorageError::unavailable_in(e)
}

use crate::storage::{
    AccountTokenStore, AuditStore, AuthorizationCodeStore, ClientStore, ConsentStore, HealthCheck,
    MfaStore, OneTimeStore, RefreshTokenStore, RevocationStore, RoleStore, SessionStore,
    SigningKeyStore, SocialLinkStore, UserStore,
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
    /// The SSO sessions: in the database, or in Redis when Redis is configured.
    pub sessions: Arc<dyn SessionStore>,
    pub authorization_codes: Arc<dyn AuthorizationCodeStore>,
    pub consents: Arc<dyn ConsentStore>,
    pub social_links: Arc<dyn SocialLinkStore>,
    pub one_time: Arc<dyn OneTimeStore>,
    /// Second factors and recovery codes.
    pub mfa: Arc<dyn MfaStore>,
}
