use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use crate::domain::GrantType;
use crate::http::AppState;

/// The discovery document (OpenID Connect Discovery 1.0 / RFC 8414), built once.
pub struct DiscoveryDocument {
    base: serde_json::Value,
    jwks_cache_control: String,
}

impl DiscoveryDocument {
    pub fn new(issuer: &str, jwks_max_age_secs: i64) -> Self {
        let base = json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/oauth2/token"),
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "grant_types_supported": GrantType::SERVED.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_feed_endpoint": format!("{issuer}/oauth2/revocations"),
            "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
            "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
            "end_session_endpoint": format!("{issuer}/oauth2/logout"),
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "consent", "create", "select_account"],
            "acr_values_supported": [crate::domain::ACR_ONE_FACTOR, crate::domain::ACR_MFA],
            "authorization_response_iss_parameter_supported": true,
            "scopes_supported": crate::domain::OIDC_SCOPES,
            "subject_types_supported": ["public"],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "sid", "scope", "roles", "permissions", "auth_time", "nonce", "azp", "at_hash", "amr", "acr", "name", "preferred_username", "updated_at", "email", "email_verified"],
        });
        Self {
            base,
            jwks_cache_control: format!("public, max-age={jwks_max_age_secs}"),
        }
    }
}

fn open_cors(resp: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
}

pub async fn get_openid_configuration(
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut doc = state.discovery.base.clone();
    // ID tokens: the algorithms the ring has an active key of. Access tokens: the algorithms
    // of the published keys, which verify them.
    let sorted = |mut a: Vec<&'static str>| {
        a.sort_unstable();
        a.dedup();
        a
    };
    let (id_token_algs, access_token_algs) = match state.keys.current() {
        Some(ring) => (
            sorted(ring.signing_algs().map(|a| a.as_str()).collect()),
            sorted(ring.published.iter().map(|k| k.alg().as_str()).collect()),
        ),
        None => (Vec::new(), Vec::new()),
    };
    if let serde_json::Value::Object(m) = &mut doc {
        m.insert(
            "id_token_signing_alg_values_supported".into(),
            json!(id_token_algs),
        );
        m.insert(
            "access_token_signing_alg_values_supported".into(),
            json!(access_token_algs),
        );
    }
    Ok(open_cors(&mut HttpResponse::Ok())
        .insert_header((
            header::CACHE_CONTROL,
            state.discovery.jwks_cache_control.as_str(),
        ))
        .json(doc))
}

pub async fn get_jwks(state: web::Data<AppState>) -> HttpResponse {
    match state.keys.current() {
        Some(ring) => open_cors(&mut HttpResponse::Ok())
            .insert_header((header::CACHE_CONTROL, state.discovery.jwks_cache_control.as_str()))
            .content_type("application/json")
            .body(actix_web::web::Bytes::copy_from_slice(&ring.jwks_json)),
        None => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(json!({"error": "temporarily_unavailable", "error_description": "signing keys are not loaded yet"})),
    }
}
