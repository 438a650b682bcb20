//! Structural rules of ARCHITECTURE.md, checked by scanning the source. Each rule names the
//! section of ARCHITECTURE.md that explains it.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every source file with its path relative to `src/` (`/`-separated).
fn sources() -> Vec<(String, String)> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 50, "the sources were found");
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&f).unwrap())
        })
        .collect()
}

/// The code lines of a file: comments and doc comments left out.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let t = l.trim_start();
        (!t.starts_with("//")).then_some((i + 1, l))
    })
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `line` names the crate `krate` as the start of a path (`krate::...`), as opposed
/// to a module of ours that happens to share its name (`storage::redis::...`).
fn names_crate(line: &str, krate: &str) -> bool {
    let pat = format!("{krate}::");
    let mut from = 0;
    while let Some(i) = line[from..].find(&pat) {
        let at = from + i;
        let before = line[..at].chars().next_back();
        if !before.is_some_and(|c| is_ident(c) || c == ':') {
            return true;
        }
        from = at + pat.len();
    }
    false
}

fn in_layer(path: &str, layers: &[&str]) -> bool {
    layers
        .iter()
        .any(|l| path == *l || path.starts_with(&format!("{l}/")) || path == format!("{l}.rs"))
}

/// Fails with every offending line when a file outside `allowed` names one of `crates`.
fn crates_only_in(crates: &[&str], allowed: &[&str]) {
    let mut offences = Vec::new();
    for (path, text) in sources() {
        if in_layer(&path, allowed) {
            continue;
        }
        for (n, line) in code_lines(&text) {
            for krate in crates {
                if names_crate(line, krate) {
                    offences.push(format!("src/{path}:{n}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "{crates:?} may be named only in {allowed:?}:\n{}",
        offences.join("\n")
    );
}

/// Fails with every offending line when a file of `layer` contains one of `forbidden`.
fn layer_never_mentions(layer: &str, forbidden: &[&str]) {
    let mut seen = 0;
    let mut offences = Vec::new();
    for (path, text) in sources() {
        if !in_layer(&path, &[layer]) {
            continue;
        }
        seen += 1;
        for (n, line) in code_lines(&text) {
            for bad in forbidden {
                if line.contains(bad) {
                    offences.push(format!("src/{path}:{n}: {}", line.trim()));
                }
            }
        }
    }
    assert!(seen > 0, "{layer} has files");
    assert!(
        offences.is_empty(),
        "{layer} must not use {forbidden:?}:\n{}",
        offences.join("\n")
    );
}

#[test]
fn domain_depends_on_nothing_of_ours_and_no_framework() {
    layer_never_mentions(
        "domain",
        &[
            "crate::services",
            "crate::storage",
            "crate::http",
            "crate::crypto",
            "crate::config",
            "crate::startup",
            "crate::cli",
            "crate::mail_transport",
            "tokio",
        ],
    );
}

#[test]
fn services_never_reach_config_http_or_adapters() {
    layer_never_mentions(
        "services",
        &[
            "crate::config",
            "crate::http",
            "crate::startup",
            "crate::cli",
            "crate::mail_transport",
            "crate::telemetry",
            "storage::sql",
            "storage::memory",
            "storage::redis",
        ],
    );
}

#[test]
fn storage_serves_the_services_and_never_calls_them() {
    layer_never_mentions(
        "storage",
        &[
            "crate::services",
            "crate::http",
            "crate::startup",
            "crate::cli",
            "crate::config",
        ],
    );
}

#[test]
fn http_never_touches_storage() {
    layer_never_mentions("http", &["crate::storage::sql", "Store"]);
}

#[test]
fn the_web_framework_lives_in_http_and_startup() {
    crates_only_in(
        &["actix_web", "actix_cors", "tracing_actix_web"],
        &["http", "startup"],
    );
}

#[test]
fn database_and_cache_clients_live_in_storage() {
    crates_only_in(&["sqlx", "redis"], &["storage"]);
}

#[test]
fn the_smtp_client_lives_in_the_mail_transport() {
    // The one exception: `config/mail.rs` checks `mail.from` with the parser that will send
    // it, so a bad sender stops start-up instead of the first mail.
    crates_only_in(&["lettre"], &["mail_transport", "config/mail.rs"]);
}

#[test]
fn the_template_engine_lives_in_the_views() {
    crates_only_in(&["minijinja"], &["http/views"]);
}

#[test]
fn outbound_oauth_and_http_clients_live_in_the_adapters() {
    // Federation with upstream identity providers (Google, GitHub, OpenID Connect) is an
    // adapter like storage: services see a trait, `src/federation/` speaks the protocol.
    // Calls to clients (back-channel logout) are the adapter `src/outbound/`.
    crates_only_in(&["oauth2", "openidconnect"], &["federation"]);
    crates_only_in(&["reqwest"], &["federation", "outbound"]);
}

#[test]
fn webauthn_lives_in_one_file() {
    // The WebAuthn ceremonies, COSE keys and attestation are `webauthn-rs`'s; the rest of
    // the code sees plain values (options as JSON, sealed states, stored credentials).
    crates_only_in(&["webauthn_rs"], &["crypto/passkey.rs"]);
}

#[test]
fn configuration_is_read_by_the_composition_root_and_adapters_only() {
    let mut offences = Vec::new();
    for (path, text) in sources() {
        if in_layer(
            &path,
            &["config", "startup", "cli", "telemetry", "mail_transport"],
        ) {
            continue;
        }
        for (n, line) in code_lines(&text) {
            if line.contains("crate::config") {
                offences.push(format!("src/{path}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

#[test]
fn sign_in_paths_go_through_the_login_pipeline() {
    // Tokens (password and magic-link grants) reach credentials through `services::authn`,
    // never through the accounts facade; the pipeline itself knows nothing of accounts.
    layer_never_mentions("services/tokens", &["AccountService", "accounts::"]);
    layer_never_mentions("services/authn", &["AccountService", "accounts::"]);
}

#[test]
fn mail_kinds_depend_on_nothing() {
    let text = std::fs::read_to_string(src().join("services/mail/kind.rs")).unwrap();
    for (n, line) in code_lines(&text) {
        assert!(
            !line.contains("super::") && !line.contains("crate::"),
            "services/mail/kind.rs:{n} imports: {line}"
        );
    }
}

#[test]
fn no_source_file_holds_more_than_one_room() {
    // One job per file: a file that grows past 700 lines has more than one.
    let big: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| text.lines().count() > 700)
        .map(|(path, text)| format!("src/{path}: {} lines", text.lines().count()))
        .collect();
    assert!(big.is_empty(), "split these files:\n{}", big.join("\n"));
}

#[test]
fn migration_folders_are_twins() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

/// The module a source file defines: `services/tokens/mod.rs` -> `services::tokens`.
fn module_of(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = path
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The paths a line names from our own crate, as module paths (`crate::` and `super::`).
fn named_paths(line: &str, module: &[String], is_mod_file: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = line[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if line[..at]
                .chars()
                .next_back()
                .is_some_and(|c| is_ident(c) || c == ':')
            {
                continue;
            }
            let rest = &line[at..];
            let segments: Vec<&str> = rest
                .split("::")
                .map(|s| s.trim())
                .take_while(|s| !s.is_empty() && s.chars().all(is_ident))
                .collect();
            let mut path: Vec<String> = if segments[0] == "crate" {
                Vec::new()
            } else {
                // `super` from `a/b.rs` (module a::b) is `a`; from `a/b/mod.rs` (a::b) too.
                let _ = is_mod_file;
                let mut base = module.to_vec();
                base.pop();
                base
            };
            for s in &segments[1..] {
                if *s == "super" {
                    path.pop();
                } else {
                    path.push((*s).to_owned());
                }
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn sibling_modules_never_import_each_other_in_a_circle() {
    use std::collections::{BTreeMap, BTreeSet};
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(p, _)| module_of(p)).collect();
    // Edges between siblings: for a use of B in A, the children of their common ancestor
    // that contain A and B. A module and its own ancestors or descendants are one room.
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (path, text) in &files {
        let from = module_of(path);
        let is_mod_file = path.ends_with("mod.rs");
        for (_, line) in code_lines(text) {
            for mut to in named_paths(line, &from, is_mod_file) {
                while !to.is_empty() && !modules.contains(&to) {
                    to.pop();
                }
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                if common == from.len() || common == to.len() {
                    continue;
                }
                edges
                    .entry(from[..=common].to_vec())
                    .or_default()
                    .insert(to[..=common].to_vec());
            }
        }
    }
    // Depth-first search for a circle.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut circle = stack[i..].to_vec();
            circle.push(node.clone());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(circle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
            panic!(
                "modules import each other in a circle: {}",
                names.join(" -> ")
            );
        }
    }
}
