//! The `keys` commands of the real binary: rotate, list, retire, import and remove.

use std::process::Command;

use latchkey::domain::SigningAlg;
use serde_json::Value;

use super::{pkcs1_pem, pkcs8_pem, sec1_pem};
use crate::helpers::{fresh_database, str_of, Backend, TestDatabase};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn latchkey(db: &TestDatabase, master: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(args)
        .env("LATCHKEY_DATABASE_URL", &db.url)
        .env("LATCHKEY_MASTER_KEY", master)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(super) async fn cli_rotates_lists_retires_and_imports_keys(backend: Backend) {
    let db = fresh_database(backend).await;
    let master = latchkey::crypto::MasterKey::generate_base64();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| latchkey(&db, &master, args);
    let ok = |args: &[&str]| -> Value {
        let r = run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", r.stdout))
    };
    let file = |name: &str, text: &str| -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let state_of = |kid: &str| -> String {
        ok(&["keys", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .map(|k| str_of(k, "state").to_owned())
            .unwrap_or_default()
    };

    // No key yet: the first one is active at once; the next is pending.
    let first = ok(&["keys", "rotate", "--json"]);
    assert_eq!(
        (first["state"].as_str(), first["alg"].as_str()),
        (Some("active"), Some("ES256"))
    );
    let first = str_of(&first, "kid").to_owned();
    let pending = ok(&["keys", "rotate", "--alg", "ES256", "--json"]);
    assert_eq!(pending["state"], "pending");
    assert!(pending["activate_at"].is_string());
    let pending = str_of(&pending, "kid").to_owned();
    let r = run(&["keys", "rotate"]);
    assert_eq!(r.code, 4, "one pending key at a time: {}", r.stderr);
    assert!(r.stderr.contains("already pending"), "{}", r.stderr);
    let human = run(&["keys", "list"]);
    assert_eq!(human.code, 0);
    assert!(
        human.stdout.contains(&pending) && human.stdout.contains("activates"),
        "{}",
        human.stdout
    );

    // Retire the active key: the pending one takes over; then nothing can take over.
    assert_eq!(
        ok(&["keys", "retire", &first, "--json"])["state"],
        "retired"
    );
    assert_eq!(state_of(&pending), "active");
    let r = run(&["keys", "retire", &pending]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("no pending key"), "{}", r.stderr);
    assert_eq!(run(&["keys", "retire", "no-such-kid"]).code, 3);
    // A kid is base64url and may begin with '-'.
    assert_eq!(run(&["keys", "retire", "-no-such-kid", "--json"]).code, 3);
    assert_eq!(run(&["keys", "remove", "-no-such-kid", "--force"]).code, 3);

    // --now: active at once.
    let urgent = ok(&["keys", "rotate", "--alg", "ES256", "--now", "--json"]);
    assert_eq!(
        (urgent["state"].as_str(), urgent["alg"].as_str()),
        (Some("active"), Some("ES256"))
    );
    assert_eq!(state_of(&pending), "retired");

    // Import: PKCS#8 of every type, SEC1, PKCS#1; the algorithm follows from the key.
    let es = file("es256.pem", &pkcs8_pem(SigningAlg::ES256));
    let imported = ok(&["keys", "import", "--pem", &es, "--json"]);
    assert_eq!(
        (imported["state"].as_str(), imported["alg"].as_str()),
        (Some("pending"), Some("ES256"))
    );
    let mut inputs = vec![
        ("eddsa.pem", pkcs8_pem(SigningAlg::EdDSA), "EdDSA"),
        ("rs256.pem", pkcs8_pem(SigningAlg::RS256), "RS256"),
        ("sec1.pem", sec1_pem(), "ES256"),
    ];
    if let Some(p) = pkcs1_pem(dir.path()) {
        inputs.push(("pkcs1-copy.pem", p, "RS256"));
    }
    let r = run(&["keys", "import", "--pem", &file("x.pem", &inputs[2].1)]);
    assert_eq!(r.code, 4, "a pending ES256 key exists: {}", r.stderr);
    for (name, text, alg) in &inputs {
        let k = ok(&[
            "keys",
            "import",
            "--pem",
            &file(name, text),
            "--now",
            "--json",
        ]);
        assert_eq!(
            (k["state"].as_str(), k["alg"].as_str()),
            (Some("active"), Some(*alg)),
            "{name}"
        );
    }
    let r = run(&["keys", "import", "--pem", &es]);
    assert_eq!(r.code, 4, "already stored: {}", r.stderr);

    // Garbage, public keys and missing files are invalid input (exit 2) with a reason.
    for (name, text, expected) in [
        ("garbage.pem", "this is not a key\n", "PEM"),
        (
            "bad.pem",
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            "unsupported or invalid key",
        ),
        (
            "public.pem",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "no private key",
        ),
    ] {
        let r = run(&["keys", "import", "--pem", &file(name, text)]);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(expected), "{name}: {}", r.stderr);
    }
    let r = run(&["keys", "import", "--pem", "/nonexistent/key.pem"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    let keys = ok(&["keys", "list", "--json"]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 4 + inputs.len());
    for alg in ["ES256", "RS256", "EdDSA"] {
        assert_eq!(
            keys.iter()
                .filter(|k| k["state"] == "active" && k["alg"] == alg)
                .count(),
            1,
            "one active key per algorithm: {alg}"
        );
    }
    assert_eq!(keys.iter().filter(|k| k["state"] == "active").count(), 3);
    assert_eq!(keys.iter().filter(|k| k["state"] == "pending").count(), 0);

    // Under another master key no key is added: the servers could never open it.
    let other = latchkey::crypto::MasterKey::generate_base64();
    let fresh = file("fresh.pem", &pkcs8_pem(SigningAlg::EdDSA));
    for args in [
        vec!["keys", "rotate"],
        vec!["keys", "import", "--pem", fresh.as_str(), "--now"],
    ] {
        let r = latchkey(&db, &other, &args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("master key"), "{}", r.stderr);
    }
    assert_eq!(
        ok(&["keys", "list", "--json"]).as_array().unwrap().len(),
        keys.len()
    );
}
