//! `latchkey users list` paging through the real binary: `--after` (keyset) with each filter,
//! `--offset`, and the paging arguments it refuses.

use serde_json::Value;

use super::Cli;
use crate::helpers::{fresh_database, str_of, Backend};

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|u| str_of(u, "id").to_owned())
        .collect()
}

pub(super) async fn cli_pages_users_with_after_and_offset(backend: Backend) {
    let db = fresh_database(backend).await;
    let cli = Cli {
        db: &db,
        master_key: latchkey::crypto::MasterKey::generate_base64(),
    };
    assert_eq!(cli.run(&["migrate"], None).code, 0);
    cli.ok(&["roles", "create", "member", "--json"], None);
    cli.ok(&["roles", "create", "staff", "--json"], None);
    // Several users are created within one second: the id orders them.
    for i in 0..6 {
        let email = format!("user-{i}@example.com");
        let mut args = vec!["users", "create", "--email", &email, "--role", "member"];
        if i % 2 == 0 {
            args.extend(["--role", "staff"]);
        }
        if i == 3 {
            args.push("--inactive");
        }
        args.push("--json");
        cli.ok(&args, None);
    }
    cli.ok(
        &["users", "grant", "user-5@example.com", "staff", "--json"],
        None,
    );

    let list = |extra: &[&str]| -> Vec<String> {
        let mut a = vec!["users", "list", "--json"];
        a.extend_from_slice(extra);
        ids(&cli.ok(&a, None))
    };
    let all = list(&[]);
    assert_eq!(all.len(), 6);
    let walk = |filter: &[&str]| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        loop {
            let mut a: Vec<&str> = filter.to_vec();
            a.extend(["--limit", "2"]);
            let last = out.last().cloned();
            if let Some(l) = &last {
                a.extend(["--after", l.as_str()]);
            }
            let page = list(&a);
            assert!(page.len() <= 2);
            let done = page.len() < 2;
            out.extend(page);
            if done {
                return out;
            }
            assert!(out.len() <= 6, "paging did not end: {out:?}");
        }
    };
    assert_eq!(walk(&[]), all);
    for filter in [
        &["--role", "staff"][..],
        &["--role", "member", "--active", "true"][..],
        &["--active", "false"][..],
        &["--verified", "false"][..],
        &["--email-contains", "USER-"][..],
    ] {
        assert_eq!(walk(filter), list(filter), "{filter:?}");
    }
    assert_eq!(walk(&["--role", "staff"]).len(), 4);
    assert_eq!(walk(&["--active", "false"]).len(), 1);
    assert_eq!(list(&["--limit", "2", "--offset", "3"]), all[3..5]);
    assert_eq!(list(&["--after", &all[5]]), Vec::<String>::new());

    let refused = |args: &[&str], needle: &str| {
        let mut a = vec!["users", "list"];
        a.extend_from_slice(args);
        let r = cli.run(&a, None);
        assert_eq!(r.code, 2, "{args:?}: {} {}", r.stdout, r.stderr);
        assert!(r.stderr.contains(needle), "{needle:?} not in {}", r.stderr);
    };
    refused(&["--after", "not-a-uuid"], "--after");
    refused(
        &["--after", latchkey::domain::UserId::generate().as_str()],
        "after",
    );
    refused(&["--after", &all[0], "--offset", "1"], "--offset");
}
