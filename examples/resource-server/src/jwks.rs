//! The identity provider's signing keys: fetched from `jwks_uri`, kept for the
//! `Cache-Control: max-age` it is served with, refetched at most once per
//! `min_refetch` when a token names a `kid` we do not know (an emergency rotation).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

/// One verification key.
pub struct Key {
    pub key: DecodingKey,
    /// The algorithm the key is for; a token whose header names another is refused.
    pub alg: Algorithm,
}

struct Cached {
    keys: HashMap<String, Arc<Key>>,
    /// Until when the keys may be used without asking again (`max-age`).
    fresh_until: Instant,
}

pub struct JwksCache {
    http: reqwest::Client,
    jwks_uri: String,
    cached: RwLock<Cached>,
    /// Serialises fetches, and remembers when the last one was made for an unknown `kid`.
    fetching: Mutex<Option<Instant>>,
    min_refetch: Duration,
}

/// Used when the JWKS comes without `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

impl JwksCache {
    /// Fetches the keys once, so the server starts with them (or does not start).
    pub async fn load(
        http: reqwest::Client,
        jwks_uri: String,
        min_refetch: Duration,
    ) -> Result<Self, String> {
        let (keys, max_age) = fetch(&http, &jwks_uri).await?;
        Ok(Self {
            http,
            jwks_uri,
            cached: RwLock::new(Cached {
                keys,
                fresh_until: Instant::now() + max_age,
            }),
            fetching: Mutex::new(None),
            min_refetch,
        })
    }

    /// The key called `kid`, or why there is none.
    pub async fn key(&self, kid: &str) -> Result<Arc<Key>, String> {
        {
            let cached = self.cached.read().await;
            if Instant::now() < cached.fresh_until {
                if let Some(key) = cached.keys.get(kid) {
                    return Ok(key.clone());
                }
            }
        }
        // Expired, or an unknown kid: one fetch at a time.
        let mut last_unknown = self.fetching.lock().await;
        let expired = {
            let cached = self.cached.read().await;
            if Instant::now() < cached.fresh_until {
                if let Some(key) = cached.keys.get(kid) {
                    // Another request refreshed the keys while we waited.
                    return Ok(key.clone());
                }
                false
            } else {
                true
            }
        };
        if !expired {
            // Fresh keys without this kid: refetch, but not more often than min_refetch.
            if last_unknown.is_some_and(|at| at.elapsed() < self.min_refetch) {
                return Err(format!("unknown kid {kid:?}"));
            }
            *last_unknown = Some(Instant::now());
        }
        match fetch(&self.http, &self.jwks_uri).await {
            Ok((keys, max_age)) => {
                log!(
                    "JWKS fetched: {} key(s), max-age {}s",
                    keys.len(),
                    max_age.as_secs()
                );
                let mut cached = self.cached.write().await;
                *cached = Cached {
                    keys,
                    fresh_until: Instant::now() + max_age,
                };
                cached
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or_else(|| format!("unknown kid {kid:?}"))
            }
            Err(e) => {
                // Keep using what we have: published keys are announced well ahead of use.
                // Ask again after min_refetch, not on every request.
                log!("JWKS fetch failed, keeping the cached keys: {e}");
                let mut cached = self.cached.write().await;
                cached.fresh_until = cached.fresh_until.max(Instant::now() + self.min_refetch);
                cached
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or_else(|| format!("unknown kid {kid:?} (and the JWKS fetch failed)"))
            }
        }
    }
}

async fn fetch(
    http: &reqwest::Client,
    uri: &str,
) -> Result<(HashMap<String, Arc<Key>>, Duration), String> {
    let answer = http
        .get(uri)
        .send()
        .await
        .map_err(|e| format!("GET {uri}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!("GET {uri}: {}", answer.status()));
    }
    let max_age = answer
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age)
        .unwrap_or(DEFAULT_MAX_AGE);
    let set: serde_json::Value = answer
        .json()
        .await
        .map_err(|e| format!("GET {uri}: not JSON: {e}"))?;
    let mut keys = HashMap::new();
    for raw in set["keys"].as_array().into_iter().flatten() {
        // One key we cannot use (another kty, a private member) must not hide the others.
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), raw["alg"].as_str()) else {
            continue;
        };
        let (Ok(alg), Ok(key)) = (alg.parse::<Algorithm>(), DecodingKey::from_jwk(&jwk)) else {
            continue;
        };
        keys.insert(kid, Arc::new(Key { key, alg }));
    }
    Ok((keys, max_age))
}

/// `max-age=N` of a Cache-Control value (`no-store`/`no-cache` mean zero).
fn max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse().ok().map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }
}
