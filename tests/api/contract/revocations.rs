//! The `RevocationStore` contract: the ordered revocation log.

use latchkey::domain::*;

use super::stores;
use crate::helpers::Backend;

fn jti(j: &str, exp: i64) -> Revocation {
    Revocation::AccessToken {
        jti: j.into(),
        expires_at: exp,
    }
}

/// Housekeeping deletes in batches (a short transaction each): a purge larger than one batch
/// still deletes every expired entry, and only those.
pub(super) async fn revocation_store_purges_past_one_batch_and_keeps_live_entries(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let expired: Vec<Revocation> = (0..2_345).map(|i| jti(&format!("e{i}"), 2000)).collect();
    s.revocations.append(&expired, 1000).await.unwrap();
    s.revocations
        .append(&[jti("live", 9000)], 1000)
        .await
        .unwrap();
    assert_eq!(s.revocations.purge_expired(2000).await.unwrap(), 2_345);
    let left = s.revocations.since(0, 1000, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].revocation, jti("live", 9000));
    assert_eq!(s.revocations.purge_expired(2000).await.unwrap(), 0);
}

pub(super) async fn revocation_store_keeps_commit_order_and_forgets_expired_entries(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    assert!(s.revocations.since(0, 1000, 10).await.unwrap().is_empty());
    assert_eq!(s.revocations.last_seq().await.unwrap(), 0);
    s.revocations
        .append(
            &[
                jti("a", 2000),
                Revocation::Family {
                    family_id: "f".into(),
                    expires_at: 3000,
                },
            ],
            1000,
        )
        .await
        .unwrap();
    s.revocations
        .append(
            &[Revocation::User {
                user_id: "u".into(),
                not_after: 1001,
                expires_at: 5000,
            }],
            1001,
        )
        .await
        .unwrap();
    let all = s.revocations.since(0, 1001, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all[0].revocation, jti("a", 2000));
    assert_eq!(all[0].revoked_at, 1000);
    assert_eq!(
        all[2].revocation,
        Revocation::User {
            user_id: "u".into(),
            not_after: 1001,
            expires_at: 5000
        }
    );
    let after_first = s.revocations.since(all[0].seq, 1001, 1).await.unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].seq, all[1].seq);
    // At 2000 the access-token entry has expired: not listed, then purged.
    assert_eq!(s.revocations.since(0, 2000, 10).await.unwrap().len(), 2);
    assert_eq!(s.revocations.purge_expired(2000).await.unwrap(), 1);
    assert_eq!(s.revocations.purge_expired(2000).await.unwrap(), 0);
    // Sequence numbers are never reused, even after the newest entry is purged.
    s.revocations.purge_expired(6000).await.unwrap();
    s.revocations.append(&[jti("b", 9000)], 6000).await.unwrap();
    let b = s.revocations.since(0, 6000, 10).await.unwrap();
    assert_eq!(b.len(), 1);
    assert!(b[0].seq > all[2].seq);
    assert_eq!(s.revocations.last_seq().await.unwrap(), b[0].seq);
    s.revocations.purge_expired(10_000).await.unwrap();
    assert_eq!(
        s.revocations.last_seq().await.unwrap(),
        b[0].seq,
        "purging does not lower the last seq"
    );
    assert!(s.revocations.append(&[], 6000).await.is_ok());
}

pub(super) async fn revocation_store_concurrent_appends_never_let_a_cursor_skip_an_entry(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let log = s.revocations.clone();
            tokio::spawn(async move {
                for i in 0..15 {
                    log.append(&[jti(&format!("{w}-{i}"), 10_000)], 1000)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    // A reader follows the log with a cursor while the writers append.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = 0;
    loop {
        let batch = s.revocations.since(cursor, 1000, 7).await.unwrap();
        for e in &batch {
            assert!(e.seq > cursor);
            cursor = e.seq;
            seen.insert(e.revocation.subject().to_owned());
        }
        if batch.is_empty() {
            if writers.iter().all(|w| w.is_finished()) {
                let rest = s.revocations.since(cursor, 1000, 1000).await.unwrap();
                for e in &rest {
                    seen.insert(e.revocation.subject().to_owned());
                }
                if rest.is_empty() {
                    break;
                }
                cursor = rest.last().unwrap().seq;
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
    }
    assert_eq!(
        seen.len(),
        8 * 15,
        "a cursor-following reader saw every entry"
    );
}
