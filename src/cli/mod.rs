//! The `latchkey` command line: `serve`, `migrate`, and the operator commands.
//!
//! Exit codes: 0 success, 1 unexpected error, 2 invalid arguments or input, 3 not found,
//! 4 conflict (already exists), 78 invalid configuration.

mod commands;
mod output;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::services::{AccountError, AdminError};

pub use commands::Cli;

/// Failure of a command, carrying its exit code.
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl From<AdminError> for CliError {
    fn from(e: AdminError) -> Self {
        let code = match &e {
            AdminError::Validation(_) | AdminError::PasswordPolicy(_) => 2,
            AdminError::NotFound(_) => 3,
            AdminError::Conflict(_) => 4,
            AdminError::Unexpected(_) => 1,
        };
        let message = match &e {
            AdminError::Unexpected(cause) => format!("{e}: {cause:#}"),
            _ => e.to_string(),
        };
        Self { code, message }
    }
}

impl From<AccountError> for CliError {
    fn from(e: AccountError) -> Self {
        let code = match &e {
            AccountError::Validation(_) | AccountError::InvalidRequest(_) => 2,
            AccountError::Conflict(_) => 4,
            _ => 1,
        };
        let message = match &e {
            AccountError::Unexpected(cause) => format!("{e}: {cause:#}"),
            _ => e.to_string(),
        };
        Self { code, message }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        Self {
            code: 1,
            message: format!("{e:#}"),
        }
    }
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Exit code 3, as for an unknown user.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: 3,
            message: message.into(),
        }
    }

    /// Exit code 4, as for a conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            code: 4,
            message: message.into(),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.config {
        std::env::set_var("LATCHKEY_CONFIG", path);
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("latchkey: {e}");
            return ExitCode::from(78);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("latchkey: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli.command, settings, Arc::new(SystemClock))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
