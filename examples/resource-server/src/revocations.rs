//! Latchkey's revocation feed (`GET /oauth2/revocations?since=<cursor>`), followed so that
//! tokens revoked before their `exp` are refused offline.
//!
//! Entry types (README, "Validating tokens in a resource server"):
//! - `access_token`: the token whose `jti` is listed;
//! - `session`: every access token whose `sid` is listed (a refresh-token family: a logout);
//! - `user`: every token of `sub` with `iat <= not_after` (log out everywhere, deactivation,
//!   password set, deletion);
//! - `client`: every token whose `client_id` is listed with `iat <= not_after` (the client
//!   disabled, deleted or re-keyed).
//!
//! Each entry is kept until its own `exp`, after which no token it covers can be valid.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::RwLock;

#[derive(Debug, Deserialize)]
struct Page {
    revocations: Vec<Entry>,
    next_cursor: String,
    has_more: bool,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    jti: Option<String>,
    sid: Option<String>,
    sub: Option<String>,
    client_id: Option<String>,
    not_after: Option<i64>,
    exp: i64,
}

/// A watermark: tokens issued at or before `not_after` are revoked; forgotten after `exp`.
#[derive(Debug, Clone, Copy)]
struct Watermark {
    not_after: i64,
    exp: i64,
}

#[derive(Default)]
struct State {
    jtis: HashMap<String, i64>,
    sids: HashMap<String, i64>,
    users: HashMap<String, Watermark>,
    clients: HashMap<String, Watermark>,
    /// Where the next poll starts; `None` before the first page (then every live entry comes).
    cursor: Option<String>,
    /// When the feed was last read to its end.
    synced_at: Option<Instant>,
}

/// What a token carries that the feed can revoke.
pub struct TokenIds<'a> {
    pub jti: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub sub: &'a str,
    pub client_id: Option<&'a str>,
    pub iat: i64,
}

pub enum Check {
    Valid,
    Revoked(&'static str),
    /// The feed has not been read for too long: refuse rather than accept a revoked token.
    Unavailable,
}

pub struct Revocations {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: String,
    max_staleness: Duration,
    state: RwLock<State>,
}

impl Revocations {
    pub fn new(
        http: reqwest::Client,
        url: String,
        client_id: String,
        client_secret: String,
        max_staleness: Duration,
    ) -> Self {
        Self {
            http,
            url,
            client_id,
            client_secret,
            max_staleness,
            state: RwLock::new(State::default()),
        }
    }

    pub async fn check(&self, token: &TokenIds<'_>) -> Check {
        let state = self.state.read().await;
        match state.synced_at {
            Some(at) if at.elapsed() <= self.max_staleness => {}
            _ => return Check::Unavailable,
        }
        if token.jti.is_some_and(|j| state.jtis.contains_key(j)) {
            return Check::Revoked("the token was revoked");
        }
        if token.sid.is_some_and(|s| state.sids.contains_key(s)) {
            return Check::Revoked("the session was ended");
        }
        if state
            .users
            .get(token.sub)
            .is_some_and(|w| token.iat <= w.not_after)
        {
            return Check::Revoked("the user's tokens were revoked");
        }
        if token
            .client_id
            .and_then(|c| state.clients.get(c))
            .is_some_and(|w| token.iat <= w.not_after)
        {
            return Check::Revoked("the client's tokens were revoked");
        }
        Check::Valid
    }

    /// Reads the feed from the cursor to its end, applying every page; forgets expired entries.
    pub async fn poll(&self) -> Result<usize, String> {
        let mut applied = 0;
        loop {
            let cursor = self.state.read().await.cursor.clone();
            let mut request = self
                .http
                .get(&self.url)
                .basic_auth(&self.client_id, Some(&self.client_secret));
            if let Some(c) = &cursor {
                request = request.query(&[("since", c)]);
            }
            let answer = request
                .send()
                .await
                .map_err(|e| format!("GET {}: {e}", self.url))?;
            let status = answer.status();
            if status == reqwest::StatusCode::BAD_REQUEST && cursor.is_some() {
                // A cursor ahead of the log (the database was restored): start again.
                let body = answer.text().await.unwrap_or_default();
                log!(
                    "revocation feed refused our cursor ({body}); reading it again from the start"
                );
                let mut state = self.state.write().await;
                let synced_at = state.synced_at;
                *state = State {
                    synced_at,
                    ..State::default()
                };
                continue;
            }
            if !status.is_success() {
                let body = answer.text().await.unwrap_or_default();
                return Err(format!("GET {}: {status} {body}", self.url));
            }
            let page: Page = answer
                .json()
                .await
                .map_err(|e| format!("revocation feed: unexpected answer: {e}"))?;
            let mut state = self.state.write().await;
            applied += page.revocations.len();
            for entry in page.revocations {
                state.apply(entry);
            }
            state.cursor = Some(page.next_cursor);
            if !page.has_more {
                state.forget_expired(unix_now());
                state.synced_at = Some(Instant::now());
                return Ok(applied);
            }
        }
    }
}

impl State {
    fn apply(&mut self, e: Entry) {
        let merge = |map: &mut HashMap<String, Watermark>, key: String, w: Watermark| {
            let slot = map.entry(key).or_insert(w);
            slot.not_after = slot.not_after.max(w.not_after);
            slot.exp = slot.exp.max(w.exp);
        };
        match (
            e.kind.as_str(),
            e.jti,
            e.sid,
            e.sub,
            e.client_id,
            e.not_after,
        ) {
            ("access_token", Some(jti), ..) => {
                self.jtis.insert(jti, e.exp);
            }
            ("session", _, Some(sid), ..) => {
                self.sids.insert(sid, e.exp);
            }
            ("user", _, _, Some(sub), _, Some(not_after)) => merge(
                &mut self.users,
                sub,
                Watermark {
                    not_after,
                    exp: e.exp,
                },
            ),
            ("client", _, _, _, Some(client_id), Some(not_after)) => merge(
                &mut self.clients,
                client_id,
                Watermark {
                    not_after,
                    exp: e.exp,
                },
            ),
            (kind, ..) => log!("revocation feed: ignoring an entry of unknown type {kind:?}"),
        }
    }

    fn forget_expired(&mut self, now: i64) {
        self.jtis.retain(|_, exp| *exp >= now);
        self.sids.retain(|_, exp| *exp >= now);
        self.users.retain(|_, w| w.exp >= now);
        self.clients.retain(|_, w| w.exp >= now);
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
