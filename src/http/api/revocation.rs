//! `POST /oauth2/revoke` (RFC 7009), `POST /oauth2/introspect` (RFC 7662) and
//! `GET /oauth2/revocations` (the revocation feed).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::extract::{bearer_or_client, client_credentials};
use super::token::required;
use crate::http::body::Params;
use crate::http::AppState;
use crate::services::RevocationError;

fn no_store(mut resp: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    resp
}

/// RFC 7009 §2: `token` (required) and `token_type_hint` (optional, only an optimisation: both
/// token types are always tried). Success is 200 with an empty body, also for unknown tokens.
pub async fn post_revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::read(&req, payload, state.max_body_bytes).await?;
    let token = required(&mut params, "token")?;
    let _hint = params.take("token_type_hint");
    let client = client_credentials(&req, &mut params)?;
    let from = crate::http::origin::client_ip(&req, &state.trusted_proxies);
    state
        .revocations
        .revoke_token(&client, &token, from)
        .await?;
    Ok(no_store(HttpResponse::Ok()).finish())
}

/// RFC 7662 §2.1: `token` (required), `token_type_hint` (optional). The caller authenticates
/// as a confidential client, or with a bearer token carrying the introspection scope.
pub async fn post_introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::read(&req, payload, state.max_body_bytes).await?;
    let token = required(&mut params, "token")?;
    let _hint = params.take("token_type_hint");
    let caller = bearer_or_client(&req, &mut params, &state).await?;
    let result = state.introspection.introspect(&caller, &token).await?;
    Ok(no_store(HttpResponse::Ok()).json(result))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    since: Option<String>,
    limit: Option<String>,
}

/// The revocation feed: entries revoked after the `since` cursor, oldest first.
pub async fn get_revocations(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut no_body = Params::empty();
    let client = client_credentials(&req, &mut no_body)?;
    let query = web::Query::<FeedQuery>::from_query(req.query_string());
    let page = match &query {
        Ok(q) => {
            state
                .revocations
                .feed(&client, q.since.as_deref(), q.limit.as_deref())
                .await?
        }
        Err(_) => {
            // Authenticate first (who asks, then what), then refuse the query.
            state.revocations.feed(&client, None, None).await?;
            return Err(ApiError::Revocation(RevocationError::InvalidRequest(
                "the query accepts since (a cursor) and limit (1 to 1000), each at most once"
                    .into(),
            )));
        }
    };
    Ok(no_store(HttpResponse::Ok()).json(page))
}
