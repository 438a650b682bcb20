//! `latchkey roles ...`: roles and their permissions.

use std::sync::Arc;

use clap::Subcommand;

use super::{done, JsonFlag};
use crate::cli::output::emit;
use crate::cli::CliError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::startup::build_services;

#[derive(Debug, Subcommand)]
pub enum RolesCmd {
    Create {
        name: String,
        #[arg(long = "permission")]
        permissions: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    Show {
        name: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Add permissions to a role.
    AddPermission {
        name: String,
        #[arg(required = true)]
        permissions: Vec<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Remove permissions from a role.
    RemovePermission {
        name: String,
        #[arg(required = true)]
        permissions: Vec<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    Delete {
        name: String,
    },
}

pub(super) async fn roles(
    cmd: RolesCmd,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<(), CliError> {
    let admin = build_services(settings, clock, false).await?.admin;
    match cmd {
        RolesCmd::Create {
            name,
            permissions,
            description,
            out,
        } => emit(
            out.json,
            &admin.create_role(&name, &permissions, description).await?,
        ),
        RolesCmd::List { out } => emit(out.json, &admin.list_roles().await?),
        RolesCmd::Show { name, out } => emit(out.json, &admin.show_role(&name).await?),
        RolesCmd::AddPermission {
            name,
            permissions,
            out,
        } => emit(
            out.json,
            &admin.change_permissions(&name, &permissions, &[]).await?,
        ),
        RolesCmd::RemovePermission {
            name,
            permissions,
            out,
        } => emit(
            out.json,
            &admin.change_permissions(&name, &[], &permissions).await?,
        ),
        RolesCmd::Delete { name } => {
            admin.delete_role(&name).await?;
            done(false, "role deleted");
        }
    }
    Ok(())
}
