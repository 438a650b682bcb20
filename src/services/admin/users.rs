//! Users as an operator manages them: creation, listing, updates, passwords, roles, logging
//! out everywhere and deletion.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use super::views::{NewUserInput, UserUpdate, UserView};
use super::{AdminError, AdminService};
use crate::domain::{
    Email, PasswordContext, User, UserCursor, UserFilter, UserId, ValidationError,
};
use crate::storage::{NewUserRecord, UserPatch};

fn attributes_object(
    v: serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, ValidationError> {
    match v {
        serde_json::Value::Object(m)
            if serde_json::to_string(&m).map(|s| s.len()).unwrap_or(0) <= 16 * 1024 =>
        {
            Ok(m)
        }
        serde_json::Value::Object(_) => Err(ValidationError::new(
            "attributes",
            "must be at most 16 KiB of JSON",
        )),
        _ => Err(ValidationError::new("attributes", "must be a JSON object")),
    }
}

impl AdminService {
    fn check_password(&self, password: &SecretString) -> Result<(), ValidationError> {
        let len = password.expose_secret().chars().count();
        if len == 0 || password.expose_secret().len() > self.password_rules.max_length() {
            return Err(ValidationError::new(
                "password",
                format!("must be 1 to {} bytes", self.password_rules.max_length()),
            ));
        }
        Ok(())
    }

    /// Every rule of the password policy the new password breaks, as one error.
    fn check_policy(
        &self,
        password: &SecretString,
        context: &PasswordContext<'_>,
    ) -> Result<(), AdminError> {
        let violations = self.password_rules.violations(password, context);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(AdminError::PasswordPolicy(violations))
        }
    }

    async fn hash(&self, password: SecretString) -> Result<String, AdminError> {
        self.check_password(&password)?;
        self.hasher
            .hash(password)
            .await
            .map_err(|e| AdminError::Unexpected(e.into()))
    }

    /// Every token of the user issued until now stops working (refresh tokens at once,
    /// access tokens through the denylist).
    async fn revoke_all_tokens(&self, user: &User, reason: &str) -> Result<(), AdminError> {
        self.revocations
            .revoke_user(&user.id, reason)
            .await
            .map_err(|e| AdminError::Unexpected(e.into()))
    }

    /// Finds a user by id or email.
    pub async fn find_user(&self, ident: &str) -> Result<User, AdminError> {
        let found = if let Ok(id) = UserId::parse(ident) {
            self.stores.users.find_by_id(&id).await?
        } else {
            let email = Email::parse(ident)?;
            self.stores.users.find_by_email(&email).await?
        };
        found.ok_or_else(|| AdminError::NotFound(format!("user {ident}")))
    }

    async fn view(&self, user: User) -> Result<UserView, AdminError> {
        let roles = self.stores.users.role_names(&user.id).await?;
        Ok(UserView::new(user, roles))
    }

    pub async fn create_user(&self, input: NewUserInput) -> Result<UserView, AdminError> {
        let email = Email::parse(&input.email)?;
        let username = input
            .username
            .as_deref()
            .map(User::validate_username)
            .transpose()?;
        let display_name = input
            .display_name
            .as_deref()
            .map(User::validate_display_name)
            .transpose()?;
        let attributes = input
            .attributes
            .map(attributes_object)
            .transpose()?
            .unwrap_or_default();
        let mut role_ids = Vec::new();
        for r in &input.roles {
            role_ids.push(self.role_by_name(r).await?.id);
        }
        let password_hash = match input.password {
            Some(p) => {
                self.check_policy(
                    &p,
                    &PasswordContext {
                        email: Some(email.as_str()),
                        username: username.as_deref(),
                        display_name: display_name.as_deref(),
                    },
                )?;
                Some(self.hash(p).await?)
            }
            None => None,
        };
        let now = self.clock.now();
        let user = User {
            id: UserId::generate(),
            email: Some(email),
            username,
            display_name,
            is_active: input.active,
            email_verified: input.email_verified,
            password_hash,
            attributes,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            must_change_password: false,
            password_changed_at: None,
        };
        self.stores
            .users
            .create(&NewUserRecord {
                user: user.clone(),
                role_ids,
            })
            .await?;
        self.view(user).await
    }

    /// One page of users in creation order (then id): after the user `after` (keyset paging:
    /// the id of the last user of the previous page) or past `filter.offset` users, not both.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        after: Option<&UserId>,
    ) -> Result<Vec<UserView>, AdminError> {
        let mut filter = filter.clone();
        if let Some(s) = &filter.email_contains {
            if s.len() > 320 || s.chars().any(|c| c.is_ascii_control()) {
                return Err(ValidationError::new(
                    "email_contains",
                    "must be at most 320 bytes, without control characters",
                )
                .into());
            }
        }
        if let Some(id) = after {
            if filter.offset > 0 {
                return Err(ValidationError::new("after", "cannot be combined with offset").into());
            }
            let Some(last) = self.stores.users.find_by_id(id).await? else {
                return Err(ValidationError::new(
                    "after",
                    "names no user (give the id of the last user of the previous page)",
                )
                .into());
            };
            filter.after = Some(UserCursor::of(&last));
        }
        let users = self.stores.users.list(&filter).await?;
        let ids: Vec<UserId> = users.iter().map(|u| u.id.clone()).collect();
        let mut roles: HashMap<UserId, Vec<String>> = HashMap::new();
        for (id, name) in self.stores.users.role_names_of(&ids).await? {
            roles.entry(id).or_default().push(name);
        }
        Ok(users
            .into_iter()
            .map(|u| {
                let r = roles.remove(&u.id).unwrap_or_default();
                UserView::new(u, r)
            })
            .collect())
    }

    pub async fn show_user(&self, ident: &str) -> Result<UserView, AdminError> {
        let user = self.find_user(ident).await?;
        self.view(user).await
    }

    pub async fn update_user(
        &self,
        ident: &str,
        update: UserUpdate,
    ) -> Result<UserView, AdminError> {
        let user = self.find_user(ident).await?;
        let email = update.email.as_deref().map(Email::parse).transpose()?;
        // A changed address is not verified until the user proves it (or the operator says
        // so); links mailed to the old address stop working, as they name it.
        let changed = email
            .as_ref()
            .is_some_and(|e| user.email.as_ref() != Some(e));
        let patch = UserPatch {
            is_active: update.active,
            email_verified: update.email_verified.or(changed.then_some(false)),
            email: email.map(Some),
            display_name: update
                .display_name
                .map(|d| d.as_deref().map(User::validate_display_name).transpose())
                .transpose()?,
            username: update
                .username
                .map(|u| u.as_deref().map(User::validate_username).transpose())
                .transpose()?,
            attributes: update.attributes.map(attributes_object).transpose()?,
            must_change_password: update.must_change_password,
        };
        if !self
            .stores
            .users
            .update(&user.id, &patch, self.clock.now())
            .await?
        {
            return Err(AdminError::NotFound(format!("user {ident}")));
        }
        // Also when the user was already inactive: a retry repairs a revocation that failed.
        if update.active == Some(false) {
            self.revoke_all_tokens(&user, "deactivated").await?;
        }
        // A forced change is often a response to a suspected compromise: sessions end too.
        if update.must_change_password == Some(true) {
            self.revoke_all_tokens(&user, "password change required")
                .await?;
        }
        self.show_user(user.id.as_str()).await
    }

    /// Sets (or with `None`, removes) a user's password.
    pub async fn set_password(
        &self,
        ident: &str,
        password: Option<SecretString>,
    ) -> Result<(), AdminError> {
        let user = self.find_user(ident).await?;
        let hash = match password {
            Some(p) => {
                self.check_policy(
                    &p,
                    &PasswordContext {
                        email: user.email.as_ref().map(Email::as_str),
                        username: user.username.as_deref(),
                        display_name: user.display_name.as_deref(),
                    },
                )?;
                Some(self.hash(p).await?)
            }
            None => None,
        };
        self.stores
            .users
            .set_password_hash(&user.id, hash.as_deref(), self.clock.now())
            .await?;
        self.revoke_all_tokens(&user, "password set").await
    }

    /// Logs a user out everywhere, leaving the account usable.
    pub async fn revoke_user_tokens(&self, ident: &str) -> Result<(), AdminError> {
        let user = self.find_user(ident).await?;
        self.revoke_all_tokens(&user, "revoked by an operator")
            .await
    }

    pub async fn grant_roles(&self, ident: &str, roles: &[String]) -> Result<UserView, AdminError> {
        let user = self.find_user(ident).await?;
        for r in roles {
            let role = self.role_by_name(r).await?;
            self.stores.users.grant_role(&user.id, &role.id).await?;
        }
        self.view(user).await
    }

    pub async fn revoke_roles(
        &self,
        ident: &str,
        roles: &[String],
    ) -> Result<UserView, AdminError> {
        let user = self.find_user(ident).await?;
        for r in roles {
            let role = self.role_by_name(r).await?;
            self.stores.users.revoke_role(&user.id, &role.id).await?;
        }
        self.view(user).await
    }

    pub async fn delete_user(&self, ident: &str) -> Result<(), AdminError> {
        let user = self.find_user(ident).await?;
        self.revoke_all_tokens(&user, "deleted").await?;
        if self.stores.users.delete(&user.id).await? {
            // Its audit events keep what happened, not where from (as for self-deletion).
            self.stores.audit.scrub_user(&user.id).await?;
            Ok(())
        } else {
            Err(AdminError::NotFound(format!("user {ident}")))
        }
    }
}
