use super::{Amr, ClientId, Scope, SessionId, UserId};
use crate::clock::UnixTime;

crate::string_newtype! {
    /// A refresh-token family id (hyphenated UUID); also the session id (`sid`) of the
    /// tokens issued from that login.
    pub struct FamilyId;
}

impl FamilyId {
    pub fn generate() -> Self {
        Self::from_uuid(uuid::Uuid::new_v4())
    }

    /// The family of a presented token, whose id it carries as a UUID.
    pub fn from_uuid(id: uuid::Uuid) -> Self {
        Self(id.hyphenated().to_string())
    }

    /// For a family id taken from a token we issued, or read back from our own storage.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

/// A refresh-token family: every token obtained by rotating from one login. The store keeps
/// one row per family holding the hash of the current generation's secret.
#[derive(Clone)]
pub struct NewFamily {
    pub id: FamilyId,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: Scope,
    pub audience: String,
    pub created_at: UnixTime,
    /// The absolute lifetime: no token of the family is valid after it.
    pub absolute_expires_at: UnixTime,
    /// The first (generation 0) token.
    pub first: NextGeneration,
    /// For a browser sign-in (authorization code flow): the SSO session it came from.
    pub sign_in: Option<FamilySignIn>,
}

/// The browser sign-in a family was started from: ID tokens issued on refresh repeat its
/// `sid`, `auth_time` and `amr`, and ending the session ends the family unless it was granted
/// `offline_access` (OIDC Core §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilySignIn {
    pub session_id: SessionId,
    pub auth_time: UnixTime,
    pub amr: Vec<Amr>,
    pub offline_access: bool,
}

impl std::fmt::Debug for NewFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewFamily")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .field("absolute_expires_at", &self.absolute_expires_at)
            .finish_non_exhaustive()
    }
}

/// The token a rotation issues (or a family starts with), stored only as the SHA-256 of its
/// secret.
#[derive(Clone)]
pub struct NextGeneration {
    pub token_hash: String,
    /// Idle expiry; the store caps it at the family's absolute expiry.
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for NextGeneration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextGeneration")
            .field("token_hash", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The presented token, as the store needs it: its family, generation and secret hash.
#[derive(Clone)]
pub struct PresentedToken {
    pub family_id: FamilyId,
    pub generation: i64,
    pub token_hash: String,
}

impl std::fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedToken")
            .field("family_id", &self.family_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A family as stored, for introspection and diagnosis.
#[derive(Clone)]
pub struct FamilyRecord {
    pub id: FamilyId,
    pub client_id: String,
    pub user_id: UserId,
    pub scope: String,
    pub audience: String,
    /// Generation of the current (only valid) token.
    pub generation: i64,
    pub token_hash: String,
    /// Idle expiry of the current token.
    pub expires_at: UnixTime,
    pub created_at: UnixTime,
    /// When the current generation was issued.
    pub issued_at: UnixTime,
    pub absolute_expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    pub user_active: bool,
}

impl std::fmt::Debug for FamilyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilyRecord")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("generation", &self.generation)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl FamilyRecord {
    /// Is `presented` the family's current token, valid at `now`?
    pub fn is_current(&self, presented: &PresentedToken, now: UnixTime) -> bool {
        presented.family_id == self.id
            && presented.generation == self.generation
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                presented.token_hash.as_bytes(),
                self.token_hash.as_bytes(),
            ))
            && self.revoked_at.is_none()
            && self.expires_at > now
            && self.absolute_expires_at > now
            && self.user_active
    }
}

/// What the family of a successfully rotated token grants.
#[derive(Debug, Clone)]
pub struct FamilyInfo {
    pub family_id: FamilyId,
    pub user_id: UserId,
    pub scope: Scope,
    pub audience: String,
    /// Generation of the newly issued token (the first token of a family is generation 0).
    pub generation: i64,
    pub expires_at: UnixTime,
    /// The user's role names and permissions, read in the same step (sorted, unique).
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    /// The browser sign-in the family was started from, if any.
    pub sign_in: Option<FamilySignIn>,
}

/// Why a presented refresh token was not accepted (not reuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRejection {
    Unknown,
    WrongClient,
    Expired,
    Revoked,
    UserInactive,
    /// The requested scope is not within the family's scope; the token was not used up.
    ScopeExceeded,
    /// The requested audience is not the one the family was granted at sign-in (RFC 8707
    /// §2.2); the token was not used up.
    AudienceMismatch,
}

#[derive(Debug, Clone)]
pub enum RotateOutcome {
    Rotated(FamilyInfo),
    /// The token had already been rotated: the whole family is now revoked (RFC 9700 §4.14.2).
    Reused {
        family_id: FamilyId,
        /// No token of the family outlives this (for the denylist entry).
        absolute_expires_at: UnixTime,
    },
    Rejected(RefreshRejection),
}
