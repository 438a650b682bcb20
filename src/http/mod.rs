//! HTTP: parse -> call a service -> map the result. No storage, no adapters.

mod accounts;
mod admin;
mod body;
mod client_auth;
mod discovery;
mod error;
mod health;
mod logging;
mod origin;
mod pages;
mod revocation;
mod session;
mod token;

pub use admin::AdminApi;
pub use error::ApiError;
pub use logging::RedactedRootSpan;

use std::sync::Arc;

use actix_web::web;

use crate::crypto::KeyRing;
use crate::services::{AccountService, IntrospectionService, RevocationService, TokenService};
use crate::storage::HealthCheck;
use std::net::IpAddr;

/// Everything handlers reach, through one `web::Data<AppState>`.
pub struct AppState {
    pub tokens: Arc<TokenService>,
    pub accounts: Arc<AccountService>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
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
        accounts: Arc<AccountService>,
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
            accounts,
            trusted_proxies: Vec::new(),
            revocations,
            introspection,
            keys,
            health,
            discovery: discovery::DiscoveryDocument::new(issuer, jwks_max_age_secs),
            max_body_bytes,
            admin: None,
        }
    }

    /// Believes `X-Forwarded-For` from these proxies.
    pub fn with_trusted_proxies(mut self, proxies: Vec<IpAddr>) -> Self {
        self.trusted_proxies = proxies;
        self
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
    .configure(|c| account_routes(c, cors_allowed_origins))
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

/// The self-service account API (README, Accounts); browser apps call it, so CORS wraps it.
fn account_routes(cfg: &mut web::ServiceConfig, origins: &[String]) {
    cfg.service(post_route(
        "/api/v1/email/verify/resend",
        origins,
        accounts::post_resend_verification,
    ))
    .service(post_route(
        "/api/v1/password/reset/confirm",
        origins,
        accounts::post_password_reset_confirm,
    ))
    .service(post_route(
        "/api/v1/password/change",
        origins,
        accounts::post_password_change,
    ))
    .service(post_route(
        "/api/v1/password/required-change",
        origins,
        accounts::post_password_required_change,
    ))
    .service(post_route(
        "/api/v1/magic-link",
        origins,
        accounts::post_magic_link,
    ))
    .service(
        web::resource("/api/v1/signup")
            .wrap(cors(origins))
            .route(web::post().to(accounts::post_signup))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/signup/invitation")
            .route(web::get().to(accounts::get_invitation))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/email/verify")
            .wrap(cors(origins))
            .route(web::get().to(accounts::get_verify_email))
            .route(web::post().to(accounts::post_verify_email))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/password/reset")
            .wrap(cors(origins))
            .route(web::get().to(accounts::get_password_reset))
            .route(web::post().to(accounts::post_password_reset))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/me")
            .wrap(cors(origins))
            .route(web::get().to(accounts::get_me))
            .route(web::patch().to(accounts::patch_me))
            .route(web::delete().to(accounts::delete_me))
            .default_service(web::to(error::method_not_allowed)),
    );
}

/// The routes of the admin API's own listener (`admin.bind`): the admin API, and a JSON
/// 404 for everything else.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(admin::routes)
        .default_service(web::to(error::not_found));
}

/// A POST-only resource behind CORS.
fn post_route<F, Args>(
    path: &str,
    origins: &[String],
    handler: F,
) -> impl actix_web::dev::HttpServiceFactory
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path.to_owned())
        .wrap(cors(origins))
        .route(web::post().to(handler))
        .default_service(web::to(error::method_not_allowed))
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    let base = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
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
