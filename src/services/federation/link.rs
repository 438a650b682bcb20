//! The linking rules: which local user an upstream identity signs in. Account takeover is the
//! trap here, so an identity is joined to an existing account automatically only when the
//! provider and Latchkey have both verified the address and the provider's policy allows
//! it; otherwise the user proves they own the local account first.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{detail, events, FederationError, FederationService};
use crate::domain::{
    Email, ExternalIdentity, LinkId, LinkPolicy, ProviderId, RequestOrigin, SignupMode, SocialLink,
    User, UserId,
};
use crate::storage::{NewUserRecord, StorageError, Unlink};

/// Which user signs in, or what must happen first.
#[derive(Debug)]
pub enum Resolution {
    SignIn {
        user: User,
        new_user: bool,
    },
    /// A local account has the address, but may not be joined automatically: the user signs
    /// in to it first (then the identity is linked).
    NeedsProof(PendingLink),
}

/// An identity waiting for its user to prove they own the local account.
#[derive(Debug)]
pub struct PendingLink {
    /// The local account's address (the provider gave the same one).
    pub email: Email,
    pub provider_name: String,
    /// Sealed: carried by the proof page's form.
    pub sealed: String,
}

/// A pending link, opened: the local account it is for and the provider asking.
#[derive(Debug)]
pub struct PendingView {
    pub user_id: UserId,
    pub email: Email,
    pub provider: ProviderId,
    pub provider_name: String,
}

const PENDING_PURPOSE: &str = "latchkey federation pending link v1";
/// The largest provider profile a pending link carries.
const PENDING_PROFILE_BYTES: usize = 1024;
/// How long the proof page's form is good for.
const PENDING_TTL: i64 = 600;

#[derive(Serialize, Deserialize)]
struct Pending {
    user: String,
    local_email: String,
    provider: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    display_name: Option<String>,
    avatar_url: Option<String>,
    profile: serde_json::Value,
    expires: i64,
}

fn conflict_of(e: &StorageError) -> Option<&str> {
    match e {
        StorageError::Conflict(c) => Some(c.as_str()),
        _ => None,
    }
}

impl FederationService {
    /// Applies the linking rules to an identity the provider asserted; `invitation` is the
    /// invitation a sign-up started from (its link secret), if any.
    pub async fn resolve(
        &self,
        identity: &ExternalIdentity,
        invitation: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<Resolution, FederationError> {
        match self.resolve_once(identity, invitation, origin).await {
            // A concurrent first sign-in of the same identity created it in between: the
            // link exists now.
            Err(FederationError::Unexpected(_)) | Err(FederationError::LinkedElsewhere)
                if self
                    .links
                    .find(&identity.provider, &identity.subject)
                    .await?
                    .is_some() =>
            {
                self.resolve_once(identity, invitation, origin).await
            }
            other => other,
        }
    }

    async fn resolve_once(
        &self,
        identity: &ExternalIdentity,
        invitation: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<Resolution, FederationError> {
        let info = self.provider(identity.provider.as_str())?.clone();
        let now = self.clock.now();
        // 1. A known identity signs in its user.
        if let Some(link) = self
            .links
            .find(&identity.provider, &identity.subject)
            .await?
        {
            let user =
                self.users.find_by_id(&link.user_id).await?.ok_or_else(|| {
                    FederationError::Unexpected(anyhow::anyhow!("link without user"))
                })?;
            let mut fresh = SocialLink::new(identity, &user.id, now);
            fresh.id = link.id.clone();
            fresh.created_at = link.created_at;
            let tokens = self.sealed_tokens(identity, link.id.as_str());
            self.links
                .record_use(&fresh, tokens.as_deref(), now)
                .await?;
            return Ok(Resolution::SignIn {
                user,
                new_user: false,
            });
        }
        // 2. A local user with the same address: joined only when both sides verified it and
        // the provider's policy allows it.
        if let Some(email) = &identity.email {
            if let Some(local) = self.users.find_by_email(email).await? {
                let automatic = identity.email_verified
                    && local.email_verified
                    && info.link_existing == LinkPolicy::VerifiedEmail;
                if automatic {
                    self.add_link(identity, &local.id, true, origin).await?;
                    return Ok(Resolution::SignIn {
                        user: local,
                        new_user: false,
                    });
                }
                let reason = if info.link_existing == LinkPolicy::Never {
                    "policy_never"
                } else if !identity.email_verified {
                    "provider_email_unverified"
                } else {
                    "local_email_unverified"
                };
                self.audit
                    .record(
                        events::FEDERATION_LINK_REFUSED,
                        self.audit_ctx(Some(&local.id), origin),
                        detail([
                            ("provider", json!(identity.provider.as_str())),
                            ("reason", json!(reason)),
                        ]),
                    )
                    .await;
                return Ok(Resolution::NeedsProof(self.pending(
                    identity,
                    &local.id,
                    email,
                    &info.display_name,
                )?));
            }
        }
        // 3. A new user, as sign-up would create one: with an invitation (required when
        // sign-up is by invitation), for the invited address only, as the provider verified
        // it; the invitation is used up before the user is created.
        let invitation = match invitation {
            Some(token) => Some(
                self.accounts
                    .invitation(token)
                    .await
                    .map_err(|_| FederationError::InvitationInvalid)?,
            ),
            None => None,
        };
        match (self.settings.signup, &invitation) {
            (SignupMode::Closed, _) => return Err(FederationError::SignupClosed),
            (SignupMode::Invite, None) => return Err(FederationError::InviteRequired),
            _ => {}
        }
        // No address (GitHub without a verified one): the user is created without one and
        // signs in through this provider, unless every account must have a verified address.
        let email = match identity.email.clone() {
            Some(email) => Some(email),
            None if self.settings.email_required => return Err(FederationError::NoVerifiedEmail),
            None => None,
        };
        if let Some(inv) = &invitation {
            if email.as_ref() != Some(&inv.email) || !identity.email_verified {
                return Err(FederationError::InvitationMismatch);
            }
            if !self
                .accounts
                .use_invitation(inv)
                .await
                .map_err(|_| FederationError::InvitationInvalid)?
            {
                return Err(FederationError::InvitationInvalid);
            }
        }
        let user = User {
            id: UserId::generate(),
            email,
            username: None,
            display_name: identity
                .display_name
                .as_deref()
                .and_then(|n| User::validate_display_name(n).ok()),
            is_active: true,
            email_verified: identity.email_verified,
            password_hash: None,
            attributes: serde_json::Map::new(),
            created_at: now,
            updated_at: now,
            last_login_at: None,
            must_change_password: false,
            password_changed_at: None,
        };
        let invited = invitation.is_some();
        let link = SocialLink::new(identity, &user.id, now);
        let tokens = self.sealed_tokens(identity, link.id.as_str());
        match self
            .links
            .create_user_with_link(
                &NewUserRecord {
                    user: user.clone(),
                    role_ids: invitation.map(|i| i.role_ids).unwrap_or_default(),
                },
                &link,
                tokens.as_deref(),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if conflict_of(&e) == Some("social_links_provider_subject_key") => {
                return Err(FederationError::LinkedElsewhere)
            }
            Err(e) => return Err(e.into()),
        }
        self.audit
            .record(
                events::FEDERATION_SIGNUP,
                self.audit_ctx(Some(&user.id), origin),
                detail([
                    ("provider", json!(identity.provider.as_str())),
                    ("email_verified", json!(identity.email_verified)),
                    ("invited", json!(invited)),
                ]),
            )
            .await;
        Ok(Resolution::SignIn {
            user,
            new_user: true,
        })
    }

    /// Links an identity to a user and records it.
    async fn add_link(
        &self,
        identity: &ExternalIdentity,
        user_id: &UserId,
        automatic: bool,
        origin: &RequestOrigin,
    ) -> Result<SocialLink, FederationError> {
        let link = SocialLink::new(identity, user_id, self.clock.now());
        let tokens = self.sealed_tokens(identity, link.id.as_str());
        match self.links.link(&link, tokens.as_deref()).await {
            Ok(()) => {}
            Err(e) if conflict_of(&e) == Some("social_links_provider_subject_key") => {
                return Err(FederationError::LinkedElsewhere)
            }
            Err(e) => return Err(e.into()),
        }
        self.audit
            .record(
                events::FEDERATION_LINKED,
                self.audit_ctx(Some(user_id), origin),
                detail([
                    ("provider", json!(identity.provider.as_str())),
                    ("automatic", json!(automatic)),
                ]),
            )
            .await;
        Ok(link)
    }

    /// A link that waits for the user to prove they own the local account `local` (found
    /// by its address `local_email`).
    fn pending(
        &self,
        identity: &ExternalIdentity,
        local: &UserId,
        local_email: &Email,
        provider_name: &str,
    ) -> Result<PendingLink, FederationError> {
        let pending = Pending {
            user: local.as_str().to_owned(),
            local_email: local_email.as_str().to_owned(),
            provider: identity.provider.as_str().to_owned(),
            subject: identity.subject.clone(),
            email: identity.email.as_ref().map(|e| e.as_str().to_owned()),
            email_verified: identity.email_verified,
            display_name: identity.display_name.clone(),
            avatar_url: identity.avatar_url.clone(),
            // Small, so that the pending link fits the federation cookie when the proof goes
            // through another provider; the link's profile is refreshed at its next sign-in.
            profile: Some(identity.profile.to_string())
                .filter(|p| p.len() <= PENDING_PROFILE_BYTES)
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or(json!({})),
            expires: self.clock.now() + PENDING_TTL,
        };
        let plain =
            serde_json::to_vec(&pending).map_err(|e| FederationError::Unexpected(e.into()))?;
        let sealed = self
            .seal
            .seal(PENDING_PURPOSE, &plain)
            .map_err(|_| FederationError::Unexpected(anyhow::anyhow!("sealing failed")))?;
        Ok(PendingLink {
            email: local_email.clone(),
            provider_name: provider_name.to_owned(),
            sealed,
        })
    }

    /// The local account a pending link is for (its id and address) and the provider, for
    /// the proof page; `None` when the form is not genuine or too old.
    pub fn describe_pending(&self, sealed: &str) -> Option<PendingView> {
        let p = self.open_pending(sealed)?;
        let info = self.provider(&p.provider).ok()?;
        let email = Email::parse(&p.local_email).ok()?;
        Some(PendingView {
            user_id: UserId::from_trusted(p.user),
            email,
            provider: info.id.clone(),
            provider_name: info.display_name.clone(),
        })
    }

    fn open_pending(&self, sealed: &str) -> Option<Pending> {
        let plain = self.seal.open(PENDING_PURPOSE, sealed)?;
        let p: Pending = serde_json::from_slice(&plain).ok()?;
        (p.expires > self.clock.now()).then_some(p)
    }

    /// After the user proved they own the local account (`proven`): links the pending
    /// identity to it.
    pub async fn link_after_proof(
        &self,
        sealed: &str,
        proven: &UserId,
        origin: &RequestOrigin,
    ) -> Result<(), FederationError> {
        let p = self
            .open_pending(sealed)
            .ok_or(FederationError::StateMismatch)?;
        if p.user != proven.as_str() {
            return Err(FederationError::StateMismatch);
        }
        let identity = ExternalIdentity {
            provider: ProviderId::from_trusted(p.provider),
            subject: p.subject,
            email: p.email.as_deref().and_then(|e| Email::parse(e).ok()),
            email_verified: p.email_verified,
            display_name: p.display_name,
            avatar_url: p.avatar_url,
            profile: p.profile,
            tokens: None,
        };
        self.add_link(&identity, proven, false, origin).await?;
        Ok(())
    }

    /// The proof page's other way: the user signed in at a provider whose identity is
    /// already linked to the local account the pending link is for. That proves the account,
    /// so the pending identity is linked to it; the user who signs in.
    pub async fn link_after_linked_proof(
        &self,
        sealed: &str,
        proof: &ExternalIdentity,
        origin: &RequestOrigin,
    ) -> Result<User, FederationError> {
        let p = self
            .open_pending(sealed)
            .ok_or(FederationError::StateMismatch)?;
        let owner = self
            .links
            .find(&proof.provider, &proof.subject)
            .await?
            .map(|l| l.user_id);
        if owner.as_ref().map(UserId::as_str) != Some(p.user.as_str()) {
            return Err(FederationError::ProofFailed);
        }
        let user = self
            .users
            .find_by_id(&UserId::from_trusted(p.user.clone()))
            .await?
            .ok_or(FederationError::ProofFailed)?;
        self.link_after_proof(sealed, &user.id, origin).await?;
        Ok(user)
    }

    /// Adds an identity to a signed-in user (the account page's "link" flow). An identity
    /// linked to this user already is fine; linked to another user, refused.
    pub async fn link_to(
        &self,
        identity: &ExternalIdentity,
        user_id: &UserId,
        origin: &RequestOrigin,
    ) -> Result<(), FederationError> {
        match self
            .links
            .find(&identity.provider, &identity.subject)
            .await?
        {
            Some(link) if &link.user_id == user_id => Ok(()),
            Some(_) => Err(FederationError::LinkedElsewhere),
            None => self
                .add_link(identity, user_id, false, origin)
                .await
                .map(|_| ()),
        }
    }

    /// A user's links, oldest first.
    pub async fn links_of(&self, user_id: &UserId) -> Result<Vec<SocialLink>, FederationError> {
        Ok(self.links.list_for_user(user_id).await?)
    }

    /// Removes a link, unless it is the user's last way to sign in.
    pub async fn unlink(
        &self,
        user_id: &UserId,
        link_id: &LinkId,
        origin: &RequestOrigin,
    ) -> Result<Unlink, FederationError> {
        let links = self.links.list_for_user(user_id).await?;
        let provider = links
            .iter()
            .find(|l| &l.id == link_id)
            .map(|l| l.provider.as_str().to_owned());
        let outcome = self.links.unlink(user_id, link_id).await?;
        if outcome == Unlink::Removed {
            self.audit
                .record(
                    events::FEDERATION_UNLINKED,
                    self.audit_ctx(Some(user_id), origin),
                    detail([("provider", json!(provider))]),
                )
                .await;
        }
        Ok(outcome)
    }
}
