//! One's own profile: reading, updating and deleting the account.

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::super::audit::{detail, events, AuditContext};
use super::super::authn::Confirmation;
use super::{ctx, AccountError, AccountService, Inner};
use crate::clock::rfc3339;
use crate::domain::{Principal, RequestOrigin, User, UserId, ValidationError};
use crate::storage::UserPatch;

/// Size of the attributes object a user may keep on their profile.
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// Changes to one's own profile; `None` leaves a field alone.
#[derive(Default)]
pub struct ProfileUpdate {
    /// `Some(None)` removes it.
    pub display_name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    /// Merged into the stored attributes; a `null` value removes the key.
    pub attributes: Option<Map<String, Value>>,
}

/// What a user sees of their own account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProfileView {
    pub id: String,
    /// `None` (JSON `null`) for a user who signed up through a provider that gave no
    /// verified address.
    pub email: Option<String>,
    pub email_verified: bool,
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// Only the attributes users may set themselves.
    pub attributes: Map<String, Value>,
    pub must_change_password: bool,
    pub has_password: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

impl AccountService {
    pub async fn profile(&self, caller: &Principal) -> Result<ProfileView, AccountError> {
        let user = self.inner.caller(caller).await?;
        Ok(self.inner.view(user))
    }

    /// The profile of a user signed in on the account page.
    pub async fn profile_of(&self, user_id: &UserId) -> Result<ProfileView, AccountError> {
        let user = self.inner.active_user(user_id).await?;
        Ok(self.inner.view(user))
    }

    /// The userinfo claims (OIDC Core §5.3) of the caller's user: `sub`, and what the token's
    /// scopes grant.
    pub async fn userinfo(
        &self,
        caller: &Principal,
    ) -> Result<serde_json::Map<String, serde_json::Value>, AccountError> {
        let user = self.inner.caller(caller).await?;
        let mut claims = user.standard_claims(&caller.scope);
        claims.insert("sub".into(), user.id.as_str().into());
        Ok(claims)
    }

    pub async fn update_profile(
        &self,
        caller: &Principal,
        update: ProfileUpdate,
        origin: &RequestOrigin,
    ) -> Result<ProfileView, AccountError> {
        let i = &self.inner;
        let user = i.caller(caller).await?;
        let display_name = update
            .display_name
            .map(|d| d.as_deref().map(User::validate_display_name).transpose())
            .transpose()?;
        let username = update
            .username
            .map(|u| u.as_deref().map(User::validate_username).transpose())
            .transpose()?;
        let attributes = update
            .attributes
            .map(|a| i.own_attributes(user.attributes.clone(), a))
            .transpose()?;
        let mut changed: Vec<&str> = Vec::new();
        if display_name.is_some() {
            changed.push("display_name");
        }
        if username.is_some() {
            changed.push("username");
        }
        if attributes.is_some() {
            changed.push("attributes");
        }
        i.stores
            .users
            .update(
                &user.id,
                &UserPatch {
                    display_name,
                    username,
                    attributes,
                    ..Default::default()
                },
                i.clock.now(),
            )
            .await?;
        i.audit
            .record(
                events::PROFILE_UPDATED,
                ctx(Some(&user.id), Some(caller.client_id.as_str()), origin),
                detail([("fields", json!(changed))]),
            )
            .await;
        self.profile(caller).await
    }

    /// Deletes the caller's account after confirming the password: personal data goes (the
    /// user row and everything hanging off it; IP and user agent in its audit events), and
    /// every token is revoked.
    pub async fn delete_account(
        &self,
        caller: &Principal,
        password: SecretString,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        let user = i.caller(caller).await?;
        i.authn
            .confirm_password(
                &user,
                password,
                Some(caller.client_id.as_str()),
                origin,
                Confirmation::AccountDeletion,
            )
            .await?;
        i.revocations.revoke_user(&user.id, "deleted").await?;
        // Scrubbed first: if the deletion then fails, the account is still there to delete
        // again, and no personal data outlived it either way.
        i.audit.scrub_user(&user.id).await?;
        i.stores.users.delete(&user.id).await?;
        i.audit
            .record(
                events::ACCOUNT_DELETED,
                AuditContext {
                    user_id: Some(&user.id),
                    client_id: Some(caller.client_id.as_str()),
                    origin: None,
                },
                Map::new(),
            )
            .await;
        Ok(())
    }
}

impl AccountService {
    /// The caller proves the account's password before a new way to sign in (a provider's
    /// identity) is added to it through the API; the user's id. An account without a
    /// password adds identities on the account page instead.
    pub async fn confirm_before_linking(
        &self,
        caller: &Principal,
        password: SecretString,
        origin: &RequestOrigin,
    ) -> Result<UserId, AccountError> {
        let i = &self.inner;
        let user = i.caller(caller).await?;
        if user.password_hash.is_none() {
            return Err(AccountError::InvalidRequest(
                "this account has no password: add sign-in methods on the account page".into(),
            ));
        }
        i.authn
            .confirm_password(
                &user,
                password,
                Some(caller.client_id.as_str()),
                origin,
                Confirmation::IdentityLink,
            )
            .await?;
        Ok(user.id)
    }
}

impl Inner {
    /// The user the caller speaks for.
    pub(super) async fn caller(&self, caller: &Principal) -> Result<User, AccountError> {
        let Some(id) = caller.user_id() else {
            return Err(AccountError::NotAUser);
        };
        match self.stores.users.find_by_id(id).await? {
            Some(u) if u.is_active => Ok(u),
            // Deleted or disabled since the token was issued (its revocation may still be
            // on its way to the denylist).
            _ => Err(AccountError::AccountGone),
        }
    }

    /// An active user by id (the account page's signed-in user).
    pub(super) async fn active_user(&self, id: &UserId) -> Result<User, AccountError> {
        match self.stores.users.find_by_id(id).await? {
            Some(u) if u.is_active => Ok(u),
            _ => Err(AccountError::AccountGone),
        }
    }

    /// Merges `changes` into `current`, allowing only the configured profile attributes; a
    /// `null` removes a key.
    pub(super) fn own_attributes(
        &self,
        mut current: Map<String, Value>,
        changes: Map<String, Value>,
    ) -> Result<Map<String, Value>, AccountError> {
        for (k, v) in changes {
            if !self.policy.profile_attributes.contains(&k) {
                return Err(ValidationError::new(
                    "attributes",
                    format!("{k:?} is not an attribute users may set"),
                )
                .into());
            }
            if v.is_null() {
                current.remove(&k);
            } else {
                current.insert(k, v);
            }
        }
        if serde_json::to_string(&current)
            .map(|s| s.len())
            .unwrap_or(usize::MAX)
            > MAX_ATTRIBUTES_BYTES
        {
            return Err(
                ValidationError::new("attributes", "must be at most 16 KiB of JSON").into(),
            );
        }
        Ok(current)
    }

    pub(super) fn view(&self, u: User) -> ProfileView {
        let attributes = u
            .attributes
            .into_iter()
            .filter(|(k, _)| self.policy.profile_attributes.contains(k))
            .collect();
        ProfileView {
            id: u.id.to_string(),
            email: u.email.map(|e| e.into_string()),
            email_verified: u.email_verified,
            username: u.username,
            display_name: u.display_name,
            attributes,
            must_change_password: u.must_change_password,
            has_password: u.password_hash.is_some(),
            created_at: rfc3339(u.created_at),
            last_login_at: u.last_login_at.map(rfc3339),
        }
    }
}
