//! Roles and their permissions.

use std::collections::BTreeSet;

use super::views::RoleView;
use super::{AdminError, AdminService};
use crate::domain::{Permission, Role, RoleId, RoleName};

impl AdminService {
    pub async fn create_role(
        &self,
        name: &str,
        permissions: &[String],
        description: Option<String>,
        require_mfa: bool,
    ) -> Result<RoleView, AdminError> {
        let role = Role {
            id: RoleId::generate(),
            name: RoleName::parse(name)?,
            description,
            permissions: permissions
                .iter()
                .map(|p| Permission::parse(p))
                .collect::<Result<BTreeSet<_>, _>>()?
                .into_iter()
                .collect(),
            require_mfa,
            created_at: self.clock.now(),
        };
        self.stores.roles.create(&role).await?;
        Ok(role.into())
    }

    pub async fn list_roles(&self) -> Result<Vec<RoleView>, AdminError> {
        Ok(self
            .stores
            .roles
            .list()
            .await?
            .into_iter()
            .map(RoleView::from)
            .collect())
    }

    pub async fn show_role(&self, name: &str) -> Result<RoleView, AdminError> {
        Ok(self.role_by_name(name).await?.into())
    }

    pub async fn change_permissions(
        &self,
        name: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<RoleView, AdminError> {
        let role = self.role_by_name(name).await?;
        let parse = |v: &[String]| {
            v.iter()
                .map(|p| Permission::parse(p))
                .collect::<Result<Vec<_>, _>>()
        };
        let (add, remove) = (parse(add)?, parse(remove)?);
        if !add.is_empty() {
            self.stores.roles.add_permissions(&role.id, &add).await?;
        }
        if !remove.is_empty() {
            self.stores
                .roles
                .remove_permissions(&role.id, &remove)
                .await?;
        }
        self.show_role(name).await
    }

    /// Sets whether the role's holders must sign in with a second factor (issue 15).
    pub async fn set_role_require_mfa(
        &self,
        name: &str,
        require_mfa: bool,
    ) -> Result<RoleView, AdminError> {
        let role = self.role_by_name(name).await?;
        if !self
            .stores
            .roles
            .set_require_mfa(&role.id, require_mfa)
            .await?
        {
            return Err(AdminError::NotFound(format!("role {name}")));
        }
        self.show_role(name).await
    }

    pub async fn delete_role(&self, name: &str) -> Result<(), AdminError> {
        let role = self.role_by_name(name).await?;
        self.stores.roles.delete(&role.id).await?;
        Ok(())
    }
}
