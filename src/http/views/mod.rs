//! Latchkey's own pages for links opened from a mail client: confirming an email address,
//! choosing a new password, accepting an invitation. Plain HTML forms, no script, a strict
//! CSP; the token travels in the form, never in a cookie, so there is nothing to forge.

pub(super) mod error;
pub(super) mod links;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page: `title` and `body_html` (already escaped by the caller).
pub fn page(status: StatusCode, title: &str, body_html: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:3rem 1rem;color:#1f2430}}\
         main{{max-width:26rem;margin:auto;background:#fff;border-radius:8px;padding:2rem;box-shadow:0 1px 3px #0002}}\
         h1{{font-size:1.3rem;margin-top:0}}label{{display:block;margin:1rem 0 .3rem}}\
         input{{width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #c5c9d2;border-radius:4px;font-size:1rem}}\
         button{{margin-top:1.2rem;width:100%;padding:.7rem;border:0;border-radius:4px;background:#2f5bea;color:#fff;font-size:1rem}}\
         .err{{color:#b3261e}}</style></head><body><main><h1>{title}</h1>{body_html}</main></body></html>",
        title = escape(title),
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .body(html)
}

/// A message page.
pub fn message(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    page(status, title, &format!("<p>{}</p>", escape(text)))
}

/// A form posting `token` (hidden) and the given fields to `action`.
pub fn form(
    title: &str,
    intro: &str,
    action: &str,
    token: &str,
    fields: &[(&str, &str, &str)],
    button: &str,
) -> HttpResponse {
    let mut body = format!(
        "<p>{}</p><form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"token\" value=\"{}\">",
        escape(intro),
        escape(action),
        escape(token)
    );
    for (name, label, kind) in fields {
        let autocomplete = if *kind == "password" {
            "new-password"
        } else {
            "name"
        };
        body.push_str(&format!(
            "<label for=\"{n}\">{l}</label><input id=\"{n}\" name=\"{n}\" type=\"{k}\" autocomplete=\"{a}\"{r}>",
            n = escape(name),
            l = escape(label),
            k = escape(kind),
            a = autocomplete,
            r = if *kind == "password" { " required" } else { "" },
        ));
    }
    body.push_str(&format!(
        "<button type=\"submit\">{}</button></form>",
        escape(button)
    ));
    page(StatusCode::OK, title, &body)
}

/// The page a verification link opens: a button, and the password chosen at sign-up when
/// the account has one (`needs_password`), with a way out for a mailbox owner who did not
/// sign up. `error` (escaped here) is shown above the form.
pub fn verify_form(
    status: StatusCode,
    token: &str,
    needs_password: bool,
    error: Option<&str>,
) -> HttpResponse {
    let mut body = String::new();
    if let Some(e) = error {
        body.push_str(&format!(
            "<p class=\"err\" role=\"alert\">{}</p>",
            escape(e)
        ));
    }
    if needs_password {
        body.push_str(
            "<p>Enter the password chosen when this account was signed up to confirm that \
             this address is yours.</p>",
        );
    } else {
        body.push_str("<p>Press the button to confirm that this address is yours.</p>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/api/v1/email/verify\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">",
        escape(token)
    ));
    if needs_password {
        body.push_str(
            "<label for=\"password\">Password</label><input id=\"password\" name=\"password\" \
             type=\"password\" autocomplete=\"current-password\" required>",
        );
    }
    body.push_str("<button type=\"submit\">Confirm</button></form>");
    if needs_password {
        body.push_str(
            "<p>Did not sign up, or forgot the password? Ask the app for a password reset \
             instead: the link it mails confirms the address and lets you choose your own \
             password, and whoever signed up with your address loses access.</p>",
        );
    }
    page(status, "Confirm your email address", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
