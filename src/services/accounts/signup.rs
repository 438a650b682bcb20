//! Sign-up: open or with an invitation.

use secrecy::SecretString;
use serde_json::{json, Map, Value};
use tracing::warn;

use super::super::audit::{detail, events};
use super::super::mail::{Mail, MailKind};
use super::super::throttle::LimitedAction;
use super::{ctx, greeting_name, AccountError, AccountService};
use crate::domain::SignupMode;
use crate::domain::{
    AccountTokenPurpose, Email, PasswordContext, RequestOrigin, RoleName, User, UserId,
    ValidationError,
};
use crate::storage::{NewUserRecord, StorageError};

pub struct SignupInput {
    /// Optional with an invitation: its address is used. Parsed by the caller; a malformed
    /// address is refused only where the sign-up checks reach it, so that the answer to a
    /// request with several faults stays the same (closed sign-up, a missing or bad
    /// invitation come first).
    pub email: Option<Result<Email, ValidationError>>,
    pub password: SecretString,
    pub display_name: Option<String>,
    pub attributes: Option<Map<String, Value>>,
    pub invite_token: Option<String>,
}

impl AccountService {
    /// Open or invite-only sign-up. The answer is the same for a new and an existing address;
    /// the owner of an existing one is told by mail that someone tried.
    pub async fn signup(
        &self,
        input: SignupInput,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        if i.policy.signup == SignupMode::Closed {
            return Err(AccountError::SignupClosed);
        }
        let display_name = input
            .display_name
            .as_deref()
            .map(User::validate_display_name)
            .transpose()?;
        let attributes = match input.attributes {
            Some(a) => i.own_attributes(Map::new(), a)?,
            None => Map::new(),
        };
        let invite = match (&input.invite_token, i.policy.signup) {
            (Some(t), _) => Some(t.as_str()),
            (None, SignupMode::Invite) => return Err(AccountError::InviteRequired),
            (None, _) => None,
        };
        let invitation = match invite {
            Some(t) => Some(i.live_token(AccountTokenPurpose::Invite, t).await?),
            None => None,
        };
        let given_email = match (input.email, &invitation) {
            (Some(e), Some(inv)) => {
                let e = e?;
                if e != inv.email {
                    return Err(AccountError::InvalidRequest(
                        "the invitation is for another email address".into(),
                    ));
                }
                e
            }
            (Some(e), None) => e?,
            (None, Some(inv)) => inv.email.clone(),
            (None, None) => return Err(ValidationError::new("email", "is required").into()),
        };
        // The policy first (pure, cheap): a refused password does not use up the address's
        // sign-up allowance, so the user can retry at once with a better one.
        i.check_new_password(
            &input.password,
            &PasswordContext {
                email: Some(given_email.as_str()),
                username: None,
                display_name: display_name.as_deref(),
            },
        )?;
        i.throttle
            .limit(LimitedAction::SignUp, Some(given_email.as_str()), origin.ip)
            .await?;
        let deferred = self.reserve()?;
        let hash = i.hash(input.password).await?;
        let mut role_ids = Vec::new();
        // An invitation is used only once the rest of the request is known to be good.
        if let Some(inv) = &invitation {
            if i.stores
                .account_tokens
                .consume(AccountTokenPurpose::Invite, &inv.token_hash, i.clock.now())
                .await?
                .is_none()
            {
                return Err(AccountError::InvalidToken);
            }
            for name in inv
                .data
                .get("roles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let Ok(name) = RoleName::parse(name) else {
                    continue;
                };
                match i.stores.roles.find_by_name(&name).await? {
                    Some(role) => role_ids.push(role.id),
                    None => warn!(role = name.as_str(), "invited role no longer exists"),
                }
            }
        }
        let now = i.clock.now();
        let user = User {
            id: UserId::generate(),
            email: Some(given_email.clone()),
            username: None,
            display_name,
            is_active: true,
            // An invitation was delivered to the address: it is proven.
            email_verified: invitation.is_some(),
            password_hash: Some(hash),
            attributes,
            created_at: now,
            updated_at: now,
            last_login_at: None,
            must_change_password: false,
            password_changed_at: Some(now),
        };
        let origin = origin.clone();
        match i
            .stores
            .users
            .create(&NewUserRecord {
                user: user.clone(),
                role_ids,
            })
            .await
        {
            Ok(()) => {
                let invited = invitation.is_some();
                deferred.run("sign-up", move |i| async move {
                    i.audit
                        .record(
                            events::SIGNUP,
                            ctx(Some(&user.id), None, &origin),
                            detail([("invited", json!(invited))]),
                        )
                        .await;
                    if !invited {
                        i.send_verification(&user, &origin).await?;
                    }
                    Ok(())
                });
                Ok(())
            }
            Err(StorageError::Conflict(c)) if c == "users_email_key" => {
                let email = given_email;
                deferred.run("sign-up of an existing address", move |i| async move {
                    let existing = i.stores.users.find_by_email(&email).await?;
                    i.audit
                        .record(
                            events::SIGNUP_EXISTING_EMAIL,
                            ctx(existing.as_ref().map(|u| &u.id), None, &origin),
                            Map::new(),
                        )
                        .await;
                    if let Some(u) = existing {
                        i.mailer.enqueue(Mail {
                            kind: MailKind::SignupExisting,
                            to: email,
                            display_name: greeting_name(&u),
                            vars: vec![("reset_link", String::new())],
                        })?;
                    }
                    Ok(())
                });
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
