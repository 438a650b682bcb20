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

/// A rotation for a client with a refresh grace window (README, Tokens): what the family keeps
/// of the presented token until `until`, so that presenting it again within the window (by
/// the same client, at most `uses` times) answers the same successor instead of counting as
/// reuse.
#[derive(Clone)]
pub struct RetryGrace {
    /// The end of the window: the presented token's first use plus the client's grace seconds.
    pub until: UnixTime,
    /// The retries the client admits now (its `refresh_grace_uses`); a retry is admitted while
    /// the family has used fewer.
    pub uses: i64,
    /// The successor refresh token (the one this rotation issues), sealed under a key derived
    /// from the master key and bound to the family and the successor's generation.
    pub sealed_successor: String,
}

impl std::fmt::Debug for RetryGrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryGrace")
            .field("until", &self.until)
            .field("uses", &self.uses)
            .field("sealed_successor", &"[redacted]")
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
    /// Within a refresh grace window: the hash of the previous generation's secret, the end of
    /// the window and the retries it has admitted.
    pub previous_token_hash: Option<String>,
    pub grace_until: Option<UnixTime>,
    pub grace_retries: i64,
    /// When the user last proved who they are for this session: the SSO session's sign-in
    /// time for a browser sign-in, else when the family started (the grant that signed in).
    pub signed_in_at: UnixTime,
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

    /// Is `presented` the previous generation, its grace window still open at `now`?
    pub fn in_grace_window(&self, presented: &PresentedToken, now: UnixTime) -> bool {
        presented.family_id == self.id
            && presented.generation.checked_add(1) == Some(self.generation)
            && self.grace_until.is_some_and(|until| until > now)
            && self.previous_token_hash.as_ref().is_some_and(|h| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    presented.token_hash.as_bytes(),
                    h.as_bytes(),
                ))
            })
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
    /// The previous generation, presented again inside its grace window by the same client
    /// with retries left: nothing rotated, the retry was counted, and the successor the first
    /// use issued is answered again.
    Retried(RetriedFamily),
}

/// A retry inside a refresh grace window (`RotateOutcome::Retried`).
#[derive(Clone)]
pub struct RetriedFamily {
    /// The family as a rotation would answer it; `generation` is the successor's.
    pub info: FamilyInfo,
    /// The successor refresh token, sealed (`RetryGrace::sealed_successor`).
    pub sealed_successor: String,
    /// Retries admitted so far in this window, this one included (1 for the first retry).
    pub retries: i64,
}

impl std::fmt::Debug for RetriedFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetriedFamily")
            .field("info", &self.info)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}
