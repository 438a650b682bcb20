//! OAuth clients: registration, changes to their settings, enabling and disabling, secret
//! rotation and deletion; each change that withdraws access (disable, rotate, delete) revokes
//! the client's tokens, a change of settings does not.

use std::collections::BTreeSet;

use super::super::keys::KeyError;
use super::super::sign_in::ACCOUNT_PAGES_CLIENT;
use super::views::{ClientOidcInput, ClientUpdate, ClientView, CreatedClient, NewClientInput};
use super::{AdminError, AdminService};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{
    Audience, Client, ClientId, ClientKind, ClientOidcSettings, GrantType, Scope, SigningAlg,
    ValidationError,
};

impl AdminService {
    fn new_secret() -> (String, String) {
        let secret = random_token(32);
        let hash = sha256_hex(secret.as_bytes());
        (secret, hash)
    }

    /// Registers a client without browser sign-in settings (see `create_client_with`).
    pub async fn create_client(&self, input: NewClientInput) -> Result<CreatedClient, AdminError> {
        self.create_client_with(input, ClientOidcInput::default())
            .await
    }

    /// Registers a client with its browser sign-in settings (post-logout redirects, origins,
    /// first party, back-channel logout, the ID token's algorithm).
    pub async fn create_client_with(
        &self,
        input: NewClientInput,
        oidc: ClientOidcInput,
    ) -> Result<CreatedClient, AdminError> {
        let id = match input.client_id.as_deref() {
            Some(id) => ClientId::parse(id)?,
            None => ClientId::generate(),
        };
        if id.as_str() == ACCOUNT_PAGES_CLIENT {
            // The hosted pages sign in under this name (audit, magic links): a client that
            // took it could redeem the pages' magic links.
            return Err(AdminError::Conflict(format!(
                "the client id {ACCOUNT_PAGES_CLIENT} is reserved for Latchkey's own pages"
            )));
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
            grant_types: grant_types(&input.grant_types)?,
            scopes: Scope::from_tokens(&input.scopes)?,
            redirect_uris: input.redirect_uris,
            audiences: audiences(&input.audiences)?,
            default_audience: input
                .default_audience
                .as_deref()
                .map(Audience::parse)
                .transpose()?,
            token_settings: input.token_settings,
            oidc: ClientOidcSettings {
                post_logout_redirect_uris: oidc.post_logout_redirect_uris,
                allowed_origins: oidc.allowed_origins,
                first_party: oidc.first_party,
                require_mfa: oidc.require_mfa,
                backchannel_logout_uri: oidc.backchannel_logout_uri,
                id_token_alg: id_token_alg(oidc.id_token_alg.as_deref())?,
            },
            created_at: now,
            updated_at: now,
        };
        client.validate()?;
        self.ensure_id_token_key(&client).await?;
        self.stores.clients.create(&client).await?;
        self.refresh_origins().await;
        Ok(CreatedClient {
            client: ClientView::from(&client),
            client_secret: secret,
        })
    }

    /// Changes a client's settings; each list given replaces the whole list. Tokens already
    /// issued are left alone: removing a redirect URI, an origin or a grant (even
    /// `refresh_token`: existing refresh-token families keep working until they expire or are
    /// revoked) only shapes what is issued next. Disable the client or rotate its secret to
    /// withdraw what it holds.
    pub async fn update_client(
        &self,
        id: &str,
        update: ClientUpdate,
    ) -> Result<ClientView, AdminError> {
        let mut c = self.find_client(id).await?;
        if update.fields().is_empty() {
            return Ok(ClientView::from(&c));
        }
        if let Some(name) = update.name {
            c.name = name.trim().to_owned();
        }
        if let Some(g) = update.grant_types {
            c.grant_types = grant_types(&g)?;
        }
        if let Some(s) = update.scopes {
            c.scopes = Scope::from_tokens(&s)?;
        }
        if let Some(r) = update.redirect_uris {
            c.redirect_uris = r;
        }
        if let Some(a) = update.audiences {
            c.audiences = audiences(&a)?;
        }
        if let Some(d) = update.default_audience {
            c.default_audience = d.as_deref().map(Audience::parse).transpose()?;
        }
        let ttl = &mut c.token_settings;
        for (field, value) in [
            (&mut ttl.access_token_ttl, update.access_token_ttl),
            (&mut ttl.refresh_idle_ttl, update.refresh_idle_ttl),
            (&mut ttl.refresh_absolute_ttl, update.refresh_absolute_ttl),
            (&mut ttl.refresh_grace_secs, update.refresh_grace_secs),
            (&mut ttl.refresh_grace_uses, update.refresh_grace_uses),
        ] {
            if let Some(v) = value {
                *field = v;
            }
        }
        let oidc = &mut c.oidc;
        if let Some(uris) = update.post_logout_redirect_uris {
            oidc.post_logout_redirect_uris = uris;
        }
        if let Some(origins) = update.allowed_origins {
            oidc.allowed_origins = origins;
        }
        if let Some(first_party) = update.first_party {
            oidc.first_party = first_party;
        }
        if let Some(require_mfa) = update.require_mfa {
            oidc.require_mfa = require_mfa;
        }
        if let Some(uri) = update.backchannel_logout_uri {
            oidc.backchannel_logout_uri = uri;
        }
        if let Some(alg) = update.id_token_alg {
            oidc.id_token_alg = id_token_alg(Some(&alg))?;
        }
        c.updated_at = self.clock.now();
        c.validate()?;
        self.ensure_id_token_key(&c).await?;
        if !self.stores.clients.update(&c).await? {
            return Err(AdminError::NotFound(format!("client {id}")));
        }
        self.clients.invalidate(&c.id);
        self.refresh_origins().await;
        self.show_client(id).await
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

/// The grant types, each one a client may be registered for.
fn grant_types(raw: &[String]) -> Result<BTreeSet<GrantType>, ValidationError> {
    let grants = raw
        .iter()
        .map(|g| GrantType::parse(g))
        .collect::<Result<BTreeSet<_>, _>>()?;
    match grants.iter().find(|g| !g.is_registrable()) {
        Some(g) => Err(ValidationError::new(
            "grant_types",
            format!("{g} is not served yet"),
        )),
        None => Ok(grants),
    }
}

fn audiences(raw: &[String]) -> Result<Vec<Audience>, ValidationError> {
    raw.iter().map(|a| Audience::parse(a)).collect()
}

/// `id_token_signed_response_alg`; RS256 unless asked otherwise (OpenID Connect's default).
fn id_token_alg(raw: Option<&str>) -> Result<SigningAlg, ValidationError> {
    match raw {
        None => Ok(SigningAlg::RS256),
        Some(a) => SigningAlg::parse(a).map_err(|_| {
            ValidationError::new(
                "id_token_signed_response_alg",
                "must be one of RS256, ES256, EdDSA",
            )
        }),
    }
}

impl AdminService {
    /// Makes sure the key ring has an active key of the client's ID-token algorithm (RS256
    /// always has one; ES256 or EdDSA get one the first time a client asks for it).
    async fn ensure_id_token_key(&self, client: &Client) -> Result<(), AdminError> {
        if !client.allows_grant(GrantType::AuthorizationCode) {
            return Ok(());
        }
        match self.keys.ensure_alg(client.oidc.id_token_alg).await {
            Ok(_) => Ok(()),
            // The key is stored; the ring loads when the server starts (a CLI run on a fresh
            // database has no access-token key yet).
            Err(KeyError::NoActiveKey(_)) => Ok(()),
            Err(e) => Err(AdminError::Unexpected(anyhow::anyhow!("{e}"))),
        }
    }

    /// Takes a client's registered origins into CORS at once in this process (the background
    /// refresh picks them up everywhere within seconds).
    async fn refresh_origins(&self) {
        if let Err(e) = self.clients.refresh_origins().await {
            tracing::warn!(error = %e, "reading the clients' allowed origins failed");
        }
    }
}
