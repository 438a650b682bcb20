//! The one HTML error mapping: what a page answers when its request fails.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use minijinja::{context, Value};

use super::Pages;
use crate::domain::PolicyViolation;
use crate::http::api::error::DATABASE_RETRY_AFTER_SECS;
use crate::services::{storage_unavailable, AccountError};

/// The page of a link that is unknown, expired or used.
pub fn expired_page(pages: &Pages) -> HttpResponse {
    pages.message(
        StatusCode::BAD_REQUEST,
        "This link cannot be used",
        "The link is invalid, has expired or was already used. Ask for a new one from the app.",
    )
}

/// An error answered as a page (the form posts).
pub fn page_error(pages: &Pages, e: AccountError) -> HttpResponse {
    match e {
        AccountError::InvalidToken => expired_page(pages),
        AccountError::PasswordPolicy(v) => pages.render(
            StatusCode::BAD_REQUEST,
            "password_refused.html",
            context! { title => "Please choose another password", problems => problems(&v) },
        ),
        AccountError::Throttled(_) => pages.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Please wait a few minutes and try again.",
        ),
        AccountError::Unexpected(cause) if storage_unavailable(cause.as_ref()) => {
            tracing::warn!(error = ?cause, "the database is unavailable; answering 503");
            unavailable_page(pages)
        }
        AccountError::Unexpected(cause) => {
            tracing::error!(error = ?cause, "account page request failed");
            internal_error(pages)
        }
        other => pages.message(
            StatusCode::BAD_REQUEST,
            "This did not work",
            &other.to_string(),
        ),
    }
}

/// What the password breaks, one line each, for a page's list.
pub fn problems(violations: &[PolicyViolation]) -> Value {
    violations.iter().map(|v| v.message.clone()).collect()
}

/// The page of a request the database could not serve in time (busy, pool exhausted,
/// unreachable): 503 with `Retry-After`.
pub fn unavailable_page(pages: &Pages) -> HttpResponse {
    let mut page = pages.message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "The service is busy right now. Please try again in a moment.",
    );
    page.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static(DATABASE_RETRY_AFTER_SECS),
    );
    page
}

/// The generic error page; a fixed one should even its template fail.
pub fn internal_error(pages: &Pages) -> HttpResponse {
    let html = pages
        .html(
            "message.html",
            context! { title => "Something went wrong", text => "Please try again later." },
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the error page failed to render");
            FALLBACK.to_owned()
        });
    pages.page(StatusCode::INTERNAL_SERVER_ERROR, html)
}

const FALLBACK: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
    <title>Something went wrong</title></head><body><main><h1>Something went wrong</h1>\
    <p>Please try again later.</p></main></body></html>";
