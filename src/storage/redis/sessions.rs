//! The Redis SSO session store: sessions shared by every instance without a database round
//! trip per request.
//!
//! Keys (under the configured prefix `p`):
//! - `p` + `sso:s:<id>`: a hash, the session's fields (`amr` space-joined, `clients` a JSON
//!   array, `remember` 0 or 1, `user_agent` and `ip` absent when unknown);
//! - `p` + `sso:h:<secret hash>`: the id of the session whose cookie secret hashes to it;
//! - `p` + `sso:u:<user id>`: a set, the ids of the user's sessions;
//! - `p` + `sso:exp`: a sorted set, every session's id scored by its earliest expiry (the idle
//!   one, which never lies past the absolute one), for `take_expired`.
//!
//! Liveness is judged by the `now` the caller passes (its clock), never by Redis's time. The
//! keys live until a day after the session's absolute expiry (a time to live counted from its
//! creation; the user's set and the expiry index as long as their longest-lived session): that
//! is only garbage collection, so `take_expired` still finds a session that
//! expired while no instance was looking. Every step
//! that changes a session is one script (one round trip, atomic); the scripts derive the keys
//! of a session from its fields, so they assume a single Redis (not a cluster), as the rest of
//! Latchkey's Redis use does.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::RedisSettings;
use crate::clock::UnixTime;
use crate::domain::{Amr, ClientId, SessionId, SsoSession, UserId};
use crate::storage::{FoundSession, SessionStore, StorageError, StorageResult};

/// How long the keys of a session outlive its absolute expiry (garbage collection only).
const GC_MARGIN_SECS: i64 = 86_400;

/// Shared by the scripts. `p` is the prefix of the session keys (`<prefix>sso:`).
const COMMON: &str = r"
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
local function live(flat, now)
  local idle = tonumber(field(flat, 'idle_expires_at'))
  local abs = tonumber(field(flat, 'absolute_expires_at'))
  return idle ~= nil and abs ~= nil and idle > now and abs > now
end
-- Makes a key live at least `ttl` more seconds.
local function extend(key, ttl)
  if redis.call('TTL', key) == -1 then
    redis.call('EXPIRE', key, ttl)
  else
    redis.call('EXPIRE', key, ttl, 'GT')
  end
end
local function forget(p, id, flat)
  redis.call('DEL', p .. 's:' .. id)
  local h = field(flat, 'secret_hash')
  if h then
    local hk = p .. 'h:' .. h
    if redis.call('GET', hk) == id then redis.call('DEL', hk) end
  end
  local u = field(flat, 'user_id')
  if u then redis.call('SREM', p .. 'u:' .. u, id) end
  redis.call('ZREM', p .. 'exp', id)
end
";

/// KEYS: the session, its secret's index, the user's set, the expiry index. ARGV: the id, the
/// keys' time to live (seconds), the earliest expiry, then the fields and values. Returns 0,
/// or 1 when the id exists, 2 when the secret's hash does.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
extend(KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
extend(KEYS[4], ARGV[2])
return 0
";

/// KEYS[1]: the secret's index. ARGV: the prefix. Returns the session's fields, or nothing.
const FIND: &str = r"
local id = redis.call('GET', KEYS[1])
if not id then return {} end
return redis.call('HGETALL', ARGV[1] .. 's:' .. id)
";

/// KEYS: the session, the expiry index. ARGV: now, the new idle expiry, the id. Returns 1 if
/// the session is live (and now touched), else 0.
const TOUCH: &str = r"
local v = redis.call('HMGET', KEYS[1], 'idle_expires_at', 'absolute_expires_at')
local idle, abs = tonumber(v[1]), tonumber(v[2])
local now = tonumber(ARGV[1])
if idle == nil or abs == nil or idle <= now or abs <= now then return 0 end
local new = ARGV[2]
if tonumber(new) > abs then new = v[2] end
redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[1], 'idle_expires_at', new)
redis.call('ZADD', KEYS[2], new, ARGV[3])
return 1
";

/// KEYS[1]: the session. ARGV: now, the new amr (stored form, space-joined), the new
/// auth_time. Returns 1 if the session is live (and now stepped up), else 0.
const STEP_UP: &str = r"
local v = redis.call('HMGET', KEYS[1], 'idle_expires_at', 'absolute_expires_at')
local idle, abs = tonumber(v[1]), tonumber(v[2])
local now = tonumber(ARGV[1])
if idle == nil or abs == nil or idle <= now or abs <= now then return 0 end
redis.call('HSET', KEYS[1], 'amr', ARGV[2], 'auth_time', ARGV[3])
return 1
";

/// KEYS[1]: the session. ARGV: now, the client id. Returns 1 if the session is live (the client
/// now among its clients), else 0.
const ADD_CLIENT: &str = r"
local v = redis.call('HMGET', KEYS[1], 'idle_expires_at', 'absolute_expires_at', 'clients')
local idle, abs = tonumber(v[1]), tonumber(v[2])
local now = tonumber(ARGV[1])
if idle == nil or abs == nil or idle <= now or abs <= now then return 0 end
local clients = cjson.decode(v[3] or '[]')
for _, c in ipairs(clients) do
  if c == ARGV[2] then return 1 end
end
clients[#clients + 1] = ARGV[2]
redis.call('HSET', KEYS[1], 'clients', cjson.encode(clients))
return 1
";

/// KEYS[1]: the user's set. ARGV: the prefix. Returns the fields of each of the user's
/// sessions still stored (live or not), forgetting the ids whose session is gone.
const LIST: &str = r"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local flat = redis.call('HGETALL', ARGV[1] .. 's:' .. id)
  if #flat == 0 then
    redis.call('SREM', KEYS[1], id)
  else
    out[#out + 1] = flat
  end
end
return out
";

/// KEYS[1]: the session. ARGV: the prefix, now, the id. Returns the fields of the session it
/// ended, or nothing if it was not live.
const END: &str = r"
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 or not live(flat, tonumber(ARGV[2])) then return {} end
forget(ARGV[1], ARGV[3], flat)
return flat
";

/// KEYS[1]: the user's set. ARGV: the prefix, now, the id to keep ('' for none). Returns the
/// fields of each session it ended.
const END_FOR_USER: &str = r"
local now = tonumber(ARGV[2])
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[3] then
    local flat = redis.call('HGETALL', ARGV[1] .. 's:' .. id)
    if #flat == 0 then
      redis.call('SREM', KEYS[1], id)
    elseif live(flat, now) then
      forget(ARGV[1], id, flat)
      out[#out + 1] = flat
    end
  end
end
return out
";

/// KEYS[1]: the expiry index. ARGV: the prefix, now, the limit. Returns the fields of each
/// expired session it ended.
const TAKE_EXPIRED: &str = r"
local now = tonumber(ARGV[2])
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  local flat = redis.call('HGETALL', ARGV[1] .. 's:' .. id)
  if #flat == 0 then
    redis.call('ZREM', KEYS[1], id)
  elseif live(flat, now) then
    redis.call('ZADD', KEYS[1], field(flat, 'idle_expires_at'), id)
  else
    forget(ARGV[1], id, flat)
    out[#out + 1] = flat
  end
end
return out
";

pub struct RedisSessionStore {
    conn: ConnectionManager,
    /// `<key_prefix>sso:`.
    prefix: String,
    create: Script,
    find: Script,
    touch: Script,
    add_client: Script,
    step_up: Script,
    list: Script,
    end: Script,
    end_for_user: Script,
    take_expired: Script,
}

fn backend(e: redis::RedisError) -> StorageError {
    StorageError::Backend(Box::new(e))
}

fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("SSO session in redis: {what}"))
}

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}{body}"))
}

/// How long the keys of a session live in Redis: until a day after its absolute expiry,
/// counted from its creation by the caller's clock (a time to live, not a Redis time, so that a
/// clock of the caller's that differs from Redis's only moves garbage collection).
fn gc_ttl(s: &SsoSession) -> i64 {
    (s.absolute_expires_at - s.created_at)
        .max(0)
        .saturating_add(GC_MARGIN_SECS)
}

/// The fields of a session as stored in its hash.
fn to_fields(s: &SsoSession) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", s.id.as_str().to_owned()),
        ("secret_hash", s.secret_hash.clone()),
        ("user_id", s.user_id.as_str().to_owned()),
        ("auth_time", s.auth_time.to_string()),
        (
            "amr",
            s.amr
                .iter()
                .map(|a| a.stored())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        ("remember", u8::from(s.remember).to_string()),
        ("created_at", s.created_at.to_string()),
        ("last_seen_at", s.last_seen_at.to_string()),
        (
            "idle_expires_at",
            s.idle_expires_at.min(s.absolute_expires_at).to_string(),
        ),
        ("absolute_expires_at", s.absolute_expires_at.to_string()),
        (
            "clients",
            serde_json::Value::Array(
                s.clients
                    .iter()
                    .map(|c| serde_json::Value::String(c.as_str().to_owned()))
                    .collect(),
            )
            .to_string(),
        ),
    ];
    if let Some(ua) = &s.user_agent {
        fields.push(("user_agent", ua.clone()));
    }
    if let Some(ip) = &s.ip {
        fields.push(("ip", ip.clone()));
    }
    fields
}

/// A session's hash, as HGETALL answers it (field, value, field, value, ...).
struct Fields(HashMap<String, String>);

impl Fields {
    fn new(flat: Vec<String>) -> Self {
        let mut map = HashMap::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            map.insert(k, v);
        }
        Self(map)
    }

    fn text(&mut self, name: &str) -> StorageResult<String> {
        self.0
            .remove(name)
            .ok_or_else(|| corrupt(format!("no {name}")))
    }

    fn time(&mut self, name: &str) -> StorageResult<UnixTime> {
        self.text(name)?
            .parse()
            .map_err(|_| corrupt(format!("{name} is not a number")))
    }

    fn session(mut self) -> StorageResult<SsoSession> {
        let amr = self
            .text("amr")?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| Amr::from_stored(s).ok_or_else(|| corrupt("amr")))
            .collect::<StorageResult<Vec<_>>>()?;
        let clients: Vec<String> =
            serde_json::from_str(&self.text("clients")?).map_err(|_| corrupt("clients"))?;
        Ok(SsoSession {
            id: SessionId::from_trusted(self.text("id")?),
            secret_hash: self.text("secret_hash")?,
            user_id: UserId::from_trusted(self.text("user_id")?),
            auth_time: self.time("auth_time")?,
            amr,
            remember: self.text("remember")? == "1",
            created_at: self.time("created_at")?,
            last_seen_at: self.time("last_seen_at")?,
            idle_expires_at: self.time("idle_expires_at")?,
            absolute_expires_at: self.time("absolute_expires_at")?,
            user_agent: self.0.remove("user_agent"),
            ip: self.0.remove("ip"),
            clients: clients
                .iter()
                .map(|c| ClientId::parse(c).map_err(corrupt))
                .collect::<StorageResult<_>>()?,
        })
    }
}

/// The session of an answer holding one hash; `None` for an empty answer.
fn one(flat: Vec<String>) -> StorageResult<Option<SsoSession>> {
    if flat.is_empty() {
        return Ok(None);
    }
    Fields::new(flat).session().map(Some)
}

fn many(hashes: Vec<Vec<String>>) -> StorageResult<Vec<SsoSession>> {
    hashes
        .into_iter()
        .map(|flat| Fields::new(flat).session())
        .collect()
}

impl RedisSessionStore {
    /// Does not connect: the connection is made on first use and re-made after failures.
    pub fn new(url: &str, settings: &RedisSettings) -> StorageResult<Self> {
        let conn = super::connection(url, settings).map_err(backend)?;
        Ok(Self {
            conn,
            prefix: format!("{}sso:", settings.key_prefix),
            create: script(CREATE),
            find: script(FIND),
            touch: script(TOUCH),
            add_client: script(ADD_CLIENT),
            step_up: script(STEP_UP),
            list: script(LIST),
            end: script(END),
            end_for_user: script(END_FOR_USER),
            take_expired: script(TAKE_EXPIRED),
        })
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}s:{id}", self.prefix)
    }

    fn hash_key(&self, secret_hash: &str) -> String {
        format!("{}h:{secret_hash}", self.prefix)
    }

    fn user_key(&self, user_id: &UserId) -> String {
        format!("{}u:{}", self.prefix, user_id.as_str())
    }

    fn expiry_key(&self) -> String {
        format!("{}exp", self.prefix)
    }
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn create(&self, s: &SsoSession) -> StorageResult<()> {
        let mut inv = self.create.prepare_invoke();
        inv.key(self.session_key(s.id.as_str()))
            .key(self.hash_key(&s.secret_hash))
            .key(self.user_key(&s.user_id))
            .key(self.expiry_key())
            .arg(s.id.as_str())
            .arg(gc_ttl(s))
            .arg(s.idle_expires_at.min(s.absolute_expires_at));
        for (name, value) in to_fields(s) {
            inv.arg(name).arg(value);
        }
        let answer: i64 = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        match answer {
            0 => Ok(()),
            1 => Err(StorageError::Conflict("sso_sessions_pkey".into())),
            _ => Err(StorageError::Conflict(
                "sso_sessions_secret_hash_key".into(),
            )),
        }
    }

    async fn find_live(
        &self,
        secret_hash: &str,
        now: UnixTime,
    ) -> StorageResult<Option<SsoSession>> {
        let flat: Vec<String> = self
            .find
            .key(self.hash_key(secret_hash))
            .arg(&self.prefix)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(one(flat)?.filter(|s| s.secret_hash == secret_hash && s.is_live(now)))
    }

    async fn find_live_with_user(
        &self,
        secret_hash: &str,
        now: UnixTime,
    ) -> StorageResult<Option<FoundSession>> {
        // The users live in the database: the caller reads the user itself.
        Ok(self
            .find_live(secret_hash, now)
            .await?
            .map(|session| FoundSession {
                session,
                user_active: None,
            }))
    }

    async fn get_live(&self, id: &SessionId, now: UnixTime) -> StorageResult<Option<SsoSession>> {
        let map: HashMap<String, String> = self
            .conn
            .clone()
            .hgetall(self.session_key(id.as_str()))
            .await
            .map_err(backend)?;
        if map.is_empty() {
            return Ok(None);
        }
        let session = Fields(map).session()?;
        Ok(Some(session).filter(|s| s.id == *id && s.is_live(now)))
    }

    async fn touch(
        &self,
        id: &SessionId,
        idle_expires_at: UnixTime,
        now: UnixTime,
    ) -> StorageResult<bool> {
        let touched: i64 = self
            .touch
            .key(self.session_key(id.as_str()))
            .key(self.expiry_key())
            .arg(now)
            .arg(idle_expires_at)
            .arg(id.as_str())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(touched == 1)
    }

    async fn step_up(
        &self,
        id: &SessionId,
        amr: &[Amr],
        auth_time: UnixTime,
        now: UnixTime,
    ) -> StorageResult<bool> {
        let stored = amr.iter().map(|a| a.stored()).collect::<Vec<_>>().join(" ");
        let done: i64 = self
            .step_up
            .key(self.session_key(id.as_str()))
            .arg(now)
            .arg(stored)
            .arg(auth_time)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(done == 1)
    }

    async fn add_client(
        &self,
        id: &SessionId,
        client_id: &ClientId,
        now: UnixTime,
    ) -> StorageResult<bool> {
        let added: i64 = self
            .add_client
            .key(self.session_key(id.as_str()))
            .arg(now)
            .arg(client_id.as_str())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(added == 1)
    }

    async fn list_for_user(
        &self,
        user_id: &UserId,
        now: UnixTime,
    ) -> StorageResult<Vec<SsoSession>> {
        let hashes: Vec<Vec<String>> = self
            .list
            .key(self.user_key(user_id))
            .arg(&self.prefix)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        let mut sessions: Vec<SsoSession> = many(hashes)?
            .into_iter()
            .filter(|s| s.user_id == *user_id && s.is_live(now))
            .collect();
        sessions.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(sessions)
    }

    async fn end(&self, id: &SessionId, now: UnixTime) -> StorageResult<Option<SsoSession>> {
        let flat: Vec<String> = self
            .end
            .key(self.session_key(id.as_str()))
            .arg(&self.prefix)
            .arg(now)
            .arg(id.as_str())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        one(flat)
    }

    async fn end_for_user(
        &self,
        user_id: &UserId,
        except: Option<&SessionId>,
        now: UnixTime,
    ) -> StorageResult<Vec<SsoSession>> {
        let hashes: Vec<Vec<String>> = self
            .end_for_user
            .key(self.user_key(user_id))
            .arg(&self.prefix)
            .arg(now)
            .arg(except.map_or("", SessionId::as_str))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        many(hashes)
    }

    async fn take_expired(&self, now: UnixTime, limit: u32) -> StorageResult<Vec<SsoSession>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let hashes: Vec<Vec<String>> = self
            .take_expired
            .key(self.expiry_key())
            .arg(&self.prefix)
            .arg(now)
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        many(hashes)
    }
}
