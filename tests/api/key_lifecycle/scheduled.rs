//! Rotation on its schedule: a caching resource server never fails through it, and several
//! instances on one database perform each transition once, by hand or in the background.

use std::collections::HashMap;

use latchkey::clock::Clock;

use super::{
    issue, kid_of, long_lived_client, published_kids, step, CachingResourceServer, DAY,
    EVERY_3_DAYS, QUIET,
};
use crate::helpers::{spawn_app_with, spawn_instance_like, Backend};

pub(super) async fn a_caching_resource_server_never_fails_through_scheduled_rotations(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &[QUIET, EVERY_3_DAYS]).await;
    let secret = long_lived_client(&app).await;
    let mut rs = CachingResourceServer::new(&app).await;
    let first_kid = kid_of(&issue(&app, &secret).await);
    let start = app.clock.now();

    // (token, kid, exp) of every token issued.
    let mut issued: Vec<(String, String, i64)> = Vec::new();
    let mut failures = Vec::new();
    let mut verifications = 0;
    let mut created = Vec::new();
    let mut promoted = Vec::new();
    // kid -> mock time at which it left the served JWKS.
    let mut unpublished_at: HashMap<String, i64> = HashMap::new();
    let mut seen: Vec<String> = published_kids(&app).await;

    // Nine days in steps of 1500 s (not a divisor of any interval involved): three
    // scheduled rotations, and the first two keys removed.
    while app.clock.now() < start + 9 * DAY {
        app.clock.advance(1500);
        let report = step(&app).await;
        created.extend(report.created.clone());
        promoted.extend(report.promoted.clone());

        let token = issue(&app, &secret).await;
        let exp = crate::helpers::jwt_parts(&token).1["exp"].as_i64().unwrap();
        issued.push((token.clone(), kid_of(&token), exp));

        let now = app.clock.now();
        for (token, kid, exp) in issued.iter().filter(|(_, _, exp)| *exp > now) {
            verifications += 1;
            if let Err(e) = rs.verify(&app, token).await {
                failures.push(format!(
                    "t+{}: token of {kid} (exp t+{}): {e}",
                    now - start,
                    exp - start
                ));
            }
        }

        let kids = published_kids(&app).await;
        for gone in seen.iter().filter(|k| !kids.contains(k)) {
            unpublished_at.insert(gone.clone(), now);
        }
        seen = kids;
    }

    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    assert!(verifications > 1000, "{verifications}");
    // Each algorithm in use (ES256 for access tokens, RS256 for ID tokens) rotates on its own.
    let alg_of: HashMap<String, &str> = app
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.alg))
        .collect();
    for alg in ["ES256", "RS256"] {
        assert_eq!(
            created.iter().filter(|k| alg_of[*k] == alg).count(),
            3,
            "a new {alg} key published before every third day"
        );
    }
    assert_eq!(created.len(), 6, "{created:?}");
    assert_eq!(promoted, created, "each pending key was promoted in turn");
    assert!(
        rs.fetches <= (9 * DAY / 3600 + 2) as usize,
        "the resource server refetched only when its cache expired ({})",
        rs.fetches
    );
    // A retired key disappears only after every token it signed expired.
    for (kid, gone) in &unpublished_at {
        let last_exp = issued
            .iter()
            .filter(|(_, k, _)| k == kid)
            .map(|(_, _, exp)| *exp)
            .max()
            .unwrap_or(i64::MIN);
        assert!(
            *gone >= last_exp,
            "{kid} left the JWKS at t+{} before its last token expired (t+{})",
            gone - start,
            last_exp - start
        );
    }
    let first_es256_rotation = created.iter().find(|k| alg_of[*k] == "ES256").unwrap();
    assert!(
        unpublished_at.contains_key(&first_kid)
            && unpublished_at.contains_key(first_es256_rotation),
        "the first two keys were removed after their tokens expired: {unpublished_at:?}"
    );
    assert_eq!(
        unpublished_at.len(),
        4,
        "the first two keys of each algorithm: {unpublished_at:?}"
    );
    let listed = app.services.keys.list().await.unwrap();
    let states: Vec<&str> = listed.iter().map(|k| k.state).collect();
    for alg in ["ES256", "RS256"] {
        assert_eq!(
            listed
                .iter()
                .filter(|k| k.state == "active" && k.alg == alg)
                .count(),
            1,
            "{alg}"
        );
    }
    assert_eq!(states.iter().filter(|s| **s == "active").count(), 2);
    assert!(states.contains(&"removed"), "{states:?}");
}

pub(super) async fn two_instances_perform_each_transition_exactly_once(backend: Backend) {
    let a = spawn_app_with(backend, &[QUIET, EVERY_3_DAYS]).await;
    let b = spawn_instance_like(&a, &[QUIET, EVERY_3_DAYS]).await;
    let secret = long_lived_client(&a).await;
    let publish_ahead = a.settings.keys.publish_ahead.as_secs() as i64;
    let mut now = a.clock.now();
    b.clock.set(now);
    let mut previous = kid_of(&issue(&a, &secret).await);
    assert_eq!(
        kid_of(&issue(&b, &secret).await),
        previous,
        "one active key"
    );

    for round in 0..3 {
        // The active key becomes due: both instances step at the same moment.
        now += 3 * DAY - publish_ahead + 1;
        a.clock.set(now);
        b.clock.set(now);
        let (ra, rb) = tokio::join!(a.services.keys.tick(), b.services.keys.tick());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let mut created: Vec<String> = ra
            .created
            .iter()
            .chain(rb.created.iter())
            .cloned()
            .collect();
        assert_eq!(
            created.len(),
            2,
            "round {round}: exactly one pending key per algorithm: {ra:?} {rb:?}"
        );
        let keys = a.services.keys.list().await.unwrap();
        assert_eq!(keys.iter().filter(|k| k.state == "pending").count(), 2);
        let pending_of = |alg: &str| {
            keys.iter()
                .find(|k| k.state == "pending" && k.alg == alg)
                .map(|k| k.kid.clone())
                .unwrap()
        };
        let pending = pending_of("ES256");
        created.sort();
        let mut expected = vec![pending.clone(), pending_of("RS256")];
        expected.sort();
        assert_eq!(created, expected);
        for app in [&a, &b] {
            app.services.keys.reload().await.unwrap();
            assert!(published_kids(app).await.contains(&pending));
            assert_eq!(
                kid_of(&issue(app, &secret).await),
                previous,
                "still signing with the old key"
            );
        }

        // Its time comes: again both step together; exactly one promotes it.
        now += publish_ahead;
        a.clock.set(now);
        b.clock.set(now);
        let (ra, rb) = tokio::join!(a.services.keys.tick(), b.services.keys.tick());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let mut promoted: Vec<String> = ra
            .promoted
            .iter()
            .chain(rb.promoted.iter())
            .cloned()
            .collect();
        promoted.sort();
        assert_eq!(
            promoted, expected,
            "round {round}: exactly one promotion per algorithm: {ra:?} {rb:?}"
        );
        assert!(ra.created.is_empty() && rb.created.is_empty());
        for app in [&a, &b] {
            app.services.keys.reload().await.unwrap();
            assert_eq!(
                kid_of(&issue(app, &secret).await),
                pending,
                "both sign with the new key"
            );
            let published = published_kids(app).await;
            assert!(
                published.contains(&previous),
                "the retired key stays published"
            );
        }
        let keys = a.services.keys.list().await.unwrap();
        assert_eq!(
            keys.iter().filter(|k| k.state == "active").count(),
            2,
            "one active key per algorithm"
        );
        previous = pending;
    }
    let b_view: Vec<(String, &str)> = b
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    let a_view: Vec<(String, &str)> = a
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(a_view, b_view);
}

/// Polls (in real time) until `check` holds, for at most ten seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

pub(super) async fn every_instance_runs_the_lifecycle_in_the_background(backend: Backend) {
    // Background steps and reloads every second (real time); only the mock clock jumps.
    let fast = ("LATCHKEY_KEY_RELOAD_INTERVAL_SECS", "1");
    let a = spawn_app_with(backend, &[fast, EVERY_3_DAYS]).await;
    let b = spawn_instance_like(&a, &[fast, EVERY_3_DAYS]).await;
    let secret = long_lived_client(&a).await;
    let old = kid_of(&issue(&a, &secret).await);
    let jump = |secs: i64| {
        let now = a.clock.now() + secs;
        a.clock.set(now);
        b.clock.set(now);
    };
    jump(3 * DAY - a.settings.keys.publish_ahead.as_secs() as i64);
    eventually("both instances publish a pending key", || async {
        let keys = a.services.keys.list().await.unwrap();
        match keys
            .iter()
            .find(|k| k.state == "pending" && k.alg == "ES256")
        {
            Some(p) => {
                published_kids(&a).await.contains(&p.kid)
                    && published_kids(&b).await.contains(&p.kid)
            }
            None => false,
        }
    })
    .await;
    let pending = a
        .services
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.state == "pending" && k.alg == "ES256")
        .unwrap()
        .kid;
    assert_eq!(kid_of(&issue(&b, &secret).await), old);
    jump(a.settings.keys.publish_ahead.as_secs() as i64);
    eventually("both instances sign with the new key", || async {
        kid_of(&issue(&a, &secret).await) == pending && kid_of(&issue(&b, &secret).await) == pending
    })
    .await;
    let keys = a.services.keys.list().await.unwrap();
    for alg in ["ES256", "RS256"] {
        assert_eq!(
            keys.iter()
                .filter(|k| k.state == "active" && k.alg == alg)
                .count(),
            1,
            "{alg}: {keys:?}"
        );
    }
    assert!(keys.iter().any(|k| k.kid == old && k.state == "retired"));
}
