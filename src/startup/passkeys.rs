//! The WebAuthn relying party from the settings (issue 15): its id is `mfa.rp_id`, else the
//! issuer's host; its origin is the issuer's. An issuer on an IP address (the development
//! default, `http://127.0.0.1:8080`) cannot be a relying party, since browsers accept only
//! domain names: passkeys are then off, said once at start-up, unless `mfa.rp_id` was set
//! (then the mistake stops start-up).

use std::sync::Arc;

use anyhow::Context;

use crate::config::Settings;
use crate::crypto::passkey::PasskeyRp;

pub fn relying_party(settings: &Settings) -> anyhow::Result<Option<Arc<PasskeyRp>>> {
    if !settings.mfa.passkeys {
        return Ok(None);
    }
    let origin = url::Url::parse(settings.issuer()).context("the issuer is not a URL")?;
    let name = settings
        .mfa
        .rp_name
        .clone()
        .or_else(|| settings.branding.product_name.clone())
        .unwrap_or_else(|| "Latchkey".to_owned());
    match &settings.mfa.rp_id {
        Some(id) => PasskeyRp::new(id, &origin, &name)
            .map(|rp| Some(Arc::new(rp)))
            .with_context(|| format!("mfa.rp_id = {id:?} cannot serve the issuer {origin}")),
        None => {
            let host = origin.host_str().unwrap_or_default();
            match PasskeyRp::new(host, &origin, &name) {
                Ok(rp) => Ok(Some(Arc::new(rp))),
                Err(e) => {
                    tracing::info!(
                        reason = %e,
                        "passkeys are off: set the issuer to a domain name, or mfa.rp_id"
                    );
                    Ok(None)
                }
            }
        }
    }
}
