use crate::clock::UnixTime;

/// One entry of the denylist and of the revocation feed. Each is kept until `expires_at`, the
/// time after which no token it covers can still be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One access token, by `jti`, until its `exp`.
    AccessToken { jti: String, expires_at: UnixTime },
    /// Every access token of a refresh-token family (the `sid` claim).
    Family {
        family_id: String,
        expires_at: UnixTime,
    },
    /// Every token of a user issued at or before `not_after` (`iat <= not_after`): log out
    /// everywhere, password change, account disabled or deleted.
    User {
        user_id: String,
        not_after: UnixTime,
        expires_at: UnixTime,
    },
    /// Every access token of a client (its `client_id` claim, user tokens included) issued at
    /// or before `not_after`: the client was disabled, deleted or given a new secret.
    Client {
        client_id: String,
        not_after: UnixTime,
        expires_at: UnixTime,
    },
}

impl Revocation {
    pub fn kind(&self) -> RevocationKind {
        match self {
            Revocation::AccessToken { .. } => RevocationKind::AccessToken,
            Revocation::Family { .. } => RevocationKind::Family,
            Revocation::User { .. } => RevocationKind::User,
            Revocation::Client { .. } => RevocationKind::Client,
        }
    }

    /// The jti, family id, user id or client id.
    pub fn subject(&self) -> &str {
        match self {
            Revocation::AccessToken { jti, .. } => jti,
            Revocation::Family { family_id, .. } => family_id,
            Revocation::User { user_id, .. } => user_id,
            Revocation::Client { client_id, .. } => client_id,
        }
    }

    pub fn expires_at(&self) -> UnixTime {
        match self {
            Revocation::AccessToken { expires_at, .. }
            | Revocation::Family { expires_at, .. }
            | Revocation::User { expires_at, .. }
            | Revocation::Client { expires_at, .. } => *expires_at,
        }
    }

    /// The watermark of a user or client entry; `None` for the others.
    pub fn not_after(&self) -> Option<UnixTime> {
        match self {
            Revocation::User { not_after, .. } | Revocation::Client { not_after, .. } => {
                Some(*not_after)
            }
            _ => None,
        }
    }

    /// Rebuilds an entry from its stored parts.
    pub fn from_parts(
        kind: RevocationKind,
        subject: String,
        not_after: Option<UnixTime>,
        expires_at: UnixTime,
    ) -> Self {
        match kind {
            RevocationKind::AccessToken => Revocation::AccessToken {
                jti: subject,
                expires_at,
            },
            RevocationKind::Family => Revocation::Family {
                family_id: subject,
                expires_at,
            },
            RevocationKind::User => Revocation::User {
                user_id: subject,
                not_after: not_after.unwrap_or(expires_at),
                expires_at,
            },
            RevocationKind::Client => Revocation::Client {
                client_id: subject,
                not_after: not_after.unwrap_or(expires_at),
                expires_at,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    AccessToken,
    Family,
    User,
    Client,
}

impl RevocationKind {
    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::AccessToken => "access_token",
            RevocationKind::Family => "session",
            RevocationKind::User => "user",
            RevocationKind::Client => "client",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "access_token" => Some(RevocationKind::AccessToken),
            "session" => Some(RevocationKind::Family),
            "user" => Some(RevocationKind::User),
            "client" => Some(RevocationKind::Client),
            _ => None,
        }
    }
}

/// A revocation as logged, with its position in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRevocation {
    pub seq: i64,
    pub revoked_at: UnixTime,
    pub revocation: Revocation,
}

/// What identifies an access token to the denylist.
#[derive(Debug, Clone, Copy)]
pub struct TokenIdentity<'a> {
    pub jti: &'a str,
    pub sid: Option<&'a str>,
    pub sub: &'a str,
    /// The `client_id` claim: the client the token was issued to.
    pub client_id: &'a str,
    pub iat: UnixTime,
}
