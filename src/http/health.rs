use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// The process is up.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"status": "ok"}))
}

/// Ready to serve: the database answers and signing keys are loaded.
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.health.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            "unreachable"
        }
    };
    let keys = if state.keys.current().is_some() {
        "ok"
    } else {
        "not loaded"
    };
    let ready = database == "ok" && keys == "ok";
    let mut resp = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    resp.insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": {"database": database, "keys": keys},
        }))
}
