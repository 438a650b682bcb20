//! Asking for a magic sign-in link (redeeming one is the login pipeline's).

use serde_json::{json, Map};

use super::super::audit::{detail, events};
use super::super::mail::{Mail, MailKind};
use super::super::sign_in::ACCOUNT_PAGES_CLIENT;
use super::super::throttle::LimitedAction;
use super::{ctx, greeting_name, link, minutes, AccountError, AccountService};
use crate::domain::{AccountTokenPurpose, ClientId, Email, RequestOrigin};

impl AccountService {
    /// Mails a sign-in link and code for `client_id` if the address has an active account.
    /// Same answer either way. The caller has checked that the client may use magic links.
    pub async fn request_magic_link(
        &self,
        email: &Email,
        client_id: &ClientId,
        origin: &RequestOrigin,
    ) -> Result<(), AccountError> {
        let i = &self.inner;
        if !i.policy.magic_links {
            return Err(AccountError::MagicLinksDisabled);
        }
        let email = i.admit(LimitedAction::MagicLink, email, origin).await?;
        let deferred = self.reserve()?;
        let origin = origin.clone();
        let client_id = client_id.clone();
        deferred.run("magic link request", move |i| async move {
            let user = i
                .stores
                .users
                .find_by_email(&email)
                .await?
                .filter(|u| u.is_active);
            i.audit
                .record(
                    events::MAGIC_LINK_REQUESTED,
                    ctx(
                        user.as_ref().map(|u| &u.id),
                        Some(client_id.as_str()),
                        &origin,
                    ),
                    detail([("account_found", json!(user.is_some()))]),
                )
                .await;
            let Some(user) = user else { return Ok(()) };
            // Asked for on the hosted sign-in page: the link opens that page's landing.
            let template = if client_id.as_str() == ACCOUNT_PAGES_CLIENT {
                Some(i.policy.pages_magic_link_url.as_str())
            } else {
                i.policy.magic_link_url.as_deref()
            };
            let code = i.codec.mint_code(email.as_str());
            let secret = i
                .issue(
                    AccountTokenPurpose::MagicLink,
                    &user,
                    Some(client_id),
                    Some(code.hash),
                    Map::new(),
                )
                .await?;
            let link = template.map(|t| link(t, &secret)).unwrap_or_default();
            i.mailer.enqueue(Mail {
                kind: MailKind::MagicLink,
                to: email.clone(),
                display_name: greeting_name(&user),
                vars: vec![
                    ("link", link),
                    ("code", code.value.expose_secret().to_owned()),
                    ("expires_in_minutes", minutes(i.policy.magic_link_ttl)),
                ],
            })?;
            Ok(())
        });
        Ok(())
    }

    /// The address a live magic link for `client_id` signs in (the landing page names it,
    /// so whoever opens a link sees which account it is for); `None` for a link that is
    /// unknown, expired, used or for another client.
    pub async fn magic_link_account(
        &self,
        token: &str,
        client_id: &ClientId,
    ) -> Result<Option<Email>, AccountError> {
        let i = &self.inner;
        let live = match i.live_token(AccountTokenPurpose::MagicLink, token).await {
            Ok(t) => t,
            Err(AccountError::InvalidToken) => return Ok(None),
            Err(e) => return Err(e),
        };
        if live.client_id.as_ref() != Some(client_id) {
            return Ok(None);
        }
        match i.token_user(&live).await {
            Ok(user) if user.is_active => Ok(Some(live.email)),
            Ok(_) | Err(AccountError::InvalidToken) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
