//! `POST /oauth2/revoke` (RFC 7009), `POST /oauth2/introspect` (RFC 7662) and
//! `GET /oauth2/revocations` (the revocation feed).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::body::{read_limited, Params};
use super::client_auth::{authorization, client_credentials, Authorization};
use super::token::required;
use super::{ApiError, AppState};
use crate::services::{IntrospectionCaller, RevocationError};

fn required_token(params: &mut Params) -> Result<String, ApiError> {
    let token = required(params, "token")?;
    if token.is_empty() {
        return Err(ApiError::Revocation(RevocationError::InvalidRequest(
            "the token parameter is empty".into(),
        )));
    }
    Ok(token)
}

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
    let body = read_limited(&req, payload, state.max_body_bytes).await?;
    let mut params = Params::parse(&req, &body)?;
    let token = required_token(&mut params)?;
    let _hint = params.take("token_type_hint");
    let client = client_credentials(&req, &mut params)?;
    state.revocations.revoke_token(&client, &token).await?;
    Ok(no_store(HttpResponse::Ok()).finish())
}

/// RFC 7662 §2.1: `token` (required), `token_type_hint` (optional). The caller authenticates
/// as a confidential client, or with a bearer token carrying the introspection scope.
pub async fn post_introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_limited(&req, payload, state.max_body_bytes).await?;
    let mut params = Params::parse(&req, &body)?;
    let token = required_token(&mut params)?;
    let _hint = params.take("token_type_hint");
    let caller = match authorization(&req)? {
        Authorization::Bearer(t) => IntrospectionCaller::Bearer(t),
        _ => IntrospectionCaller::Client(client_credentials(&req, &mut params)?),
    };
    let result = state.introspection.introspect(&caller, &token).await?;
    Ok(no_store(HttpResponse::Ok()).json(result))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    since: Option<String>,
    limit: Option<u32>,
}

/// The revocation feed: entries revoked after the `since` cursor, oldest first.
pub async fn get_revocations(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<FeedQuery>::from_query(req.query_string()).map_err(|_| {
        ApiError::Revocation(RevocationError::InvalidRequest(
            "the query accepts since (a cursor) and limit (1 to 1000)".into(),
        ))
    })?;
    let mut no_body = Params::empty();
    let client = client_credentials(&req, &mut no_body)?;
    let page = state
        .revocations
        .feed(&client, query.since.as_deref(), query.limit)
        .await?;
    Ok(no_store(HttpResponse::Ok()).json(page))
}
