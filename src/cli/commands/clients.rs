//! `latchkey clients ...`: register and manage OAuth clients.

use std::sync::Arc;

use clap::Subcommand;

use super::{done, JsonFlag};
use crate::cli::output::{emit, json};
use crate::cli::CliError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::{ClientKind, ClientTokenSettings};
use crate::services::NewClientInput;
use crate::startup::build_services;

#[derive(Debug, Subcommand)]
pub enum ClientsCmd {
    /// Register a client; a confidential client's secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// Choose the client_id (default: a random UUID).
        #[arg(long)]
        client_id: Option<String>,
        #[arg(
            long,
            conflicts_with = "confidential",
            required_unless_present = "confidential"
        )]
        public: bool,
        #[arg(long)]
        confidential: bool,
        /// Allowed grant type (repeatable): password, refresh_token, client_credentials.
        #[arg(long = "grant", required = true)]
        grants: Vec<String>,
        /// Allowed scope (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// An audience (API) the client may request tokens for (repeatable).
        #[arg(long = "audience")]
        audiences: Vec<String>,
        #[arg(long)]
        default_audience: Option<String>,
        #[arg(long)]
        access_token_ttl: Option<i64>,
        #[arg(long)]
        refresh_idle_ttl: Option<i64>,
        #[arg(long)]
        refresh_absolute_ttl: Option<i64>,
        #[command(flatten)]
        out: JsonFlag,
    },
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    Show {
        client_id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    Enable {
        client_id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    Disable {
        client_id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Issue a new secret (printed once); the old one stops working.
    RotateSecret {
        client_id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    Delete {
        client_id: String,
    },
}

pub(super) async fn clients(
    cmd: ClientsCmd,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<(), CliError> {
    let admin = build_services(settings, clock, false).await?.admin;
    match cmd {
        ClientsCmd::Create {
            name,
            client_id,
            public,
            confidential: _,
            grants,
            scopes,
            redirect_uris,
            audiences,
            default_audience,
            access_token_ttl,
            refresh_idle_ttl,
            refresh_absolute_ttl,
            out,
        } => {
            let created = admin
                .create_client(NewClientInput {
                    client_id,
                    name,
                    kind: if public {
                        ClientKind::Public
                    } else {
                        ClientKind::Confidential
                    },
                    grant_types: grants,
                    scopes,
                    redirect_uris,
                    audiences,
                    default_audience,
                    token_settings: ClientTokenSettings {
                        access_token_ttl,
                        refresh_idle_ttl,
                        refresh_absolute_ttl,
                    },
                })
                .await?;
            if out.json {
                json(&created);
            } else {
                println!("client_id: {}", created.client.client_id);
                if let Some(secret) = &created.client_secret {
                    println!("client_secret: {secret}");
                    println!("(the secret is shown only this once)");
                }
            }
        }
        ClientsCmd::List { out } => emit(out.json, &admin.list_clients().await?),
        ClientsCmd::Show { client_id, out } => {
            emit(out.json, &admin.show_client(&client_id).await?)
        }
        ClientsCmd::Enable { client_id, out } => {
            emit(out.json, &admin.set_client_enabled(&client_id, true).await?)
        }
        ClientsCmd::Disable { client_id, out } => emit(
            out.json,
            &admin.set_client_enabled(&client_id, false).await?,
        ),
        ClientsCmd::RotateSecret { client_id, out } => {
            let rotated = admin.rotate_client_secret(&client_id).await?;
            if out.json {
                json(&rotated);
            } else if let Some(secret) = rotated.client_secret {
                println!("client_secret: {secret}");
                println!("(the secret is shown only this once; the previous one no longer works)");
            }
        }
        ClientsCmd::Delete { client_id } => {
            admin.delete_client(&client_id).await?;
            done(false, "client deleted");
        }
    }
    Ok(())
}
