//! OAuth clients: registration, enabling and disabling, secret rotation and deletion; each
//! change that withdraws access revokes the client's tokens.

use std::collections::BTreeSet;

use super::views::{ClientView, CreatedClient, NewClientInput};
use super::{AdminError, AdminService};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{Audience, Client, ClientId, ClientKind, GrantType, Scope, ValidationError};

impl AdminService {
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
            oidc: Default::default(),
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
