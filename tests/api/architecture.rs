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
fn outbound_oauth_and_http_clients_live_in_the_federation_adapter() {
    // Federation with upstream identity providers (Google, GitHub, OpenID Connect) is an
    // adapter like storage: services see a trait, `src/federation/` speaks the protocol.
    crates_only_in(&["oauth2", "openidconnect", "reqwest"], &["federation"]);
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
