//! The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636, RFC 8707): its
//! parameters as received, and the request once checked against the client.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::domain::{Audience, Client, ClientKind, GrantType, Scope};

/// The parameters as they arrived (query or form), before any check. `duplicated` names the
/// parameters sent more than once (RFC 6749 §3.1: an error).
#[derive(Debug, Default, Clone)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    /// `acr_values` (OIDC Core §3.1.2.1): space-separated, in order of preference.
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    pub resource: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    /// Latchkey's extension: the identity provider to sign in with (federation).
    pub idp_hint: Option<String>,
    pub duplicated: Vec<String>,
}

/// How the response goes back (OAuth 2.0 Multiple Response Types; Form Post Response Mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    FormPost,
}

impl ResponseMode {
    pub const SUPPORTED: [&'static str; 2] = ["query", "form_post"];
}

/// `prompt` (OIDC Core §3.1.2.1; `create` from Initiating User Registration 1.0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub create: bool,
}

impl Prompt {
    pub const SUPPORTED: [&'static str; 5] =
        ["none", "login", "consent", "create", "select_account"];

    fn parse(raw: &str) -> Result<Self, &'static str> {
        let mut p = Prompt::default();
        for value in raw.split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "create" => p.create = true,
                // One account per browser session: choosing is signing in again.
                "select_account" => p.login = true,
                _ => return Err("prompt has a value this server does not support"),
            }
        }
        if p.none && (p.login || p.consent || p.create) {
            return Err("prompt=none cannot be combined with another value");
        }
        Ok(p)
    }
}

/// A checked authorization request: the client and redirect URI are trusted, every
/// parameter parsed. It travels sealed while the user signs in or consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    /// Space-delimited, as granted to the client.
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    /// `acr_values` as asked for (values this server does not know are kept and ignored:
    /// they are voluntary claims).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    pub login_hint: Option<String>,
    pub resource: Option<String>,
    pub idp_hint: Option<String>,
    /// When the request arrived: `prompt=login` wants a sign-in after it.
    pub issued_at: UnixTime,
}

impl AuthorizationRequest {
    pub fn scope(&self) -> Scope {
        Scope::parse(&self.scope).unwrap_or_default()
    }

    /// Whether `acr_values` asks for a sign-in with two factors (`urn:latchkey:acr:mfa`).
    pub fn wants_mfa(&self) -> bool {
        self.acr_values.iter().any(|v| v == crate::domain::ACR_MFA)
    }
}

pub use crate::domain::OIDC_SCOPES;

/// Where an error goes: to the user (the client or redirect URI cannot be trusted), or back
/// to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Shown on an error page; never redirected.
    Untrusted(String),
    /// Sent back to the redirect URI (RFC 6749 §4.1.2.1).
    Redirect(ErrorRedirect),
    /// Storage failed (logged where it happened): try again later.
    Unavailable,
}

/// An error response for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub error: &'static str,
    pub description: String,
}

const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;
const MAX_HINT: usize = 256;

/// Checks the client and redirect URI (errors shown to the user), then every other
/// parameter (errors sent back to the client).
pub fn check(
    params: AuthorizeParams,
    client: Option<&Client>,
    default_audience: &str,
    now: UnixTime,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let untrusted = |m: &str| Err(AuthorizeError::Untrusted(m.to_owned()));
    if params
        .duplicated
        .iter()
        .any(|p| p == "client_id" || p == "redirect_uri")
    {
        return untrusted("The request repeats client_id or redirect_uri.");
    }
    let Some(client) = client.filter(|c| c.enabled) else {
        return untrusted(if params.client_id.is_none() {
            "The request does not say which application is asking (client_id is missing)."
        } else {
            "The application that sent you here is not known to this server."
        });
    };
    let redirect_uri = match params.redirect_uri.as_deref() {
        Some(uri) if client.accepts_redirect_uri(uri) => uri.to_owned(),
        Some(_) => {
            return untrusted(
                "The address this application asked to return to is not registered for it.",
            )
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return untrusted("The request does not say where to return (redirect_uri is missing).")
        }
    };
    let response_mode = match params.response_mode.as_deref() {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => ResponseMode::Query,
    };
    let state = params.state.clone().filter(|s| !s.is_empty());
    let fail = |error: &'static str, description: &str| {
        Err(AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            response_mode,
            state: state.clone().filter(|s| s.len() <= MAX_STATE),
            error,
            description: description.to_owned(),
        }))
    };
    if let Some(p) = params.duplicated.first() {
        return fail("invalid_request", &format!("{p} is repeated"));
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return fail("invalid_request", "state is too long");
    }
    if params
        .response_mode
        .as_deref()
        .is_some_and(|m| !ResponseMode::SUPPORTED.contains(&m))
    {
        return fail(
            "invalid_request",
            "response_mode must be query or form_post",
        );
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        );
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return fail("invalid_request", "response_type is missing"),
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            )
        }
    }
    if params.request.is_some() {
        return fail("request_not_supported", "request objects are not supported");
    }
    if params.request_uri.is_some() {
        return fail("request_uri_not_supported", "request_uri is not supported");
    }
    let Ok(scope) = Scope::parse(params.scope.as_deref().unwrap_or("")) else {
        return fail("invalid_scope", "the scope is malformed");
    };
    let scope = if params.scope.is_none() {
        client.scopes.clone()
    } else {
        scope
    };
    let allowed = client.requestable_scope();
    if let Some(t) = scope.iter().find(|t| !allowed.contains(t)) {
        return fail(
            "invalid_scope",
            &format!("this client may not request the scope {t:?}"),
        );
    }
    match params.code_challenge_method.as_deref() {
        None | Some("S256") => {}
        Some("plain") => {
            return fail(
                "invalid_request",
                "code_challenge_method plain is not allowed; use S256",
            )
        }
        Some(_) => return fail("invalid_request", "code_challenge_method must be S256"),
    }
    let code_challenge = params.code_challenge.clone().filter(|c| !c.is_empty());
    match &code_challenge {
        Some(c) => {
            if params.code_challenge_method.is_none() {
                return fail(
                    "invalid_request",
                    "code_challenge_method is missing (only S256 is allowed)",
                );
            }
            let well_formed = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return fail(
                    "invalid_request",
                    "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
                );
            }
        }
        None if client.kind == ClientKind::Public => {
            return fail(
                "invalid_request",
                "a public client must send a PKCE code_challenge (S256)",
            )
        }
        None => {}
    }
    let prompt = match params.prompt.as_deref().map(Prompt::parse).transpose() {
        Ok(p) => p.unwrap_or_default(),
        Err(why) => return fail("invalid_request", why),
    };
    let max_age = match params.max_age.as_deref() {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return fail(
                    "invalid_request",
                    "max_age must be a whole number of seconds",
                )
            }
        },
    };
    let acr_values: Vec<String> = params
        .acr_values
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if acr_values.len() > 8 || acr_values.iter().any(|v| v.len() > MAX_HINT) {
        return fail("invalid_request", "acr_values is too long");
    }
    let nonce = params.nonce.clone().filter(|n| !n.is_empty());
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return fail("invalid_request", "nonce is too long");
    }
    let login_hint = params.login_hint.clone().filter(|h| !h.is_empty());
    if login_hint.as_ref().is_some_and(|h| h.len() > MAX_HINT)
        || params
            .ui_locales
            .as_ref()
            .is_some_and(|h| h.len() > MAX_HINT)
        || params.idp_hint.as_ref().is_some_and(|h| h.len() > MAX_HINT)
    {
        return fail("invalid_request", "a hint is too long");
    }
    let resource = match params.resource.as_deref() {
        None => None,
        Some(raw) => match Audience::parse_resource(raw) {
            Ok(a)
                if client.audiences.contains(&a)
                    || client.default_audience.as_ref() == Some(&a)
                    || (client.default_audience.is_none() && a.as_str() == default_audience) =>
            {
                Some(a.into_string())
            }
            Ok(_) => {
                return fail(
                    "invalid_target",
                    "this client may not request tokens for that resource",
                )
            }
            Err(_) => {
                return fail(
                    "invalid_target",
                    "resource must be an absolute URI without a fragment",
                )
            }
        },
    };
    Ok(AuthorizationRequest {
        client_id: client.id.as_str().to_owned(),
        redirect_uri,
        response_mode,
        scope: scope.to_wire(),
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        acr_values,
        login_hint,
        resource,
        idp_hint: params.idp_hint.filter(|h| !h.is_empty()),
        issued_at: now,
    })
}
