//! Outbound HTTP to clients: back-channel logout tokens. An adapter like storage: services
//! see the [`LogoutDelivery`](crate::services::LogoutDelivery) trait.

use std::time::Duration;

use async_trait::async_trait;

use crate::services::LogoutDelivery;

/// Posts logout tokens over HTTP(S): a short timeout, no redirects followed, no cookies.
pub struct HttpLogoutDelivery {
    http: reqwest::Client,
}

impl HttpLogoutDelivery {
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }
}

#[async_trait]
impl LogoutDelivery for HttpLogoutDelivery {
    async fn deliver(&self, uri: &str, logout_token: &str) -> Result<(), String> {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", logout_token)
            .finish();
        let response = self
            .http
            .post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cache-control", "no-store")
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the client answered {status}"))
        }
    }
}
