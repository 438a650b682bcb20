//! A compact set of ids with expiries, for the embedded denylist: each entry is a fixed-size
//! digest of its id (8 bytes) and its values (a 4-byte Unix time each), nothing else; the
//! entries leave in time order through a queue of expiry buckets, so expiring costs what
//! expires, never a scan of the whole set.
//!
//! The digest is SipHash-1-3 of the id under keys drawn at random when the process starts:
//! ids are the server's own random values, and nobody outside can aim at a digest. Two ids
//! with one digest (about 1 chance in 10^7 among a million entries at once) only make the
//! set answer "present" for both: a check can be refused that should not have been, never
//! the other way round.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use crate::clock::UnixTime;

/// The digest of an id, as bytes (alignment 1: an entry of the table is exactly its bytes).
pub(super) type Digest = [u8; 8];

/// A Unix time in seconds, as stored (until 2106; earlier times are 0).
type Stamp = [u8; 4];

fn stamp(t: UnixTime) -> Stamp {
    u32::try_from(t.max(0)).unwrap_or(u32::MAX).to_le_bytes()
}

fn unstamp(s: Stamp) -> UnixTime {
    UnixTime::from(u32::from_le_bytes(s))
}

/// Entries leave at the end of the bucket their expiry falls in: at most this late (an entry
/// past its expiry is never answered as live, it only stays in memory a little longer).
const BUCKET_SECS: UnixTime = 64;

fn bucket(expires_at: UnixTime) -> u32 {
    u32::try_from((expires_at.max(0)) / BUCKET_SECS).unwrap_or(u32::MAX)
}

/// Hashes ids to digests: SipHash-1-3 under this process's random keys.
pub(super) struct Digester(RandomState);

impl Digester {
    pub(super) fn new() -> Self {
        Self(RandomState::new())
    }

    /// The digest of `id` of kind `kind` (kinds never share a digest by construction).
    pub(super) fn digest(&self, kind: u8, id: &str) -> Digest {
        let mut h = self.0.build_hasher();
        h.write_u8(kind);
        h.write(id.as_bytes());
        h.finish().to_le_bytes()
    }
}

/// The table's hasher: a digest is already uniformly spread, so it is its own hash.
#[derive(Default)]
pub(super) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    /// The length prefix of the digest's bytes: always 8, nothing to mix in.
    fn write_usize(&mut self, _: usize) {}
}

/// What an entry carries besides its digest.
pub(super) trait Value: Copy {
    fn expires_at(&self) -> UnixTime;
    /// The entry after `newer` is applied to it (expiries and watermarks only rise).
    fn merge(self, newer: Self) -> Self;
}

/// An expiry alone (a revoked access token, a revoked refresh-token family).
#[derive(Clone, Copy)]
pub(super) struct Expiry(Stamp);

impl Expiry {
    pub(super) fn at(expires_at: UnixTime) -> Self {
        Self(stamp(expires_at))
    }
}

impl Value for Expiry {
    fn expires_at(&self) -> UnixTime {
        unstamp(self.0)
    }

    fn merge(self, newer: Self) -> Self {
        Self::at(self.expires_at().max(newer.expires_at()))
    }
}

/// A watermark and its expiry (a user's or a client's tokens issued up to `not_after`).
#[derive(Clone, Copy)]
pub(super) struct Watermark {
    not_after: Stamp,
    expires_at: Stamp,
}

impl Watermark {
    pub(super) fn new(not_after: UnixTime, expires_at: UnixTime) -> Self {
        Self {
            not_after: stamp(not_after),
            expires_at: stamp(expires_at),
        }
    }

    pub(super) fn not_after(&self) -> UnixTime {
        unstamp(self.not_after)
    }
}

impl Value for Watermark {
    fn expires_at(&self) -> UnixTime {
        unstamp(self.expires_at)
    }

    fn merge(self, newer: Self) -> Self {
        Self::new(
            self.not_after().max(newer.not_after()),
            self.expires_at().max(newer.expires_at()),
        )
    }
}

/// The entries, and the queue that expires them in time order.
pub(super) struct Expiring<V: Value> {
    live: HashMap<Digest, V, BuildHasherDefault<DigestHasher>>,
    /// Expiry bucket -> the digests whose expiry fell in it when they were added or raised.
    /// Every entry has its digest in the bucket of its current expiry (and maybe in earlier
    /// ones, from before a raise: those find it still live and leave it).
    /// Each bucket grows by a chunk of `CHUNK` digests at a time: no large reallocation, and
    /// at most one chunk per bucket partly empty.
    queue: BTreeMap<u32, Vec<Vec<Digest>>>,
}

/// Digests per chunk of a queue bucket (4 KiB).
const CHUNK: usize = 512;

impl<V: Value> Default for Expiring<V> {
    fn default() -> Self {
        Self {
            live: HashMap::default(),
            queue: BTreeMap::new(),
        }
    }
}

impl<V: Value> Expiring<V> {
    /// Adds an entry, or merges it into the one of the same digest.
    pub(super) fn put(&mut self, digest: Digest, value: V) {
        let queued = match self.live.get_mut(&digest) {
            Some(old) => {
                let before = bucket(old.expires_at());
                *old = old.merge(value);
                (bucket(old.expires_at()) > before).then(|| old.expires_at())
            }
            None => {
                self.live.insert(digest, value);
                Some(value.expires_at())
            }
        };
        if let Some(expires_at) = queued {
            let chunks = self.queue.entry(bucket(expires_at)).or_default();
            match chunks.last_mut() {
                Some(chunk) if chunk.len() < CHUNK => chunk.push(digest),
                _ => {
                    let mut chunk = Vec::with_capacity(CHUNK);
                    chunk.push(digest);
                    chunks.push(chunk);
                }
            }
        }
    }

    /// The entry of `digest` if it is live at `now`.
    pub(super) fn get(&self, digest: &Digest, now: UnixTime) -> Option<V> {
        self.live
            .get(digest)
            .filter(|v| v.expires_at() > now)
            .copied()
    }

    /// Drops the entries expired at `now`, bucket by bucket, oldest first: only the buckets
    /// that have ended are visited. Answers how many entries left.
    pub(super) fn expire(&mut self, now: UnixTime) -> usize {
        let mut dropped = 0;
        while let Some(first) = self.queue.first_entry() {
            // The bucket has ended once every expiry it can hold is at or before `now`.
            let ends = (UnixTime::from(*first.key()) + 1) * BUCKET_SECS;
            if ends > now + 1 {
                break;
            }
            for digest in first.remove().into_iter().flatten() {
                if self
                    .live
                    .get(&digest)
                    .is_some_and(|v| v.expires_at() <= now)
                {
                    self.live.remove(&digest);
                    dropped += 1;
                }
            }
        }
        if dropped > 0 && self.live.capacity() > 64 && self.live.len() < self.live.capacity() / 4 {
            self.live.shrink_to_fit();
        }
        dropped
    }

    pub(super) fn len(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_in_time_order_and_raised_ones_stay() {
        let d = Digester::new();
        let mut set = Expiring::<Expiry>::default();
        let (a, b, c) = (d.digest(0, "a"), d.digest(0, "b"), d.digest(0, "c"));
        set.put(a, Expiry::at(1_000));
        set.put(b, Expiry::at(1_000));
        set.put(c, Expiry::at(5_000));
        // b is raised past a's bucket: the old queue slot must not drop it.
        set.put(b, Expiry::at(9_000));
        assert!(set.get(&a, 999).is_some());
        assert!(
            set.get(&a, 1_000).is_none(),
            "expired entries are never live"
        );
        assert_eq!(set.expire(1_100), 1);
        assert_eq!(set.len(), 2);
        assert!(set.get(&b, 8_999).is_some());
        assert_eq!(set.expire(5_100), 1);
        assert!(set.get(&c, 4_000).is_none());
        assert_eq!(set.expire(10_000), 1);
        assert_eq!(set.len(), 0);
        assert!(set.queue.is_empty());
    }

    #[test]
    fn watermarks_only_rise() {
        let d = Digester::new();
        let mut set = Expiring::<Watermark>::default();
        let u = d.digest(2, "u");
        set.put(u, Watermark::new(100, 1_000));
        set.put(u, Watermark::new(50, 2_000));
        let w = set.get(&u, 1_500).map(|w| (w.not_after(), w.expires_at()));
        assert_eq!(w, Some((100, 2_000)));
    }

    #[test]
    fn kinds_do_not_share_digests() {
        let d = Digester::new();
        assert_ne!(d.digest(0, "x"), d.digest(1, "x"));
        assert_eq!(d.digest(0, "x"), d.digest(0, "x"));
    }
}
