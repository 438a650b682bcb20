//! CSRF protection of the hosted pages' forms: each form carries a token that is a MAC of the
//! browser's CSRF cookie (a random value set on the first page), so a form from one browser
//! (or forged by another site, which cannot read the cookie) is refused by another.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use minijinja::{context, Value};

use super::cookies;
use crate::http::AppState;

/// The browser's binding: its CSRF cookie, or a new value to set with the page.
struct CsrfBinding {
    value: String,
    is_new: bool,
}

impl CsrfBinding {
    /// The binding of the browser that sent `req`, or a new one.
    fn of(req: &HttpRequest, state: &AppState) -> Self {
        match cookies::read(req, cookies::csrf_name(state)) {
            Some(value) if value.len() <= 128 => Self {
                value,
                is_new: false,
            },
            _ => Self {
                value: state.sign_in.sessions().new_csrf_binding(),
                is_new: true,
            },
        }
    }

    /// The token for this browser's forms.
    fn token(&self, state: &AppState) -> String {
        state.sign_in.sessions().csrf_token(&self.value)
    }

    /// The cookie to set with the page, when the binding is new.
    fn cookie<'c>(&self, state: &AppState) -> Option<actix_web::cookie::Cookie<'c>> {
        self.is_new
            .then(|| cookies::csrf_cookie(state, &self.value))
    }
}

/// Whether a posted form's token belongs to the browser that posted it.
pub fn form_is_genuine(req: &HttpRequest, state: &AppState, token: Option<&str>) -> bool {
    match (cookies::read(req, cookies::csrf_name(state)), token) {
        (Some(binding), Some(token)) => state.sign_in.sessions().csrf_matches(&binding, token),
        _ => false,
    }
}

/// A page with a form: the context gains the browser's token as `csrf`, and the binding
/// cookie is set when it is new. `target` is where the form may end up, as for
/// [`Pages::render_posting_to`](super::Pages::render_posting_to).
pub fn form_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    template: &str,
    context: Value,
    target: Option<&str>,
) -> HttpResponse {
    form_page_with(req, state, status, template, context, target, false)
}

/// As [`form_page`]; with `passkeys`, the page runs the passkey script (its CSP allows that
/// script by its hash).
pub fn form_page_with(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    template: &str,
    context: Value,
    target: Option<&str>,
    passkeys: bool,
) -> HttpResponse {
    let csrf = CsrfBinding::of(req, state);
    let context = context! { csrf => csrf.token(state), ..context };
    let mut response = if passkeys {
        state
            .pages
            .render_posting_to_with_passkeys(status, template, context, target)
    } else {
        state
            .pages
            .render_posting_to(status, template, context, target)
    };
    if let Some(c) = csrf.cookie(state) {
        let _ = response.add_cookie(&c);
    }
    response
}
