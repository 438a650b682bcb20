//! Fixtures for the MFA grant benchmark (issue 15, `bench/run.sh` scenario `mfa`): many users
//! with a confirmed TOTP authenticator, and for each pass a fresh `mfa_token` per user with
//! the codes of the coming time steps.
//!
//! The MFA grant takes a single-use `mfa_token` (minted by a password grant, 5 minutes) and a
//! TOTP code that its factor has not used yet in its 30 s step, so a pass of R requests/s for
//! D seconds needs R x D users, each with a token of its own. This tool makes both without
//! faking what the server reads:
//!
//! - `seed` writes SQL (for `sqlite3` or `psql`) that inserts N users with one password hash
//!   (argon2id, made here with the library's `PasswordHasher`) and a confirmed TOTP factor
//!   each, its secret sealed under the master key by the library's own `TotpVault` (AES-GCM,
//!   bound to the factor id), exactly as enrolment stores it; and a users file
//!   (`email base32-secret` per line, for `mint`). `LATCHKEY_MASTER_KEY` must be the server's.
//! - `mint` signs the users in through the running server's password grant (`POST
//!   /oauth2/token`, each answered 403 `mfa_required` with an `mfa_token`) and writes the pass
//!   file bench/wrk/mfa.lua reads: a header `# step0 S steps K`, then per user
//!   `mfa_token code(S) code(S+1) ... code(S+K-1)` (RFC 6238 codes from the secret, by the
//!   library's `totp::code_at`; the server's check of them is what the pass measures).
//!
//! Usage:
//!   cargo run --release --example mfa_fixture -- seed --backend postgres --count 80000 \
//!     --password PW --sql-out users.sql --users-out users.txt [--prefix mfa] \
//!     [--memory-kib 19456 --iterations 2 --parallelism 1]
//!   cargo run --release --example mfa_fixture -- mint --base http://127.0.0.1:18090 \
//!     --client-id web --password PW --users users.txt --out pass1.txt [--count N] \
//!     [--concurrency 32] [--steps 12]

use std::io::{BufRead, BufWriter, Write};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use latchkey::crypto::{totp, Argon2Settings, MasterKey, PasswordHasher, TotpSecret, TotpVault};
use latchkey::domain::{FactorId, UserId};
use secrecy::SecretString;

#[derive(Parser)]
#[command(about = "Fixtures for the MFA grant benchmark (bench/run.sh scenario mfa)")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Subcommand)]
enum Command {
    /// SQL for N users with a confirmed TOTP factor each, and the users file for `mint`.
    Seed {
        #[arg(long, value_enum)]
        backend: Backend,
        #[arg(long)]
        count: usize,
        /// The users' password (one for all; its argon2id hash is made once).
        #[arg(long)]
        password: String,
        /// Emails are PREFIX-NNNNNN@example.com.
        #[arg(long, default_value = "mfa")]
        prefix: String,
        #[arg(long)]
        sql_out: std::path::PathBuf,
        #[arg(long)]
        users_out: std::path::PathBuf,
        /// argon2id parameters of the stored hash: they must be the server's, or its first
        /// sign-in rehashes (defaults: the server's defaults).
        #[arg(long, default_value_t = Argon2Settings::default().memory_kib)]
        memory_kib: u32,
        #[arg(long, default_value_t = Argon2Settings::default().iterations)]
        iterations: u32,
        #[arg(long, default_value_t = Argon2Settings::default().parallelism)]
        parallelism: u32,
    },
    /// One `mfa_token` per user through the server's password grant, with the users' codes.
    Mint {
        #[arg(long)]
        base: String,
        #[arg(long, default_value = "web")]
        client_id: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        users: std::path::PathBuf,
        /// How many users (the first ones of the file); default: all.
        #[arg(long)]
        count: Option<usize>,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Codes of this many steps from the current one (30 s each; an mfa_token lives 5
        /// minutes).
        #[arg(long, default_value_t = 12)]
        steps: i64,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A SQL string literal (the values here never hold a quote, but stay safe).
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[allow(clippy::too_many_arguments)]
async fn seed(
    backend: Backend,
    count: usize,
    password: String,
    prefix: &str,
    sql_out: &std::path::Path,
    users_out: &std::path::Path,
    settings: Argon2Settings,
) -> anyhow::Result<()> {
    let master = std::env::var("LATCHKEY_MASTER_KEY")
        .context("LATCHKEY_MASTER_KEY (the server's master key) is required")?;
    let master = Arc::new(MasterKey::from_base64(master.trim()).context("LATCHKEY_MASTER_KEY")?);
    let vault = TotpVault::new(master);
    let hasher = PasswordHasher::new(settings, 1).await?;
    let phc = hasher.hash(SecretString::from(password)).await?;
    let (t, now) = (Instant::now(), now());
    let confirmed_step = totp::step_of(now);
    let tru = match backend {
        Backend::Sqlite => "1",
        Backend::Postgres => "TRUE",
    };
    let blob = |b: &[u8]| -> String {
        match backend {
            Backend::Sqlite => format!("X'{}'", hex(b)),
            Backend::Postgres => format!("'\\x{}'::bytea", hex(b)),
        }
    };
    let mut sql = BufWriter::new(std::fs::File::create(sql_out)?);
    let mut users = BufWriter::new(std::fs::File::create(users_out)?);
    writeln!(sql, "BEGIN;")?;
    const BATCH: usize = 500;
    let mut factor_rows = Vec::with_capacity(BATCH);
    let mut user_rows = Vec::with_capacity(BATCH);
    for i in 0..count {
        let user = UserId::generate();
        let email = format!("{prefix}-{i:06}@example.com");
        let secret = TotpSecret::generate().context("no random secret")?;
        let factor = FactorId::generate();
        let (sealed, key_id) = vault.seal(&factor, &secret).context("sealing failed")?;
        user_rows.push(format!(
            "({}, {}, {tru}, {tru}, {}, '{{}}', {now}, {now})",
            lit(user.as_str()),
            lit(&email),
            lit(&phc)
        ));
        factor_rows.push(format!(
            "({}, {}, 'totp', 'bench', {}, {}, {now}, {confirmed_step}, {now}, {now})",
            lit(factor.as_str()),
            lit(user.as_str()),
            blob(&sealed),
            lit(&key_id)
        ));
        writeln!(users, "{email} {}", secret.base32())?;
        if user_rows.len() == BATCH || i + 1 == count {
            writeln!(
                sql,
                "INSERT INTO users (id, email, is_active, email_verified, password_hash, \
                 attributes, created_at, updated_at) VALUES\n{};",
                user_rows.join(",\n")
            )?;
            writeln!(
                sql,
                "INSERT INTO mfa_factors (id, user_id, kind, name, secret_enc, enc_key_id, \
                 confirmed_at, last_step, created_at, last_used_at) VALUES\n{};",
                factor_rows.join(",\n")
            )?;
            user_rows.clear();
            factor_rows.clear();
        }
    }
    writeln!(sql, "COMMIT;")?;
    sql.flush()?;
    users.flush()?;
    eprintln!(
        "mfa_fixture seed: {count} users with a TOTP factor in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn mint(
    base: &str,
    client_id: &str,
    password: &str,
    users_path: &std::path::Path,
    count: Option<usize>,
    concurrency: usize,
    steps: i64,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let file = std::io::BufReader::new(std::fs::File::open(users_path)?);
    let mut users = Vec::new();
    for line in file.lines() {
        let line = line?;
        let Some((email, secret)) = line.split_once(' ') else {
            continue;
        };
        let secret = data_encoding::BASE32_NOPAD
            .decode(secret.trim().as_bytes())
            .context("a secret in the users file is not base32")?;
        users.push((email.to_owned(), TotpSecret::from_bytes(secret)));
        if count.is_some_and(|c| users.len() >= c) {
            break;
        }
    }
    if let Some(c) = count {
        if users.len() < c {
            bail!("{c} users wanted, the users file has {}", users.len());
        }
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("{}/oauth2/token", base.trim_end_matches('/'));
    let t = Instant::now();
    let step0 = totp::step_of(now());
    let results: Vec<anyhow::Result<String>> = futures::stream::iter(users.iter())
        .map(|(email, _)| {
            let (http, url) = (&http, &url);
            async move {
                let res = http
                    .post(url.as_str())
                    .form(&[
                        ("grant_type", "password"),
                        ("username", email.as_str()),
                        ("password", password),
                        ("client_id", client_id),
                    ])
                    .send()
                    .await?;
                let status = res.status();
                let body: serde_json::Value = serde_json::from_slice(&res.bytes().await?)?;
                match (
                    status.as_u16(),
                    body["error"].as_str(),
                    body["mfa_token"].as_str(),
                ) {
                    (403, Some("mfa_required"), Some(token)) => Ok(token.to_owned()),
                    _ => bail!("{email}: {status} {body}"),
                }
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let mut w = BufWriter::new(std::fs::File::create(out)?);
    writeln!(w, "# step0 {step0} steps {steps}")?;
    let mut failed = 0usize;
    for ((_, secret), r) in users.iter().zip(results) {
        match r {
            Ok(token) => {
                write!(w, "{token}")?;
                for s in step0..step0 + steps {
                    write!(w, " {:06}", totp::code_at(secret, s))?;
                }
                writeln!(w)?;
            }
            Err(e) => {
                if failed < 3 {
                    eprintln!("mfa_fixture mint: {e:#}");
                }
                failed += 1;
            }
        }
    }
    w.flush()?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "mfa_fixture mint: {} mfa_tokens in {secs:.1} s ({:.0}/s), {failed} failed",
        users.len() - failed,
        (users.len() - failed) as f64 / secs
    );
    if failed > 0 {
        bail!("{failed} password grants did not answer mfa_required");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Seed {
            backend,
            count,
            password,
            prefix,
            sql_out,
            users_out,
            memory_kib,
            iterations,
            parallelism,
        } => {
            let settings = Argon2Settings {
                memory_kib,
                iterations,
                parallelism,
            };
            seed(
                backend, count, password, &prefix, &sql_out, &users_out, settings,
            )
            .await
        }
        Command::Mint {
            base,
            client_id,
            password,
            users,
            count,
            concurrency,
            steps,
            out,
        } => {
            mint(
                &base,
                &client_id,
                &password,
                &users,
                count,
                concurrency,
                steps,
                &out,
            )
            .await
        }
    }
}
