//! Latchkey's own HTML pages: today the pages that links mailed to a user open (confirming an
//! email address, choosing a new password, accepting an invitation). Plain HTML forms, no
//! script, a strict CSP; the token travels in the form, never in a cookie, so there is
//! nothing to forge.
//!
//! The pages are templates under `templates/`, compiled into the binary and parsed once, when
//! the [`AppState`](crate::http::AppState) is built; every value is HTML-escaped.

pub(super) mod account;
pub(super) mod account_mfa;
pub(super) mod authorize;
mod browser;
mod cookies;
mod csrf;
pub(super) mod enrolment;
pub(super) mod error;
pub(super) mod federation;
pub(super) mod links;
pub(super) mod logout;
pub(super) mod magic_link;
pub(super) mod passkey;
pub(super) mod second_factor;
pub(super) mod self_service;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use minijinja::syntax::SyntaxConfig;
use minijinja::{context, AutoEscape, Environment, UndefinedBehavior, Value};

/// Each template under `templates/`, by file name, compiled in.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("templates/", $name)))),*]
    };
}

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = templates![
    "layout.html",
    "message.html",
    "invitation.html",
    "verify_email.html",
    "password_reset.html",
    "password_retry.html",
    "password_refused.html",
    "sign_in.html",
    "consent.html",
    "form_post.html",
    "logout_confirm.html",
    "signed_out.html",
    "account.html",
    "signup.html",
    "password_forgot.html",
    "check_mail.html",
    "magic_request.html",
    "magic_code.html",
    "magic_landing.html",
    "federation_error.html",
    "federation_link.html",
    "sign_in_mfa.html",
    "account_mfa_enrol.html",
    "account_mfa_codes.html",
    "sign_in_enrol.html",
    "sign_in_codes.html",
    "sign_in_reauth.html",
];

/// The script of the form-post response page (submits the form on load), served from
/// `/assets/form_post.js` so the page's CSP needs no inline script.
pub const FORM_POST_JS: &str =
    "document.addEventListener('DOMContentLoaded',function(){document.forms[0].submit();});\n";

/// The passkey ceremonies' script (WebAuthn in the browser), inlined in the pages that offer
/// passkeys and allowed by their CSP through its SHA-256 hash alone (`script-src
/// 'sha256-...'`): no other script runs there, not even one of Latchkey's own URLs.
pub const PASSKEY_JS: &str = include_str!("passkey.js");

/// `GET /assets/form_post.js`.
pub async fn get_form_post_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(FORM_POST_JS)
}

/// How the pages look, from `[branding]` (checked by the configuration; the template
/// overrides read by start-up).
#[derive(Debug, Clone, Default)]
pub struct Branding {
    pub product_name: Option<String>,
    pub logo_url: Option<String>,
    /// The CSP source the logo needs (`'self'` or its https origin).
    pub logo_source: Option<String>,
    pub primary_color: Option<String>,
    pub background_color: Option<String>,
    pub text_color: Option<String>,
    pub stylesheet_url: Option<String>,
    /// The CSP source the stylesheet needs.
    pub stylesheet_source: Option<String>,
    /// Templates that replace the built-in ones, by name.
    pub overrides: Vec<(String, String)>,
}

impl Branding {
    /// The names templates may be overridden by.
    pub fn template_names() -> impl Iterator<Item = &'static str> {
        TEMPLATES.iter().map(|(name, _)| *name)
    }

    /// Parses every template with the overrides: an override that does not parse stops
    /// start-up with the engine's message.
    pub fn check(&self) -> Result<(), String> {
        environment(self).map(|_| ()).map_err(|e| format!("{e:#}"))
    }

    fn csp(&self, script: bool) -> String {
        let mut style = String::from("style-src 'unsafe-inline'");
        if let Some(src) = &self.stylesheet_source {
            style.push(' ');
            style.push_str(src);
        }
        let img = match &self.logo_source {
            Some(src) => format!("; img-src {src}"),
            None => String::new(),
        };
        if script {
            format!("default-src 'none'; {style}{img}; script-src 'self'; form-action *; frame-ancestors 'none'; base-uri 'none'")
        } else {
            format!("default-src 'none'; {style}{img}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        }
    }

    /// What every template sees as `brand`.
    fn globals(&self) -> Value {
        context! {
            product_name => self.product_name.clone().unwrap_or_else(|| "Latchkey".into()),
            logo_url => self.logo_url.clone(),
            primary => self.primary_color.clone().unwrap_or_else(|| "#2f5bea".into()),
            background => self.background_color.clone().unwrap_or_else(|| "#f4f5f7".into()),
            text => self.text_color.clone().unwrap_or_else(|| "#1f2430".into()),
            stylesheet_url => self.stylesheet_url.clone(),
        }
    }
}

/// The templates, parsed, the operator's overrides replacing the built-in ones.
fn environment(branding: &Branding) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    for (name, source) in TEMPLATES {
        match branding.overrides.iter().find(|(n, _)| n == name) {
            Some((_, custom)) => env.add_template_owned(name.to_string(), custom.clone())?,
            None => env.add_template(name, source)?,
        }
    }
    env.add_global("brand", branding.globals());
    env.add_global(
        "passkey_script",
        Value::from_safe_string(PASSKEY_JS.to_owned()),
    );
    Ok(env)
}

/// The page templates, parsed once at start-up.
pub struct Pages {
    env: Environment<'static>,
    csp: String,
    csp_with_script: String,
    /// The CSP source of the passkey script: its hash.
    passkey_script_source: String,
}

impl Pages {
    /// Parses every template. The unit tests parse and render them all, so one that does not
    /// parse never ships; should it, it is logged here and its pages answer the generic
    /// error page.
    pub fn load(branding: &Branding) -> Self {
        let env = environment(branding).unwrap_or_else(|e| {
            tracing::error!(error = %e, "a page template does not parse");
            Environment::new()
        });
        Self {
            env,
            csp: branding.csp(false),
            csp_with_script: branding.csp(true),
            passkey_script_source: format!(
                "'sha256-{}'",
                crate::crypto::sha256_base64(PASSKEY_JS.as_bytes())
            ),
        }
    }

    /// `csp` allowing the passkey script (by its hash) and nothing else to run.
    fn with_passkey_script(&self, csp: &str) -> String {
        csp.replacen(
            "default-src 'none';",
            &format!(
                "default-src 'none'; script-src {};",
                self.passkey_script_source
            ),
            1,
        )
    }

    /// As [`render_posting_to`](Self::render_posting_to), for a page that runs the passkey
    /// script (inline, allowed by its hash).
    pub fn render_posting_to_with_passkeys(
        &self,
        status: StatusCode,
        template: &str,
        context: Value,
        target: Option<&str>,
    ) -> HttpResponse {
        match self.html(template, context) {
            Ok(html) => page_with_csp(
                status,
                html,
                &self.with_passkey_script(&self.csp_posting_to(target)),
            ),
            Err(e) => {
                tracing::error!(error = %e, template, "a page failed to render");
                error::internal_error(self)
            }
        }
    }

    /// The page `template` renders with `context`, answered with `status`; a rendering
    /// failure answers the generic error page.
    pub fn render(&self, status: StatusCode, template: &str, context: Value) -> HttpResponse {
        match self.html(template, context) {
            Ok(html) => self.page(status, html),
            Err(e) => {
                tracing::error!(error = %e, template, "a page failed to render");
                error::internal_error(self)
            }
        }
    }

    /// The response carrying a page, with the headers every page has.
    fn page(&self, status: StatusCode, html: String) -> HttpResponse {
        page_with_csp(status, html, &self.csp)
    }

    /// The pages' CSP with `form-action` widened to `target`'s origin (see
    /// `render_posting_to`).
    fn csp_posting_to(&self, target: Option<&str>) -> String {
        match target.and_then(form_target_source) {
            Some(source) => self.csp.replacen(
                "form-action 'self'",
                &format!("form-action 'self' {source}"),
                1,
            ),
            None => self.csp.clone(),
        }
    }

    /// A page whose form may end, through the redirect that answers it, at `target` (the
    /// client's checked redirect URI): browsers apply `form-action` to that redirect too, so
    /// the CSP allows the target's origin beside Latchkey's own. Without it, signing in,
    /// consenting or confirming a sign-out would be blocked on the way back to the client.
    pub fn render_posting_to(
        &self,
        status: StatusCode,
        template: &str,
        context: Value,
        target: Option<&str>,
    ) -> HttpResponse {
        match self.html(template, context) {
            Ok(html) => page_with_csp(status, html, &self.csp_posting_to(target)),
            Err(e) => {
                tracing::error!(error = %e, template, "a page failed to render");
                error::internal_error(self)
            }
        }
    }

    /// A page that runs Latchkey's own script (`/assets/...`, allowed by the CSP as
    /// `script-src 'self'`); no inline script.
    pub fn render_with_script(
        &self,
        status: StatusCode,
        template: &str,
        context: Value,
    ) -> HttpResponse {
        match self.html(template, context) {
            Ok(html) => page_with_csp(status, html, &self.csp_with_script),
            Err(e) => {
                tracing::error!(error = %e, template, "a page failed to render");
                error::internal_error(self)
            }
        }
    }

    /// A message page: a title and one paragraph.
    pub fn message(&self, status: StatusCode, title: &str, text: &str) -> HttpResponse {
        self.render(status, "message.html", context! { title, text })
    }

    fn html(&self, template: &str, context: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(template)?.render(context)
    }
}

/// The CSP source expression that matches a redirect URI: its origin for `http(s)`, its
/// scheme for a native app's private-use scheme (RFC 8252 §7.1); none when it cannot be
/// written as one token.
fn form_target_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let source = match url.scheme() {
        "http" | "https" => url.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    };
    source
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\''))
        .then_some(source)
}

/// A page with the headers every page has, and its CSP.
fn page_with_csp(status: StatusCode, html: String, csp: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .body(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_targets_are_origins_or_schemes() {
        assert_eq!(
            form_target_source("http://127.0.0.1:5173/callback?x=1").as_deref(),
            Some("http://127.0.0.1:5173")
        );
        assert_eq!(
            form_target_source("https://app.example.com/cb").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            form_target_source("com.example.app:/oauth").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(form_target_source("not a url"), None);
        let pages = pages();
        assert_eq!(
            pages.csp_posting_to(Some("https://app.example.com/cb")),
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://app.example.com; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(pages.csp_posting_to(None), pages.csp);
    }

    fn pages() -> Pages {
        Pages::load(&Branding::default())
    }

    const HOSTILE: &str = "<a href=\"x\">'&'</a>";

    /// Every template with the context its page gives it, a hostile value in each string.
    fn every_page() -> Vec<(&'static str, Value)> {
        let problems: Value = [HOSTILE].into_iter().collect();
        vec![
            (
                "message.html",
                context! { title => HOSTILE, text => HOSTILE },
            ),
            (
                "account_mfa_enrol.html",
                context! { title => HOSTILE, qr_svg => "<svg></svg>", secret => HOSTILE, factor_id => HOSTILE, error => HOSTILE, csrf => HOSTILE },
            ),
            (
                "account_mfa_codes.html",
                context! { title => HOSTILE, done => HOSTILE, codes => vec![HOSTILE] },
            ),
            (
                "sign_in_mfa.html",
                context! { title => HOSTILE, client_name => HOSTILE, request => HOSTILE, mfa_token => HOSTILE, remember => true, error => HOSTILE, csrf => HOSTILE, totp => true, passkey => context! { options => HOSTILE, ceremony => HOSTILE } },
            ),
            (
                "sign_in_enrol.html",
                context! { title => HOSTILE, client_name => HOSTILE, request => HOSTILE, enrolment_token => HOSTILE, factor_id => HOSTILE, qr_svg => "<svg></svg>", secret => HOSTILE, may_skip => true, remember => true, error => HOSTILE, csrf => HOSTILE },
            ),
            (
                "sign_in_codes.html",
                context! { title => HOSTILE, client_name => HOSTILE, request => HOSTILE, codes => vec![HOSTILE], csrf => HOSTILE },
            ),
            (
                "sign_in_reauth.html",
                context! { title => HOSTILE, client_name => HOSTILE, request => HOSTILE, account => HOSTILE, error => HOSTILE, csrf => HOSTILE },
            ),
            (
                "invitation.html",
                context! { title => HOSTILE, token => HOSTILE, providers => vec![context! { id => HOSTILE, name => HOSTILE }] },
            ),
            (
                "verify_email.html",
                context! { title => HOSTILE, token => HOSTILE, needs_password => true, error => HOSTILE },
            ),
            (
                "verify_email.html",
                context! { title => HOSTILE, token => HOSTILE, needs_password => false, error => None::<&str> },
            ),
            (
                "password_reset.html",
                context! { title => HOSTILE, token => HOSTILE },
            ),
            (
                "password_retry.html",
                context! { title => HOSTILE, problems => problems.clone(), token => HOSTILE },
            ),
            (
                "password_refused.html",
                context! { title => HOSTILE, problems },
            ),
            (
                "sign_in.html",
                context! { title => HOSTILE, client_name => HOSTILE, request => HOSTILE, login_hint => HOSTILE, csrf => HOSTILE, error => HOSTILE, signup_open => true, magic_links => true, providers => vec![context! { id => HOSTILE, name => HOSTILE }], passkey => context! { options => HOSTILE, ceremony => HOSTILE } },
            ),
            (
                "consent.html",
                context! { title => HOSTILE, client_name => HOSTILE, scopes => vec![HOSTILE], request => HOSTILE, csrf => HOSTILE },
            ),
            (
                "logout_confirm.html",
                context! { title => HOSTILE, client_name => HOSTILE, request => HOSTILE, csrf => HOSTILE },
            ),
            ("signed_out.html", context! { title => HOSTILE }),
            (
                "signup.html",
                context! { title => HOSTILE, client_name => HOSTILE, request => HOSTILE, email => HOSTILE, errors => vec![HOSTILE], open => true, csrf => HOSTILE },
            ),
            (
                "password_forgot.html",
                context! { title => HOSTILE, request => HOSTILE, error => HOSTILE, csrf => HOSTILE },
            ),
            (
                "check_mail.html",
                context! { title => HOSTILE, text => HOSTILE, request => HOSTILE },
            ),
            (
                "account.html",
                context! {
                    title => HOSTILE, email => HOSTILE, display_name => HOSTILE, username => HOSTILE,
                    has_password => true, done => HOSTILE, errors => vec![HOSTILE], csrf => HOSTILE,
                    sessions => vec![context! { id => HOSTILE, device => HOSTILE, user_agent => HOSTILE, ip => HOSTILE, started => HOSTILE, last_seen => HOSTILE, current => true }],
                    apps => vec![context! { client_id => HOSTILE, name => HOSTILE, scopes => HOSTILE, granted => HOSTILE }],
                    links => vec![context! { id => HOSTILE, provider_name => HOSTILE, email => HOSTILE, display_name => HOSTILE, linked => HOSTILE }],
                    providers => vec![context! { id => HOSTILE, name => HOSTILE }],
                    mfa_factors => vec![context! { id => HOSTILE, name => HOSTILE, kind => HOSTILE, added => HOSTILE, last_used => HOSTILE }],
                    recovery_codes_left => 3, mfa_recent => false,
                    passkey => context! { options => HOSTILE, ceremony => HOSTILE },
                },
            ),
            (
                "magic_request.html",
                context! { title => HOSTILE, client_name => HOSTILE, request => HOSTILE, email => HOSTILE, error => HOSTILE, csrf => HOSTILE },
            ),
            (
                "magic_code.html",
                context! { title => HOSTILE, client_name => HOSTILE, request => HOSTILE, email => HOSTILE, error => HOSTILE, csrf => HOSTILE, minutes => 10 },
            ),
            (
                "magic_landing.html",
                context! { title => HOSTILE, client_name => HOSTILE, token => HOSTILE, email => HOSTILE, error => HOSTILE, csrf => HOSTILE },
            ),
            (
                "federation_error.html",
                context! { title => HOSTILE, text => HOSTILE, back => HOSTILE },
            ),
            (
                "federation_link.html",
                context! { title => HOSTILE, provider_name => HOSTILE, email => HOSTILE, pending => HOSTILE, request => HOSTILE, error => HOSTILE, csrf => HOSTILE, providers => vec![context! { id => HOSTILE, name => HOSTILE }] },
            ),
            (
                "form_post.html",
                context! { title => HOSTILE, action => HOSTILE, fields => vec![context! { name => HOSTILE, value => HOSTILE }] },
            ),
        ]
    }

    #[test]
    fn every_template_parses() {
        environment(&Branding::default()).unwrap();
    }

    #[test]
    fn branding_reaches_the_pages_and_their_csp() {
        let branding = Branding {
            product_name: Some("Acme ID".into()),
            logo_url: Some("https://cdn.example.com/logo.svg".into()),
            logo_source: Some("https://cdn.example.com".into()),
            primary_color: Some("#aa0000".into()),
            stylesheet_url: Some("/static/acme.css".into()),
            stylesheet_source: Some("'self'".into()),
            overrides: vec![(
                "message.html".into(),
                "{% extends \"layout.html\" %}{% block content %}<p class=custom>{{ text }}</p>{% endblock %}".into(),
            )],
            ..Default::default()
        };
        let pages = Pages::load(&branding);
        let html = pages
            .html("message.html", context! { title => "T", text => "hello" })
            .unwrap();
        assert!(html.contains("Acme ID"), "{html}");
        assert!(
            html.contains("src=\"https:&#x2f;&#x2f;cdn.example.com&#x2f;logo.svg\""),
            "{html}"
        );
        assert!(html.contains("#aa0000"), "{html}");
        assert!(
            html.contains("href=\"&#x2f;static&#x2f;acme.css\""),
            "{html}"
        );
        assert!(html.contains("<p class=custom>hello</p>"), "{html}");
        assert!(pages.csp.contains("img-src https://cdn.example.com"));
        assert!(pages.csp.contains("style-src 'unsafe-inline' 'self'"));
        assert!(!pages.csp.contains("script-src"));
        let broken = Branding {
            overrides: vec![("layout.html".into(), "{% block".into())],
            ..Default::default()
        };
        assert!(broken.check().is_err());
    }

    #[test]
    fn every_page_renders_with_its_values_escaped() {
        let pages = pages();
        let rendered: Vec<&str> = every_page().iter().map(|(name, _)| *name).collect();
        for (name, _) in TEMPLATES.iter().filter(|(n, _)| *n != "layout.html") {
            assert!(rendered.contains(name), "{name} has a rendering test");
        }
        for (name, context) in every_page() {
            let html = pages.html(name, context).unwrap();
            assert!(html.starts_with("<!doctype html>"), "{name}: {html}");
            assert!(!html.contains(HOSTILE), "{name} escapes: {html}");
            assert!(
                html.contains("&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;&#x2f;a&gt;"),
                "{name}: {html}"
            );
        }
    }

    #[test]
    fn a_missing_value_fails_the_rendering_not_the_page() {
        let pages = pages();
        assert!(pages
            .html("message.html", context! { title => "t" })
            .is_err());
        let page = pages.render(StatusCode::OK, "message.html", context! { title => "t" });
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let page = pages.render(StatusCode::OK, "no-such.html", context! {});
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn the_error_page_stands_even_without_templates() {
        let pages = Pages {
            env: Environment::new(),
            csp: String::new(),
            csp_with_script: String::new(),
            passkey_script_source: String::new(),
        };
        let page = error::internal_error(&pages);
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
