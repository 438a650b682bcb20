//! The signed-in user's second factors (`/api/v1/me/mfa`): list them, enrol an authenticator
//! app (TOTP) and confirm it with a current code, remove a factor, and make a new set of
//! recovery codes. Adding or removing needs a recent sign-in (`mfa.reauth_within`) or, in the
//! body, the password (`password`) or a current second factor (`otp` or `recovery_code`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::principal;
use crate::http::body::read_json;
use crate::http::origin::origin;
use crate::http::AppState;
use crate::services::{
    FactorView, MfaCaller as Caller, Reauthentication, RecoveryCodes, SecondFactor,
};

fn no_store(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    b.insert_header((header::PRAGMA, "no-cache"));
    b
}

/// What proves the caller again, when the sign-in is not recent.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    password: Option<SecretString>,
    otp: Option<SecretString>,
    recovery_code: Option<SecretString>,
}

impl Proof {
    fn reauthentication(self) -> Result<Reauthentication, ApiError> {
        let factor = match (self.otp, self.recovery_code) {
            (Some(otp), None) => Some(SecondFactor::Totp(otp)),
            (None, Some(code)) => Some(SecondFactor::RecoveryCode(code)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "send otp or recovery_code, not both".into(),
                ))
            }
        };
        Ok(Reauthentication {
            password: self.password,
            factor,
        })
    }
}

/// A body that may be empty (then `T::default()`).
async fn optional_json<T: serde::de::DeserializeOwned + Default>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<T, ApiError> {
    let empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0")
        || (req.headers().get(header::CONTENT_TYPE).is_none()
            && req.headers().get(header::CONTENT_LENGTH).is_none()
            && req.headers().get(header::TRANSFER_ENCODING).is_none());
    if empty {
        return Ok(T::default());
    }
    read_json(req, payload, state.max_body_bytes).await
}

/// `GET /api/v1/me/mfa` (bearer): the caller's factors and recovery codes left.
pub async fn get_mfa(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let overview = state.mfa.overview_of(&p).await?;
    Ok(no_store(HttpResponse::Ok()).json(overview))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StartTotp {
    name: Option<String>,
    password: Option<SecretString>,
    otp: Option<SecretString>,
    recovery_code: Option<SecretString>,
}

/// `POST /api/v1/me/mfa/totp` (bearer): starts enrolling an authenticator app.
pub async fn post_totp(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let r: StartTotp = optional_json(&req, payload, &state).await?;
    let from = origin(&req, &state.trusted_proxies);
    let proof = Proof {
        password: r.password,
        otp: r.otp,
        recovery_code: r.recovery_code,
    }
    .reauthentication()?;
    let enrolment = state
        .mfa
        .start_totp(Caller::Token(&p), r.name.as_deref(), proof, &from)
        .await?;
    Ok(no_store(HttpResponse::Created()).json(enrolment))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotp {
    id: String,
    code: SecretString,
}

/// `POST /api/v1/me/mfa/totp/confirm` (bearer): turns an enrolment on with a current code;
/// answers the factor and, with the first factor, the recovery codes (shown once).
pub async fn post_totp_confirm(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let r: ConfirmTotp = read_json(&req, payload, state.max_body_bytes).await?;
    let from = origin(&req, &state.trusted_proxies);
    let (factor, codes) = state
        .mfa
        .confirm_totp(Caller::Token(&p), &r.id, &r.code, &from)
        .await?;
    Ok(no_store(HttpResponse::Ok()).json(added(factor, codes)))
}

/// `DELETE /api/v1/me/mfa/{id}` (bearer; optional JSON body with the proof): `204`.
pub async fn delete_factor(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let proof: Proof = optional_json(&req, payload, &state).await?;
    let from = origin(&req, &state.trusted_proxies);
    state
        .mfa
        .remove(
            Caller::Token(&p),
            &path.into_inner(),
            proof.reauthentication()?,
            &from,
        )
        .await?;
    Ok(no_store(HttpResponse::NoContent()).finish())
}

/// `POST /api/v1/me/mfa/recovery-codes` (bearer): a new set of recovery codes, shown once;
/// the old set stops working.
pub async fn post_recovery_codes(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let proof: Proof = optional_json(&req, payload, &state).await?;
    let from = origin(&req, &state.trusted_proxies);
    let codes = state
        .mfa
        .regenerate_recovery_codes(Caller::Token(&p), proof.reauthentication()?, &from)
        .await?;
    Ok(no_store(HttpResponse::Ok()).json(codes))
}

/// `POST /api/v1/me/mfa/passkeys` (bearer): starts adding a passkey: the options for
/// `navigator.credentials.create` and the `ceremony` to send back with its answer. The
/// re-authentication is checked here and again at the confirmation.
pub async fn post_passkeys(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let proof = optional_json::<Proof>(&req, payload, &state)
        .await?
        .reauthentication()?;
    let from = origin(&req, &state.trusted_proxies);
    let started = state
        .mfa
        .start_passkey(Caller::Token(&p), Some(proof), &from)
        .await?;
    Ok(no_store(HttpResponse::Created()).json(started))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPasskey {
    ceremony: String,
    /// The browser's `PublicKeyCredential` (binary values in base64url), as an object or
    /// as a JSON string.
    credential: serde_json::Value,
    name: Option<String>,
    password: Option<SecretString>,
    otp: Option<SecretString>,
    recovery_code: Option<SecretString>,
}

/// `POST /api/v1/me/mfa/passkeys/confirm` (bearer): the browser's answer; the passkey is on.
/// Answers the factor and, with the first factor, the recovery codes (shown once).
pub async fn post_passkeys_confirm(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p = principal(&req, &state).await?;
    let r: ConfirmPasskey = read_json(&req, payload, state.max_body_bytes).await?;
    let from = origin(&req, &state.trusted_proxies);
    let credential = match r.credential {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    let proof = Proof {
        password: r.password,
        otp: r.otp,
        recovery_code: r.recovery_code,
    }
    .reauthentication()?;
    let (factor, codes) = state
        .mfa
        .finish_passkey(
            Caller::Token(&p),
            r.name.as_deref(),
            &r.ceremony,
            &credential,
            proof,
            &from,
        )
        .await?;
    Ok(no_store(HttpResponse::Ok()).json(added(factor, codes)))
}

/// A factor turned on, with the recovery codes when they came with it (shown this once).
fn added(factor: FactorView, codes: Option<RecoveryCodes>) -> serde_json::Value {
    let mut body = serde_json::json!({ "factor": factor });
    if let Some(codes) = codes {
        body["recovery_codes"] = serde_json::json!(codes.recovery_codes);
    }
    body
}
