//! The signed-in user's links to upstream identity providers (`/api/v1/me/links`): list them,
//! add one from an ID token a native app got from the provider's SDK (with the account's
//! password: a stolen access token alone cannot add a way in), and remove one unless it is
//! the last way to sign in.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::principal;
use crate::domain::{LinkId, SocialLink, UserId};
use crate::http::body::read_json;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{AccountError, FederationError, ID_TOKEN_TYPE};
use crate::storage::Unlink;

/// A link as the user sees it (no raw profile, no tokens).
#[derive(Serialize)]
pub struct LinkView {
    id: String,
    provider: String,
    provider_name: String,
    email: Option<String>,
    email_verified: bool,
    display_name: Option<String>,
    avatar_url: Option<String>,
    created_at: String,
    last_used_at: Option<String>,
}

impl LinkView {
    fn of(state: &AppState, l: &SocialLink) -> Self {
        let provider_name = state
            .federation
            .as_deref()
            .map_or_else(|| l.provider.to_string(), |f| f.provider_name(&l.provider));
        Self {
            id: l.id.as_str().to_owned(),
            provider: l.provider.as_str().to_owned(),
            provider_name,
            email: l.email.clone(),
            email_verified: l.email_verified,
            display_name: l.display_name.clone(),
            avatar_url: l.avatar_url.clone(),
            created_at: crate::clock::rfc3339(l.created_at),
            last_used_at: l.last_used_at.map(crate::clock::rfc3339),
        }
    }
}

fn no_store(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

/// The user a bearer caller speaks for.
async fn caller(req: &HttpRequest, state: &AppState) -> Result<(UserId, String), ApiError> {
    let p = principal(req, state).await?;
    let user = p.user_id().cloned().ok_or(AccountError::NotAUser)?;
    Ok((user, p.client_id.as_str().to_owned()))
}

fn federation(state: &AppState) -> Result<&crate::services::FederationService, ApiError> {
    state
        .federation
        .as_deref()
        .ok_or(ApiError::Federation(FederationError::UnknownProvider))
}

/// `GET /api/v1/me/links` (bearer).
pub async fn get_links(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (user, _) = caller(&req, &state).await?;
    let links = federation(&state)?.links_of(&user).await?;
    let links: Vec<LinkView> = links.iter().map(|l| LinkView::of(&state, l)).collect();
    Ok(no_store(HttpResponse::Ok()).json(serde_json::json!({ "links": links })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddLinkRequest {
    subject_token: SecretString,
    subject_token_type: String,
    nonce: Option<String>,
    password: SecretString,
}

/// `POST /api/v1/me/links` (bearer): links the identity of a provider's ID token to the
/// caller, after the account's password.
pub async fn post_link(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let r: AddLinkRequest = read_json(&req, payload, state.max_body_bytes).await?;
    if r.subject_token_type != ID_TOKEN_TYPE {
        return Err(ApiError::BadRequest(
            StatusCode::BAD_REQUEST,
            format!("subject_token_type must be {ID_TOKEN_TYPE}"),
        ));
    }
    let fed = federation(&state)?;
    let from = origin(&req, &state.trusted_proxies);
    let user = state
        .accounts
        .confirm_before_linking(&p, r.password, &from)
        .await?;
    let identity = fed
        .verify_native(
            &r.subject_token,
            r.nonce.as_deref(),
            p.client_id.as_str(),
            &from,
        )
        .await?;
    fed.link_to(&identity, &user, &from).await?;
    let links = fed.links_of(&user).await?;
    let link = links
        .iter()
        .find(|l| l.provider == identity.provider && l.subject == identity.subject)
        .ok_or_else(|| {
            ApiError::Federation(FederationError::Unexpected(anyhow::anyhow!(
                "a link just made is missing"
            )))
        })?;
    Ok(no_store(HttpResponse::Created()).json(LinkView::of(&state, link)))
}

/// `DELETE /api/v1/me/links/{id}` (bearer).
pub async fn delete_link(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (user, _) = caller(&req, &state).await?;
    let fed = federation(&state)?;
    let Ok(id) = LinkId::parse(&path) else {
        return Err(ApiError::NotFound);
    };
    let from = origin(&req, &state.trusted_proxies);
    match fed.unlink(&user, &id, &from).await? {
        Unlink::Removed => Ok(no_store(HttpResponse::NoContent()).finish()),
        Unlink::NotFound => Ok(no_store(HttpResponse::NotFound()).json(serde_json::json!({
            "error": "not_found",
            "error_description": "no such link on this account",
        }))),
        Unlink::LastWayToSignIn => Ok(no_store(HttpResponse::Conflict()).json(serde_json::json!({
            "error": "last_sign_in_method",
            "error_description": "this link is the account's last way to sign in: set a password or link another provider first",
        }))),
    }
}
