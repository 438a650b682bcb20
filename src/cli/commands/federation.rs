//! `latchkey federation list`: the configured upstream identity providers and the callback
//! URL to register at each.

use clap::Subcommand;
use serde::Serialize;

use super::JsonFlag;
use crate::cli::output::{emit, Human};
use crate::cli::CliError;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum FederationCmd {
    /// Each configured provider with its callback URL (paste it into Google's or GitHub's
    /// console).
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Serialize)]
pub struct ProviderLine {
    id: String,
    kind: &'static str,
    display_name: String,
    callback_url: String,
    /// The OpenID Connect issuer (not for GitHub).
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    link_existing: &'static str,
    store_tokens: bool,
}

impl Human for ProviderLine {
    fn human(&self) -> String {
        format!(
            "{}  {}  \"{}\"  callback {}  link_existing={}",
            self.id, self.kind, self.display_name, self.callback_url, self.link_existing
        )
    }
}

pub(super) fn federation(cmd: FederationCmd, settings: &Settings) -> Result<(), CliError> {
    let FederationCmd::List { out } = cmd;
    let lines: Vec<ProviderLine> = settings
        .federation
        .providers
        .iter()
        .map(|p| ProviderLine {
            id: p.id.as_str().to_owned(),
            kind: p.kind.as_str(),
            display_name: p.display_name.clone(),
            callback_url: format!("{}/federation/{}/callback", settings.issuer(), p.id),
            issuer: p.issuer().map(str::to_owned),
            link_existing: p.link_existing.as_str(),
            store_tokens: p.store_tokens,
        })
        .collect();
    emit(out.json, &lines);
    Ok(())
}
