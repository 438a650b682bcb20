//! HTTP: parse -> call a service -> map the result. No storage, no adapters.

mod admin;
mod body;
mod client_auth;
mod discovery;
mod error;
mod health;
mod revocation;
mod session;
mod token;

pub use admin::AdminApi;
pub use error::ApiError;

use std::sync::Arc;

use actix_web::web;

use crate::crypto::KeyRing;
use crate::services::{IntrospectionService, RevocationService, TokenService};
use crate::storage::HealthCheck;

/// Everything handlers reach, through one `web::Data<AppState>`.
pub struct AppState {
    pub tokens: Arc<TokenService>,
    pub revocations: Arc<RevocationService>,
    pub introspection: Arc<IntrospectionService>,
    pub keys: Arc<KeyRing>,
    pub health: Arc<dyn HealthCheck>,
    pub discovery: discovery::DiscoveryDocument,
    pub max_body_bytes: usize,
    /// The admin API; `None` (answers 404) unless an admin token is configured.
    pub admin: Option<AdminApi>,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tokens: Arc<TokenService>,
        revocations: Arc<RevocationService>,
        introspection: Arc<IntrospectionService>,
        keys: Arc<KeyRing>,
        health: Arc<dyn HealthCheck>,
        issuer: &str,
        jwks_max_age_secs: i64,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            tokens,
            revocations,
            introspection,
            keys,
            health,
            discovery: discovery::DiscoveryDocument::new(issuer, jwks_max_age_secs),
            max_body_bytes,
            admin: None,
        }
    }

    /// Enables the admin API.
    pub fn with_admin(mut self, admin: AdminApi) -> Self {
        self.admin = Some(admin);
        self
    }
}

/// Registers every route. `cors` wraps the endpoints browser apps call (token, revoke,
/// logout); it allows the configured origins, without cookies (none are used).
pub fn routes(cfg: &mut web::ServiceConfig, cors_allowed_origins: &[String]) {
    cfg.service(
        web::resource("/oauth2/token")
            .wrap(cors(cors_allowed_origins))
            .route(web::post().to(token::post_token))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/oauth2/revoke")
            .wrap(cors(cors_allowed_origins))
            .route(web::post().to(revocation::post_revoke))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/oauth2/introspect")
            .route(web::post().to(revocation::post_introspect))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/oauth2/revocations")
            .route(web::get().to(revocation::get_revocations))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/logout")
            .wrap(cors(cors_allowed_origins))
            .route(web::post().to(session::post_logout))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/logout-all")
            .wrap(cors(cors_allowed_origins))
            .route(web::post().to(session::post_logout_all))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource([
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ])
        .route(web::get().to(discovery::get_openid_configuration))
        .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/.well-known/jwks.json")
            .route(web::get().to(discovery::get_jwks))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(web::resource("/healthz").route(web::get().to(health::get_healthz)))
    .service(web::resource("/readyz").route(web::get().to(health::get_readyz)))
    .configure(admin::routes)
    .default_service(web::to(error::not_found));
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    let base = actix_cors::Cors::default()
        .allowed_methods(["POST"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .max_age(600);
    if origins.iter().any(|o| o == "*") {
        return base.allow_any_origin();
    }
    origins.iter().fold(base, |c, o| c.allowed_origin(o))
}
