//! Invitations by an operator.

use serde_json::json;

use super::super::audit::{detail, events, AuditContext};
use super::super::mail::{Mail, MailKind};
use super::{link, minutes, AccountError, AccountService};
use crate::clock::rfc3339;
use crate::domain::SignupMode;
use crate::domain::{
    AccountToken, AccountTokenPurpose, Email, RequestOrigin, RoleName, ValidationError,
};

/// An invitation as created by an operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InviteView {
    pub email: String,
    pub roles: Vec<String>,
    pub link: String,
    pub expires_at: String,
}

impl AccountService {
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
