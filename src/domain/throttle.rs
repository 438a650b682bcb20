//! Throttling arithmetic: sliding-window counting, the exponential login back-off and the
//! client network an IP address is counted under. Pure: the caller brings the time.
//!
//! **Sliding windows.** A counter keeps two fixed windows of `window_secs`, the current one
//! (index `now / window_secs`) and the one before. Its estimate at `now` weights the previous
//! window by the part of it that still lies within the last `window_secs`:
//! `current + previous * (window - elapsed) / window`. A request is allowed while the
//! estimate is below the limit, so a fixed window never holds more than `limit` counted
//! requests and a burst at a window boundary cannot double the rate. All the arithmetic is in
//! integers (`estimate < limit` is `current * window + previous * (window - elapsed) <
//! limit * window`).

use std::net::IpAddr;

/// The counts of one counter as seen at some instant: its current and previous windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCounts {
    pub current: u64,
    pub previous: u64,
}

/// A sliding window of `secs` seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindow {
    secs: u64,
}

impl SlidingWindow {
    /// A window of `secs` seconds; 0 is taken as 1.
    pub fn new(secs: u64) -> Self {
        Self { secs: secs.max(1) }
    }

    pub fn secs(&self) -> u64 {
        self.secs
    }

    fn secs_i64(&self) -> i64 {
        i64::try_from(self.secs).unwrap_or(i64::MAX)
    }

    /// The index of the fixed window holding `now`.
    pub fn index(&self, now: i64) -> i64 {
        now.div_euclid(self.secs_i64())
    }

    /// Seconds since the start of the fixed window holding `now`.
    pub fn elapsed(&self, now: i64) -> u64 {
        u64::try_from(now.rem_euclid(self.secs_i64())).unwrap_or(0)
    }

    /// `counts` stored for window `stored_index`, as seen from the window holding `now`.
    pub fn shift(&self, stored_index: i64, counts: WindowCounts, now: i64) -> WindowCounts {
        let idx = self.index(now);
        if stored_index == idx {
            counts
        } else if stored_index == idx - 1 {
            WindowCounts {
                current: 0,
                previous: counts.current,
            }
        } else {
            WindowCounts::default()
        }
    }

    /// `counts` after one more hit at `now` (already shifted to the window holding `now`).
    pub fn hit(counts: WindowCounts) -> WindowCounts {
        WindowCounts {
            current: counts.current.saturating_add(1),
            previous: counts.previous,
        }
    }

    /// The estimate times the window length (exact integer arithmetic).
    fn scaled(&self, counts: WindowCounts, now: i64) -> u128 {
        let w = u128::from(self.secs);
        let rest = w - u128::from(self.elapsed(now));
        u128::from(counts.current) * w + u128::from(counts.previous) * rest
    }

    /// The estimated number of events in the last `secs` seconds, rounded down.
    pub fn estimate(&self, counts: WindowCounts, now: i64) -> u64 {
        u64::try_from(self.scaled(counts, now) / u128::from(self.secs)).unwrap_or(u64::MAX)
    }

    /// Whether one more event is allowed under `limit`: the estimate is below it.
    pub fn allows(&self, counts: WindowCounts, limit: u64, now: i64) -> bool {
        self.allows_many(counts, limit, 1, now)
    }

    /// Whether `n` more events (at least 1) are allowed under `limit`: the estimate plus
    /// `n - 1` is below it.
    pub fn allows_many(&self, counts: WindowCounts, limit: u64, n: u64, now: i64) -> bool {
        let w = u128::from(self.secs);
        self.scaled(counts, now) + u128::from(n.max(1) - 1) * w < u128::from(limit) * w
    }

    /// `counts` after `n` more hits at `now` (already shifted to the window holding `now`).
    pub fn hit_many(counts: WindowCounts, n: u64) -> WindowCounts {
        WindowCounts {
            current: counts.current.saturating_add(n),
            previous: counts.previous,
        }
    }

    /// Seconds from `now` until [`Self::allows`] holds again if nothing more is counted; 0 if
    /// it holds now.
    pub fn retry_after(&self, counts: WindowCounts, limit: u64, now: i64) -> u64 {
        if self.allows(counts, limit, now) {
            return 0;
        }
        let w = u128::from(self.secs);
        let e = u128::from(self.elapsed(now));
        let limit = u128::from(limit);
        let (cur, prev) = (u128::from(counts.current), u128::from(counts.previous));
        // Later in this window: allowed once prev * (w - e') < (limit - cur) * w.
        if cur < limit && prev > 0 {
            let num = (w * prev).saturating_sub((limit - cur) * w);
            let first = num / prev + 1;
            if first < w {
                return u64::try_from(first.saturating_sub(e).max(1)).unwrap_or(u64::MAX);
            }
        }
        // In the next window the counts are (0, cur): allowed once cur * (w - e'') < limit * w.
        let into_next = if cur == 0 || cur < limit {
            0
        } else {
            (w * (cur - limit)) / cur + 1
        };
        u64::try_from((w - e) + into_next).unwrap_or(u64::MAX)
    }
}

/// The login back-off: how long the pair is refused after its `failures`-th failure within
/// the window. The first `free` failures cost nothing; then `base`, `2 * base`, `4 * base`
/// ..., never more than `cap` (the temporary lockout).
pub fn login_backoff(failures: u64, free: u64, base: u64, cap: u64) -> Option<u64> {
    if failures <= free {
        return None;
    }
    let doublings = u32::try_from(failures - free - 1)
        .unwrap_or(u32::MAX)
        .min(63);
    let delay = base.saturating_mul(1u64 << doublings);
    Some(delay.min(cap).max(1))
}

/// The network an address is counted under: an IPv4 address itself (IPv4-mapped IPv6
/// addresses included), an IPv6 address its /64, since one subscriber commonly holds a
/// whole /64 and could otherwise rotate through it.
pub fn client_network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Seconds until `until`, at least 1 while it is in the future; 0 once it has passed.
pub fn seconds_until(until: i64, now: i64) -> u64 {
    u64::try_from(until.saturating_sub(now)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(current: u64, previous: u64) -> WindowCounts {
        WindowCounts { current, previous }
    }

    #[test]
    fn the_previous_window_weighs_by_the_part_still_in_range() {
        let w = SlidingWindow::new(100);
        assert_eq!(w.index(250), 2);
        assert_eq!(w.elapsed(250), 50);
        assert_eq!(w.estimate(counts(3, 10), 250), 8);
        assert_eq!(w.estimate(counts(3, 10), 200), 13);
        assert_eq!(w.estimate(counts(3, 10), 299), 3);
        assert!(w.allows(counts(4, 0), 5, 250));
        assert!(!w.allows(counts(5, 0), 5, 250));
        assert!(!w.allows(counts(3, 4), 5, 250), "3 + 2 = 5");
        assert!(w.allows(counts(3, 4), 5, 251), "3 + 1.96");
    }

    #[test]
    fn stored_counts_shift_as_windows_pass() {
        let w = SlidingWindow::new(60);
        let c = counts(4, 2);
        assert_eq!(w.shift(10, c, 600), c);
        assert_eq!(w.shift(10, c, 660), counts(0, 4));
        assert_eq!(w.shift(10, c, 720), counts(0, 0));
        assert_eq!(w.shift(12, c, 600), counts(0, 0), "a stored future window");
        assert_eq!(SlidingWindow::hit(counts(0, 4)), counts(1, 4));
    }

    /// The closed form agrees with stepping through time second by second.
    #[test]
    fn retry_after_is_the_first_second_the_window_allows_again() {
        for secs in [1u64, 7, 60] {
            let w = SlidingWindow::new(secs);
            for limit in 1..6u64 {
                for cur in 0..8u64 {
                    for prev in 0..8u64 {
                        for now in 0..i64::try_from(secs).unwrap_or(0) {
                            let c = counts(cur, prev);
                            let expected = (0..=3 * secs)
                                .find(|d| {
                                    let t = now + i64::try_from(*d).unwrap_or(0);
                                    let seen = w.shift(0, c, t);
                                    w.allows(seen, limit, t)
                                })
                                .unwrap_or(u64::MAX);
                            assert_eq!(
                                w.retry_after(c, limit, now),
                                expected,
                                "w={secs} limit={limit} cur={cur} prev={prev} now={now}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_backoff_doubles_after_the_free_failures_up_to_the_lockout() {
        let delays: Vec<Option<u64>> = (1..=16).map(|n| login_backoff(n, 5, 1, 900)).collect();
        assert_eq!(&delays[..5], &[None; 5]);
        assert_eq!(
            &delays[5..],
            &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900].map(Some)
        );
        assert_eq!(login_backoff(10_000, 5, 1, 900), Some(900));
        assert_eq!(login_backoff(7, 5, 3, 10), Some(6));
        assert_eq!(login_backoff(8, 5, 3, 10), Some(10));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 4]));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 4]));
        assert_eq!(client_network(a), client_network(b));
        assert_eq!(client_network(a), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0u8; 4]));
        assert_eq!(client_network(mapped), "192.0.2.7");
        assert_eq!(client_network(IpAddr::from([10, 0, 0, 1])), "10.0.0.1");
    }

    #[test]
    fn seconds_until_never_goes_negative() {
        assert_eq!(seconds_until(110, 100), 10);
        assert_eq!(seconds_until(90, 100), 0);
    }
}
