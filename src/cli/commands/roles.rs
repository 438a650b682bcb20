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
        /// Holders of the role must sign in with a second factor (issue 15).
        #[arg(long)]
        require_mfa: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Change a role's settings: `--require-mfa` / `--no-require-mfa`.
    Update {
        name: String,
        /// Holders of the role must sign in with a second factor; `--require-mfa=false` or
        /// `--no-require-mfa` turns it off.
        #[arg(
            long,
            num_args = 0..=1,
            default_missing_value = "true",
            value_name = "BOOL",
            conflicts_with = "no_require_mfa"
        )]
        require_mfa: Option<bool>,
        #[arg(long)]
        no_require_mfa: bool,
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
            require_mfa,
            out,
        } => emit(
            out.json,
            &admin
                .create_role(&name, &permissions, description, require_mfa)
                .await?,
        ),
        RolesCmd::Update {
            name,
            require_mfa,
            no_require_mfa,
            out,
        } => {
            let require = if no_require_mfa {
                Some(false)
            } else {
                require_mfa
            };
            let Some(require) = require else {
                return Err(CliError::usage(
                    "nothing to change: give --require-mfa or --no-require-mfa",
                ));
            };
            emit(out.json, &admin.set_role_require_mfa(&name, require).await?)
        }
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
