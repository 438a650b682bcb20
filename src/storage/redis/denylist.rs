//! The Redis denylist: a shared index of the revocation log for several instances.
//!
//! Keys (under the configured prefix `p`): `p` + `at:<jti>` and `p` + `sid:<family id>` exist
//! until the covered tokens expire (`EXAT`); `p` + `user:<user id>` holds the user's
//! watermark and `p` + `client:<client id>` the client's; `p` + `cursor` is the highest log `seq` replayed into Redis. A revocation is
//! written to the log first, then to Redis directly; the periodic `sync` replays whatever
//! Redis missed (it was unreachable, or restarted empty: Redis may keep nothing on disk).
//! While `cursor` is missing (a Redis that lost its data, before the replay finishes) every
//! check fails closed, so a restarted Redis never resurrects a revoked token.
//!
//! Redis must not evict keys: run it with `maxmemory-policy noeviction` (README).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use crate::clock::UnixTime;
use crate::domain::{Revocation, TokenIdentity};
use crate::storage::{DenylistError, RevocationStore, TokenDenylist};

/// Log entries read, and written to Redis, at a time: one pipeline of `SET`s (access tokens,
/// families) and one script call (watermarks) per batch. While a batch is written the next
/// one is read from the log.
const BATCH: u32 = 10_000;

/// Watermarks raised per script call.
const RAISE_CHUNK: usize = 2000;

/// User and client watermarks, any number in one call: for each key `KEYS[i]`, raises the
/// stored `not_after` to `ARGV[2i-1]` if it is lower (or absent), and makes the key live at
/// least until `ARGV[2i]` (a Unix time).
const RAISE: &str = r"
for i, key in ipairs(KEYS) do
  local not_after = ARGV[2 * i - 1]
  local expires_at = ARGV[2 * i]
  local cur = redis.call('GET', key)
  if (not cur) or tonumber(cur) < tonumber(not_after) then
    redis.call('SET', key, not_after, 'KEEPTTL')
  end
  if cur then
    redis.call('EXPIREAT', key, expires_at, 'GT')
  else
    redis.call('EXPIREAT', key, expires_at)
  end
end
return #KEYS
";

/// Moves the cursor forward, and only while it still exists: a sync that started from
/// cursor N must not recreate it in a Redis that was emptied meanwhile (that would skip the
/// replay of everything up to N).
const ADVANCE_CURSOR: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if tonumber(cur) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
";

/// Creates the cursor after a full replay, only if the replay's marker (set when it began)
/// is still there: a Redis emptied during the replay has lost part of it.
const CREATE_CURSOR: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
";

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub key_prefix: String,
    /// Connect and response timeout: a Redis that does not answer within it counts as down.
    pub timeout: Duration,
}

pub struct RedisDenylist {
    conn: ConnectionManager,
    prefix: String,
    log: Arc<dyn RevocationStore>,
    raise: Script,
    advance_cursor: Script,
    create_cursor: Script,
    /// Whether the eviction policy was looked at (once, after the first successful sync).
    policy_checked: std::sync::atomic::AtomicBool,
}

fn unavailable(e: redis::RedisError) -> DenylistError {
    DenylistError::Unavailable(format!("redis: {e}"))
}

impl RedisDenylist {
    /// Does not connect: the connection is made on first use and re-made after failures, so
    /// the service starts (not ready) while Redis is down and recovers when it is back.
    pub fn new(
        url: &str,
        settings: &RedisSettings,
        log: Arc<dyn RevocationStore>,
    ) -> Result<Self, DenylistError> {
        let conn = super::connection(url, settings).map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: settings.key_prefix.clone(),
            log,
            raise: Script::new(RAISE),
            advance_cursor: Script::new(ADVANCE_CURSOR),
            create_cursor: Script::new(CREATE_CURSOR),
            policy_checked: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    fn cursor_key(&self) -> String {
        format!("{}cursor", self.prefix)
    }

    fn replay_key(&self) -> String {
        format!("{}replaying", self.prefix)
    }

    /// An evicting Redis could drop denylist keys while the cursor stays: warn loudly. Managed
    /// Redis services may refuse CONFIG; then there is nothing to check.
    async fn warn_unless_noeviction(&self) {
        let mut conn = self.conn.clone();
        let policy: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut conn)
            .await;
        if let Ok(pair) = policy {
            if let Some(p) = pair.get(1).filter(|p| p.as_str() != "noeviction") {
                tracing::warn!(
                    policy = p.as_str(),
                    "redis maxmemory-policy is not noeviction: under memory pressure it may evict \
                     denylist entries and let revoked tokens through; set maxmemory-policy noeviction"
                );
            }
        }
    }

    async fn write(&self, entries: &[Revocation]) -> Result<(), DenylistError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for e in entries {
            match e {
                Revocation::AccessToken { jti, expires_at } => {
                    pipe.cmd("SET")
                        .arg(self.key("at", jti))
                        .arg(1)
                        .arg("EXAT")
                        .arg(*expires_at)
                        .ignore();
                }
                Revocation::Family {
                    family_id,
                    expires_at,
                } => {
                    pipe.cmd("SET")
                        .arg(self.key("sid", family_id))
                        .arg(1)
                        .arg("EXAT")
                        .arg(*expires_at)
                        .ignore();
                }
                Revocation::User { .. } | Revocation::Client { .. } => {}
            }
        }
        if !entries.iter().all(|e| e.not_after().is_some()) {
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        // Watermarks, a script call per `RAISE_CHUNK` (each call holds Redis briefly).
        let marks: Vec<(String, UnixTime, UnixTime)> = entries
            .iter()
            .filter_map(|e| {
                let key = match e {
                    Revocation::User { user_id, .. } => self.key("user", user_id),
                    Revocation::Client { client_id, .. } => self.key("client", client_id),
                    Revocation::AccessToken { .. } | Revocation::Family { .. } => return None,
                };
                e.not_after()
                    .map(|not_after| (key, not_after, e.expires_at()))
            })
            .collect();
        for chunk in marks.chunks(RAISE_CHUNK) {
            let mut raise = self.raise.prepare_invoke();
            for (key, not_after, expires_at) in chunk {
                raise.key(key).arg(*not_after).arg(*expires_at);
            }
            raise
                .invoke_async::<i64>(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

#[async_trait]
impl TokenDenylist for RedisDenylist {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn add(&self, entries: &[Revocation]) -> Result<(), DenylistError> {
        self.write(entries).await
    }

    async fn is_denied(
        &self,
        token: &TokenIdentity<'_>,
        _now: UnixTime,
    ) -> Result<bool, DenylistError> {
        let mut conn = self.conn.clone();
        let mut keys = vec![
            self.cursor_key(),
            self.key("at", token.jti),
            self.key("user", token.sub),
            self.key("client", token.client_id),
        ];
        if let Some(sid) = token.sid {
            keys.push(self.key("sid", sid));
        }
        let values: Vec<Option<String>> = conn.mget(&keys).await.map_err(unavailable)?;
        if values.first().is_none_or(Option::is_none) {
            return Err(DenylistError::Unavailable(
                "redis has not been synchronised with the revocation log yet".into(),
            ));
        }
        let under_watermark = |i: usize| {
            values
                .get(i)
                .and_then(|v| v.as_deref())
                .and_then(|v| v.parse::<UnixTime>().ok())
                .is_some_and(|not_after| token.iat <= not_after)
        };
        let jti_denied = values.get(1).is_some_and(Option::is_some);
        let user_denied = under_watermark(2);
        let client_denied = under_watermark(3);
        let sid_denied = values.get(4).is_some_and(Option::is_some);
        Ok(jti_denied || user_denied || client_denied || sid_denied)
    }

    async fn sync(&self, now: UnixTime) -> Result<(), DenylistError> {
        let log_error = |e| DenylistError::Unavailable(format!("reading the revocation log: {e}"));
        let mut conn = self.conn.clone();
        let stored: Option<i64> = conn.get(self.cursor_key()).await.map_err(unavailable)?;
        let last = self.log.last_seq().await.map_err(log_error)?;
        let stored = match stored {
            // A cursor ahead of the log (a restored database): the entries numbered below it
            // now are not the ones replayed. Drop it (checks fail closed) and replay all.
            Some(c) if c > last => {
                conn.del::<_, ()>(self.cursor_key())
                    .await
                    .map_err(unavailable)?;
                None
            }
            other => other,
        };
        // A full replay marks its start, so that its end can tell whether Redis kept it all.
        let marker = match stored {
            Some(_) => None,
            None => {
                let m = uuid::Uuid::new_v4().simple().to_string();
                conn.set::<_, _, ()>(self.replay_key(), &m)
                    .await
                    .map_err(unavailable)?;
                Some(m)
            }
        };
        let mut cursor = stored.unwrap_or(0);
        let mut batch = self
            .log
            .since(cursor, now, BATCH)
            .await
            .map_err(log_error)?;
        loop {
            let entries: Vec<Revocation> = batch.iter().map(|e| e.revocation.clone()).collect();
            let full = batch.len() == BATCH as usize;
            cursor = batch.last().map_or(cursor, |e| e.seq.max(cursor));
            if !full {
                self.write(&entries).await?;
                break;
            }
            // Write this batch while the next one is read.
            let (written, next) =
                tokio::join!(self.write(&entries), self.log.since(cursor, now, BATCH));
            written?;
            batch = next.map_err(log_error)?;
        }
        // (Not `last`: on PostgreSQL the sequence can be ahead of what has committed.)
        let done: i64 = match &marker {
            Some(m) => self
                .create_cursor
                .key(self.cursor_key())
                .key(self.replay_key())
                .arg(cursor)
                .arg(m)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?,
            None => self
                .advance_cursor
                .key(self.cursor_key())
                .arg(cursor)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?,
        };
        if done == 0 {
            return Err(DenylistError::Unavailable(
                "redis lost its data during synchronisation; replaying again".into(),
            ));
        }
        if !self
            .policy_checked
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.warn_unless_noeviction().await;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), DenylistError> {
        let mut conn = self.conn.clone();
        let cursor: Option<i64> = conn.get(self.cursor_key()).await.map_err(unavailable)?;
        if cursor.is_none() {
            return Err(DenylistError::Unavailable(
                "redis has not been synchronised with the revocation log yet".into(),
            ));
        }
        Ok(())
    }
}
