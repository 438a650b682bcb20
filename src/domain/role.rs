use super::{Permission, RoleName};
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    pub name: RoleName,
    pub description: Option<String>,
    pub permissions: Vec<Permission>,
    pub created_at: UnixTime,
}
