//! The HTTP client of upstream calls: short timeouts, no redirects, a cap on the size of
//! every answer. Both `openidconnect` and `oauth2` send their requests through [`Http::send`].

use std::time::Duration;

/// Why an upstream call failed before an answer could be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Transport(String),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Build(String),
}

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    max_bytes: usize,
}

impl Http {
    pub fn new(timeout: Duration, max_bytes: usize) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Build(e.to_string()))?;
        Ok(Self { client, max_bytes })
    }

    /// Sends a request as the OAuth crates build it, reading at most `max_bytes` of the answer.
    pub async fn send(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let mut response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| HttpError::Transport(without_url(&e)))?;
        let mut builder = oauth2::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HttpError::Transport(without_url(&e)))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(HttpError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| HttpError::Build(e.to_string()))
    }

    /// `GET url` with a bearer token and JSON accepted; the status and the body.
    pub async fn get_json(&self, url: &str, bearer: &str) -> Result<(u16, Vec<u8>), HttpError> {
        let request = oauth2::http::Request::builder()
            .method(oauth2::http::Method::GET)
            .uri(url)
            .header(oauth2::http::header::ACCEPT, "application/json")
            .header(
                oauth2::http::header::AUTHORIZATION,
                format!("Bearer {bearer}"),
            )
            .body(Vec::new())
            .map_err(|e| HttpError::Build(e.to_string()))?;
        let response = self.send(request).await?;
        Ok((response.status().as_u16(), response.into_body()))
    }
}

/// reqwest's message without the URL (query strings can carry codes).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read"
    } else {
        "the request failed"
    };
    kind.to_owned()
}

/// The OAuth crates send their requests through this.
impl<'c> oauth2::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// What a failed code exchange means: the provider refused the code (an OAuth error answer),
/// or it could not be used (down, slow, malformed; GitHub answers a bad code with 200 and
/// `{"error": ...}`, which is not a token either).
pub fn token_error<RE, T>(
    e: oauth2::RequestTokenError<RE, oauth2::StandardErrorResponse<T>>,
) -> crate::services::UpstreamError
where
    RE: std::error::Error + 'static,
    T: oauth2::ErrorResponseType + std::fmt::Display + 'static,
{
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            crate::services::UpstreamError::Refused(r.error().to_string())
        }
        other => crate::services::UpstreamError::Unavailable(format!("token endpoint: {other}")),
    }
}
