//! The `AuditStore` contract: an append-only trail, read newest first in pages returned
//! oldest first, or followed from a position.

use latchkey::domain::*;
use latchkey::services::Stores;

use super::stores;
use crate::helpers::Backend;

fn event(at: i64, name: &str, user: Option<&str>) -> AuditEvent {
    let mut detail = serde_json::Map::new();
    detail.insert("n".into(), at.into());
    AuditEvent {
        at,
        event: name.into(),
        user_id: user.map(str::to_owned),
        client_id: Some("web".into()),
        ip: Some("192.0.2.1".into()),
        user_agent: Some("test-agent/1.0".into()),
        detail,
    }
}

fn filter(
    user: Option<&str>,
    name: Option<&str>,
    after_id: Option<i64>,
    limit: i64,
) -> AuditFilter {
    AuditFilter {
        after_id,
        user_id: user.map(str::to_owned),
        event: name.map(str::to_owned),
        limit,
    }
}

async fn list(s: &Stores, f: AuditFilter) -> Vec<LoggedAuditEvent> {
    s.audit.list(&f).await.unwrap()
}

/// The `at` of each listed event: the tests give every event its own.
fn ats(events: &[LoggedAuditEvent]) -> Vec<i64> {
    events.iter().map(|e| e.event.at).collect()
}

pub(super) async fn audit_store_appends_in_order_and_lists_the_newest_oldest_first(
    backend: Backend,
) {
    let (s, _db, _) = stores(backend).await;
    assert!(list(&s, filter(None, None, None, 10)).await.is_empty());
    // Clocks of several instances disagree: the trail keeps the order of appending.
    let appended: Vec<AuditEvent> = [(105, "signup"), (101, "login_succeeded"), (103, "logout")]
        .into_iter()
        .chain((0..4).map(|n| (110 + n, "login_failed")))
        .map(|(at, name)| event(at, name, Some("u-1")))
        .collect();
    let mut bare = event(200, "lockout", None);
    bare.client_id = None;
    bare.ip = None;
    bare.user_agent = None;
    bare.detail.clear();
    for e in appended.iter().chain([&bare]) {
        s.audit.append(e).await.unwrap();
    }

    let all = list(&s, filter(None, None, None, 100)).await;
    assert_eq!(all.len(), 8);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "{all:?}");
    let read: Vec<&AuditEvent> = all.iter().map(|e| &e.event).collect();
    let expected: Vec<&AuditEvent> = appended.iter().chain([&bare]).collect();
    assert_eq!(
        read, expected,
        "every field round-trips, in the order appended"
    );

    assert_eq!(
        ats(&list(&s, filter(None, None, None, 3)).await),
        vec![112, 113, 200],
        "the newest three, oldest first"
    );
    assert_eq!(ats(&list(&s, filter(None, None, None, 1)).await), vec![200]);
}

pub(super) async fn audit_store_follows_the_trail_after_a_position_in_pages(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    for n in 0..10 {
        s.audit
            .append(&event(1000 + n, "login_failed", Some("u-1")))
            .await
            .unwrap();
    }
    let all = list(&s, filter(None, None, None, 100)).await;
    let first = all[0].id;
    assert_eq!(
        ats(&list(&s, filter(None, None, Some(first), 3)).await),
        vec![1001, 1002, 1003],
        "after a position: the first of what follows, not the newest"
    );
    let last = all[9].id;
    assert!(list(&s, filter(None, None, Some(last), 3)).await.is_empty());

    // Following page by page from the start sees each event once, in order.
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let page = list(&s, filter(None, None, Some(cursor), 4)).await;
        assert!(page.len() <= 4);
        let Some(newest) = page.last() else {
            break;
        };
        cursor = newest.id;
        seen.extend(ats(&page));
    }
    assert_eq!(seen, (1000..1010).collect::<Vec<_>>());

    // New events after the last position are what the next page brings.
    s.audit
        .append(&event(2000, "logout", Some("u-1")))
        .await
        .unwrap();
    assert_eq!(
        ats(&list(&s, filter(None, None, Some(cursor), 4)).await),
        vec![2000]
    );
}

pub(super) async fn audit_store_filters_by_user_and_by_event(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    for (at, name, user) in [
        (1, "login_failed", Some("u-1")),
        (2, "login_failed", Some("u-2")),
        (3, "login_succeeded", Some("u-1")),
        (4, "login_failed", None),
        (5, "login_failed", Some("u-1")),
        (6, "signup", Some("u-2")),
        (7, "login_failed", Some("u-1")),
    ] {
        s.audit.append(&event(at, name, user)).await.unwrap();
    }
    let all = list(&s, filter(None, None, None, 100)).await;
    let matching = |user, name, after_id, limit| list(&s, filter(user, name, after_id, limit));
    assert_eq!(
        ats(&matching(Some("u-1"), None, None, 100).await),
        vec![1, 3, 5, 7]
    );
    assert_eq!(
        ats(&matching(Some("u-2"), None, None, 100).await),
        vec![2, 6]
    );
    assert!(ats(&matching(Some("u-unknown"), None, None, 100).await).is_empty());
    assert_eq!(
        ats(&matching(None, Some("login_failed"), None, 100).await),
        vec![1, 2, 4, 5, 7],
        "with or without a user"
    );
    assert_eq!(
        ats(&matching(Some("u-1"), Some("login_failed"), None, 100).await),
        vec![1, 5, 7],
        "both filters"
    );
    assert_eq!(
        ats(&matching(Some("u-1"), Some("login_failed"), None, 2).await),
        vec![5, 7],
        "the newest matching"
    );
    assert_eq!(
        ats(&matching(Some("u-1"), Some("login_failed"), Some(all[0].id), 1).await),
        vec![5],
        "the first matching after the position"
    );
    assert!(
        ats(&matching(Some("u-2"), Some("login_failed"), Some(all[1].id), 10).await).is_empty()
    );
}

pub(super) async fn audit_store_scrubs_a_users_ip_and_user_agent_only(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    for (at, user) in [
        (1, Some("u-gone")),
        (2, Some("u-stays")),
        (3, Some("u-gone")),
        (4, None),
    ] {
        s.audit
            .append(&event(at, "login_succeeded", user))
            .await
            .unwrap();
    }
    let before = list(&s, filter(None, None, None, 100)).await;
    assert_eq!(
        s.audit
            .scrub_user(&UserId::from_trusted("u-gone".into()))
            .await
            .unwrap(),
        2
    );
    let after = list(&s, filter(None, None, None, 100)).await;
    for (was, is) in before.iter().zip(&after) {
        if was.event.user_id.as_deref() == Some("u-gone") {
            let scrubbed = LoggedAuditEvent {
                id: was.id,
                event: AuditEvent {
                    ip: None,
                    user_agent: None,
                    ..was.event.clone()
                },
            };
            assert_eq!(is, &scrubbed, "the rest of the event stays");
        } else {
            assert_eq!(is, was, "another user's event is untouched");
        }
    }
    assert_eq!(
        s.audit
            .scrub_user(&UserId::from_trusted("u-nobody".into()))
            .await
            .unwrap(),
        0,
        "nothing for a user without events"
    );
}

pub(super) async fn audit_store_concurrent_appends_all_land_with_their_own_ids(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let audit = s.audit.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    audit
                        .append(&event(w * 100 + i, "login_failed", Some("u-1")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in futures::future::join_all(writers).await {
        w.unwrap();
    }
    let all = list(&s, filter(None, None, None, 1000)).await;
    assert_eq!(all.len(), 60);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let mut ats = ats(&all);
    ats.sort_unstable();
    let expected: Vec<i64> = (0..6)
        .flat_map(|w| (0..10).map(move |i| w * 100 + i))
        .collect();
    assert_eq!(ats, expected);
}

/// `append_all` (what the group-commit writer calls): a batch lands whole and in order, also
/// past one statement's chunk of 500, with each event's fields intact.
pub(super) async fn audit_store_appends_a_batch_in_order_in_one_step(backend: Backend) {
    let (s, _db, _) = stores(backend).await;
    let batch: Vec<_> = (0..1200)
        .map(|i| {
            event(
                i,
                if i % 2 == 0 { "login_failed" } else { "signup" },
                Some("u-9"),
            )
        })
        .collect();
    s.audit.append_all(&batch).await.unwrap();
    s.audit.append_all(&[]).await.unwrap();
    let all = list(&s, filter(None, None, None, 2000)).await;
    assert_eq!(ats(&all), (0..1200).collect::<Vec<i64>>());
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(all[1].event.event, "signup");
    assert_eq!(all[1].event.user_id.as_deref(), Some("u-9"));
}
