//! `openapi.yaml` and the route table agree: every path and method the server routes is
//! described, and every described one is routed. (`scripts/contract.sh` then checks that the
//! described ones behave as described.)

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The string literals in `text` (no escapes needed for paths).
fn literals(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// (path, method) for every resource built with `Endpoint` in a route file: the path(s) of
/// `Endpoint::new("..")`, `admin("..")` or `Endpoint::on(web::resource([..]))`, and the
/// methods chained up to `.finish()` or `.with_cors(`.
fn routed_in(source: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let starts = [
        "Endpoint::new(\"",
        "admin(\"",
        "Endpoint::on(web::resource([",
    ];
    let mut rest = source;
    loop {
        let next = starts
            .iter()
            .filter_map(|s| rest.find(s).map(|i| (i, *s)))
            .min_by_key(|(i, _)| *i);
        let Some((i, start)) = next else { break };
        let after = &rest[i + start.len() - usize::from(start.ends_with('"'))..];
        let end = ["finish()", ".with_cors("]
            .iter()
            .filter_map(|e| after.find(e))
            .min()
            .unwrap();
        let chain = &after[..end];
        let paths_end = chain.find(')').unwrap();
        let paths: Vec<String> = literals(&chain[..paths_end])
            .into_iter()
            .filter(|p| p.starts_with('/'))
            .collect();
        for method in ["get", "post", "patch", "delete", "put"] {
            if chain.contains(&format!(".{method}(")) {
                for p in &paths {
                    routes.insert((p.clone(), method.to_owned()));
                }
            }
        }
        rest = &after[end..];
    }
    routes
}

/// (path, method) for every operation under `paths:` in openapi.yaml.
fn described() -> BTreeSet<(String, String)> {
    let spec = read("openapi.yaml");
    let mut ops = BTreeSet::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in spec.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            path = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
            path = Some(format!("/{}", p.trim_matches(['\'', '"'])));
        } else if let Some(m) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':')) {
            if ["get", "post", "patch", "delete", "put"].contains(&m) {
                if let Some(p) = &path {
                    ops.insert((p.clone(), m.to_owned()));
                }
            }
        }
    }
    ops
}

#[test]
fn every_route_is_described_in_openapi_and_every_described_one_is_routed() {
    let mut routed = routed_in(&read("src/http/mod.rs"));
    routed.extend(routed_in(&read("src/http/api/admin/mod.rs")));
    assert!(routed.len() > 40, "the route table was read: {routed:?}");
    assert!(routed.contains(&("/login".into(), "post".into())));
    assert!(routed.contains(&(
        "/.well-known/oauth-authorization-server".into(),
        "get".into()
    )));
    assert!(routed.contains(&("/admin/v1/clients/{client_id}".into(), "patch".into())));
    let described = described();
    let undocumented: Vec<_> = routed.difference(&described).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not in openapi.yaml: {undocumented:?}"
    );
    let unrouted: Vec<_> = described.difference(&routed).collect();
    assert!(
        unrouted.is_empty(),
        "in openapi.yaml but not routed: {unrouted:?}"
    );
}
