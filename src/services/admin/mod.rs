//! Operator use cases (the admin API and the CLI): users, roles and clients, one file each;
//! `views.rs` holds what they take and return.

use std::sync::Arc;

use super::client_registry::ClientRegistry;
use super::keys::KeyService;
use super::password_rules::PasswordRules;
use super::revocation::RevocationService;
use crate::clock::Clock;
use crate::crypto::PasswordHasher;
use crate::domain::{PolicyViolation, Role, RoleName, ValidationError};
use crate::storage::StorageError;

use super::Stores;

mod clients;
mod roles;
mod users;
mod views;

pub use views::{
    ClientOidcInput, ClientUpdate, ClientView, CreatedClient, NewClientInput, NewUserInput,
    RoleView, UserUpdate, UserView,
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The password breaks the policy: every broken rule.
    #[error("the password {}", .0.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; it "))]
    PasswordPolicy(Vec<PolicyViolation>),
    #[error("unexpected error: {0}")]
    Unexpected(#[source] anyhow::Error),
}

impl From<StorageError> for AdminError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(c) => AdminError::Conflict(match c.as_str() {
                "users_email_key" => "a user with this email already exists".into(),
                "users_username_key" => "a user with this username already exists".into(),
                "roles_name_key" => "a role with this name already exists".into(),
                "clients_pkey" => "a client with this id already exists".into(),
                other => format!("conflict ({other})"),
            }),
            other => AdminError::Unexpected(other.into()),
        }
    }
}

/// Operator use cases: users, roles and clients.
pub struct AdminService {
    stores: Stores,
    hasher: PasswordHasher,
    clients: Arc<ClientRegistry>,
    revocations: Arc<RevocationService>,
    clock: Arc<dyn Clock>,
    password_rules: Arc<PasswordRules>,
    /// The key ring: a client's ID-token algorithm gets an active key when it is registered.
    keys: Arc<KeyService>,
}

impl AdminService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stores: Stores,
        hasher: PasswordHasher,
        clients: Arc<ClientRegistry>,
        revocations: Arc<RevocationService>,
        clock: Arc<dyn Clock>,
        password_rules: Arc<PasswordRules>,
        keys: Arc<KeyService>,
    ) -> Self {
        Self {
            stores,
            hasher,
            clients,
            revocations,
            clock,
            password_rules,
            keys,
        }
    }

    async fn role_by_name(&self, name: &str) -> Result<Role, AdminError> {
        let name = RoleName::parse(name)?;
        self.stores
            .roles
            .find_by_name(&name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("role {name}")))
    }
}
