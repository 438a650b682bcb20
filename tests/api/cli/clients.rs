//! `latchkey clients create|update` with the browser sign-in settings, through the real binary.

use serde_json::{json, Value};

use super::{Cli, Run};
use crate::helpers::{fresh_database, str_of, Backend};

fn sorted(v: &Value) -> Vec<String> {
    let mut items: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    items.sort();
    items
}

fn refused(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(
        run.code, code,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in the message: {}",
            run.stderr
        );
    }
}

async fn migrated(backend: Backend) -> (crate::helpers::TestDatabase, String) {
    let db = fresh_database(backend).await;
    let master_key = latchkey::crypto::MasterKey::generate_base64();
    (db, master_key)
}

pub(super) async fn cli_registers_clients_for_browser_sign_in(backend: Backend) {
    let (db, master_key) = migrated(backend).await;
    let cli = Cli {
        db: &db,
        master_key,
    };
    assert_eq!(cli.run(&["migrate"], None).code, 0);

    let spa = cli.ok(
        &[
            "clients",
            "create",
            "--name",
            "spa",
            "--public",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            "http://127.0.0.1:5173/callback",
            "--post-logout-redirect-uri",
            "http://127.0.0.1:5173/",
            "--allowed-origin",
            "http://127.0.0.1:5173",
            "--first-party",
            "--refresh-grace-secs",
            "20",
            "--refresh-grace-uses",
            "2",
            "--json",
        ],
        None,
    );
    assert!(!str_of(&spa, "client_id").is_empty());
    assert_eq!(spa["name"], "spa");
    assert_eq!(spa["kind"], "public");
    assert_eq!(spa["enabled"], true);
    assert_eq!(
        sorted(&spa["grant_types"]),
        ["authorization_code", "refresh_token"]
    );
    assert_eq!(
        spa["redirect_uris"],
        json!(["http://127.0.0.1:5173/callback"])
    );
    assert_eq!(
        spa["post_logout_redirect_uris"],
        json!(["http://127.0.0.1:5173/"])
    );
    assert_eq!(spa["allowed_origins"], json!(["http://127.0.0.1:5173"]));
    assert_eq!(spa["first_party"], true);
    assert_eq!(spa["backchannel_logout_uri"], Value::Null);
    assert_eq!(spa["id_token_signed_response_alg"], "RS256");
    assert!(spa.get("client_secret").is_none(), "a public client");
    assert_eq!(
        (&spa["refresh_grace_secs"], &spa["refresh_grace_uses"]),
        (&json!(20), &json!(2))
    );

    let shown = cli.ok(
        &["clients", "show", str_of(&spa, "client_id"), "--json"],
        None,
    );
    for field in [
        "redirect_uris",
        "post_logout_redirect_uris",
        "allowed_origins",
        "first_party",
        "backchannel_logout_uri",
        "id_token_signed_response_alg",
        "refresh_grace_secs",
        "refresh_grace_uses",
    ] {
        assert_eq!(shown[field], spa[field], "{field} is stored");
    }

    // A server-side web app: confidential, https redirects, back-channel logout, ES256.
    let web = cli.ok(
        &[
            "clients",
            "create",
            "--name",
            "portal",
            "--client-id",
            "portal",
            "--confidential",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://portal.example.com/callback",
            "--post-logout-redirect-uri",
            "https://portal.example.com/",
            "--backchannel-logout-uri",
            "https://portal.example.com/backchannel",
            "--id-token-alg",
            "ES256",
            "--scope",
            "openid",
            "--json",
        ],
        None,
    );
    assert_eq!(web["client_id"], "portal");
    assert_eq!(web["kind"], "confidential");
    assert!(str_of(&web, "client_secret").len() >= 43);
    assert_eq!(web["first_party"], false);
    assert_eq!(web["allowed_origins"], json!([]));
    assert_eq!(
        web["backchannel_logout_uri"],
        "https://portal.example.com/backchannel"
    );
    assert_eq!(web["id_token_signed_response_alg"], "ES256");

    // A native app: a private-use scheme, first party switched off explicitly.
    let native = cli.ok(
        &[
            "clients",
            "create",
            "--name",
            "phone",
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "com.example.app:/oauth2redirect",
            "--first-party=false",
            "--id-token-alg",
            "EdDSA",
            "--json",
        ],
        None,
    );
    assert_eq!(native["first_party"], false);
    assert_eq!(native["id_token_signed_response_alg"], "EdDSA");

    let human = cli.run(&["clients", "show", "portal"], None);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(human.stdout.contains("https://portal.example.com/callback"));
}

pub(super) async fn cli_updates_each_client_setting(backend: Backend) {
    let (db, master_key) = migrated(backend).await;
    let cli = Cli {
        db: &db,
        master_key,
    };
    assert_eq!(cli.run(&["migrate"], None).code, 0);
    let created = cli.ok(
        &[
            "clients",
            "create",
            "--name",
            "app",
            "--client-id",
            "app",
            "--confidential",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--scope",
            "openid",
            "--json",
        ],
        None,
    );
    assert!(str_of(&created, "client_secret").len() >= 43);
    let update = |args: &[&str]| {
        let mut all = vec!["clients", "update", "app"];
        all.extend_from_slice(args);
        all.push("--json");
        let v = cli.ok(&all, None);
        assert!(v.get("client_secret").is_none(), "no secret on update");
        v
    };

    let v = update(&["--name", "Renamed app"]);
    assert_eq!(v["name"], "Renamed app");
    assert_eq!(
        v["redirect_uris"],
        json!(["https://app.example.com/cb"]),
        "what is not named stays"
    );

    let v = update(&[
        "--redirect-uri",
        "https://app.example.com/cb2",
        "--redirect-uri",
        "https://app.example.com/cb3",
    ]);
    assert_eq!(
        v["redirect_uris"],
        json!(["https://app.example.com/cb2", "https://app.example.com/cb3"]),
        "a repeated flag replaces the list"
    );

    let v = update(&["--post-logout-redirect-uri", "https://app.example.com/bye"]);
    assert_eq!(
        v["post_logout_redirect_uris"],
        json!(["https://app.example.com/bye"])
    );
    let v = update(&["--allowed-origin", "https://app.example.com"]);
    assert_eq!(v["allowed_origins"], json!(["https://app.example.com"]));

    assert_eq!(update(&["--first-party"])["first_party"], true);
    assert_eq!(update(&["--no-first-party"])["first_party"], false);
    assert_eq!(update(&["--first-party=true"])["first_party"], true);
    assert_eq!(update(&["--first-party=false"])["first_party"], false);

    let v = update(&["--backchannel-logout-uri", "https://app.example.com/bc"]);
    assert_eq!(v["backchannel_logout_uri"], "https://app.example.com/bc");
    let v = update(&["--no-backchannel-logout-uri"]);
    assert_eq!(v["backchannel_logout_uri"], Value::Null);

    assert_eq!(
        update(&["--id-token-alg", "EdDSA"])["id_token_signed_response_alg"],
        "EdDSA"
    );

    let v = update(&["--grant", "authorization_code"]);
    assert_eq!(v["grant_types"], json!(["authorization_code"]));
    let v = update(&["--scope", "openid", "--scope", "profile"]);
    assert_eq!(sorted(&v["scopes"]), ["openid", "profile"]);
    let v = update(&[
        "--audience",
        "https://api.example.com",
        "--audience",
        "orders",
        "--default-audience",
        "orders",
    ]);
    assert_eq!(v["audiences"], json!(["https://api.example.com", "orders"]));
    assert_eq!(v["default_audience"], "orders");
    let v = update(&[
        "--access-token-ttl",
        "300",
        "--refresh-idle-ttl",
        "3600",
        "--refresh-absolute-ttl",
        "86400",
    ]);
    assert_eq!(
        (
            &v["access_token_ttl"],
            &v["refresh_idle_ttl"],
            &v["refresh_absolute_ttl"]
        ),
        (&json!(300), &json!(3600), &json!(86400))
    );
    let v = update(&["--refresh-grace-secs", "30", "--refresh-grace-uses", "3"]);
    assert_eq!(
        (&v["refresh_grace_secs"], &v["refresh_grace_uses"]),
        (&json!(30), &json!(3))
    );
    let v = update(&["--refresh-grace-secs", "0"]);
    assert_eq!(
        (&v["refresh_grace_secs"], &v["refresh_grace_uses"]),
        (&json!(0), &json!(3)),
        "0: strict rotation for this client, whatever the server default"
    );

    // Clearing: lists emptied, optional settings back to their defaults.
    let v = update(&[
        "--no-post-logout-redirect-uris",
        "--no-allowed-origins",
        "--no-default-audience",
        "--no-audiences",
        "--no-scopes",
        "--no-access-token-ttl",
        "--no-refresh-idle-ttl",
        "--no-refresh-absolute-ttl",
        "--no-refresh-grace-secs",
        "--no-refresh-grace-uses",
    ]);
    assert_eq!(v["post_logout_redirect_uris"], json!([]));
    assert_eq!(v["allowed_origins"], json!([]));
    assert_eq!(v["default_audience"], Value::Null);
    assert_eq!(v["audiences"], json!([]));
    assert_eq!(v["scopes"], json!([]));
    assert_eq!(v["access_token_ttl"], Value::Null);
    assert_eq!(v["refresh_idle_ttl"], Value::Null);
    assert_eq!(v["refresh_absolute_ttl"], Value::Null);
    assert_eq!(v["refresh_grace_secs"], Value::Null);
    assert_eq!(v["refresh_grace_uses"], Value::Null);

    // Everything stuck, and the rest was left alone.
    let shown = cli.ok(&["clients", "show", "app", "--json"], None);
    assert_eq!(shown["name"], "Renamed app");
    assert_eq!(
        shown["redirect_uris"],
        json!(["https://app.example.com/cb2", "https://app.example.com/cb3"])
    );
    assert_eq!(shown["first_party"], false);
    assert_eq!(shown["id_token_signed_response_alg"], "EdDSA");
    assert_eq!(shown["kind"], "confidential");
    assert_eq!(shown["enabled"], true);

    // A disabled client stays disabled through an update.
    cli.ok(&["clients", "disable", "app", "--json"], None);
    assert_eq!(update(&["--name", "Still off"])["enabled"], false);

    refused(
        &cli.run(&["clients", "update", "nobody", "--name", "x"], None),
        3,
        &["not found"],
    );
    refused(
        &cli.run(&["clients", "update", "app"], None),
        2,
        &["nothing to change"],
    );
    refused(
        &cli.run(
            &[
                "clients",
                "update",
                "app",
                "--first-party",
                "--no-first-party",
            ],
            None,
        ),
        2,
        &[],
    );
    refused(
        &cli.run(
            &["clients", "update", "app", "--id-token-alg", "HS256"],
            None,
        ),
        2,
        &["id_token_signed_response_alg"],
    );
    refused(
        &cli.run(&["clients", "update", "app", "--no-redirect-uris"], None),
        2,
        &["authorization_code grant needs at least one redirect URI"],
    );
    for (flag, value) in [
        ("--refresh-grace-secs", "301"),
        ("--refresh-grace-secs", "-1"),
        ("--refresh-grace-uses", "0"),
        ("--refresh-grace-uses", "101"),
    ] {
        let field = flag.trim_start_matches("--").replace('-', "_");
        refused(
            &cli.run(
                &["clients", "update", "app", &format!("{flag}={value}")],
                None,
            ),
            2,
            &[field.as_str()],
        );
    }
    refused(
        &cli.run(
            &[
                "clients",
                "update",
                "app",
                "--refresh-grace-secs",
                "10",
                "--no-refresh-grace-secs",
            ],
            None,
        ),
        2,
        &[],
    );
}

pub(super) async fn cli_refuses_bad_redirect_uris_with_exit_code_2(backend: Backend) {
    let (db, master_key) = migrated(backend).await;
    let cli = Cli {
        db: &db,
        master_key,
    };
    assert_eq!(cli.run(&["migrate"], None).code, 0);
    let create = |kind: &str, uri: &str| {
        cli.run(
            &[
                "clients",
                "create",
                "--name",
                "bad",
                kind,
                "--grant",
                "authorization_code",
                "--redirect-uri",
                uri,
            ],
            None,
        )
    };
    refused(
        &create("--public", "http://app.example.com/cb"),
        2,
        &["redirect_uris", "must be https"],
    );
    refused(
        &create("--public", "https://app.example.com/cb#frag"),
        2,
        &["redirect_uris", "fragment"],
    );
    refused(
        &create("--public", "/callback"),
        2,
        &["redirect_uris", "absolute URI"],
    );
    refused(
        &create("--confidential", "com.example.app:/oauth2redirect"),
        2,
        &[
            "redirect_uris",
            "private-use schemes are for public clients",
        ],
    );
    refused(
        &cli.run(
            &[
                "clients",
                "create",
                "--name",
                "bare",
                "--public",
                "--grant",
                "authorization_code",
            ],
            None,
        ),
        2,
        &["needs at least one redirect URI"],
    );
    refused(
        &cli.run(
            &[
                "clients",
                "create",
                "--name",
                "x",
                "--public",
                "--grant",
                "refresh_token",
                "--post-logout-redirect-uri",
                "javascript:alert(1)",
            ],
            None,
        ),
        2,
        &["post_logout_redirect_uris"],
    );
    refused(
        &cli.run(
            &[
                "clients",
                "create",
                "--name",
                "x",
                "--public",
                "--grant",
                "refresh_token",
                "--allowed-origin",
                "https://app.example.com/path",
            ],
            None,
        ),
        2,
        &["allowed_origins"],
    );
    refused(
        &cli.run(
            &[
                "clients",
                "create",
                "--name",
                "x",
                "--confidential",
                "--grant",
                "client_credentials",
                "--backchannel-logout-uri",
                "http://app.example.com/bc",
            ],
            None,
        ),
        2,
        &["backchannel_logout_uri"],
    );
    assert_eq!(
        cli.ok(&["clients", "list", "--json"], None),
        json!([]),
        "nothing was registered"
    );

    // The same rules on update, which then changes nothing.
    cli.ok(
        &[
            "clients",
            "create",
            "--name",
            "web",
            "--client-id",
            "web",
            "--confidential",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://web.example.com/cb",
            "--json",
        ],
        None,
    );
    refused(
        &cli.run(
            &[
                "clients",
                "update",
                "web",
                "--redirect-uri",
                "com.example.app:/cb",
                "--name",
                "changed",
            ],
            None,
        ),
        2,
        &["private-use schemes are for public clients"],
    );
    let shown = cli.ok(&["clients", "show", "web", "--json"], None);
    assert_eq!(shown["name"], "web");
    assert_eq!(
        shown["redirect_uris"],
        json!(["https://web.example.com/cb"])
    );
}

/// Issue 15: `--require-mfa` on roles and clients, shown in their JSON, and turned off again.
pub(super) async fn cli_sets_mfa_policies_on_roles_and_clients(backend: Backend) {
    let (db, master_key) = migrated(backend).await;
    let cli = Cli {
        db: &db,
        master_key,
    };
    let role = cli.ok(
        &["roles", "create", "admin", "--require-mfa", "--json"],
        None,
    );
    assert_eq!(role["require_mfa"], true);
    let plain = cli.ok(&["roles", "create", "staff", "--json"], None);
    assert_eq!(plain["require_mfa"], false);
    let shown = cli.ok(&["roles", "show", "admin", "--json"], None);
    assert_eq!(shown["require_mfa"], true);
    let off = cli.ok(
        &["roles", "update", "admin", "--no-require-mfa", "--json"],
        None,
    );
    assert_eq!(off["require_mfa"], false);
    let on = cli.ok(
        &["roles", "update", "staff", "--require-mfa", "--json"],
        None,
    );
    assert_eq!(on["require_mfa"], true);
    let listed = cli.ok(&["roles", "list", "--json"], None);
    assert_eq!(listed[1]["name"], "staff");
    assert_eq!(listed[1]["require_mfa"], true);
    assert_ne!(cli.run(&["roles", "update", "staff"], None).code, 0);

    let client = cli.ok(
        &[
            "clients",
            "create",
            "--name",
            "payouts",
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "http://127.0.0.1:5173/callback",
            "--require-mfa",
            "--json",
        ],
        None,
    );
    assert_eq!(client["require_mfa"], true);
    let id = str_of(&client, "client_id").to_owned();
    let off = cli.ok(
        &["clients", "update", &id, "--no-require-mfa", "--json"],
        None,
    );
    assert_eq!(off["require_mfa"], false);
    let shown = cli.ok(&["clients", "show", &id, "--json"], None);
    assert_eq!(shown["require_mfa"], false);
}
