use std::collections::BTreeSet;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::client_registry::ClientRegistry;
use super::password_rules::PasswordRules;
use super::revocation::RevocationService;
use crate::clock::{rfc3339, Clock};
use crate::crypto::{random_token, sha256_hex, PasswordHasher};
use crate::domain::{
    Audience, Client, ClientId, ClientKind, ClientTokenSettings, Email, GrantType, PasswordContext,
    Permission, PolicyViolation, Role, RoleName, Scope, User, UserFilter, UserId, ValidationError,
};
use crate::storage::{NewUserRecord, StorageError, UserPatch};

use super::Stores;

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

#[derive(Debug, Clone, serde::Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub is_active: bool,
    pub email_verified: bool,
    pub has_password: bool,
    pub must_change_password: bool,
    pub roles: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
}

impl UserView {
    fn new(u: User, roles: Vec<String>) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.to_string(),
            username: u.username,
            display_name: u.display_name,
            is_active: u.is_active,
            email_verified: u.email_verified,
            has_password: u.password_hash.is_some(),
            must_change_password: u.must_change_password,
            roles,
            attributes: u.attributes,
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            last_login_at: u.last_login_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub created_at: String,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        Self {
            id: r.id,
            name: r.name.to_string(),
            description: r.description,
            permissions: r.permissions.iter().map(ToString::to_string).collect(),
            created_at: rfc3339(r.created_at),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub kind: &'static str,
    pub enabled: bool,
    pub grant_types: Vec<&'static str>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_idle_ttl: Option<i64>,
    pub refresh_absolute_ttl: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.id.to_string(),
            name: c.name.clone(),
            kind: c.kind.as_str(),
            enabled: c.enabled,
            grant_types: c.grant_types.iter().map(|g| g.as_str()).collect(),
            scopes: c.scopes.iter().map(str::to_owned).collect(),
            redirect_uris: c.redirect_uris.clone(),
            audiences: c.audiences.iter().map(|a| a.as_str().to_owned()).collect(),
            default_audience: c.default_audience.as_ref().map(|a| a.as_str().to_owned()),
            access_token_ttl: c.token_settings.access_token_ttl,
            refresh_idle_ttl: c.token_settings.refresh_idle_ttl,
            refresh_absolute_ttl: c.token_settings.refresh_absolute_ttl,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// A client as created: the secret is shown this once and never stored in clear.
#[derive(serde::Serialize)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

pub struct NewUserInput {
    pub email: String,
    pub password: Option<SecretString>,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    pub active: bool,
    pub email_verified: bool,
    pub attributes: Option<serde_json::Value>,
}

#[derive(Default)]
pub struct UserUpdate {
    pub active: Option<bool>,
    pub email_verified: Option<bool>,
    pub display_name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub attributes: Option<serde_json::Value>,
    /// The user may sign in only to change the password (`password_change_required`).
    pub must_change_password: Option<bool>,
}

pub struct NewClientInput {
    pub client_id: Option<String>,
    pub name: String,
    pub kind: ClientKind,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub token_settings: ClientTokenSettings,
}

/// Operator use cases: users, roles and clients.
pub struct AdminService {
    stores: Stores,
    hasher: PasswordHasher,
    clients: Arc<ClientRegistry>,
    revocations: Arc<RevocationService>,
    clock: Arc<dyn Clock>,
    password_rules: Arc<PasswordRules>,
}

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
    pub fn new(
        stores: Stores,
        hasher: PasswordHasher,
        clients: Arc<ClientRegistry>,
        revocations: Arc<RevocationService>,
        clock: Arc<dyn Clock>,
        password_rules: Arc<PasswordRules>,
    ) -> Self {
        Self {
            stores,
            hasher,
            clients,
            revocations,
            clock,
            password_rules,
        }
    }

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

    async fn role_by_name(&self, name: &str) -> Result<Role, AdminError> {
        let name = RoleName::parse(name)?;
        self.stores
            .roles
            .find_by_name(&name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("role {name}")))
    }

    /// Finds a user by id or email.
    pub async fn find_user(&self, ident: &str) -> Result<User, AdminError> {
        let found = if let Ok(id) = UserId::parse(ident) {
            self.stores.users.find_by_id(&id).await?
        } else {
            let email = Email::parse(ident)?;
            self.stores.users.find_by_email(email.as_str()).await?
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
            email,
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

    pub async fn list_users(&self, filter: &UserFilter) -> Result<Vec<UserView>, AdminError> {
        let users = self.stores.users.list(filter).await?;
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            out.push(self.view(u).await?);
        }
        Ok(out)
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
        let patch = UserPatch {
            is_active: update.active,
            email_verified: update.email_verified,
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
                        email: Some(user.email.as_str()),
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
            self.stores.audit.scrub_user(user.id.as_str()).await?;
            Ok(())
        } else {
            Err(AdminError::NotFound(format!("user {ident}")))
        }
    }

    pub async fn create_role(
        &self,
        name: &str,
        permissions: &[String],
        description: Option<String>,
    ) -> Result<RoleView, AdminError> {
        let role = Role {
            id: uuid::Uuid::new_v4().to_string(),
            name: RoleName::parse(name)?,
            description,
            permissions: permissions
                .iter()
                .map(|p| Permission::parse(p))
                .collect::<Result<BTreeSet<_>, _>>()?
                .into_iter()
                .collect(),
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

    pub async fn delete_role(&self, name: &str) -> Result<(), AdminError> {
        let role = self.role_by_name(name).await?;
        self.stores.roles.delete(&role.id).await?;
        Ok(())
    }

    fn new_secret() -> (String, String) {
        let secret = random_token(32);
        let hash = sha256_hex(secret.as_bytes());
        (secret, hash)
    }

    pub async fn create_client(&self, input: NewClientInput) -> Result<CreatedClient, AdminError> {
        let id = match input.client_id.as_deref() {
            Some(id) => ClientId::parse(id)?,
            None => ClientId::generate(),
        };
        let grant_types = input
            .grant_types
            .iter()
            .map(|g| GrantType::parse(g))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if let Some(g) = grant_types.iter().find(|g| !GrantType::SERVED.contains(g)) {
            return Err(
                ValidationError::new("grant_types", format!("{g} is not served yet")).into(),
            );
        }
        let (secret, secret_hash) = match input.kind {
            ClientKind::Confidential => {
                let (s, h) = Self::new_secret();
                (Some(s), Some(h))
            }
            ClientKind::Public => (None, None),
        };
        let now = self.clock.now();
        let client = Client {
            id,
            name: input.name.trim().to_owned(),
            kind: input.kind,
            secret_hash,
            enabled: true,
            grant_types,
            scopes: Scope::from_tokens(&input.scopes)?,
            redirect_uris: input.redirect_uris,
            audiences: input
                .audiences
                .iter()
                .map(|a| Audience::parse(a))
                .collect::<Result<Vec<_>, _>>()?,
            default_audience: input
                .default_audience
                .as_deref()
                .map(Audience::parse)
                .transpose()?,
            token_settings: input.token_settings,
            created_at: now,
            updated_at: now,
        };
        client.validate()?;
        self.stores.clients.create(&client).await?;
        Ok(CreatedClient {
            client: ClientView::from(&client),
            client_secret: secret,
        })
    }

    async fn find_client(&self, id: &str) -> Result<Client, AdminError> {
        let cid = ClientId::parse(id)?;
        self.stores
            .clients
            .find(&cid)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("client {id}")))
    }

    pub async fn list_clients(&self) -> Result<Vec<ClientView>, AdminError> {
        Ok(self
            .stores
            .clients
            .list()
            .await?
            .iter()
            .map(ClientView::from)
            .collect())
    }

    pub async fn show_client(&self, id: &str) -> Result<ClientView, AdminError> {
        Ok(ClientView::from(&self.find_client(id).await?))
    }

    pub async fn set_client_enabled(
        &self,
        id: &str,
        enabled: bool,
    ) -> Result<ClientView, AdminError> {
        let client = self.find_client(id).await?;
        self.stores
            .clients
            .set_enabled(&client.id, enabled, self.clock.now())
            .await?;
        self.clients.invalidate(&client.id);
        // Also when the client was already disabled: a retry repairs a revocation that failed.
        if !enabled {
            self.revoke_client_tokens(&client.id, "client disabled")
                .await?;
        }
        self.show_client(id).await
    }

    /// Every token the client holds, issued until now, stops working: access tokens through
    /// the client watermark in the revocation log, refresh tokens at once.
    async fn revoke_client_tokens(&self, id: &ClientId, reason: &str) -> Result<(), AdminError> {
        self.revocations
            .revoke_client(id, reason)
            .await
            .map_err(|e| AdminError::Unexpected(e.into()))
    }

    /// Issues a new secret; the old one stops working at once (within the client cache delay
    /// on other processes), and so does every token obtained until now.
    pub async fn rotate_client_secret(&self, id: &str) -> Result<CreatedClient, AdminError> {
        let client = self.find_client(id).await?;
        if client.kind != ClientKind::Confidential {
            return Err(ValidationError::new("client", "a public client has no secret").into());
        }
        let (secret, hash) = Self::new_secret();
        self.stores
            .clients
            .set_secret_hash(&client.id, &hash, self.clock.now())
            .await?;
        self.clients.invalidate(&client.id);
        self.revoke_client_tokens(&client.id, "client secret rotated")
            .await?;
        Ok(CreatedClient {
            client: self.show_client(id).await?,
            client_secret: Some(secret),
        })
    }

    pub async fn delete_client(&self, id: &str) -> Result<(), AdminError> {
        let client = self.find_client(id).await?;
        // Before the client is gone, so that a failure can be retried.
        self.revoke_client_tokens(&client.id, "client deleted")
            .await?;
        self.stores.clients.delete(&client.id).await?;
        self.clients.invalidate(&client.id);
        Ok(())
    }
}
