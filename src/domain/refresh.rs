use super::{ClientId, Scope, UserId};
use crate::clock::UnixTime;

/// A refresh-token family: every token obtained by rotating from one login.
#[derive(Debug, Clone)]
pub struct NewFamily {
    pub id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: Scope,
    pub audience: String,
    pub created_at: UnixTime,
    /// The absolute lifetime: no token of the family is valid after it.
    pub absolute_expires_at: UnixTime,
}

/// One refresh token, stored only as the SHA-256 of its value.
#[derive(Clone)]
pub struct NewRefreshToken {
    pub id: String,
    pub token_hash: String,
    pub created_at: UnixTime,
    /// Idle expiry; the store caps it at the family's absolute expiry.
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRefreshToken")
            .field("id", &self.id)
            .field("token_hash", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What the family of a successfully rotated token grants.
#[derive(Debug, Clone)]
pub struct FamilyInfo {
    pub family_id: String,
    pub user_id: UserId,
    pub scope: Scope,
    pub audience: String,
    /// Generation of the newly issued token (the first token of a family is generation 0).
    pub generation: i64,
    pub expires_at: UnixTime,
    /// The user's role names and permissions, read in the same step (sorted, unique).
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
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
}

#[derive(Debug, Clone)]
pub enum RotateOutcome {
    Rotated(FamilyInfo),
    /// The token had already been rotated: the whole family is now revoked (RFC 9700 §4.14.2).
    Reused {
        family_id: String,
    },
    Rejected(RefreshRejection),
}
