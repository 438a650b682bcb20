//! Latchkey's own single sign-on session (the browser's cookie), authorization codes, and
//! consents: what the authorization code flow stores.

use super::{ClientId, FamilyId, ProviderId, Scope, UserId};
use crate::clock::UnixTime;

crate::string_newtype! {
    /// The public id of an SSO session (a hyphenated UUID): the `sid` of ID tokens and logout
    /// tokens, and what the account page names a session by. The cookie carries a separate
    /// 256-bit secret, of which only a hash is stored.
    pub struct SessionId;
}

impl SessionId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// For an id read back from our own storage or a token we signed.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    /// An id as presented by a caller (a form field, a path): a hyphenated UUID.
    pub fn parse(raw: &str) -> Option<Self> {
        uuid::Uuid::try_parse(raw)
            .ok()
            .map(|u| Self(u.hyphenated().to_string()))
            .filter(|s| s.0 == raw)
    }
}

/// An authentication method reference (OIDC Core `amr`, RFC 8176 values, and the provider of
/// a federated sign-in).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Amr {
    /// A password.
    Pwd,
    /// A one-time code or link sent by mail (RFC 8176 has no mail value; `otp` is a
    /// one-time password however delivered).
    Otp,
    /// Proof of possession of a hardware-secured key.
    Hwk,
    /// Proof of possession of a software-secured key.
    Swk,
    /// More than one factor.
    Mfa,
    /// Federated: signed in at another identity provider.
    Fed,
    /// Which provider, beside `fed`: its id (`google`, `github`, a generic provider's id).
    /// Provider ids never take an RFC 8176 value (the configuration refuses them).
    Idp(ProviderId),
}

/// The values of RFC 8176's registry: no provider may take one as its id, so that an `amr`
/// holding a provider's id never claims a method that was not used.
pub const RFC_8176_VALUES: [&str; 22] = [
    "face", "fed", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop", "pwd",
    "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia",
];

impl Amr {
    pub const ALL: [Amr; 6] = [Amr::Pwd, Amr::Otp, Amr::Hwk, Amr::Swk, Amr::Mfa, Amr::Fed];

    /// The value in ID tokens.
    pub fn as_str(&self) -> &str {
        match self {
            Amr::Pwd => "pwd",
            Amr::Otp => "otp",
            Amr::Hwk => "hwk",
            Amr::Swk => "swk",
            Amr::Mfa => "mfa",
            Amr::Fed => "fed",
            Amr::Idp(p) => p.as_str(),
        }
    }

    /// One of the fixed methods by its value (not a provider).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// The value as stored: a provider as `idp:<id>`, so that it can never be read back as a
    /// method.
    pub fn stored(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Amr::Idp(p) => format!("idp:{p}").into(),
            other => other.as_str().into(),
        }
    }

    /// A value as [`Amr::stored`] wrote it.
    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw.strip_prefix("idp:") {
            Some(id) => ProviderId::parse(id).ok().map(Amr::Idp),
            None => Self::parse(raw),
        }
    }

    /// The `acr` value for a set of methods: multi-factor, or one factor.
    pub fn acr(methods: &[Amr]) -> &'static str {
        if methods.contains(&Amr::Mfa) {
            ACR_MFA
        } else {
            ACR_ONE_FACTOR
        }
    }
}

/// The `acr` of a sign-in with one factor.
pub const ACR_ONE_FACTOR: &str = "urn:latchkey:acr:1fa";
/// The `acr` of a sign-in with two factors.
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";

/// An SSO session as stored. Only the hash of the cookie's secret is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct SsoSession {
    pub id: SessionId,
    /// SHA-256 (hex) of the cookie's secret.
    pub secret_hash: String,
    pub user_id: UserId,
    /// When the user last proved who they are (`auth_time`).
    pub auth_time: UnixTime,
    /// How they did (`amr`), in order, unique.
    pub amr: Vec<Amr>,
    /// "Remember me": the cookie persists until the absolute expiry.
    pub remember: bool,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    /// The session ends if unused until then; each use moves it (never past the absolute).
    pub idle_expires_at: UnixTime,
    pub absolute_expires_at: UnixTime,
    /// Where it started, for the user's own list of sessions.
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The clients it issued codes to (back-channel logout goes to these).
    pub clients: Vec<ClientId>,
}

impl std::fmt::Debug for SsoSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoSession")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("auth_time", &self.auth_time)
            .field("amr", &self.amr)
            .field("idle_expires_at", &self.idle_expires_at)
            .field("absolute_expires_at", &self.absolute_expires_at)
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

impl SsoSession {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.idle_expires_at > now && self.absolute_expires_at > now
    }
}

/// An authorization code as stored (RFC 6749 §4.1.2): only its hash, and everything it is
/// bound to.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// SHA-256 (hex) of the code.
    pub code_hash: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    /// The `redirect_uri` of the request, exactly as sent (the token request must repeat it).
    pub redirect_uri: String,
    /// The PKCE S256 challenge (RFC 7636), if the request had one.
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scope: Scope,
    /// The resource (RFC 8707) the request named, if any.
    pub resource: Option<String>,
    pub auth_time: UnixTime,
    pub session_id: SessionId,
    pub amr: Vec<Amr>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a code's first use issued, recorded in the same step that uses it, so that a second
/// use can revoke it (RFC 6749 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRedemption {
    /// The refresh-token family started, if the client may refresh.
    pub family_id: Option<FamilyId>,
    /// The access token's `jti` and expiry.
    pub access_jti: String,
    pub access_expires_at: UnixTime,
}

/// What became of presenting a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    /// It was unused and unexpired: now it is used, and `redemption` recorded.
    Redeemed(AuthorizationCode),
    /// It had been used: what its first use issued.
    Replayed {
        client_id: ClientId,
        first: CodeRedemption,
    },
    /// Unknown or expired.
    Unknown,
}

/// A user's consent to a client: the scopes approved so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub user_id: UserId,
    pub client_id: ClientId,
    pub scope: Scope,
    pub granted_at: UnixTime,
}

#[cfg(test)]
mod amr_tests {
    use super::*;

    #[test]
    fn a_provider_is_stored_apart_from_the_methods_and_read_back() {
        let google = Amr::Idp(ProviderId::parse("google").unwrap());
        assert_eq!(google.as_str(), "google");
        assert_eq!(google.stored(), "idp:google");
        assert_eq!(Amr::from_stored("idp:google"), Some(google.clone()));
        assert_eq!(Amr::from_stored("fed"), Some(Amr::Fed));
        // A bare provider id is not a method, and a stored method is never a provider.
        assert_eq!(Amr::from_stored("google"), None);
        assert_eq!(Amr::from_stored("idp:"), None);
        assert_eq!(Amr::parse("idp:google"), None);
        // `fed` comes before the provider once sorted.
        let mut amr = vec![google.clone(), Amr::Fed];
        amr.sort_unstable();
        assert_eq!(amr, vec![Amr::Fed, google]);
        assert!(RFC_8176_VALUES
            .iter()
            .all(|v| Amr::from_stored(v).is_none() || Amr::parse(v).is_some()));
    }
}
