use super::{Permission, RoleName};
use crate::clock::UnixTime;

crate::string_newtype! {
    /// A role id (UUID, text form): the stored key of a role, never shown to callers.
    pub struct RoleId;
}

impl RoleId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// For values read back from our own storage.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: RoleId,
    pub name: RoleName,
    pub description: Option<String>,
    pub permissions: Vec<Permission>,
    /// Its holders must sign in with a second factor (issue 15: `--require-mfa`).
    pub require_mfa: bool,
    pub created_at: UnixTime,
}
