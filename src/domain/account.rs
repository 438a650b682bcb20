//! Single-use account tokens (sent by mail) and audit events.

use super::{ClientId, Email, UserId, ValidationError};
use crate::clock::UnixTime;

/// What an emailed single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountTokenPurpose {
    VerifyEmail,
    PasswordReset,
    MagicLink,
    Invite,
}

impl AccountTokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::MagicLink => "magic_link",
            Self::Invite => "invite",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        [
            Self::VerifyEmail,
            Self::PasswordReset,
            Self::MagicLink,
            Self::Invite,
        ]
        .into_iter()
        .find(|p| p.as_str() == raw)
        .ok_or_else(|| ValidationError::new("purpose", format!("unknown purpose {raw:?}")))
    }
}

/// An account token as stored: only hashes of its secrets.
#[derive(Clone)]
pub struct AccountToken {
    pub id: String,
    pub purpose: AccountTokenPurpose,
    /// SHA-256 hex of the secret in the link.
    pub token_hash: String,
    /// HMAC of the short code (magic links only).
    pub code_hash: Option<String>,
    /// The user it is for (`None` for invitations).
    pub user_id: Option<UserId>,
    pub email: Email,
    /// The client a magic link signs in to.
    pub client_id: Option<ClientId>,
    /// Purpose-specific data (an invitation's roles).
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Wrong codes presented so far.
    pub attempts: i64,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

impl std::fmt::Debug for AccountToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountToken")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What became of a code presented for the newest live magic link of an address.
#[derive(Debug)]
pub enum CodeOutcome {
    /// The code matched: the token is used up now.
    Consumed(Box<AccountToken>),
    /// Wrong code; the token dies once `attempts` reaches the limit.
    Wrong,
    /// No live magic link for the address.
    NoToken,
}

/// One security event for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    pub at: UnixTime,
    /// `signup`, `login_succeeded`, `login_failed`, `lockout`, ... (README, Audit trail).
    pub event: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Event-specific facts (never a secret).
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// An audit event as logged, with its position in the trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoggedAuditEvent {
    pub id: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// Which audit events to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events after this id (following the trail).
    pub after_id: Option<i64>,
    pub user_id: Option<String>,
    pub event: Option<String>,
    /// At most this many, the newest ones (returned oldest first).
    pub limit: i64,
}

/// Where a request came from, for throttling and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    pub ip: std::net::IpAddr,
    /// At most `MAX_USER_AGENT` bytes, control characters removed.
    pub user_agent: Option<String>,
}

impl RequestOrigin {
    pub const MAX_USER_AGENT: usize = 256;

    pub fn new(ip: std::net::IpAddr, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut s: String = ua.chars().filter(|c| !c.is_control()).collect();
            if s.len() > Self::MAX_USER_AGENT {
                let mut cut = Self::MAX_USER_AGENT;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
            }
            s
        });
        Self { ip, user_agent }
    }

    /// For operator actions (CLI): no network origin.
    pub fn local() -> Self {
        Self {
            ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            user_agent: Some("latchkey-cli".into()),
        }
    }
}
