//! The Redis rate-limit store: counters shared by every instance.
//!
//! Keys (under the configured prefix `p`): `p` + `throttle:` + an opaque key chosen by the
//! caller (hashed identifiers, never an email or an address). A counter is a hash `{i, c, p}`:
//! the index of its current window, the count in it and the count in the window before. A
//! mark is a string holding the Unix time it lasts until. Windows and marks are judged by
//! the `now` the caller passes (its clock), never by Redis's time; the key TTLs only collect
//! garbage and are set well beyond the logical expiry. Every operation is one script (one
//! round trip, atomic).

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Script;

use crate::clock::UnixTime;
use crate::domain::WindowCounts;
use crate::storage::{
    Admission, RateCooldown, RateLimit, RateLimitError, RateLimitStore, RateSnapshot, RateWindow,
};

use super::RedisSettings;

/// Extra garbage-collection lifetime of every key beyond its logical expiry.
const GC_MARGIN_SECS: i64 = 3600;

/// Shared by the scripts: the counts of counter `key` (window `w` seconds) as seen from the
/// window holding `now`, and that window's index.
const COUNTS: &str = r"
local function counts(key, w, now)
  local idx = math.floor(now / w)
  local v = redis.call('HMGET', key, 'i', 'c', 'p')
  local i = tonumber(v[1])
  local c = tonumber(v[2]) or 0
  local p = tonumber(v[3]) or 0
  if i == idx then return c, p, idx end
  if i == idx - 1 then return 0, c, idx end
  return 0, 0, idx
end
local function hit(key, w, now, n)
  local c, p, idx = counts(key, w, now)
  c = c + (n or 1)
  redis.call('HSET', key, 'i', idx, 'c', c, 'p', p)
  redis.call('EXPIRE', key, 2 * w + tonumber(ARGV[2]))
  return c, p
end
local function mark(key, now)
  local m = tonumber(redis.call('GET', key))
  if m and m > now then return m end
  return 0
end
";

/// KEYS: counters. ARGV: now, margin, then each counter's window. Returns c, p per counter.
const HIT: &str = r"
local now = tonumber(ARGV[1])
local out = {}
for n = 1, #KEYS do
  local c, p = hit(KEYS[n], tonumber(ARGV[2 + n]), now)
  out[#out + 1] = c
  out[#out + 1] = p
end
return out
";

/// KEYS: counters, then marks. ARGV: now, margin, counter count, then each counter's window.
/// Returns c, p per counter, then each mark's time (0 if none or past).
const READ: &str = r"
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[3])
local out = {}
for k = 1, n do
  local c, p = counts(KEYS[k], tonumber(ARGV[3 + k]), now)
  out[#out + 1] = c
  out[#out + 1] = p
end
for k = n + 1, #KEYS do
  out[#out + 1] = mark(KEYS[k], now)
end
return out
";

/// KEYS: counters, then cooldown marks. ARGV: now, margin, counter count, then window,
/// limit and cost per counter, then each cooldown's `until`. Returns {1} when admitted, else
/// {0, c, p per counter, each mark's time}. The test is `SlidingWindow::allows_many`.
const ADMIT: &str = r"
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[3])
local out = {0}
local ok = true
for k = 1, n do
  local w = tonumber(ARGV[1 + 3 * k])
  local limit = tonumber(ARGV[2 + 3 * k])
  local cost = tonumber(ARGV[3 + 3 * k])
  local c, p, idx = counts(KEYS[k], w, now)
  local e = now - idx * w
  if c * w + p * (w - e) + (cost - 1) * w >= limit * w then ok = false end
  out[#out + 1] = c
  out[#out + 1] = p
end
for k = n + 1, #KEYS do
  local m = mark(KEYS[k], now)
  if m > 0 then ok = false end
  out[#out + 1] = m
end
if not ok then return out end
for k = 1, n do
  hit(KEYS[k], tonumber(ARGV[1 + 3 * k]), now, tonumber(ARGV[3 + 3 * k]))
end
for k = n + 1, #KEYS do
  local untl = tonumber(ARGV[3 + 3 * n + (k - n)])
  local ttl = math.max(untl - now, 1) + tonumber(ARGV[2])
  redis.call('SET', KEYS[k], untl, 'EX', ttl)
end
return {1}
";

/// KEYS[1]: the mark. ARGV: now, margin, until. Keeps a longer mark.
const MARK: &str = r"
local now = tonumber(ARGV[1])
local untl = tonumber(ARGV[3])
local cur = mark(KEYS[1], now)
if cur < untl then
  redis.call('SET', KEYS[1], untl, 'EX', math.max(untl - now, 1) + tonumber(ARGV[2]))
end
return 1
";

/// KEYS[1]: a counter. ARGV: now, margin, the window, the index of the window the refunded
/// event was counted in. Takes one back from that window (current or previous), never below 0.
const REFUND: &str = r"
local from = tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'i', 'c', 'p')
local i = tonumber(v[1])
if i == nil then return 0 end
if i == from then
  local c = tonumber(v[2]) or 0
  if c > 0 then redis.call('HSET', KEYS[1], 'c', c - 1) end
elseif i == from + 1 then
  local p = tonumber(v[3]) or 0
  if p > 0 then redis.call('HSET', KEYS[1], 'p', p - 1) end
end
return 1
";

pub struct RedisRateLimitStore {
    conn: ConnectionManager,
    prefix: String,
    hit: Script,
    read: Script,
    admit: Script,
    mark: Script,
    refund: Script,
}

fn unavailable(e: redis::RedisError) -> RateLimitError {
    RateLimitError::Unavailable(format!("redis: {e}"))
}

fn script(body: &str) -> Script {
    Script::new(&format!("{COUNTS}{body}"))
}

fn pairs(values: &[i64], n: usize) -> Vec<WindowCounts> {
    values
        .chunks(2)
        .take(n)
        .map(|c| WindowCounts {
            current: c.first().map_or(0, |v| u64::try_from(*v).unwrap_or(0)),
            previous: c.get(1).map_or(0, |v| u64::try_from(*v).unwrap_or(0)),
        })
        .collect()
}

fn marks(values: &[i64]) -> Vec<Option<UnixTime>> {
    values.iter().map(|m| Some(*m).filter(|m| *m > 0)).collect()
}

impl RedisRateLimitStore {
    /// Does not connect: the connection is made on first use and re-made after failures.
    pub fn new(url: &str, settings: &RedisSettings) -> Result<Self, RateLimitError> {
        let conn = super::connection(url, settings).map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: format!("{}throttle:", settings.key_prefix),
            hit: script(HIT),
            read: script(READ),
            admit: script(ADMIT),
            mark: script(MARK),
            refund: script(REFUND),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl RateLimitStore for RedisRateLimitStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn read(
        &self,
        windows: &[RateWindow<'_>],
        mark_keys: &[&str],
        now: UnixTime,
    ) -> Result<RateSnapshot, RateLimitError> {
        if windows.is_empty() && mark_keys.is_empty() {
            return Ok(RateSnapshot::default());
        }
        let mut inv = self.read.prepare_invoke();
        inv.arg(now).arg(GC_MARGIN_SECS).arg(windows.len());
        for w in windows {
            inv.key(self.key(w.key)).arg(w.window.secs());
        }
        for m in mark_keys {
            inv.key(self.key(m));
        }
        let values: Vec<i64> = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let split = (2 * windows.len()).min(values.len());
        Ok(RateSnapshot {
            counts: pairs(&values[..split], windows.len()),
            marks: marks(&values[split..]),
        })
    }

    async fn hit(
        &self,
        windows: &[RateWindow<'_>],
        now: UnixTime,
    ) -> Result<Vec<WindowCounts>, RateLimitError> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.hit.prepare_invoke();
        inv.arg(now).arg(GC_MARGIN_SECS);
        for w in windows {
            inv.key(self.key(w.key)).arg(w.window.secs());
        }
        let values: Vec<i64> = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(pairs(&values, windows.len()))
    }

    async fn admit(
        &self,
        limits: &[RateLimit<'_>],
        cooldowns: &[RateCooldown<'_>],
        now: UnixTime,
    ) -> Result<Admission, RateLimitError> {
        if limits.is_empty() && cooldowns.is_empty() {
            return Ok(Admission::Admitted);
        }
        let mut inv = self.admit.prepare_invoke();
        inv.arg(now).arg(GC_MARGIN_SECS).arg(limits.len());
        for l in limits {
            inv.key(self.key(l.key))
                .arg(l.window.secs())
                .arg(l.limit)
                .arg(l.cost.max(1));
        }
        for c in cooldowns {
            inv.key(self.key(c.key));
        }
        for c in cooldowns {
            inv.arg(c.until);
        }
        let values: Vec<i64> = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match values.split_first() {
            Some((1, _)) => Ok(Admission::Admitted),
            Some((_, rest)) => {
                let split = (2 * limits.len()).min(rest.len());
                Ok(Admission::Refused(RateSnapshot {
                    counts: pairs(&rest[..split], limits.len()),
                    marks: marks(&rest[split..]),
                }))
            }
            None => Err(RateLimitError::Unavailable(
                "redis: empty answer from the admit script".into(),
            )),
        }
    }

    async fn mark(&self, key: &str, until: UnixTime, now: UnixTime) -> Result<(), RateLimitError> {
        self.mark
            .key(self.key(key))
            .arg(now)
            .arg(GC_MARGIN_SECS)
            .arg(until)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn clear(&self, keys: &[&str]) -> Result<(), RateLimitError> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn refund(
        &self,
        window: RateWindow<'_>,
        counted_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), RateLimitError> {
        self.refund
            .key(self.key(window.key))
            .arg(now)
            .arg(GC_MARGIN_SECS)
            .arg(window.window.secs())
            .arg(window.window.index(counted_at))
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
