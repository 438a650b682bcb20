use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::http::AppState;

/// The process is up.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"status": "ok"}))
}

/// Ready to serve: the database answers, signing keys are loaded and the denylist can answer.
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    // A readiness probe must answer quickly even when the database hangs.
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.health.ping()).await;
    let database = match ping {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            "unreachable"
        }
        Err(_) => {
            tracing::warn!("readiness: database did not answer within 2 s");
            "unreachable"
        }
    };
    let keys = if state.keys.current().is_some() {
        "ok"
    } else {
        "not loaded"
    };
    let denylist = match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.revocations.denylist().ping(),
    )
    .await
    {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: denylist unavailable");
            "unavailable"
        }
        Err(_) => "unavailable",
    };
    let ready = database == "ok" && keys == "ok" && denylist == "ok";
    let mut resp = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    resp.insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": {
                "database": database,
                "keys": keys,
                "denylist": denylist,
                "denylist_backend": state.revocations.denylist().name(),
            },
        }))
}
