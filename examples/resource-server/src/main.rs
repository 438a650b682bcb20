//! An example API that accepts Latchkey access tokens, validated offline:
//! - the signature against the JWKS (cached per `Cache-Control: max-age`, refetched on an
//!   unknown `kid` at most once per `RS_JWKS_MIN_REFETCH_SECS`);
//! - header `typ: at+jwt`, `iss`, `aud`, `exp`, `nbf`;
//! - the revocation feed, polled with the credentials of a confidential client allowed
//!   `latchkey.introspect`; the server answers 503 when the feed is stale (fails closed).
//!
//! `GET /api/me` answers the token's `sub`, `scope` and `client_id`; `GET /healthz` says
//! whether the feed is fresh. Configuration: environment variables (`config.rs`).

macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("[resource-server] {}", format!($($arg)*))
    };
}

mod config;
mod jwks;
mod revocations;

use std::time::Duration;

use actix_cors::Cors;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::{decode, decode_header, Validation};
use serde::Deserialize;
use serde_json::json;

use config::Config;
use jwks::JwksCache;
use revocations::{Check, Revocations, TokenIds};

/// The claims this API reads (RFC 9068 and Latchkey's `sid`).
#[derive(Debug, Deserialize)]
struct AccessClaims {
    sub: String,
    iat: i64,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

struct Api {
    config: Config,
    jwks: JwksCache,
    revocations: Revocations,
}

enum Refusal {
    /// 401 `invalid_token`.
    Invalid(String),
    /// 503: the revocation feed is stale.
    Unavailable,
}

impl Api {
    async fn verify(&self, token: &str) -> Result<AccessClaims, Refusal> {
        let invalid = |why: String| Refusal::Invalid(why);
        let header = decode_header(token).map_err(|e| invalid(format!("malformed token: {e}")))?;
        // RFC 9068 §4: "at+jwt" (or its long form); this keeps ID tokens and other JWTs out.
        match header
            .typ
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("at+jwt" | "application/at+jwt") => {}
            other => return Err(invalid(format!("typ is {other:?}, not at+jwt"))),
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("the token names no kid".into()))?;
        let key = self.jwks.key(&kid).await.map_err(invalid)?;
        if header.alg != key.alg {
            return Err(invalid(format!(
                "alg {:?} is not the key's {:?}",
                header.alg, key.alg
            )));
        }
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway_secs;
        let claims = decode::<AccessClaims>(token, &key.key, &validation)
            .map_err(|e| invalid(format!("the token does not verify: {e}")))?
            .claims;
        let ids = TokenIds {
            jti: claims.jti.as_deref(),
            sid: claims.sid.as_deref(),
            sub: &claims.sub,
            client_id: claims.client_id.as_deref(),
            iat: claims.iat,
        };
        match self.revocations.check(&ids).await {
            Check::Valid => Ok(claims),
            Check::Revoked(why) => Err(invalid(why.into())),
            Check::Unavailable => Err(Refusal::Unavailable),
        }
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

async fn me(req: HttpRequest, api: web::Data<Api>) -> HttpResponse {
    let Some(token) = bearer(&req) else {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .json(json!({"error": "invalid_token", "error_description": "a bearer token is required"}));
    };
    match api.verify(token).await {
        Ok(claims) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "sub": claims.sub,
                "scope": claims.scope,
                "client_id": claims.client_id,
            })),
        Err(Refusal::Invalid(why)) => {
            log!("refused a token: {why}");
            HttpResponse::Unauthorized()
                .insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer error=\"invalid_token\", error_description=\"{}\"",
                        why.replace(['"', '\\'], "'")
                    ),
                ))
                .json(json!({"error": "invalid_token", "error_description": why}))
        }
        Err(Refusal::Unavailable) => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "1"))
            .json(json!({
                "error": "temporarily_unavailable",
                "error_description": "the revocation feed could not be read recently"
            })),
    }
}

async fn healthz(api: web::Data<Api>) -> HttpResponse {
    // A token that nothing revokes: only freshness is asked.
    let probe = TokenIds {
        jti: None,
        sid: None,
        sub: "",
        client_id: None,
        iat: i64::MAX,
    };
    match api.revocations.check(&probe).await {
        Check::Unavailable => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "revocation feed stale"}))
        }
        _ => HttpResponse::Ok().json(json!({"status": "ok"})),
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    revocation_feed_endpoint: Option<String>,
}

async fn start(config: Config) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let discovery_url = format!("{}/.well-known/openid-configuration", config.issuer);
    let discovery: Discovery = http
        .get(&discovery_url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET {discovery_url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {discovery_url}: {e}"))?;
    if discovery.issuer != config.issuer {
        return Err(format!(
            "discovery names issuer {:?}, LATCHKEY_ISSUER is {:?}",
            discovery.issuer, config.issuer
        ));
    }
    let jwks = JwksCache::load(http.clone(), discovery.jwks_uri, config.jwks_min_refetch).await?;
    let feed_url = discovery
        .revocation_feed_endpoint
        .unwrap_or_else(|| format!("{}/oauth2/revocations", config.issuer));
    let revocations = Revocations::new(
        http,
        feed_url,
        config.client_id.clone(),
        config.client_secret.clone(),
        config.max_staleness,
    );
    // The first read must succeed: wrong credentials stop start-up instead of every request.
    let first = revocations.poll().await?;
    log!("revocation feed read: {first} live entries");
    let api = web::Data::new(Api {
        config: config.clone(),
        jwks,
        revocations,
    });

    let poller = api.clone();
    let interval = config.poll_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match poller.revocations.poll().await {
                Ok(0) => {}
                Ok(n) => log!("revocation feed: {n} new entries"),
                Err(e) => log!("revocation feed: {e}"),
            }
        }
    });

    let origins = config.allowed_origins.clone();
    let server = HttpServer::new(move || {
        let mut cors = Cors::default()
            .allowed_methods(["GET"])
            .allowed_headers([header::AUTHORIZATION, header::ACCEPT])
            .max_age(600);
        for origin in &origins {
            cors = cors.allowed_origin(origin);
        }
        App::new()
            .wrap(cors)
            .app_data(api.clone())
            .route("/api/me", web::get().to(me))
            .route("/healthz", web::get().to(healthz))
    })
    .workers(1)
    .bind(&config.bind)
    .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    for addr in server.addrs() {
        // The harness reads this line to learn the port when RS_BIND ends in :0.
        log!("listening on http://{addr}");
    }
    server.run().await.map_err(|e| format!("server: {e}"))
}

#[actix_web::main]
async fn main() {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            log!("configuration: {e}");
            std::process::exit(78);
        }
    };
    log!(
        "issuer {}, audience {}, CORS origins {:?}",
        config.issuer,
        config.audience,
        config.allowed_origins
    );
    if let Err(e) = start(config).await {
        log!("{e}");
        std::process::exit(1);
    }
}
