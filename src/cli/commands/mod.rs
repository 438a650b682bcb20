//! The subcommands: one file per noun; `serve` and `migrate` here.

mod audit;
mod clients;
mod federation;
mod keys;
mod roles;
mod users;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use super::output::json;
use super::CliError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::startup::{connect_stores, Application};

pub use audit::AuditCmd;
pub use clients::ClientsCmd;
pub use federation::FederationCmd;
pub use keys::KeysCmd;
pub use roles::RolesCmd;
pub use users::UsersCmd;

#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about = "Latchkey identity provider")]
pub struct Cli {
    /// Configuration file (TOML); defaults to $LATCHKEY_CONFIG, then ./latchkey.toml if present.
    #[arg(long, global = true)]
    pub config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies migrations, creates the first signing key).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Manage roles and their permissions.
    #[command(subcommand)]
    Roles(RolesCmd),
    /// Manage OAuth clients (boxed: its many settings make it the largest command by far).
    #[command(subcommand)]
    Clients(Box<ClientsCmd>),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The upstream identity providers (federated sign-in).
    #[command(subcommand)]
    Federation(FederationCmd),
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn read_password_stdin() -> Result<SecretString, CliError> {
    let mut buf = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut buf)
        .map_err(|e| {
            CliError::usage(format!("cannot read the password from standard input: {e}"))
        })?;
    let line = buf.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        return Err(CliError::usage("no password on standard input"));
    }
    Ok(SecretString::from(line))
}

pub(super) fn parse_json(raw: Option<String>) -> Result<Option<serde_json::Value>, CliError> {
    raw.map(|s| {
        serde_json::from_str(&s)
            .map_err(|e| CliError::usage(format!("--attributes is not JSON: {e}")))
    })
    .transpose()
}

pub(super) fn done(as_json: bool, what: &str) {
    if as_json {
        json(&serde_json::json!({"ok": true}));
    } else {
        println!("{what}");
    }
}

pub async fn run(
    command: Command,
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> Result<(), CliError> {
    match command {
        Command::Serve => {
            crate::telemetry::init(&settings.log);
            let (app, _services) = Application::build(&settings, clock).await?;
            eprintln!(
                "latchkey: listening on http://{} (issuer {})",
                bind_with_port(settings.server.bind, app.port()),
                settings.issuer()
            );
            app.run_until_stopped()
                .await
                .map_err(|e| CliError::from(anyhow::Error::from(e)))
        }
        Command::Migrate => {
            connect_stores(&settings).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Users(cmd) => users::users(cmd, &settings, clock).await,
        Command::Roles(cmd) => roles::roles(cmd, &settings, clock).await,
        Command::Clients(cmd) => clients::clients(*cmd, &settings, clock).await,
        Command::Keys(cmd) => keys::keys(cmd, &settings, clock).await,
        Command::Audit(cmd) => audit::audit(cmd, &settings, clock).await,
        Command::Federation(cmd) => federation::federation(cmd, &settings),
    }
}

fn bind_with_port(mut bind: SocketAddr, port: u16) -> SocketAddr {
    bind.set_port(port);
    bind
}
