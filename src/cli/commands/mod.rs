use std::io::Read;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use super::output::{emit, json};
use super::CliError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::{ClientKind, ClientTokenSettings, RoleName, SigningAlg, UserFilter};
use crate::services::{KeyError, NewClientInput, NewUserInput, UserUpdate};
use crate::startup::{build_services, connect_stores, Application};

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
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
}

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

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
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
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
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

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Add a new signing key: published at once, active after LATCHKEY_KEY_PUBLISH_AHEAD_SECS
    /// (pending until then); the previous key is then retired but stays published.
    Rotate {
        /// ES256 (default: the configured algorithm), RS256 or EdDSA.
        #[arg(long)]
        alg: Option<String>,
        /// Activate at once (emergency): resource servers with a cached JWKS may meet the new
        /// kid before their cache expires. A pending key is withdrawn.
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Import a private key from a PEM file (PKCS#8; or SEC1 EC / PKCS#1 RSA): P-256 (ES256),
    /// RSA >= 2048 bits (RS256) or Ed25519 (EdDSA). Pending like `rotate`, or active with --now.
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
    /// Retire a key: it stops signing and stays published until its tokens expired. The
    /// active key is retired only if a pending key exists, which becomes active at once.
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
        /// Allow removing the active key.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
}

fn read_password_stdin() -> Result<SecretString, CliError> {
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

fn parse_json(raw: Option<String>) -> Result<Option<serde_json::Value>, CliError> {
    raw.map(|s| {
        serde_json::from_str(&s)
            .map_err(|e| CliError::usage(format!("--attributes is not JSON: {e}")))
    })
    .transpose()
}

fn done(as_json: bool, what: &str) {
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
                bind_with_port(&settings.server.bind, app.port()),
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
        Command::Users(cmd) => users(cmd, &settings, clock).await,
        Command::Roles(cmd) => roles(cmd, &settings, clock).await,
        Command::Clients(cmd) => clients(cmd, &settings, clock).await,
        Command::Keys(cmd) => keys(cmd, &settings, clock).await,
        Command::Audit(cmd) => audit(cmd, &settings, clock).await,
    }
}

fn bind_with_port(bind: &str, port: u16) -> String {
    match bind.rsplit_once(':') {
        Some((host, _)) => format!("{host}:{port}"),
        None => bind.to_owned(),
    }
}

async fn users(cmd: UsersCmd, settings: &Settings, clock: Arc<dyn Clock>) -> Result<(), CliError> {
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
            out,
        } => {
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
            };
            emit(out.json, &admin.list_users(&filter).await?);
        }
        UsersCmd::Show { user, out } => emit(out.json, &admin.show_user(&user).await?),
        UsersCmd::Set {
            user,
            active,
            verified,
            display_name,
            username,
            attributes,
            must_change_password,
            out,
        } => {
            let update = UserUpdate {
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
            let invite = services.accounts.invite(&email, &roles).await?;
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

async fn audit(cmd: AuditCmd, settings: &Settings, clock: Arc<dyn Clock>) -> Result<(), CliError> {
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
                println!("{}", super::output::Human::human(e));
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

async fn roles(cmd: RolesCmd, settings: &Settings, clock: Arc<dyn Clock>) -> Result<(), CliError> {
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

async fn clients(
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

async fn keys(cmd: KeysCmd, settings: &Settings, clock: Arc<dyn Clock>) -> Result<(), CliError> {
    let keys = build_services(settings, clock, false).await?.keys;
    match cmd {
        KeysCmd::List { out } => emit(out.json, &keys.list().await.map_err(key_error)?),
        KeysCmd::Rotate { alg, now, out } => {
            let alg = match alg {
                Some(a) => SigningAlg::parse(&a).map_err(|e| CliError::usage(e.to_string()))?,
                None => settings.keys.signing_alg,
            };
            let key = keys.rotate_with(alg, now).await.map_err(key_error)?;
            emit(out.json, &key);
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
