//! HTTP: parse -> call a service -> map the result. No storage, no adapters.

mod api;
mod body;
mod logging;
mod origin;
mod views;

pub use api::admin::AdminApi;
pub use api::error::ApiError;
pub use logging::RedactedRootSpan;
pub use views::Branding;

use api::{accounts, admin, discovery, error, health, revocation, session, token, userinfo};
use views::{
    account, account_mfa, authorize, enrolment, federation, links, logout, magic_link, passkey,
    second_factor, self_service,
};

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::web;

use crate::crypto::KeyRing;
use crate::services::{
    AccountService, AuthorizeService, FederationService, IntrospectionService, LogoutService,
    MfaService, RevocationService, SignInService, TokenService,
};
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
    /// The authorization endpoint and the sign-in pages.
    pub authorize: Arc<AuthorizeService>,
    pub sign_in: Arc<SignInService>,
    pub logout: Arc<LogoutService>,
    /// Cookies are `Secure` with the `__Host-` prefix (an https issuer).
    pub secure_cookies: bool,
    /// Federated sign-in (the providers may be none).
    pub federation: Option<Arc<FederationService>>,
    /// The signed-in user's second factors.
    pub mfa: Arc<MfaService>,
    /// The HTML pages' templates, parsed.
    pages: views::Pages,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tokens: Arc<TokenService>,
        accounts: Arc<AccountService>,
        authorize: Arc<AuthorizeService>,
        sign_in: Arc<SignInService>,
        logout: Arc<LogoutService>,
        mfa: Arc<MfaService>,
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
            authorize,
            sign_in,
            logout,
            secure_cookies: issuer.starts_with("https://"),
            federation: None,
            mfa,
            pages: views::Pages::load(&views::Branding::default()),
        }
    }

    /// Believes `X-Forwarded-For` from these proxies.
    pub fn with_trusted_proxies(mut self, proxies: Vec<IpAddr>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Themes the hosted pages (`[branding]`).
    pub fn with_branding(mut self, branding: &views::Branding) -> Self {
        self.pages = views::Pages::load(branding);
        self
    }

    /// Federated sign-in with the configured providers.
    pub fn with_federation(mut self, federation: Arc<FederationService>) -> Self {
        self.federation = Some(federation);
        self
    }

    /// Enables the admin API.
    pub fn with_admin(mut self, admin: AdminApi) -> Self {
        self.admin = Some(admin);
        self
    }
}

/// Registers every route. `cors` wraps the endpoints browser apps call (token, revoke,
/// logout, accounts); it allows the configured origins, without cookies (none are used).
///
/// Every resource is built with [`Endpoint`], so the methods registered here are also its
/// `Allow` header: another method gets the JSON `405` with `Allow`, and an `OPTIONS` that is
/// not a CORS preflight gets `204` with `Allow` (README, HTTP contract).
pub fn routes(cfg: &mut web::ServiceConfig, cors: &CorsPolicy) {
    let origins = cors;
    cfg.service(
        Endpoint::new("/oauth2/token")
            .post(token::post_token)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/oauth2/revoke")
            .post(revocation::post_revoke)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/oauth2/introspect")
            .post(revocation::post_introspect)
            .finish(),
    )
    .service(
        Endpoint::new("/oauth2/revocations")
            .get(revocation::get_revocations)
            .finish(),
    )
    .service(
        Endpoint::new("/api/v1/logout")
            .post(session::post_logout)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/logout-all")
            .post(session::post_logout_all)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/oauth2/authorize")
            .get(authorize::get_authorize)
            .post(authorize::post_authorize)
            .finish(),
    )
    .service(
        Endpoint::new("/login")
            .get(authorize::get_login)
            .post(authorize::post_login)
            .finish(),
    )
    .service(
        Endpoint::new("/consent")
            .post(authorize::post_consent)
            .finish(),
    )
    .service(
        Endpoint::new("/login/magic")
            .get(magic_link::get_magic)
            .post(magic_link::post_magic)
            .finish(),
    )
    .service(
        Endpoint::new("/account/mfa/totp")
            .post(account_mfa::post_add_totp)
            .finish(),
    )
    .service(
        Endpoint::new("/account/mfa/totp/confirm")
            .post(account_mfa::post_confirm_totp)
            .finish(),
    )
    .service(
        Endpoint::new("/account/mfa/remove")
            .post(account_mfa::post_remove)
            .finish(),
    )
    .service(
        Endpoint::new("/account/mfa/recovery-codes")
            .post(account_mfa::post_recovery_codes)
            .finish(),
    )
    .service(
        Endpoint::new("/login/mfa")
            .post(second_factor::post_login_mfa)
            .finish(),
    )
    .service(
        Endpoint::new("/login/mfa/enrol")
            .post(enrolment::post_enrol)
            .finish(),
    )
    .service(
        Endpoint::new("/login/continue")
            .post(enrolment::post_continue)
            .finish(),
    )
    .service(
        Endpoint::new("/login/reauth")
            .post(enrolment::post_reauth)
            .finish(),
    )
    .service(
        Endpoint::new("/login/passkey")
            .post(passkey::post_login_passkey)
            .finish(),
    )
    .service(
        Endpoint::new("/account/passkeys")
            .post(account_mfa::post_add_passkey)
            .finish(),
    )
    .service(
        Endpoint::new("/login/magic/code")
            .post(magic_link::post_magic_code)
            .finish(),
    )
    .service(
        Endpoint::new("/login/magic/link")
            .get(magic_link::get_magic_link)
            .post(magic_link::post_magic_link)
            .finish(),
    )
    .service(
        Endpoint::new("/federation/{provider}/start")
            .get(federation::start)
            .finish(),
    )
    .service(
        Endpoint::new("/federation/{provider}/callback")
            .get(federation::callback)
            .finish(),
    )
    .service(
        Endpoint::new("/federation/link")
            .post(federation::post_link)
            .finish(),
    )
    .service(
        Endpoint::new("/federation/link/proof")
            .post(federation::post_link_proof)
            .finish(),
    )
    .service(
        Endpoint::new("/signup")
            .get(self_service::get_signup)
            .post(self_service::post_signup)
            .finish(),
    )
    .service(
        Endpoint::new("/password/forgot")
            .get(self_service::get_forgot)
            .post(self_service::post_forgot)
            .finish(),
    )
    .service(Endpoint::new("/account").get(account::get_account).finish())
    .service(
        Endpoint::new("/account/password")
            .post(account::post_password)
            .finish(),
    )
    .service(
        Endpoint::new("/account/sessions/end")
            .post(account::post_end_session)
            .finish(),
    )
    .service(
        Endpoint::new("/account/logout-all")
            .post(account::post_logout_all)
            .finish(),
    )
    .service(
        Endpoint::new("/account/consents/revoke")
            .post(account::post_revoke_consent)
            .finish(),
    )
    .service(
        Endpoint::new("/account/links/add")
            .post(account::post_add_link)
            .finish(),
    )
    .service(
        Endpoint::new("/account/links/remove")
            .post(account::post_remove_link)
            .finish(),
    )
    .service(
        Endpoint::new("/oauth2/logout")
            .get(logout::get_logout)
            .post(logout::post_logout)
            .finish(),
    )
    .service(
        Endpoint::new("/oauth2/logout/confirm")
            .post(logout::post_logout_confirm)
            .finish(),
    )
    .service(
        Endpoint::new("/assets/form_post.js")
            .get(views::get_form_post_js)
            .finish(),
    )
    .service(
        Endpoint::new("/oauth2/userinfo")
            .get(userinfo::userinfo)
            .post(userinfo::userinfo)
            .with_cors(origins),
    )
    .configure(|c| account_routes(c, origins))
    .service(
        Endpoint::on(web::resource([
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ]))
        .get(discovery::get_openid_configuration)
        .finish(),
    )
    .service(
        Endpoint::new("/.well-known/jwks.json")
            .get(discovery::get_jwks)
            .finish(),
    )
    .service(Endpoint::new("/healthz").get(health::get_healthz).finish())
    .service(Endpoint::new("/readyz").get(health::get_readyz).finish())
    .configure(admin::routes)
    .default_service(web::to(error::not_found));
}

/// The three account paths that also take the forms of the mailed-link pages: a form-encoded
/// body goes to the page (answered with a page), anything else to the JSON API.
macro_rules! json_or_form {
    ($(#[$doc:meta])* $name:ident: $json:path, $form:path) => {
        $(#[$doc])*
        async fn $name(
            req: actix_web::HttpRequest,
            payload: web::Payload,
            state: web::Data<AppState>,
        ) -> Result<actix_web::HttpResponse, ApiError> {
            if body::is_form(&req) {
                $form(&req, payload, &state).await
            } else {
                $json(req, payload, state).await
            }
        }
    };
}

json_or_form!(
    /// `POST /api/v1/signup`: JSON, or the invitation page's form.
    post_signup: accounts::post_signup, links::post_signup_form
);
json_or_form!(
    /// `POST /api/v1/email/verify`: JSON, or the verification page's form.
    post_verify_email: accounts::post_verify_email, links::post_verify_email_form
);
json_or_form!(
    /// `POST /api/v1/password/reset/confirm`: JSON, or the reset page's form.
    post_password_reset_confirm: accounts::post_password_reset_confirm, links::post_password_reset_form
);

/// The self-service account API (README, Accounts); browser apps call it, so CORS wraps it.
fn account_routes(cfg: &mut web::ServiceConfig, origins: &CorsPolicy) {
    cfg.service(
        Endpoint::new("/api/v1/email/verify/resend")
            .post(accounts::post_resend_verification)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/password/reset/confirm")
            .post(post_password_reset_confirm)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/password/change")
            .post(accounts::post_password_change)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/password/required-change")
            .post(accounts::post_password_required_change)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/magic-link")
            .post(accounts::post_magic_link)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/signup")
            .post(post_signup)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/signup/invitation")
            .get(links::get_invitation)
            .finish(),
    )
    .service(
        Endpoint::new("/api/v1/email/verify")
            .get(links::get_verify_email)
            .post(post_verify_email)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/password/reset")
            .get(links::get_password_reset)
            .post(accounts::post_password_reset)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me")
            .get(accounts::get_me)
            .patch(accounts::patch_me)
            .delete(accounts::delete_me)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me/links")
            .get(api::links::get_links)
            .post(api::links::post_link)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me/links/{id}")
            .delete(api::links::delete_link)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me/mfa")
            .get(api::mfa::get_mfa)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me/mfa/totp")
            .post(api::mfa::post_totp)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me/mfa/totp/confirm")
            .post(api::mfa::post_totp_confirm)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me/mfa/recovery-codes")
            .post(api::mfa::post_recovery_codes)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me/mfa/passkeys")
            .post(api::mfa::post_passkeys)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me/mfa/passkeys/confirm")
            .post(api::mfa::post_passkeys_confirm)
            .with_cors(origins),
    )
    .service(
        Endpoint::new("/api/v1/me/mfa/{id}")
            .delete(api::mfa::delete_factor)
            .with_cors(origins),
    );
}

/// The routes of the admin API's own listener (`admin.bind`): the admin API, and a JSON
/// 404 for everything else.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(admin::routes)
        .default_service(web::to(error::not_found));
}

/// One resource of the route table: the handlers by method, which are also what its
/// `Allow` header lists (with `OPTIONS`, which every resource answers). A route added
/// through it gets the regular answers to other methods without code of its own.
struct Endpoint {
    resource: actix_web::Resource,
    methods: Vec<Method>,
    /// When it answers `true`, every method that is not served gets the JSON `404`
    /// instead of `405`/`204` (a disabled API looks like an unknown path).
    hidden: Option<fn(&AppState) -> bool>,
}

impl Endpoint {
    fn new(path: &str) -> Self {
        Self::on(web::resource(path.to_owned()))
    }

    fn on(resource: actix_web::Resource) -> Self {
        Self {
            resource,
            methods: Vec::new(),
            hidden: None,
        }
    }

    fn get<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.route(Method::GET, handler)
    }

    fn post<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.route(Method::POST, handler)
    }

    fn patch<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.route(Method::PATCH, handler)
    }

    fn delete<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.route(Method::DELETE, handler)
    }

    fn route<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.methods.push(method);
        self
    }

    /// Answers every unserved method with the JSON `404` while `hidden(state)` holds.
    fn hidden_when(mut self, hidden: fn(&AppState) -> bool) -> Self {
        self.hidden = Some(hidden);
        self
    }

    /// The resource, with the default service that answers the methods it does not serve.
    fn finish(self) -> actix_web::Resource {
        let allow: Arc<str> = self
            .methods
            .iter()
            .map(Method::as_str)
            .chain(std::iter::once("OPTIONS"))
            .collect::<Vec<_>>()
            .join(", ")
            .into();
        let hidden = self.hidden;
        self.resource
            .default_service(web::to(move |req: actix_web::HttpRequest| {
                let allow = allow.clone();
                async move {
                    let is_hidden = match (hidden, req.app_data::<web::Data<AppState>>()) {
                        (Some(hidden), Some(state)) => hidden(state),
                        (Some(_), None) => true,
                        (None, _) => false,
                    };
                    if is_hidden {
                        error::not_found().await
                    } else {
                        error::unserved_method(req.method(), &allow)
                    }
                }
            }))
    }

    /// [`Self::finish`] behind the CORS middleware; its refusals get the JSON error shape.
    fn with_cors(self, origins: &CorsPolicy) -> impl actix_web::dev::HttpServiceFactory {
        self.finish()
            .wrap(cors(origins))
            .wrap(actix_web::middleware::from_fn(error::cors_refusal_as_json))
    }
}

/// Which browser origins may call the endpoints browser apps use: the server-wide list
/// (`server.cors_allowed_origins`), and each enabled client's registered `allowed_origins`.
#[derive(Clone)]
pub struct CorsPolicy {
    pub global: Arc<[String]>,
    pub clients: Option<Arc<crate::services::ClientRegistry>>,
}

impl CorsPolicy {
    pub fn new(global: Vec<String>, clients: Arc<crate::services::ClientRegistry>) -> Self {
        Self {
            global: global.into(),
            clients: Some(clients),
        }
    }
}

fn cors(policy: &CorsPolicy) -> actix_cors::Cors {
    let base = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .max_age(600);
    if policy.global.iter().any(|o| o == "*") {
        return base.allow_any_origin();
    }
    let policy = policy.clone();
    base.allowed_origin_fn(move |origin, _| {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        policy.global.iter().any(|o| o == origin)
            || policy
                .clients
                .as_ref()
                .is_some_and(|c| c.origin_allowed(origin))
    })
}
