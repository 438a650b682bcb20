use super::{Email, RoleName, ValidationError};
use crate::clock::UnixTime;

crate::string_newtype! {
    /// A user id (UUID, text form).
    pub struct UserId;
}

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        uuid::Uuid::parse_str(raw)
            .map(|u| Self(u.to_string()))
            .map_err(|_| ValidationError::new("user_id", "must be a UUID"))
    }

    /// For values read back from our own storage.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

#[derive(Clone)]
pub struct User {
    pub id: UserId,
    /// `None` for a user who signed up through a provider that gave no verified address
    /// (GitHub without one): such a user signs in through that provider only.
    pub email: Option<Email>,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub is_active: bool,
    pub email_verified: bool,
    /// PHC string; `None` for federated-only users.
    pub password_hash: Option<String>,
    /// App-specific fields (a JSON object).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub last_login_at: Option<UnixTime>,
    /// Set by an operator: the user may sign in only to change the password.
    pub must_change_password: bool,
    pub password_changed_at: Option<UnixTime>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("is_active", &self.is_active)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl User {
    /// The standard claims (OIDC Core §5.4) the scope grants: `profile` gives `name`,
    /// `preferred_username` and `updated_at`; `email` gives `email` and `email_verified`.
    /// For ID tokens and the userinfo endpoint.
    pub fn standard_claims(
        &self,
        scope: &super::Scope,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut claims = serde_json::Map::new();
        if scope.contains("profile") {
            if let Some(name) = &self.display_name {
                claims.insert("name".into(), name.clone().into());
            }
            let preferred = self
                .username
                .as_deref()
                .or(self.email.as_ref().map(Email::as_str));
            if let Some(preferred) = preferred {
                claims.insert("preferred_username".into(), preferred.into());
            }
            claims.insert("updated_at".into(), self.updated_at.into());
        }
        // A user without an address has neither claim (OIDC Core §5.1: claims without a
        // value are omitted, not sent as null).
        if let (true, Some(email)) = (scope.contains("email"), &self.email) {
            claims.insert("email".into(), email.as_str().into());
            claims.insert("email_verified".into(), self.email_verified.into());
        }
        claims
    }

    pub fn validate_username(raw: &str) -> Result<String, ValidationError> {
        let s = raw.trim();
        if s.is_empty() || s.len() > 150 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValidationError::new(
                "username",
                "must be 1 to 150 characters without whitespace",
            ));
        }
        Ok(s.to_owned())
    }

    pub fn validate_display_name(raw: &str) -> Result<String, ValidationError> {
        let s = raw.trim();
        if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "display_name",
                "must be 1 to 200 printable characters",
            ));
        }
        Ok(s.to_owned())
    }
}

/// The claims a user's roles carry into tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserClaims {
    pub is_active: bool,
    /// Sorted, unique.
    pub roles: Vec<String>,
    /// Sorted, unique: the union of the roles' permissions.
    pub permissions: Vec<String>,
}

/// Users are listed in `(created_at, id)` order; `UserFilter`s select and page through it.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub active: Option<bool>,
    pub verified: Option<bool>,
    pub role: Option<RoleName>,
    /// Case-insensitive substring of the email.
    pub email_contains: Option<String>,
    pub limit: i64,
    pub offset: i64,
    /// Keyset paging: only the users after this one in the listing order.
    pub after: Option<UserCursor>,
}

/// A position in the user listing's order: a user's creation time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor {
    pub created_at: UnixTime,
    pub id: UserId,
}

impl UserCursor {
    /// The position of `user`: a page `after` it starts with the next user.
    pub fn of(user: &User) -> Self {
        Self {
            created_at: user.created_at,
            id: user.id.clone(),
        }
    }
}
