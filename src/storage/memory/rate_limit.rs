//! The in-process rate-limit store: counters of this instance only (the single-instance
//! default, and every instance's fallback while Redis is unreachable).
//!
//! Memory is bounded: expired entries are pruned every few thousand operations and whenever
//! the map is full, and the map never holds more than `max_entries`. When it is full of live
//! entries, the least recently written are evicted first, counters before marks, so that an
//! attacker cycling through identifiers pushes out old counters long before it could push
//! out a running lockout (which was written recently).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::domain::{SlidingWindow, WindowCounts};
use crate::storage::{
    Admission, RateCooldown, RateLimit, RateLimitError, RateLimitStore, RateSnapshot, RateWindow,
};

/// Operations between two full prunes of expired entries.
const PRUNE_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy)]
enum Slot {
    Counter {
        index: i64,
        counts: WindowCounts,
        /// When both windows have passed.
        expires: UnixTime,
    },
    Mark {
        until: UnixTime,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    slot: Slot,
    /// Order of the last write, for eviction.
    written: u64,
}

impl Entry {
    fn expires(&self) -> UnixTime {
        match self.slot {
            Slot::Counter { expires, .. } => expires,
            Slot::Mark { until } => until,
        }
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    writes: u64,
    ops: u64,
}

impl Inner {
    fn counts(&self, w: &RateWindow<'_>, now: UnixTime) -> WindowCounts {
        match self.map.get(w.key).map(|e| e.slot) {
            Some(Slot::Counter { index, counts, .. }) => w.window.shift(index, counts, now),
            _ => WindowCounts::default(),
        }
    }

    fn mark(&self, key: &str, now: UnixTime) -> Option<UnixTime> {
        match self.map.get(key).map(|e| e.slot) {
            Some(Slot::Mark { until }) if until > now => Some(until),
            _ => None,
        }
    }

    fn tick(&mut self, now: UnixTime) {
        self.ops = self.ops.wrapping_add(1);
        if self.ops % PRUNE_EVERY == 0 {
            self.prune(now);
        }
    }

    fn prune(&mut self, now: UnixTime) {
        self.map.retain(|_, e| e.expires() > now);
    }

    /// Makes room for one new key when the map is full.
    fn make_room(&mut self, max: usize, now: UnixTime) {
        if self.map.len() < max {
            return;
        }
        self.prune(now);
        if self.map.len() < max {
            return;
        }
        // Evict a batch (a sixteenth of the capacity) so that a flood does not sort the
        // map on every insert: counters first, then marks, least recently written first.
        let batch = (self.map.len() + 1 - max).max(max / 16).max(1);
        let mut victims: Vec<(bool, u64, String)> = self
            .map
            .iter()
            .map(|(k, e)| (matches!(e.slot, Slot::Mark { .. }), e.written, k.clone()))
            .collect();
        victims.sort_unstable();
        for (_, _, k) in victims.into_iter().take(batch) {
            self.map.remove(&k);
        }
    }

    fn put(&mut self, key: &str, slot: Slot, max: usize, now: UnixTime) {
        self.writes = self.writes.wrapping_add(1);
        let written = self.writes;
        if let Some(e) = self.map.get_mut(key) {
            *e = Entry { slot, written };
            return;
        }
        self.make_room(max, now);
        self.map.insert(key.to_owned(), Entry { slot, written });
    }

    fn hit(&mut self, w: &RateWindow<'_>, max: usize, now: UnixTime) -> WindowCounts {
        self.hit_many(w, 1, max, now)
    }

    fn hit_many(&mut self, w: &RateWindow<'_>, n: u64, max: usize, now: UnixTime) -> WindowCounts {
        let counts = SlidingWindow::hit_many(self.counts(w, now), n);
        let index = w.window.index(now);
        let secs = i64::try_from(w.window.secs()).unwrap_or(i64::MAX / 4);
        let slot = Slot::Counter {
            index,
            counts,
            expires: index.saturating_add(2).saturating_mul(secs),
        };
        self.put(w.key, slot, max, now);
        counts
    }
}

pub struct MemoryRateLimitStore {
    inner: Mutex<Inner>,
    max_entries: usize,
}

impl MemoryRateLimitStore {
    /// A store holding at most `max_entries` counters and marks (at least 1).
    pub fn new(max_entries: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_entries: max_entries.max(1),
        }
    }

    /// How many entries it holds now (expired ones not yet pruned included).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, RateLimitError> {
        self.inner
            .lock()
            .map_err(|_| RateLimitError::Unavailable("rate-limit map lock poisoned".into()))
    }
}

#[async_trait]
impl RateLimitStore for MemoryRateLimitStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn read(
        &self,
        windows: &[RateWindow<'_>],
        marks: &[&str],
        now: UnixTime,
    ) -> Result<RateSnapshot, RateLimitError> {
        let mut inner = self.lock()?;
        inner.tick(now);
        Ok(RateSnapshot {
            counts: windows.iter().map(|w| inner.counts(w, now)).collect(),
            marks: marks.iter().map(|k| inner.mark(k, now)).collect(),
        })
    }

    async fn hit(
        &self,
        windows: &[RateWindow<'_>],
        now: UnixTime,
    ) -> Result<Vec<WindowCounts>, RateLimitError> {
        let mut inner = self.lock()?;
        inner.tick(now);
        Ok(windows
            .iter()
            .map(|w| inner.hit(w, self.max_entries, now))
            .collect())
    }

    async fn admit(
        &self,
        limits: &[RateLimit<'_>],
        cooldowns: &[RateCooldown<'_>],
        now: UnixTime,
    ) -> Result<Admission, RateLimitError> {
        let mut inner = self.lock()?;
        inner.tick(now);
        let windows: Vec<RateWindow<'_>> = limits
            .iter()
            .map(|l| RateWindow {
                key: l.key,
                window: l.window,
            })
            .collect();
        let snapshot = RateSnapshot {
            counts: windows.iter().map(|w| inner.counts(w, now)).collect(),
            marks: cooldowns.iter().map(|c| inner.mark(c.key, now)).collect(),
        };
        let counters_allow = limits
            .iter()
            .zip(&snapshot.counts)
            .all(|(l, c)| l.window.allows_many(*c, l.limit, l.cost, now));
        if !counters_allow || snapshot.marks.iter().any(Option::is_some) {
            return Ok(Admission::Refused(snapshot));
        }
        for (w, l) in windows.iter().zip(limits) {
            inner.hit_many(w, l.cost.max(1), self.max_entries, now);
        }
        for c in cooldowns {
            inner.put(c.key, Slot::Mark { until: c.until }, self.max_entries, now);
        }
        Ok(Admission::Admitted)
    }

    async fn mark(&self, key: &str, until: UnixTime, now: UnixTime) -> Result<(), RateLimitError> {
        let mut inner = self.lock()?;
        inner.tick(now);
        let until = inner.mark(key, now).map_or(until, |u| u.max(until));
        inner.put(key, Slot::Mark { until }, self.max_entries, now);
        Ok(())
    }

    async fn clear(&self, keys: &[&str]) -> Result<(), RateLimitError> {
        let mut inner = self.lock()?;
        for k in keys {
            inner.map.remove(*k);
        }
        Ok(())
    }

    async fn refund(
        &self,
        window: RateWindow<'_>,
        counted_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), RateLimitError> {
        let mut inner = self.lock()?;
        inner.tick(now);
        let from = window.window.index(counted_at);
        if let Some(Entry {
            slot: Slot::Counter { index, counts, .. },
            ..
        }) = inner.map.get_mut(window.key)
        {
            if *index == from {
                counts.current = counts.current.saturating_sub(1);
            } else if *index == from.saturating_add(1) {
                counts.previous = counts.previous.saturating_sub(1);
            }
        }
        Ok(())
    }
}
