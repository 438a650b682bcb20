//! Fake upstream providers, as real HTTP servers on loopback speaking the real protocols: an
//! OpenID Connect provider (discovery, JWKS, an authorization endpoint that signs in whoever
//! the test says, a token endpoint issuing ES256 ID tokens) and a GitHub-like server (the
//! authorization page, the token endpoint, `/user` and `/user/emails`). Tests set what the
//! next sign-in asserts and how the provider misbehaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "latchkey-at-idp";
pub const CLIENT_SECRET: &str = "idp-secret-123";

/// How the next token answer misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tamper {
    None,
    BadSignature,
    WrongAudience,
    WrongIssuer,
    Expired,
    AlgNone,
    WrongNonce,
    ServerError,
    /// The token endpoint answers after 3 seconds.
    Slow,
    /// The token endpoint answers 200 with a body that is not JSON.
    Garbage,
}

struct Pending {
    challenge: String,
    nonce: Option<String>,
    redirect_uri: String,
}

pub struct State {
    base: String,
    /// Claims the next ID token carries (merged over `sub`, `iss`, ...), or GitHub's `/user`.
    pub next: Value,
    /// GitHub's `/user/emails`.
    pub emails: Value,
    /// People who sign in next, one per authorization, before `next` (for a browser test
    /// that signs in twice in one script).
    queue: std::collections::VecDeque<Value>,
    pub tamper: Tamper,
    codes: HashMap<String, Pending>,
    key_pem: String,
    other_key_pem: String,
    jwk: Value,
}

#[derive(Clone)]
pub struct FakeIdp {
    pub base: String,
    pub state: Arc<Mutex<State>>,
}

fn es256_key() -> (String, Value) {
    let key = rcgen::KeyPair::generate().unwrap();
    let raw = key.public_key_raw();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "fake-1",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    });
    (key.serialize_pem(), jwk)
}

impl FakeIdp {
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (key_pem, jwk) = es256_key();
        let (other_key_pem, _) = es256_key();
        let state = Arc::new(Mutex::new(State {
            base: base.clone(),
            next: json!({}),
            emails: json!([]),
            queue: std::collections::VecDeque::new(),
            tamper: Tamper::None,
            codes: HashMap::new(),
            key_pem,
            other_key_pem,
            jwk,
        }));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token))
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(token))
                .route("/api/user", web::get().to(gh_user))
                .route("/api/user/emails", web::get().to(gh_emails))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { base, state }
    }

    /// The settings that make this server Latchkey's Google and GitHub.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "LATCHKEY_FEDERATION_GOOGLE_CLIENT_ID".into(),
                CLIENT_ID.into(),
            ),
            (
                "LATCHKEY_FEDERATION_GOOGLE_CLIENT_SECRET".into(),
                CLIENT_SECRET.into(),
            ),
            (
                "LATCHKEY_FEDERATION_GOOGLE_ISSUER".into(),
                self.base.clone(),
            ),
            (
                "LATCHKEY_FEDERATION_GITHUB_CLIENT_ID".into(),
                CLIENT_ID.into(),
            ),
            (
                "LATCHKEY_FEDERATION_GITHUB_CLIENT_SECRET".into(),
                CLIENT_SECRET.into(),
            ),
            (
                "LATCHKEY_FEDERATION_GITHUB_AUTHORIZE_URL".into(),
                format!("{}/login/oauth/authorize", self.base),
            ),
            (
                "LATCHKEY_FEDERATION_GITHUB_TOKEN_URL".into(),
                format!("{}/login/oauth/access_token", self.base),
            ),
            (
                "LATCHKEY_FEDERATION_GITHUB_API_URL".into(),
                format!("{}/api", self.base),
            ),
        ]
    }

    /// The next sign-in (either protocol) is this person.
    pub fn sign_in_as(&self, claims: Value) {
        let mut s = self.state.lock().unwrap();
        s.next = claims;
        s.tamper = Tamper::None;
    }

    /// The next sign-ins are these people, in order.
    pub fn queue(&self, people: Vec<Value>) {
        let mut s = self.state.lock().unwrap();
        s.queue = people.into();
        s.tamper = Tamper::None;
    }

    pub fn set_emails(&self, emails: Value) {
        self.state.lock().unwrap().emails = emails;
    }

    pub fn tamper(&self, t: Tamper) {
        self.state.lock().unwrap().tamper = t;
    }

    /// An ID token as the provider's mobile SDK would hand it to a native app: issued to
    /// `aud`, carrying `claims` (merged over the standard ones) and the app's nonce, signed
    /// with the provider's key (or another key, with `Tamper::BadSignature`).
    pub fn native_id_token(&self, aud: &str, claims: Value, tamper: Tamper) -> String {
        let s = self.state.lock().unwrap();
        let now = chrono::Utc::now().timestamp();
        let base = merge(
            &json!({"iss": s.base, "aud": aud, "iat": now, "exp": now + 300}),
            claims,
        );
        match tamper {
            Tamper::BadSignature => sign(&s.other_key_pem, &base),
            Tamper::Expired => sign(
                &s.key_pem,
                &merge(&base, json!({"exp": now - 600, "iat": now - 900})),
            ),
            Tamper::WrongIssuer => sign(
                &s.key_pem,
                &merge(&base, json!({"iss": "https://evil.example"})),
            ),
            Tamper::AlgNone => format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(base.to_string())
            ),
            _ => sign(&s.key_pem, &base),
        }
    }
}

type Shared = web::Data<Arc<Mutex<State>>>;

async fn discovery(s: Shared) -> HttpResponse {
    let base = s.lock().unwrap().base.clone();
    HttpResponse::Ok().json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

async fn jwks(s: Shared) -> HttpResponse {
    let jwk = s.lock().unwrap().jwk.clone();
    HttpResponse::Ok().json(json!({ "keys": [jwk] }))
}

/// Signs in the configured person at once and sends the browser back with a code.
async fn authorize(req: HttpRequest, s: Shared) -> HttpResponse {
    let q: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(
        q.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    let code = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    let redirect = q["redirect_uri"].clone();
    {
        let mut s = s.lock().unwrap();
        if let Some(next) = s.queue.pop_front() {
            s.next = next;
        }
    }
    s.lock().unwrap().codes.insert(
        code.clone(),
        Pending {
            challenge: q["code_challenge"].clone(),
            nonce: q.get("nonce").cloned(),
            redirect_uri: redirect.clone(),
        },
    );
    let state: String = url::form_urlencoded::byte_serialize(q["state"].as_bytes()).collect();
    HttpResponse::Found()
        .insert_header(("location", format!("{redirect}?code={code}&state={state}")))
        .finish()
}

fn sign(pem: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("fake-1".into());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// The token endpoint of both protocols: checks the client, the code, the redirect URI and
/// the PKCE verifier, then answers with tokens (and an ID token for OpenID Connect).
async fn token(
    req: HttpRequest,
    body: web::Form<HashMap<String, String>>,
    s: Shared,
) -> HttpResponse {
    let f = body.into_inner();
    let tamper = s.lock().unwrap().tamper;
    if tamper == Tamper::Slow {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
    let mut s = s.lock().unwrap();
    if s.tamper == Tamper::ServerError {
        return HttpResponse::InternalServerError().body("down");
    }
    if s.tamper == Tamper::Garbage {
        return HttpResponse::Ok()
            .content_type("application/json")
            .body("{not json");
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let authed = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        == Some(&basic)
        || (f.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && f.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET));
    if !authed {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    let Some(p) = f.get("code").and_then(|c| s.codes.remove(c)) else {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    if challenge != p.challenge || f.get("redirect_uri") != Some(&p.redirect_uri) {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    }
    let github = req.path().starts_with("/login/oauth");
    if github {
        return HttpResponse::Ok().json(json!({
            "access_token": "gho_fake", "token_type": "bearer", "scope": "read:user,user:email"
        }));
    }
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": s.base, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
        "nonce": p.nonce,
    });
    if let (Value::Object(c), Value::Object(next)) = (&mut claims, s.next.clone()) {
        c.extend(next);
    }
    let id_token = match s.tamper {
        Tamper::WrongAudience => sign(&s.key_pem, &merge(&claims, json!({"aud": "someone-else"}))),
        Tamper::WrongIssuer => sign(
            &s.key_pem,
            &merge(&claims, json!({"iss": "https://evil.example"})),
        ),
        Tamper::Expired => sign(
            &s.key_pem,
            &merge(&claims, json!({"exp": now - 600, "iat": now - 900})),
        ),
        Tamper::WrongNonce => sign(&s.key_pem, &merge(&claims, json!({"nonce": "not-the-one"}))),
        Tamper::BadSignature => sign(&s.other_key_pem, &claims),
        Tamper::AlgNone => format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        ),
        Tamper::None | Tamper::ServerError | Tamper::Slow | Tamper::Garbage => {
            sign(&s.key_pem, &claims)
        }
    };
    s.tamper = Tamper::None;
    HttpResponse::Ok().json(json!({
        "access_token": "at-fake", "token_type": "Bearer", "expires_in": 300, "id_token": id_token
    }))
}

fn merge(a: &Value, b: Value) -> Value {
    let mut a = a.clone();
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

async fn gh_user(req: HttpRequest, s: Shared) -> HttpResponse {
    if req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        != Some("Bearer gho_fake")
    {
        return HttpResponse::Unauthorized().finish();
    }
    HttpResponse::Ok().json(s.lock().unwrap().next.clone())
}

async fn gh_emails(req: HttpRequest, s: Shared) -> HttpResponse {
    if req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        != Some("Bearer gho_fake")
    {
        return HttpResponse::Unauthorized().finish();
    }
    HttpResponse::Ok().json(s.lock().unwrap().emails.clone())
}
