//! Federated sign-in: the upstream leg (state, PKCE, nonce; the state single use and bound to
//! the browser by a sealed cookie) and the linking rules that decide which local user an
//! upstream identity signs in (`link.rs`).

mod link;
mod native;
mod upstream;

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::accounts::AccountService;
use super::audit::{detail, events, AuditContext, AuditLog};
use super::throttle::{LimitedAction, Throttle, Throttled};
use crate::clock::{Clock, UnixTime};
use crate::crypto::{sha256_hex, BrowserSeal, MasterKey};
use crate::domain::{
    ExternalIdentity, LinkPolicy, ProviderId, ProviderKind, RequestOrigin, SignupMode, UserId,
};
use crate::storage::{OneTimeStore, SocialLinkStore, StorageError, UserStore};
pub use link::{PendingLink, PendingView, Resolution};
pub use upstream::{UpstreamError, UpstreamProviders, UpstreamStart, VerifiedIdToken};

/// A provider as the pages and the service need it (no secrets).
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub display_name: String,
    pub link_existing: LinkPolicy,
    pub store_tokens: bool,
}

/// The service's settings.
#[derive(Debug, Clone)]
pub struct FederationSettings {
    /// Latchkey's issuer: callbacks are `{issuer}/federation/{provider}/callback`.
    pub issuer: String,
    pub providers: Vec<ProviderInfo>,
    /// Who may sign up (federated sign-up follows it).
    pub signup: SignupMode,
    /// How long a user may take at the provider.
    pub state_ttl: i64,
    /// Every account needs a verified address (`accounts.email_verification = "mandatory"`):
    /// an identity without one creates no user.
    pub email_required: bool,
}

/// The cookie's seal purpose (bound into the AEAD).
const COOKIE_PURPOSE: &str = "latchkey federation state v1";
/// The largest sealed state the cookie may carry (its name and attributes take the rest of
/// the 4096 bytes browsers keep).
const MAX_COOKIE_BYTES: usize = 3800;
/// The one-time store's purposes.
const STATE: &str = "federation_state";

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("no such provider")]
    UnknownProvider,
    /// No cookie, another browser's cookie, another provider, a wrong or old state.
    #[error("the answer does not belong to a sign-in started in this browser")]
    StateMismatch,
    /// The state was used already.
    #[error("this sign-in was completed already")]
    StateReplayed,
    /// A native app's ID token was exchanged already.
    #[error("this ID token was exchanged already")]
    TokenReplayed,
    /// The provider sent `error=...` back (e.g. the user said no).
    #[error("the provider did not sign you in: {0}")]
    Denied(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("sign-up is closed")]
    SignupClosed,
    #[error("sign-up is by invitation only")]
    InviteRequired,
    /// The invitation the sign-up started from is unknown, expired or used.
    #[error("the invitation is invalid, expired or used")]
    InvitationInvalid,
    /// The provider's verified address is not the one the invitation was sent to.
    #[error("the invitation is for another email address")]
    InvitationMismatch,
    /// GitHub gave no verified email, no local user is linked, and every account needs a
    /// verified address (`accounts.email_verification = "mandatory"`).
    #[error("the provider gave no verified email address")]
    NoVerifiedEmail,
    /// The provider signed in an identity that is not linked to the account to prove.
    #[error("this identity is not linked to that account")]
    ProofFailed,
    /// The identity is linked to another user already.
    #[error("this identity is linked to another account")]
    LinkedElsewhere,
    /// Too many sign-ins started from this network.
    #[error("too many sign-ins started; retry in {} s", .0.retry_after_secs)]
    Throttled(Throttled),
    #[error("storage unavailable")]
    Unavailable(#[source] StorageError),
    #[error("internal error: {0}")]
    Unexpected(#[source] anyhow::Error),
}

impl From<StorageError> for FederationError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Backend(_) | StorageError::Unavailable(_) => {
                FederationError::Unavailable(e)
            }
            other => FederationError::Unexpected(other.into()),
        }
    }
}

/// What the browser carries between the start and the callback (sealed, in a cookie).
#[derive(Serialize, Deserialize)]
struct Flow {
    /// The provider.
    p: String,
    /// The state sent to the provider.
    s: String,
    /// The nonce.
    n: String,
    /// The PKCE verifier.
    v: String,
    /// The pending authorization request (sealed), if any.
    r: Option<String>,
    /// Linking to a signed-in user (the account page) instead of signing in.
    l: Option<String>,
    /// The invitation a sign-up started from (its link secret), if any.
    #[serde(default)]
    i: Option<String>,
    /// A pending link (sealed) whose local account this sign-in proves, if any.
    #[serde(default)]
    k: Option<String>,
    /// Expiry (Unix seconds).
    e: UnixTime,
}

/// An upstream sign-in started: where to send the browser, and the cookie that binds the
/// answer to it.
pub struct Started {
    pub redirect: String,
    pub cookie: String,
    pub max_age: i64,
}

/// The provider's answer, checked.
pub struct Arrived {
    pub identity: ExternalIdentity,
    /// The pending authorization request to continue.
    pub request: Option<String>,
    /// Set when the flow links an identity to this signed-in user.
    pub link_to: Option<UserId>,
    /// The invitation a sign-up started from (its link secret).
    pub invitation: Option<String>,
    /// The pending link (sealed) this sign-in proves the local account for.
    pub proof: Option<String>,
}

/// What an upstream sign-in continues with once the provider answers.
#[derive(Debug, Default)]
pub struct Continuation {
    /// The pending authorization request (sealed), if any.
    pub request: Option<String>,
    /// Adding an identity to this signed-in user (the account page).
    pub link_to: Option<UserId>,
    /// The invitation a sign-up starts from (its link secret): checked now, used when the
    /// account is created.
    pub invitation: Option<String>,
    /// A pending link (sealed, from the proof page): the sign-in at this provider proves the
    /// local account, through an identity already linked to it.
    pub proof: Option<String>,
}

/// The callback's parameters, as they came.
#[derive(Debug, Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

pub struct FederationService {
    upstream: Arc<dyn UpstreamProviders>,
    links: Arc<dyn SocialLinkStore>,
    one_time: Arc<dyn OneTimeStore>,
    users: Arc<dyn UserStore>,
    /// Invitations (invite-only sign-up through a provider).
    accounts: Arc<AccountService>,
    seal: Arc<BrowserSeal>,
    master: Arc<MasterKey>,
    audit: Arc<AuditLog>,
    throttle: Arc<Throttle>,
    clock: Arc<dyn Clock>,
    settings: FederationSettings,
}

fn random_token() -> Result<String, FederationError> {
    Ok(crate::crypto::random_token(32))
}

fn key_hash(purpose: &str, value: &str) -> String {
    sha256_hex(format!("{purpose}:{value}").as_bytes())
}

impl FederationService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        upstream: Arc<dyn UpstreamProviders>,
        links: Arc<dyn SocialLinkStore>,
        one_time: Arc<dyn OneTimeStore>,
        users: Arc<dyn UserStore>,
        accounts: Arc<AccountService>,
        seal: Arc<BrowserSeal>,
        master: Arc<MasterKey>,
        audit: Arc<AuditLog>,
        throttle: Arc<Throttle>,
        clock: Arc<dyn Clock>,
        settings: FederationSettings,
    ) -> Self {
        Self {
            upstream,
            links,
            one_time,
            users,
            accounts,
            seal,
            master,
            audit,
            throttle,
            clock,
            settings,
        }
    }

    /// The configured providers, in the order the sign-in page shows them.
    pub fn providers(&self) -> &[ProviderInfo] {
        &self.settings.providers
    }

    pub fn provider(&self, raw: &str) -> Result<&ProviderInfo, FederationError> {
        self.settings
            .providers
            .iter()
            .find(|p| p.id.as_str() == raw)
            .ok_or(FederationError::UnknownProvider)
    }

    /// How a provider is shown (its display name; its id once it is no longer configured).
    pub fn provider_name(&self, id: &ProviderId) -> String {
        self.provider(id.as_str())
            .map_or_else(|_| id.to_string(), |p| p.display_name.clone())
    }

    /// Latchkey's callback URL for a provider (what operators register at the provider).
    pub fn callback_url(&self, provider: &ProviderId) -> String {
        format!("{}/federation/{provider}/callback", self.settings.issuer)
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Starts an upstream sign-in: a new state (remembered, single use), nonce and PKCE
    /// verifier, sealed into the cookie with what the sign-in continues with. Limited per
    /// network (each start keeps a state until it expires).
    pub async fn begin(
        &self,
        provider: &str,
        then: Continuation,
        origin: &RequestOrigin,
    ) -> Result<Started, FederationError> {
        let provider = self.provider(provider)?.id.clone();
        if let Some(token) = &then.invitation {
            self.accounts
                .invitation(token)
                .await
                .map_err(|_| FederationError::InvitationInvalid)?;
        }
        if let Some(pending) = &then.proof {
            if self.describe_pending(pending).is_none() {
                return Err(FederationError::StateMismatch);
            }
        }
        self.throttle
            .limit(LimitedAction::FederationStart, None, origin.ip)
            .await
            .map_err(FederationError::Throttled)?;
        let (state, nonce) = (random_token()?, random_token()?);
        let verifier = SecretString::from(format!("{}{}", random_token()?, random_token()?));
        let expires = self.clock.now() + self.settings.state_ttl;
        let redirect = self
            .upstream
            .authorization_url(
                &provider,
                &UpstreamStart {
                    redirect_uri: &self.callback_url(&provider),
                    state: &state,
                    nonce: &nonce,
                    pkce_verifier: &verifier,
                },
            )
            .await?;
        self.one_time
            .put(STATE, &key_hash(STATE, &state), expires)
            .await?;
        let flow = Flow {
            p: provider.into_string(),
            s: state,
            n: nonce,
            v: verifier.expose_secret().to_owned(),
            r: then.request,
            l: then.link_to.map(UserId::into_string),
            i: then.invitation,
            k: then.proof,
            e: expires,
        };
        let plain = serde_json::to_vec(&flow).map_err(|e| FederationError::Unexpected(e.into()))?;
        let cookie = self
            .seal
            .seal(COOKIE_PURPOSE, &plain)
            .map_err(|_| FederationError::Unexpected(anyhow::anyhow!("sealing failed")))?;
        // Browsers drop a cookie past 4 KiB: the sign-in would then fail at the callback for
        // no visible reason.
        if cookie.len() > MAX_COOKIE_BYTES {
            return Err(FederationError::Unexpected(anyhow::anyhow!(
                "the sign-in's state ({} bytes) does not fit a cookie",
                cookie.len()
            )));
        }
        Ok(Started {
            redirect,
            cookie,
            max_age: self.settings.state_ttl,
        })
    }

    /// The provider's answer: checks it belongs to a sign-in this browser started (the cookie
    /// and the state, constant time) and was not used before (the state is taken), then asks
    /// the provider who signed in.
    pub async fn callback(
        &self,
        provider: &str,
        params: CallbackParams,
        cookie: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<Arrived, FederationError> {
        let provider = self.provider(provider)?.id.clone();
        let result = self.check_callback(&provider, params, cookie).await;
        if let Err(e) = &result {
            self.audit
                .record(
                    events::FEDERATION_FAILED,
                    AuditContext {
                        user_id: None,
                        client_id: None,
                        origin: Some(origin),
                    },
                    detail([
                        ("provider", serde_json::json!(provider.as_str())),
                        ("reason", serde_json::json!(e.to_string())),
                    ]),
                )
                .await;
        }
        result
    }

    async fn check_callback(
        &self,
        provider: &ProviderId,
        params: CallbackParams,
        cookie: Option<&str>,
    ) -> Result<Arrived, FederationError> {
        let flow: Flow = cookie
            .and_then(|c| self.seal.open(COOKIE_PURPOSE, c))
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or(FederationError::StateMismatch)?;
        let state = params.state.unwrap_or_default();
        let same_state: bool = flow.s.as_bytes().ct_eq(state.as_bytes()).into();
        if !same_state || flow.p != provider.as_str() || flow.e <= self.clock.now() {
            return Err(FederationError::StateMismatch);
        }
        if !self
            .one_time
            .take(STATE, &key_hash(STATE, &state), self.clock.now())
            .await?
        {
            return Err(FederationError::StateReplayed);
        }
        if let Some(error) = params.error {
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect();
            return Err(FederationError::Denied(error));
        }
        let code = params
            .code
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| FederationError::Denied("no code".into()))?;
        let verifier = SecretString::from(flow.v);
        let identity = self
            .upstream
            .complete(
                provider,
                &code,
                &UpstreamStart {
                    redirect_uri: &self.callback_url(provider),
                    state: &flow.s,
                    nonce: &flow.n,
                    pkce_verifier: &verifier,
                },
            )
            .await?;
        Ok(Arrived {
            identity,
            request: flow.r,
            link_to: flow.l.map(UserId::from_trusted),
            invitation: flow.i,
            proof: flow.k,
        })
    }

    /// Deletes expired single-use values.
    pub async fn purge_expired(&self) -> Result<u64, StorageError> {
        self.one_time.purge_expired(self.clock.now()).await
    }

    /// Refreshes the providers' discovery documents and key sets.
    pub async fn refresh_providers(&self) {
        self.upstream.refresh().await;
    }

    fn audit_ctx<'a>(
        &self,
        user: Option<&'a UserId>,
        origin: &'a RequestOrigin,
    ) -> AuditContext<'a> {
        AuditContext {
            user_id: user,
            client_id: None,
            origin: Some(origin),
        }
    }

    /// The upstream tokens to keep on a link (encrypted), when the provider keeps them.
    fn sealed_tokens(&self, identity: &ExternalIdentity, link_id: &str) -> Option<Vec<u8>> {
        let tokens = identity.tokens.as_ref()?;
        let plain = serde_json::json!({
            "access_token": tokens.access_token.expose_secret(),
            "refresh_token": tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()),
        });
        self.master
            .encrypt(plain.to_string().as_bytes(), link_id.as_bytes())
            .ok()
    }
}
