//! Pure types and rules: no I/O, no async, no framework.

mod macros;

mod account;
mod account_policy;
mod client;
mod email;
mod error;
mod federation;
mod grant;
mod key;
mod login_name;
mod mfa;
mod mfa_policy;
mod names;
mod password_policy;
mod principal;
mod redirect_uri;
mod refresh;
mod revocation;
mod role;
mod scope;
mod secrets;
mod sso;
mod throttle;
mod user;

pub use account::{
    AccountToken, AccountTokenPurpose, AuditEvent, AuditFilter, CodeOutcome, LoggedAuditEvent,
    RequestOrigin,
};
pub use account_policy::{AccountPolicy, SignupMode, VerificationPolicy};
pub use client::{
    Audience, Client, ClientId, ClientKind, ClientOidcSettings, ClientTokenSettings,
    MAX_ACCESS_TOKEN_TTL, MAX_REFRESH_GRACE_SECS, MAX_REFRESH_GRACE_USES,
};
pub use email::Email;
pub use error::ValidationError;
pub use federation::{
    ClaimNames, ExternalIdentity, LinkId, LinkPolicy, ProviderConfig, ProviderId, ProviderKind,
    SocialLink, Upstream, UpstreamTokens, MAX_PROFILE_BYTES,
};
pub use grant::GrantType;
pub use key::{KeyId, KeyState, SigningAlg, StoredKey};
pub use login_name::LoginName;
pub use mfa::{FactorId, FactorKind, MfaFactor, MAX_FACTOR_NAME_CHARS};
pub use mfa_policy::{within_grace, MfaRequirement};
pub use names::{Permission, RoleName};
pub use password_policy::{is_common_password, PasswordContext, PasswordPolicy, PolicyViolation};
pub use principal::{PresentedAccessToken, Principal, Subject};
pub use redirect_uri::{check_redirect_uri, is_loopback_host, matches_redirect_uri, RedirectUse};
pub use refresh::{
    FamilyId, FamilyInfo, FamilyRecord, FamilySignIn, NewFamily, NextGeneration, PresentedToken,
    RefreshRejection, RetriedFamily, RetryGrace, RotateOutcome,
};
pub use revocation::{LoggedRevocation, Revocation, RevocationKind, TokenIdentity};
pub use role::{Role, RoleId};
pub use scope::{Scope, OIDC_SCOPES};
pub use secrets::{AccessTokenText, IdTokenText, MailedSecret, RefreshTokenText};
pub use sso::{
    Amr, AuthorizationCode, CodeRedemption, CodeUse, Consent, SessionId, SsoSession, ACR_MFA,
    ACR_ONE_FACTOR, RFC_8176_VALUES,
};
pub use throttle::{client_network, login_backoff, seconds_until, SlidingWindow, WindowCounts};
pub use user::{User, UserClaims, UserCursor, UserFilter, UserId};
