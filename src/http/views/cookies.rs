//! The cookies of the hosted pages: the SSO session, the CSRF binding and the pending request
//! of a magic-link sign-in. Host-only,
//! `Path=/`, `HttpOnly`, `SameSite=Lax`; with an https issuer also `Secure` and the
//! `__Host-` prefix (an http issuer on loopback, for development, goes without).

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::HttpRequest;

use crate::http::AppState;
use crate::services::SessionSecret;

/// The session cookie's name.
pub fn session_name(state: &AppState) -> &'static str {
    if state.secure_cookies {
        "__Host-latchkey_session"
    } else {
        "latchkey_session"
    }
}

/// The CSRF cookie's name.
pub fn csrf_name(state: &AppState) -> &'static str {
    if state.secure_cookies {
        "__Host-latchkey_csrf"
    } else {
        "latchkey_csrf"
    }
}

fn base<'c>(state: &AppState, name: &'static str, value: String) -> Cookie<'c> {
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(state.secure_cookies);
    c
}

/// The cookie naming a new session: persistent for a remembered one, else for the browser
/// session.
pub fn session_cookie<'c>(
    state: &AppState,
    secret: &SessionSecret,
    max_age: Option<i64>,
) -> Cookie<'c> {
    let mut c = base(
        state,
        session_name(state),
        secret.expose_secret().to_owned(),
    );
    if let Some(secs) = max_age {
        c.set_max_age(CookieDuration::seconds(secs));
    }
    c
}

/// Removes the session cookie.
pub fn clear_session_cookie<'c>(state: &AppState) -> Cookie<'c> {
    let mut c = base(state, session_name(state), String::new());
    c.set_max_age(CookieDuration::ZERO);
    c
}

/// The CSRF binding cookie (a browser-session cookie).
pub fn csrf_cookie<'c>(state: &AppState, value: &str) -> Cookie<'c> {
    base(state, csrf_name(state), value.to_owned())
}

/// A cookie's value, if the request has it (the first, if repeated).
pub fn read(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The cookie that keeps a pending authorization request while the user fetches a magic
/// link from their mailbox (the link itself carries only its secret).
pub fn magic_name(state: &AppState) -> &'static str {
    if state.secure_cookies {
        "__Host-latchkey_magic"
    } else {
        "latchkey_magic"
    }
}

/// How long the magic-link cookie keeps the pending request (longer than a link lives).
const MAGIC_MAX_AGE_SECS: i64 = 30 * 60;

/// The magic-link cookie holding a sealed pending request.
pub fn magic_cookie<'c>(state: &AppState, sealed: &str) -> Cookie<'c> {
    let mut c = base(state, magic_name(state), sealed.to_owned());
    c.set_max_age(CookieDuration::seconds(MAGIC_MAX_AGE_SECS));
    c
}

/// Removes the magic-link cookie.
pub fn clear_magic_cookie<'c>(state: &AppState) -> Cookie<'c> {
    let mut c = base(state, magic_name(state), String::new());
    c.set_max_age(CookieDuration::ZERO);
    c
}

/// The cookie that binds an upstream sign-in (federation) to this browser: its state, nonce
/// and PKCE verifier, sealed. `SameSite=Lax` so that the provider's redirect back (a
/// top-level GET) carries it.
pub fn federation_name(state: &AppState) -> &'static str {
    if state.secure_cookies {
        "__Host-latchkey_federation"
    } else {
        "latchkey_federation"
    }
}

pub fn federation_cookie<'c>(state: &AppState, sealed: &str, max_age: i64) -> Cookie<'c> {
    let mut c = base(state, federation_name(state), sealed.to_owned());
    c.set_max_age(CookieDuration::seconds(max_age));
    c
}

pub fn clear_federation_cookie<'c>(state: &AppState) -> Cookie<'c> {
    let mut c = base(state, federation_name(state), String::new());
    c.set_max_age(CookieDuration::ZERO);
    c
}
