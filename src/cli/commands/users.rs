//! `latchkey users ...`: create, list, change, delete and invite users.

use std::sync::Arc;

use clap::Subcommand;

use super::{done, parse_json, read_password_stdin, JsonFlag};
use crate::cli::output::{emit, json};
use crate::cli::CliError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::{Email, RoleName, UserFilter, UserId};
use crate::services::{NewUserInput, UserUpdate};
use crate::startup::build_services;
use crate::storage::Unlink;

/// One link as `users links` prints it.
#[derive(serde::Serialize)]
struct LinkLine {
    id: String,
    provider: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    display_name: Option<String>,
    created_at: String,
    last_used_at: Option<String>,
}

impl From<&crate::domain::SocialLink> for LinkLine {
    fn from(l: &crate::domain::SocialLink) -> Self {
        Self {
            id: l.id.as_str().to_owned(),
            provider: l.provider.as_str().to_owned(),
            subject: l.subject.clone(),
            email: l.email.clone(),
            email_verified: l.email_verified,
            display_name: l.display_name.clone(),
            created_at: crate::clock::rfc3339(l.created_at),
            last_used_at: l.last_used_at.map(crate::clock::rfc3339),
        }
    }
}

/// `users mfa`: the factors and the recovery codes left.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct MfaLines(crate::services::MfaOverview);

impl crate::cli::output::Human for MfaLines {
    fn human(&self) -> String {
        let mut out: Vec<String> = self
            .0
            .factors
            .iter()
            .map(|f| {
                format!(
                    "{}  {}  {}  added {}  last used {}",
                    f.id,
                    f.kind,
                    f.name,
                    f.created_at,
                    f.last_used_at.as_deref().unwrap_or("never")
                )
            })
            .collect();
        if out.is_empty() {
            out.push("no second factor".into());
        }
        out.push(format!(
            "recovery codes left: {}",
            self.0.recovery_codes_left
        ));
        out.join("\n")
    }
}

impl crate::cli::output::Human for LinkLine {
    fn human(&self) -> String {
        format!(
            "{}  {}  {}  {}{}",
            self.id,
            self.provider,
            self.subject,
            self.email.as_deref().unwrap_or("-"),
            if self.email_verified {
                " (verified)"
            } else {
                ""
            }
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Create a user; prints the new user (with its id) as JSON.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Grant a role (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Mark the email as verified.
        #[arg(long)]
        verified: bool,
        /// Create the user inactive.
        #[arg(long)]
        inactive: bool,
        /// App-specific attributes, a JSON object.
        #[arg(long)]
        attributes: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List users, optionally filtered.
    List {
        #[arg(long)]
        active: Option<bool>,
        #[arg(long)]
        verified: Option<bool>,
        #[arg(long)]
        role: Option<String>,
        /// Case-insensitive substring of the email.
        #[arg(long)]
        email_contains: Option<String>,
        /// Users per page (1 to 10000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Skip this many users (the cost grows with it: prefer --after for deep pages).
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// Keyset paging: the users after this one (the id of the last user of the previous
        /// page), in creation order; not with --offset.
        #[arg(long, conflicts_with = "offset")]
        after: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one user (by id or email).
    Show {
        user: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Change a user's flags or profile.
    Set {
        user: String,
        #[arg(long)]
        active: Option<bool>,
        #[arg(long)]
        verified: Option<bool>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        username: Option<String>,
        /// Replace the attributes with this JSON object.
        #[arg(long)]
        attributes: Option<String>,
        /// The user may sign in only to change the password (`--must-change-password false`
        /// lifts it).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        must_change_password: Option<bool>,
        /// Give the user this address (such as a user who signed up through GitHub without a
        /// verified one). Not verified unless --verified true is given too.
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Set the password (from standard input), or remove it with --clear.
    SetPassword {
        user: String,
        #[arg(long, conflicts_with = "clear")]
        password_stdin: bool,
        #[arg(long)]
        clear: bool,
    },
    /// Grant roles.
    Grant {
        user: String,
        #[arg(required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Revoke roles.
    Revoke {
        user: String,
        #[arg(required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Delete a user and everything it holds.
    Delete { user: String },
    /// Log a user out everywhere: revoke every refresh token and every access token issued
    /// to the user until now (the account stays usable).
    RevokeTokens {
        user: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// The user's links to upstream identity providers (federated sign-in).
    Links {
        user: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// The user's second factors (authenticator apps, passkeys; never a secret) and how many
    /// recovery codes are left.
    Mfa {
        user: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Remove every second factor and recovery code of the user (a lost phone): audited,
    /// and the user is mailed.
    ResetMfa {
        user: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Remove one of the user's links: LINK is the link's id, or the provider's id when the
    /// user has one link there. Refused when it is the user's last way to sign in.
    Unlink {
        user: String,
        link: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Invite someone to sign up (needed when `accounts.signup = "invite"`): mails them a
    /// link and prints it.
    Invite {
        #[arg(long)]
        email: String,
        /// Grant a role at sign-up (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
}

pub(super) async fn users(
    cmd: UsersCmd,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<(), CliError> {
    let services = build_services(settings, clock, false).await?;
    let admin = services.admin.clone();
    match cmd {
        UsersCmd::Create {
            email,
            password_stdin,
            username,
            display_name,
            roles,
            verified,
            inactive,
            attributes,
            out,
        } => {
            let password = if password_stdin {
                Some(read_password_stdin()?)
            } else {
                None
            };
            let user = admin
                .create_user(NewUserInput {
                    email,
                    password,
                    username,
                    display_name,
                    roles,
                    active: !inactive,
                    email_verified: verified,
                    attributes: parse_json(attributes)?,
                })
                .await?;
            // The new record (with its id) is printed as JSON with or without --json, so
            // scripts can always read the id.
            let _ = out.json;
            json(&user);
        }
        UsersCmd::List {
            active,
            verified,
            role,
            email_contains,
            limit,
            offset,
            after,
            out,
        } => {
            let after = after
                .as_deref()
                .map(UserId::parse)
                .transpose()
                .map_err(|_| CliError::usage("--after takes a user id (a UUID)"))?;
            let filter = UserFilter {
                active,
                verified,
                role: role
                    .as_deref()
                    .map(RoleName::parse)
                    .transpose()
                    .map_err(|e| CliError::usage(e.to_string()))?,
                email_contains,
                limit: limit.clamp(1, 10_000),
                offset: offset.max(0),
                after: None,
            };
            emit(out.json, &admin.list_users(&filter, after.as_ref()).await?);
        }
        UsersCmd::Show { user, out } => emit(out.json, &admin.show_user(&user).await?),
        UsersCmd::Links { user, out } => {
            let user = admin.find_user(&user).await?;
            let links = services
                .federation
                .links_of(&user.id)
                .await
                .map_err(|e| CliError::from(anyhow::anyhow!(e)))?;
            emit(
                out.json,
                &links.iter().map(LinkLine::from).collect::<Vec<_>>(),
            );
        }
        UsersCmd::Mfa { user, out } => {
            let user = admin.find_user(&user).await?;
            let overview = services
                .mfa
                .overview(&user.id)
                .await
                .map_err(|e| CliError::from(anyhow::anyhow!(e)))?;
            emit(out.json, &MfaLines(overview));
        }
        UsersCmd::ResetMfa { user, out } => {
            let user = admin.find_user(&user).await?;
            let removed = services
                .mfa
                .reset(&user)
                .await
                .map_err(|e| CliError::from(anyhow::anyhow!(e)))?;
            if out.json {
                crate::cli::output::json(
                    &serde_json::json!({"ok": true, "factors_removed": removed}),
                );
            } else {
                println!("removed {removed} second factor(s) and every recovery code");
            }
        }
        UsersCmd::Unlink { user, link, out } => {
            let user = admin.find_user(&user).await?;
            let links = services
                .federation
                .links_of(&user.id)
                .await
                .map_err(|e| CliError::from(anyhow::anyhow!(e)))?;
            let by_provider: Vec<_> = links
                .iter()
                .filter(|l| l.provider.as_str() == link)
                .collect();
            let chosen = match links.iter().find(|l| l.id.as_str() == link) {
                Some(l) => l,
                None if by_provider.len() == 1 => by_provider[0],
                None if by_provider.len() > 1 => {
                    return Err(CliError::usage(format!(
                        "the user has {} links to {link}: name one by its id",
                        by_provider.len()
                    )))
                }
                None => return Err(CliError::not_found(format!("no link {link} for this user"))),
            };
            let origin = crate::domain::RequestOrigin::new(
                std::net::Ipv4Addr::LOCALHOST.into(),
                Some("latchkey-cli"),
            );
            match services
                .federation
                .unlink(&user.id, &chosen.id, &origin)
                .await
                .map_err(|e| CliError::from(anyhow::anyhow!(e)))?
            {
                Unlink::Removed => done(out.json, "unlinked"),
                Unlink::NotFound => {
                    return Err(CliError::not_found(format!("no link {link} for this user")))
                }
                Unlink::LastWayToSignIn => return Err(CliError::conflict(
                    "refused: it is the user's last way to sign in (no password, no other link)",
                )),
            }
        }
        UsersCmd::Set {
            user,
            active,
            verified,
            display_name,
            username,
            attributes,
            must_change_password,
            email,
            out,
        } => {
            let update = UserUpdate {
                email,
                must_change_password,
                active,
                email_verified: verified,
                display_name: display_name.map(|d| Some(d).filter(|s| !s.is_empty())),
                username: username.map(|u| Some(u).filter(|s| !s.is_empty())),
                attributes: parse_json(attributes)?,
            };
            emit(out.json, &admin.update_user(&user, update).await?);
        }
        UsersCmd::SetPassword {
            user,
            password_stdin,
            clear,
        } => {
            if !password_stdin && !clear {
                return Err(CliError::usage("give --password-stdin or --clear"));
            }
            let password = if clear {
                None
            } else {
                Some(read_password_stdin()?)
            };
            admin.set_password(&user, password).await?;
            done(false, "password updated");
        }
        UsersCmd::Grant { user, roles, out } => {
            emit(out.json, &admin.grant_roles(&user, &roles).await?)
        }
        UsersCmd::Revoke { user, roles, out } => {
            emit(out.json, &admin.revoke_roles(&user, &roles).await?)
        }
        UsersCmd::Delete { user } => {
            admin.delete_user(&user).await?;
            done(false, "user deleted");
        }
        UsersCmd::RevokeTokens { user, out } => {
            admin.revoke_user_tokens(&user).await?;
            done(out.json, "every token of the user revoked");
        }
        UsersCmd::Invite { email, roles, out } => {
            let invite = services
                .accounts
                .invite(Email::parse(&email), &roles)
                .await?;
            if !services.mailer.drain(MAIL_DRAIN).await {
                eprintln!(
                    "latchkey: the invitation mail was not delivered within {} s; give the link by other means",
                    MAIL_DRAIN.as_secs()
                );
            }
            emit(out.json, &invite);
        }
    }
    Ok(())
}

/// How long a command waits for the mail it queued.
const MAIL_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);
