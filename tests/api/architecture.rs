//! Structural rules (README, Architecture), checked by scanning the source.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn assert_no(layer: &str, forbidden: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(!files.is_empty(), "{layer} has files");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with("use ") || l.contains("::"))
        {
            for bad in forbidden {
                assert!(
                    !line.contains(bad),
                    "{} must not use {bad}: {line}",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn domain_depends_on_nothing_of_ours_and_no_framework() {
    assert_no(
        "domain",
        &[
            "crate::services",
            "crate::storage",
            "crate::http",
            "crate::crypto",
            "sqlx",
            "actix",
            "tokio",
        ],
    );
}

#[test]
fn services_never_mention_http_or_database_frameworks() {
    assert_no(
        "services",
        &[
            "actix",
            "sqlx",
            "redis",
            "lettre",
            "crate::http",
            "crate::mail_transport",
            "storage::sql",
        ],
    );
}

#[test]
fn http_never_touches_storage() {
    assert_no("http", &["crate::storage::sql", "sqlx", "redis", "Store"]);
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
