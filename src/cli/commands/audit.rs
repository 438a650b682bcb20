//! `latchkey audit tail`: the security events.

use std::sync::Arc;

use clap::Subcommand;

use super::JsonFlag;
use crate::cli::CliError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::startup::build_services;

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// The newest security events, oldest first; with --follow, then every new one as it
    /// is recorded (until interrupted).
    Tail {
        /// How many events to show first.
        #[arg(long, short = 'n', default_value_t = 50)]
        limit: i64,
        /// Keep printing new events.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only the events of this user (id or email; a deleted user by id).
        #[arg(long)]
        user: Option<String>,
        /// Only events of this type (signup, login_failed, lockout, ...).
        #[arg(long)]
        event: Option<String>,
        /// Poll interval of --follow, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        #[command(flatten)]
        out: JsonFlag,
    },
}

pub(super) async fn audit(
    cmd: AuditCmd,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<(), CliError> {
    let services = build_services(settings, clock, false).await?;
    let AuditCmd::Tail {
        limit,
        follow,
        user,
        event,
        interval_ms,
        out,
    } = cmd;
    if !(1..=10_000).contains(&limit) {
        return Err(CliError::usage("--limit must be between 1 and 10000"));
    }
    let user_id = match user {
        Some(u) => Some(match crate::domain::UserId::parse(&u) {
            Ok(id) => id.to_string(),
            Err(_) => services.admin.find_user(&u).await?.id.to_string(),
        }),
        None => None,
    };
    let log = services.accounts.audit().clone();
    let mut filter = crate::domain::AuditFilter {
        after_id: None,
        user_id,
        event,
        limit,
    };
    loop {
        let events = log
            .list(&filter)
            .await
            .map_err(|e| CliError::from(anyhow::Error::from(e)))?;
        for e in &events {
            if out.json {
                match serde_json::to_string(e) {
                    Ok(line) => println!("{line}"),
                    Err(err) => eprintln!("latchkey: cannot render JSON: {err}"),
                }
            } else {
                println!("{}", crate::cli::output::Human::human(e));
            }
        }
        if !follow {
            return Ok(());
        }
        if let Some(last) = events.last() {
            filter.after_id = Some(last.id);
        } else if filter.after_id.is_none() {
            filter.after_id = Some(0);
        }
        filter.limit = 1000;
        tokio::time::sleep(std::time::Duration::from_millis(interval_ms.max(100))).await;
    }
}
