//! The one HTML error mapping: what a page answers when its request fails.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::{escape, message, page};
use crate::services::AccountError;

pub fn expired_page() -> HttpResponse {
    message(
        StatusCode::BAD_REQUEST,
        "This link cannot be used",
        "The link is invalid, has expired or was already used. Ask for a new one from the app.",
    )
}

/// An error answered as a page (the form posts).
pub fn page_error(e: AccountError) -> HttpResponse {
    match e {
        AccountError::InvalidToken => expired_page(),
        AccountError::PasswordPolicy(v) => {
            let items: String = v
                .iter()
                .map(|v| format!("<li>The password {}.</li>", escape(&v.message)))
                .collect();
            page(
                StatusCode::BAD_REQUEST,
                "Please choose another password",
                &format!("<ul class=\"err\">{items}</ul><p>Go back and try again.</p>"),
            )
        }
        AccountError::Throttled(_) => message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Please wait a few minutes and try again.",
        ),
        AccountError::Unexpected(cause) => {
            tracing::error!(error = ?cause, "account page request failed");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again later.",
            )
        }
        other => message(
            StatusCode::BAD_REQUEST,
            "This did not work",
            &other.to_string(),
        ),
    }
}
