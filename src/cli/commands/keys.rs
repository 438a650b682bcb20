//! `latchkey keys ...`: the signing keys.

use std::sync::Arc;

use clap::Subcommand;

use super::JsonFlag;
use crate::cli::output::emit;
use crate::cli::CliError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::SigningAlg;
use crate::services::KeyError;
use crate::startup::build_services;

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Add a new signing key for every algorithm that has an active key (and the configured
    /// one), or with --alg for that algorithm only: published at once, active after
    /// LATCHKEY_KEY_PUBLISH_AHEAD_SECS (pending until then); the previous key of the
    /// algorithm is then retired but stays published. An algorithm without an active key
    /// gets one at once.
    Rotate {
        /// ES256, RS256 or EdDSA: rotate this algorithm only (default: every algorithm in use).
        #[arg(long)]
        alg: Option<String>,
        /// Activate at once (emergency): resource servers with a cached JWKS may meet the new
        /// kid before their cache expires. A pending key of the algorithm is withdrawn.
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Import a private key from a PEM file (PKCS#8; or SEC1 EC / PKCS#1 RSA): P-256 (ES256),
    /// RSA >= 2048 bits (RS256) or Ed25519 (EdDSA). It replaces the key of its algorithm:
    /// pending like `rotate`, or active with --now.
    Import {
        /// The PEM file.
        #[arg(long)]
        pem: std::path::PathBuf,
        /// Activate at once (see `rotate --now`).
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Retire a key: it stops signing and stays published until its tokens expired. An
    /// active key is retired only if a pending key of its algorithm exists, which becomes
    /// active at once.
    Retire {
        /// A kid may begin with '-' (base64url).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Remove a key for good (compromised, or unreadable after a lost master key).
    Remove {
        /// A kid may begin with '-' (base64url).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Allow removing an active key (a new key of its algorithm is activated first).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
}

/// Exit codes for key commands: 2 invalid input (or the active key without --force),
/// 3 no such key, 4 refused in the keys' current state.
fn key_error(e: KeyError) -> CliError {
    let code = match &e {
        KeyError::Invalid(_) | KeyError::ActiveKey(_) => 2,
        KeyError::NotFound(_) => 3,
        KeyError::Conflict(_) => 4,
        _ => return CliError::from(anyhow::Error::from(e)),
    };
    CliError {
        code,
        message: e.to_string(),
    }
}

pub(super) async fn keys(
    cmd: KeysCmd,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<(), CliError> {
    let keys = build_services(settings, clock, false).await?.keys;
    match cmd {
        KeysCmd::List { out } => emit(out.json, &keys.list().await.map_err(key_error)?),
        KeysCmd::Rotate { alg, now, out } => {
            let alg = alg
                .map(|a| SigningAlg::parse(&a).map_err(|e| CliError::usage(e.to_string())))
                .transpose()?;
            let rotation = keys.rotate_keys(alg, now).await.map_err(key_error)?;
            emit(out.json, &rotation);
        }
        KeysCmd::Import { pem, now, out } => {
            let text = std::fs::read(&pem)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", pem.display())))?;
            let text = String::from_utf8(text).map_err(|_| {
                CliError::usage(format!("{} is not a PEM text file", pem.display()))
            })?;
            let key = keys.import_pem(&text, now).await.map_err(key_error)?;
            emit(out.json, &key);
        }
        KeysCmd::Retire { kid, out } => {
            let key = keys.retire(&kid).await.map_err(key_error)?;
            emit(out.json, &key);
        }
        KeysCmd::Remove { kid, force, out } => {
            let key = keys.remove(&kid, force).await.map_err(key_error)?;
            emit(out.json, &key);
        }
    }
    Ok(())
}
