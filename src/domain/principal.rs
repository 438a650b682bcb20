//! The authenticated caller of an endpoint: whom the presented bearer token speaks for, the
//! client it was issued to, the session it belongs to and the scope it carries.

use super::{ClientId, FamilyId, Scope, UserId};
use crate::clock::UnixTime;

/// Whom a bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A user who signed in.
    User(UserId),
    /// A client, for itself (client credentials).
    Client,
}

/// The access token a caller presented, as far as revoking it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedAccessToken {
    pub jti: String,
    pub expires_at: UnixTime,
}

/// The authenticated caller: built by the HTTP layer from a verified bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: Subject,
    pub client_id: ClientId,
    /// The session (refresh-token family) the token was issued from, if any.
    pub session: Option<FamilyId>,
    pub scope: Scope,
    pub token: PresentedAccessToken,
}

impl Principal {
    /// The user the caller speaks for; `None` for a client acting for itself.
    pub fn user_id(&self) -> Option<&UserId> {
        match &self.subject {
            Subject::User(id) => Some(id),
            Subject::Client => None,
        }
    }
}
