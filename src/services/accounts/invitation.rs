//! Invitations by an operator.

use serde_json::json;

use super::super::audit::{detail, events, AuditContext};
use super::super::mail::{Mail, MailKind};
use super::{link, minutes, AccountError, AccountService};
use crate::clock::rfc3339;
use crate::domain::SignupMode;
use crate::domain::{
    AccountToken, AccountTokenPurpose, Email, RequestOrigin, RoleId, RoleName, ValidationError,
};

/// An invitation as created by an operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InviteView {
    pub email: String,
    pub roles: Vec<String>,
    pub link: String,
    pub expires_at: String,
}

/// A live invitation, for a sign-up that does not go through the invitation form (a
/// federated sign-up started from the invitation page).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub email: Email,
    /// The roles it grants (those that still exist).
    pub role_ids: Vec<RoleId>,
    token_hash: String,
}

impl AccountService {
    /// The live invitation a presented link secret belongs to (not used yet).
    pub async fn invitation(&self, presented: &str) -> Result<Invitation, AccountError> {
        let i = &self.inner;
        let token = i.live_token(AccountTokenPurpose::Invite, presented).await?;
        let mut role_ids = Vec::new();
        for name in token
            .data
            .get("roles")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
        {
            let Ok(name) = RoleName::parse(name) else {
                continue;
            };
            if let Some(role) = i.stores.roles.find_by_name(&name).await? {
                role_ids.push(role.id);
            }
        }
        Ok(Invitation {
            email: token.email,
            role_ids,
            token_hash: token.token_hash,
        })
    }

    /// Uses an invitation up; `false` if it was used (or expired) meanwhile.
    pub async fn use_invitation(&self, invitation: &Invitation) -> Result<bool, AccountError> {
        let i = &self.inner;
        Ok(i.stores
            .account_tokens
            .consume(
                AccountTokenPurpose::Invite,
                &invitation.token_hash,
                i.clock.now(),
            )
            .await?
            .is_some())
    }

    /// An operator invites `email` (with roles granted at sign-up). The mail is queued; the
    /// link is returned too, for delivery by other means. The address is parsed by the
    /// caller; a malformed one is refused after the sign-up mode is checked.
    pub async fn invite(
        &self,
        email: Result<Email, ValidationError>,
        roles: &[String],
    ) -> Result<InviteView, AccountError> {
        let i = &self.inner;
        if i.policy.signup == SignupMode::Closed {
            return Err(AccountError::InvalidRequest(
                "sign-up is closed (accounts.signup = \"closed\"): an invitation could not be used"
                    .into(),
            ));
        }
        let email = email?;
        let mut names = Vec::new();
        for r in roles {
            let name = RoleName::parse(r)?;
            if i.stores.roles.find_by_name(&name).await?.is_none() {
                return Err(AccountError::InvalidRequest(format!(
                    "no role named {name}"
                )));
            }
            names.push(name.to_string());
        }
        if i.stores.users.find_by_email(&email).await?.is_some() {
            return Err(AccountError::Conflict(
                "a user with this email already exists".into(),
            ));
        }
        let now = i.clock.now();
        let secret = i.codec.mint();
        let token = AccountToken {
            id: uuid::Uuid::new_v4().to_string(),
            purpose: AccountTokenPurpose::Invite,
            token_hash: secret.hash,
            code_hash: None,
            user_id: None,
            email: email.clone(),
            client_id: None,
            data: detail([("roles", json!(names))]),
            attempts: 0,
            created_at: now,
            expires_at: now + i.policy.invite_ttl,
            used_at: None,
        };
        i.stores.account_tokens.issue(&token).await?;
        let link = link(&i.policy.invite_url, &secret.value);
        i.mailer.enqueue(Mail {
            kind: MailKind::Invite,
            to: email.clone(),
            display_name: None,
            vars: vec![
                ("link", link.clone()),
                ("expires_in_minutes", minutes(i.policy.invite_ttl)),
            ],
        })?;
        i.audit
            .record(
                events::INVITE_CREATED,
                AuditContext {
                    origin: Some(&RequestOrigin::local()),
                    ..Default::default()
                },
                detail([("email", json!(email.as_str())), ("roles", json!(names))]),
            )
            .await;
        Ok(InviteView {
            email: email.to_string(),
            roles: names,
            link,
            expires_at: rfc3339(token.expires_at),
        })
    }
}
