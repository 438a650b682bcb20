//! The `RateLimitStore` contract, checked against each adapter (memory, Redis).

use std::sync::Arc;
use std::time::Duration;

use latchkey::domain::SlidingWindow;
use latchkey::storage::memory::MemoryRateLimitStore;
use latchkey::storage::redis::{RedisRateLimitStore, RedisSettings};
use latchkey::storage::{
    Admission, RateCooldown, RateLimit, RateLimitStore, RateSnapshot, RateWindow,
};

use super::{counts, unique_prefix, T0};
use crate::helpers::{redis_url, require_redis, Backend};

async fn raw_store(backend: Backend) -> Arc<dyn RateLimitStore> {
    if !backend.redis {
        return Arc::new(MemoryRateLimitStore::new(10_000));
    }
    let url = redis_url();
    require_redis(&url).await;
    Arc::new(
        RedisRateLimitStore::new(
            &url,
            &RedisSettings {
                key_prefix: unique_prefix(),
                timeout: Duration::from_secs(2),
            },
        )
        .unwrap(),
    )
}

// ---- the store contract ---------------------------------------------------------------

pub(super) async fn store_counts_per_window_and_slides_with_the_callers_clock(backend: Backend) {
    let s = raw_store(backend).await;
    let w = SlidingWindow::new(60);
    let a = RateWindow {
        key: "a",
        window: w,
    };
    let b = RateWindow {
        key: "b",
        window: w,
    };
    assert_eq!(s.hit(&[a], T0).await.unwrap(), vec![counts(1, 0)]);
    assert_eq!(
        s.hit(&[a, b], T0 + 59).await.unwrap(),
        vec![counts(2, 0), counts(1, 0)]
    );
    let read = |now| {
        let s = s.clone();
        async move { s.read(&[a, b], &[], now).await.unwrap().counts }
    };
    assert_eq!(read(T0 + 30).await, vec![counts(2, 0), counts(1, 0)]);
    assert_eq!(
        read(T0 + 60).await,
        vec![counts(0, 2), counts(0, 1)],
        "next window"
    );
    assert_eq!(read(T0 + 120).await, vec![counts(0, 0), counts(0, 0)]);
    assert_eq!(
        s.hit(&[a], T0 + 61).await.unwrap(),
        vec![counts(1, 2)],
        "the current window becomes the previous one"
    );
    assert_eq!(
        s.hit(&[a], T0 + 1000).await.unwrap(),
        vec![counts(1, 0)],
        "long after"
    );
    assert_eq!(s.read(&[], &[], T0).await.unwrap(), RateSnapshot::default());
}

pub(super) async fn store_admits_only_when_every_limit_and_cooldown_allows(backend: Backend) {
    let s = raw_store(backend).await;
    let w = SlidingWindow::new(100);
    let tight = RateLimit {
        key: "tight",
        window: w,
        limit: 2,
        cost: 1,
    };
    let loose = RateLimit {
        key: "loose",
        window: w,
        limit: 10,
        cost: 1,
    };
    for _ in 0..2 {
        assert_eq!(
            s.admit(&[tight, loose], &[], T0).await.unwrap(),
            Admission::Admitted
        );
    }
    assert_eq!(
        s.admit(&[tight, loose], &[], T0).await.unwrap(),
        Admission::Refused(RateSnapshot {
            counts: vec![counts(2, 0), counts(2, 0)],
            marks: vec![],
        })
    );
    let loose_w = RateWindow {
        key: "loose",
        window: w,
    };
    assert_eq!(
        s.read(&[loose_w], &[], T0).await.unwrap().counts,
        vec![counts(2, 0)],
        "a refused request counts nowhere"
    );
    // The sliding estimate: at T0 + 150 the previous window (2) weighs 1: 0 + 1 < 2.
    assert_eq!(
        s.admit(&[tight], &[], T0 + 150).await.unwrap(),
        Admission::Admitted
    );
    assert!(matches!(
        s.admit(&[tight], &[], T0 + 150).await.unwrap(),
        Admission::Refused(_)
    ));
    // Cooldowns: refused while the mark lies ahead; set only when admitted.
    let cool = |until| RateCooldown { key: "cool", until };
    assert_eq!(
        s.admit(&[loose], &[cool(T0 + 60)], T0).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        s.admit(&[loose], &[cool(T0 + 90)], T0 + 30).await.unwrap(),
        Admission::Refused(RateSnapshot {
            counts: vec![counts(3, 0)],
            marks: vec![Some(T0 + 60)],
        })
    );
    assert_eq!(
        s.admit(&[loose], &[cool(T0 + 120)], T0 + 60).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        s.read(&[], &["cool"], T0 + 61).await.unwrap().marks,
        vec![Some(T0 + 120)]
    );
    assert_eq!(s.admit(&[], &[], T0).await.unwrap(), Admission::Admitted);
}

pub(super) async fn store_marks_keep_the_longer_and_expire_by_the_callers_clock(backend: Backend) {
    let s = raw_store(backend).await;
    s.mark("m", T0 + 10, T0).await.unwrap();
    s.mark("m", T0 + 5, T0 + 1).await.unwrap();
    assert_eq!(
        s.read(&[], &["m", "other"], T0 + 2).await.unwrap().marks,
        vec![Some(T0 + 10), None]
    );
    assert_eq!(
        s.read(&[], &["m"], T0 + 10).await.unwrap().marks,
        vec![None],
        "over at its time"
    );
    s.mark("m", T0 + 30, T0 + 20).await.unwrap();
    assert_eq!(
        s.read(&[], &["m"], T0 + 20).await.unwrap().marks,
        vec![Some(T0 + 30)],
        "a past mark is replaced"
    );
}

pub(super) async fn store_clear_forgets_counters_and_marks(backend: Backend) {
    let s = raw_store(backend).await;
    let w = RateWindow {
        key: "c",
        window: SlidingWindow::new(60),
    };
    s.hit(&[w], T0).await.unwrap();
    s.mark("m", T0 + 60, T0).await.unwrap();
    s.mark("keep", T0 + 60, T0).await.unwrap();
    s.clear(&["c", "m"]).await.unwrap();
    s.clear(&[]).await.unwrap();
    let snap = s.read(&[w], &["m", "keep"], T0).await.unwrap();
    assert_eq!(snap.counts, vec![counts(0, 0)]);
    assert_eq!(snap.marks, vec![None, Some(T0 + 60)]);
}

pub(super) async fn store_refunds_from_the_window_that_counted(backend: Backend) {
    let s = raw_store(backend).await;
    let w = RateWindow {
        key: "li:refund",
        window: SlidingWindow::new(60),
    };
    s.hit(&[w], T0).await.unwrap();
    s.hit(&[w], T0).await.unwrap();
    s.refund(w, T0, T0 + 1).await.unwrap();
    let snap = s.read(&[w], &[], T0 + 1).await.unwrap();
    assert_eq!(snap.counts, vec![counts(1, 0)]);
    // Counted in one window, refunded in the next: taken from the previous window.
    s.refund(w, T0, T0 + 61).await.unwrap();
    assert_eq!(
        s.read(&[w], &[], T0 + 61).await.unwrap().counts,
        vec![counts(0, 0)]
    );
    // Never below zero, and nothing for a key never counted.
    s.refund(w, T0, T0 + 61).await.unwrap();
    s.refund(
        RateWindow {
            key: "li:never",
            window: SlidingWindow::new(60),
        },
        T0,
        T0,
    )
    .await
    .unwrap();
    assert_eq!(
        s.read(&[w], &[], T0 + 61).await.unwrap().counts,
        vec![counts(0, 0)]
    );
}

pub(super) async fn store_admits_several_events_at_once_only_when_all_fit(backend: Backend) {
    let s = raw_store(backend).await;
    let w = SlidingWindow::new(60);
    let share = |cost| RateLimit {
        key: "rc:shares",
        window: w,
        limit: 10,
        cost,
    };
    assert_eq!(
        s.admit(&[share(4)], &[], T0).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        s.admit(&[share(4)], &[], T0).await.unwrap(),
        Admission::Admitted
    );
    // 8 counted: 4 more do not fit, 2 do.
    assert!(matches!(
        s.admit(&[share(4)], &[], T0).await.unwrap(),
        Admission::Refused(_)
    ));
    assert_eq!(
        s.admit(&[share(2)], &[], T0).await.unwrap(),
        Admission::Admitted
    );
    let snap = s
        .read(
            &[RateWindow {
                key: "rc:shares",
                window: w,
            }],
            &[],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(snap.counts, vec![counts(10, 0)]);
}
