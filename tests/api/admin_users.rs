//! The user listing of the admin API (`GET /admin/v1/users`): every filter, pages by keyset
//! (`after`, `next_after`) and by offset, and the requests it refuses.

use latchkey::services::NewUserInput;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{spawn_app_with, str_of, Backend, TestApp, PASSWORD};
use crate::scenarios;

scenarios!(
    admin_api_lists_users_by_keyset_and_offset_with_every_filter,
    admin_api_user_listing_refuses_bad_paging_and_filters,
);

const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghijklmnop";

async fn admin_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[("LATCHKEY_ADMIN_TOKEN", ADMIN_TOKEN)]).await
}

async fn get(app: &TestApp, path_and_query: &str) -> (u16, Value) {
    let r = app
        .http
        .get(app.url(path_and_query))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store", "{path_and_query}");
    (status, r.json().await.unwrap_or(Value::Null))
}

fn ids(users: &Value) -> Vec<String> {
    users
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {users}"))
        .iter()
        .map(|u| str_of(u, "id").to_owned())
        .collect()
}

/// Seven users over two seconds (several in the same second: the id breaks the tie), with
/// roles, flags and addresses to filter on; `staff` is granted after creation to some.
async fn seed(app: &TestApp) {
    let admin = app.admin();
    admin.create_role("member", &[], None, false).await.unwrap();
    admin.create_role("staff", &[], None, false).await.unwrap();
    for i in 0..7 {
        if i == 3 {
            app.clock.advance(1);
        }
        let id = admin
            .create_user(NewUserInput {
                email: format!(
                    "{}-{i}@example.com",
                    if i % 3 == 0 { "ops" } else { "user" }
                ),
                password: Some(SecretString::from(PASSWORD)),
                username: None,
                display_name: None,
                roles: vec!["member".into()],
                active: i != 2 && i != 5,
                email_verified: i != 3,
                attributes: None,
            })
            .await
            .unwrap()
            .id;
        if i % 2 == 1 {
            app.clock.advance(1);
            admin.grant_roles(&id, &["staff".into()]).await.unwrap();
        }
    }
}

/// Every page of `query` with `limit`, following `next_after`; also checks that a page is
/// full exactly when it names a next page.
async fn walk(app: &TestApp, query: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..20 {
        let mut path = format!("/admin/v1/users?limit={limit}{query}");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let (status, body) = get(app, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let page = ids(&body["users"]);
        assert!(page.len() <= limit);
        match &body["next_after"] {
            Value::Null => {
                assert!(page.len() < limit, "a full page names the next one: {body}");
                out.extend(page);
                return out;
            }
            Value::String(next) => {
                assert_eq!(page.len(), limit, "{body}");
                assert_eq!(page.last(), Some(next));
                after = Some(next.clone());
                out.extend(page);
            }
            other => panic!("next_after {other}"),
        }
    }
    panic!("paging did not end: {out:?}");
}

async fn admin_api_lists_users_by_keyset_and_offset_with_every_filter(backend: Backend) {
    let app = admin_app(backend).await;
    seed(&app).await;

    let (status, all) = get(&app, "/admin/v1/users").await;
    assert_eq!(status, 200, "{all}");
    let users = all["users"].as_array().unwrap().clone();
    assert_eq!(users.len(), 7);
    assert_eq!(all["next_after"], Value::Null, "a page short of the limit");
    // Creation order, then id.
    let keys: Vec<(String, String)> = users
        .iter()
        .map(|u| {
            (
                str_of(u, "created_at").to_owned(),
                str_of(u, "id").to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(
        users
            .iter()
            .filter(|u| u["roles"] == serde_json::json!(["member", "staff"]))
            .count(),
        3,
        "each user's roles, in one read for the page"
    );

    let select = |f: &dyn Fn(&Value) -> bool| -> Vec<String> {
        users
            .iter()
            .filter(|u| f(u))
            .map(|u| str_of(u, "id").to_owned())
            .collect()
    };
    let has_role = |u: &Value, r: &str| u["roles"].as_array().unwrap().iter().any(|x| x == r);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("", select(&|_| true)),
        ("&role=staff", select(&|u| has_role(u, "staff"))),
        ("&role=member", select(&|u| has_role(u, "member"))),
        ("&active=false", select(&|u| u["is_active"] == false)),
        ("&active=true", select(&|u| u["is_active"] == true)),
        ("&verified=false", select(&|u| u["email_verified"] == false)),
        (
            "&active=true&verified=true",
            select(&|u| u["is_active"] == true && u["email_verified"] == true),
        ),
        (
            "&role=staff&active=true",
            select(&|u| has_role(u, "staff") && u["is_active"] == true),
        ),
        (
            "&email_contains=OPS",
            select(&|u| str_of(u, "email").starts_with("ops-")),
        ),
        ("&role=nobody", Vec::new()),
    ];
    for (query, expected) in &cases {
        for limit in [1, 2, 3] {
            assert_eq!(
                &walk(&app, query, limit).await,
                expected,
                "{query} by pages of {limit}"
            );
        }
    }
    assert_eq!(
        walk(&app, "", 7).await.len(),
        7,
        "a last page that is exactly full is followed by an empty one"
    );

    // Offset paging still works, and agrees with the keyset.
    let all_ids = ids(&all["users"]);
    let (status, page) = get(&app, "/admin/v1/users?limit=2&offset=2").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page["users"]), all_ids[2..4]);
    let (_, page) = get(&app, "/admin/v1/users?role=staff&limit=2&offset=1").await;
    assert_eq!(
        ids(&page["users"]),
        cases[1].1[1..3],
        "offset within a filter"
    );
    let (_, page) = get(&app, &format!("/admin/v1/users?after={}", all_ids[6])).await;
    assert_eq!(
        page["users"],
        serde_json::json!([]),
        "nothing after the last"
    );
    // A cursor need not match the filter: the page starts after its position.
    let (_, page) = get(
        &app,
        &format!("/admin/v1/users?active=false&after={}", all_ids[3]),
    )
    .await;
    let inactive_later: Vec<String> = users[4..]
        .iter()
        .filter(|u| u["is_active"] == false)
        .map(|u| str_of(u, "id").to_owned())
        .collect();
    assert_eq!(inactive_later.len(), 1);
    assert_eq!(ids(&page["users"]), inactive_later);
}

async fn admin_api_user_listing_refuses_bad_paging_and_filters(backend: Backend) {
    let app = admin_app(backend).await;
    seed(&app).await;
    let (_, all) = get(&app, "/admin/v1/users").await;
    let first = str_of(&all["users"][0], "id").to_owned();
    let unknown = latchkey::domain::UserId::generate();
    for (query, needle) in [
        ("after=not-a-uuid", "after"),
        (&format!("after={unknown}") as &str, "after"),
        (&format!("after={first}&offset=1"), "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("active=maybe", "active"),
        ("verified=2", "verified"),
        ("role=Not%20A%20Role", "role"),
        ("sort=email", "sort"),
        ("email_contains=a%00b", "email_contains"),
    ] {
        let (status, body) = get(&app, &format!("/admin/v1/users?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "invalid_request", "{query}");
        let description = str_of(&body, "error_description");
        assert!(
            description.contains(needle),
            "{query}: {needle:?} not in {description:?}"
        );
    }
    let r = app
        .http
        .get(app.url("/admin/v1/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "the admin token is required");
    let r = app
        .http
        .delete(app.url("/admin/v1/users"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
}
