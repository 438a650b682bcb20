//! `latchkey clients ...`: register and manage OAuth clients.

use std::sync::Arc;

use clap::Subcommand;

use super::{done, JsonFlag};
use crate::cli::output::{emit, json};
use crate::cli::CliError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::{ClientKind, ClientTokenSettings};
use crate::services::{ClientOidcInput, ClientUpdate, NewClientInput};
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
        /// Allowed grant type (repeatable): password, refresh_token, client_credentials,
        /// authorization_code, magic_link.
        #[arg(long = "grant", required = true)]
        grants: Vec<String>,
        /// Allowed scope (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Where the authorization endpoint may send the user back (repeatable): https, http
        /// on loopback, or (public clients: native apps) a private-use scheme.
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
        /// Refresh grace window in seconds (0..300; default: tokens.refresh_grace_secs, 0 =
        /// strict rotation): presenting a used refresh token again within N seconds of its
        /// first use, by this client, answers the same successor instead of revoking the
        /// session (lost responses on mobile networks, several tabs refreshing at once).
        #[arg(long, value_name = "N")]
        refresh_grace_secs: Option<i64>,
        /// How many such retries one window admits (1..100; default: tokens.refresh_grace_uses,
        /// 1).
        #[arg(long, value_name = "K")]
        refresh_grace_uses: Option<i64>,
        /// Where RP-initiated logout may send the user back (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A browser origin (scheme://host[:port]) allowed to call the token endpoints for
        /// this client (repeatable).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
        /// The operator's own app: no consent page (`--first-party=false`: the default).
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        first_party: Option<bool>,
        /// Users signing in for this client must use a second factor (issue 15).
        #[arg(long)]
        require_mfa: bool,
        /// Where a signed logout token is posted when a session ends (https; http on loopback).
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// The ID token's signing algorithm: RS256 (default), ES256 or EdDSA.
        #[arg(long, value_name = "ALG")]
        id_token_alg: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Change a client's settings: only the options given change; a repeatable option given
    /// replaces the whole list. Tokens already issued are not revoked.
    Update {
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        /// Allowed grant type (repeatable; replaces the list).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Allowed scope (repeatable; replaces the list).
        #[arg(long = "scope", conflicts_with = "no_scopes")]
        scopes: Vec<String>,
        /// Remove every scope.
        #[arg(long)]
        no_scopes: bool,
        /// Redirect URI (repeatable; replaces the list).
        #[arg(long = "redirect-uri", conflicts_with = "no_redirect_uris")]
        redirect_uris: Vec<String>,
        /// Remove every redirect URI.
        #[arg(long)]
        no_redirect_uris: bool,
        /// Audience (repeatable; replaces the list).
        #[arg(long = "audience", conflicts_with = "no_audiences")]
        audiences: Vec<String>,
        /// Remove every audience.
        #[arg(long)]
        no_audiences: bool,
        #[arg(long, conflicts_with = "no_default_audience")]
        default_audience: Option<String>,
        /// Remove the default audience.
        #[arg(long)]
        no_default_audience: bool,
        #[arg(long, conflicts_with = "no_access_token_ttl")]
        access_token_ttl: Option<i64>,
        /// Back to the server's access-token lifetime.
        #[arg(long)]
        no_access_token_ttl: bool,
        #[arg(long, conflicts_with = "no_refresh_idle_ttl")]
        refresh_idle_ttl: Option<i64>,
        /// Back to the server's refresh-token idle lifetime.
        #[arg(long)]
        no_refresh_idle_ttl: bool,
        #[arg(long, conflicts_with = "no_refresh_absolute_ttl")]
        refresh_absolute_ttl: Option<i64>,
        /// Back to the server's refresh-token absolute lifetime.
        #[arg(long)]
        no_refresh_absolute_ttl: bool,
        /// Refresh grace window in seconds (0..300; 0 = strict rotation, see `create --help`).
        #[arg(long, value_name = "N", conflicts_with = "no_refresh_grace_secs")]
        refresh_grace_secs: Option<i64>,
        /// Back to the server's refresh grace window (tokens.refresh_grace_secs).
        #[arg(long)]
        no_refresh_grace_secs: bool,
        /// Retries one grace window admits (1..100).
        #[arg(long, value_name = "K", conflicts_with = "no_refresh_grace_uses")]
        refresh_grace_uses: Option<i64>,
        /// Back to the server's retries per grace window (tokens.refresh_grace_uses).
        #[arg(long)]
        no_refresh_grace_uses: bool,
        /// Post-logout redirect URI (repeatable; replaces the list).
        #[arg(
            long = "post-logout-redirect-uri",
            conflicts_with = "no_post_logout_redirect_uris"
        )]
        post_logout_redirect_uris: Vec<String>,
        /// Remove every post-logout redirect URI.
        #[arg(long)]
        no_post_logout_redirect_uris: bool,
        /// Allowed browser origin (repeatable; replaces the list).
        #[arg(long = "allowed-origin", conflicts_with = "no_allowed_origins")]
        allowed_origins: Vec<String>,
        /// Remove every allowed origin.
        #[arg(long)]
        no_allowed_origins: bool,
        /// First party (no consent page); `--first-party=false` or `--no-first-party` turns it
        /// off.
        #[arg(
            long,
            num_args = 0..=1,
            default_missing_value = "true",
            value_name = "BOOL",
            conflicts_with = "no_first_party"
        )]
        first_party: Option<bool>,
        /// Not first party: users are asked for consent.
        #[arg(long)]
        no_first_party: bool,
        /// Users signing in for this client must use a second factor; `--require-mfa=false` or
        /// `--no-require-mfa` turns it off.
        #[arg(
            long,
            num_args = 0..=1,
            default_missing_value = "true",
            value_name = "BOOL",
            conflicts_with = "no_require_mfa"
        )]
        require_mfa: Option<bool>,
        /// A second factor is not required by this client.
        #[arg(long)]
        no_require_mfa: bool,
        #[arg(long, conflicts_with = "no_backchannel_logout_uri")]
        backchannel_logout_uri: Option<String>,
        /// Remove the back-channel logout URI.
        #[arg(long)]
        no_backchannel_logout_uri: bool,
        /// The ID token's signing algorithm: RS256, ES256 or EdDSA.
        #[arg(long, value_name = "ALG")]
        id_token_alg: Option<String>,
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
            refresh_grace_secs,
            refresh_grace_uses,
            post_logout_redirect_uris,
            allowed_origins,
            first_party,
            require_mfa,
            backchannel_logout_uri,
            id_token_alg,
            out,
        } => {
            let oidc = ClientOidcInput {
                post_logout_redirect_uris,
                allowed_origins,
                first_party: first_party.unwrap_or(false),
                require_mfa,
                backchannel_logout_uri,
                id_token_alg,
            };
            let created = admin
                .create_client_with(
                    NewClientInput {
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
                            refresh_grace_secs,
                            refresh_grace_uses,
                        },
                    },
                    oidc,
                )
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
        ClientsCmd::Update {
            client_id,
            name,
            grants,
            scopes,
            no_scopes,
            redirect_uris,
            no_redirect_uris,
            audiences,
            no_audiences,
            default_audience,
            no_default_audience,
            access_token_ttl,
            no_access_token_ttl,
            refresh_idle_ttl,
            no_refresh_idle_ttl,
            refresh_absolute_ttl,
            no_refresh_absolute_ttl,
            refresh_grace_secs,
            no_refresh_grace_secs,
            refresh_grace_uses,
            no_refresh_grace_uses,
            post_logout_redirect_uris,
            no_post_logout_redirect_uris,
            allowed_origins,
            no_allowed_origins,
            first_party,
            no_first_party,
            require_mfa,
            no_require_mfa,
            backchannel_logout_uri,
            no_backchannel_logout_uri,
            id_token_alg,
            out,
        } => {
            let update = ClientUpdate {
                name,
                grant_types: list(grants, false),
                scopes: list(scopes, no_scopes),
                redirect_uris: list(redirect_uris, no_redirect_uris),
                audiences: list(audiences, no_audiences),
                default_audience: optional(default_audience, no_default_audience),
                access_token_ttl: optional(access_token_ttl, no_access_token_ttl),
                refresh_idle_ttl: optional(refresh_idle_ttl, no_refresh_idle_ttl),
                refresh_absolute_ttl: optional(refresh_absolute_ttl, no_refresh_absolute_ttl),
                refresh_grace_secs: optional(refresh_grace_secs, no_refresh_grace_secs),
                refresh_grace_uses: optional(refresh_grace_uses, no_refresh_grace_uses),
                post_logout_redirect_uris: list(
                    post_logout_redirect_uris,
                    no_post_logout_redirect_uris,
                ),
                allowed_origins: list(allowed_origins, no_allowed_origins),
                first_party: if no_first_party {
                    Some(false)
                } else {
                    first_party
                },
                require_mfa: if no_require_mfa {
                    Some(false)
                } else {
                    require_mfa
                },
                backchannel_logout_uri: optional(backchannel_logout_uri, no_backchannel_logout_uri),
                id_token_alg,
            };
            if update.fields().is_empty() {
                return Err(CliError::usage(
                    "nothing to change: give at least one setting (see --help)",
                ));
            }
            emit(out.json, &admin.update_client(&client_id, update).await?)
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

/// A repeatable option of `update`: the new list if given (or emptied by its `--no-` flag),
/// `None` to leave it alone.
fn list(values: Vec<String>, clear: bool) -> Option<Vec<String>> {
    (clear || !values.is_empty()).then_some(values)
}

/// An optional setting of `update`: `Some(Some(v))` sets it, `Some(None)` (its `--no-` flag)
/// clears it, `None` leaves it alone.
fn optional<T>(value: Option<T>, clear: bool) -> Option<Option<T>> {
    if clear {
        Some(None)
    } else {
        value.map(Some)
    }
}
