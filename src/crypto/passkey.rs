//! WebAuthn passkeys (issue 15), the one place `webauthn-rs` is named (architecture rule 16):
//! the relying party (its id and origin), the registration and authentication ceremonies, and
//! the stored credential. Everything leaves this file as plain values: the options for the
//! browser as JSON, the ceremony state as bytes (sealed by the caller), the credential as the
//! JSON `webauthn-rs` stores it in, its id in base64url.
//!
//! User verification is required in every ceremony (a passkey alone signs a user in, so it
//! must be two factors by itself: the device and its PIN or biometric). The sign counter must
//! grow when the authenticator keeps one, and the backup flags may not go back (both checked
//! by `webauthn-rs`); the stored credential is updated after each use.

use data_encoding::BASE64URL_NOPAD;
use serde_json::Value;
use url::Url;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

/// The most bytes a browser's answer may have (attestation objects of real authenticators are
/// a few kilobytes; anything beyond this is not one).
pub const MAX_RESPONSE_LEN: usize = 64 * 1024;

/// Why a ceremony failed. The messages are for logs; users see one answer for all.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The relying party's settings cannot work (an IP address as the id, an origin that is
    /// not on the id's domain).
    #[error("the passkey relying party is misconfigured: {0}")]
    Config(String),
    /// The browser's answer is not a WebAuthn credential or assertion.
    #[error("the browser's answer is malformed")]
    Malformed,
    /// The answer does not verify (signature, challenge, origin, user verification, counter).
    #[error("the passkey did not verify: {0}")]
    Rejected(String),
    #[error("the ceremony state is damaged")]
    State,
}

/// A credential as stored after registration or its last use.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    /// The credential id, base64url without padding (unique across users).
    pub credential_id: String,
    /// The credential as `webauthn-rs` serialises it (public key, counter, flags).
    pub credential: String,
    /// Whether the credential may be synced to other devices (backup eligible): a
    /// software-secured key (`swk`) rather than a hardware-bound one (`hwk`).
    pub synced: bool,
}

/// A browser's answer to an authentication ceremony, parsed.
pub struct Assertion(PublicKeyCredential);

impl Assertion {
    pub fn parse(json: &str) -> Result<Self, PasskeyError> {
        if json.len() > MAX_RESPONSE_LEN {
            return Err(PasskeyError::Malformed);
        }
        serde_json::from_str(json)
            .map(Assertion)
            .map_err(|_| PasskeyError::Malformed)
    }

    /// The credential id it names, base64url.
    pub fn credential_id(&self) -> String {
        BASE64URL_NOPAD.encode(self.0.get_credential_id())
    }

    /// The user handle a discoverable credential returned (our user id), if any.
    pub fn user_handle(&self) -> Option<Uuid> {
        self.0
            .get_user_unique_id()
            .and_then(|b| Uuid::from_slice(b).ok())
    }
}

/// The relying party: Latchkey as WebAuthn sees it.
pub struct PasskeyRp {
    webauthn: Webauthn,
    rp_id: String,
}

impl std::fmt::Debug for PasskeyRp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyRp")
            .field("rp_id", &self.rp_id)
            .finish()
    }
}

impl PasskeyRp {
    /// The relying party `rp_id` (a domain: the issuer's host, or a parent domain of it)
    /// for pages served at `origin`, named `rp_name` in the browser's prompts.
    pub fn new(rp_id: &str, origin: &Url, rp_name: &str) -> Result<Self, PasskeyError> {
        if rp_id.parse::<std::net::IpAddr>().is_ok()
            || rp_id
                .trim_start_matches('[')
                .parse::<std::net::Ipv6Addr>()
                .is_ok()
            || rp_id.starts_with('[')
        {
            return Err(PasskeyError::Config(format!(
                "{rp_id} is an IP address; browsers accept only a domain name as a passkey relying party id"
            )));
        }
        let webauthn = WebauthnBuilder::new(rp_id, origin)
            .map_err(|e| PasskeyError::Config(e.to_string()))?
            .rp_name(rp_name)
            .build()
            .map_err(|e| PasskeyError::Config(e.to_string()))?;
        Ok(Self {
            webauthn,
            rp_id: rp_id.to_owned(),
        })
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Starts registering a passkey for `user` (its id is the user handle the credential
    /// keeps): the options for `navigator.credentials.create` and the state to keep. A
    /// discoverable credential is asked for (so that it signs in without a name), with user
    /// verification; `exclude` are the user's credential ids already registered.
    pub fn start_registration(
        &self,
        user: Uuid,
        name: &str,
        display_name: &str,
        exclude: &[String],
    ) -> Result<(Value, Vec<u8>), PasskeyError> {
        let exclude: Vec<Vec<u8>> = exclude
            .iter()
            .filter_map(|id| BASE64URL_NOPAD.decode(id.as_bytes()).ok())
            .collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(
                user,
                name,
                display_name,
                (!exclude.is_empty()).then_some(exclude),
            )
            .map_err(|e| PasskeyError::Config(e.to_string()))?;
        let mut options = serde_json::to_value(options).map_err(|_| PasskeyError::State)?;
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            // A passkey that signs in without a name must live on the authenticator.
            selection.insert("residentKey".into(), Value::from("required"));
            selection.insert("requireResidentKey".into(), Value::from(true));
        }
        Ok((options, state_bytes(&state)?))
    }

    /// Checks the browser's answer to a registration against its state: the new credential.
    pub fn finish_registration(
        &self,
        response: &str,
        state: &[u8],
    ) -> Result<StoredPasskey, PasskeyError> {
        if response.len() > MAX_RESPONSE_LEN {
            return Err(PasskeyError::Malformed);
        }
        let response: RegisterPublicKeyCredential =
            serde_json::from_str(response).map_err(|_| PasskeyError::Malformed)?;
        let state: PasskeyRegistration =
            serde_json::from_slice(state).map_err(|_| PasskeyError::State)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        stored(&passkey)
    }

    /// Starts a sign-in with any of the relying party's discoverable credentials (the user is
    /// not known yet: the browser offers the passkeys it has for this site, also as autofill).
    pub fn start_discoverable(&self) -> Result<(Value, Vec<u8>), PasskeyError> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| PasskeyError::Config(e.to_string()))?;
        let mut options = serde_json::to_value(options).map_err(|_| PasskeyError::State)?;
        // The page chooses the mediation: autofill (conditional) or the button (modal).
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        Ok((options, state_bytes(&state)?))
    }

    /// Checks an answer to a discoverable sign-in against its state and the credential it
    /// names (found by the caller from the assertion's user handle and credential id).
    pub fn finish_discoverable(
        &self,
        assertion: &Assertion,
        state: &[u8],
        credential: &StoredPasskey,
    ) -> Result<StoredPasskey, PasskeyError> {
        let state: DiscoverableAuthentication =
            serde_json::from_slice(state).map_err(|_| PasskeyError::State)?;
        let mut passkey: Passkey =
            serde_json::from_str(&credential.credential).map_err(|_| PasskeyError::State)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&assertion.0, state, &passkey)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        if !result.user_verified() {
            return Err(PasskeyError::Rejected("no user verification".into()));
        }
        passkey.update_credential(&result);
        stored(&passkey)
    }

    /// Starts proving one of `credentials` (a known user's passkeys, as a second factor).
    pub fn start_authentication(
        &self,
        credentials: &[StoredPasskey],
    ) -> Result<(Value, Vec<u8>), PasskeyError> {
        let passkeys: Vec<Passkey> = credentials
            .iter()
            .filter_map(|c| serde_json::from_str(&c.credential).ok())
            .collect();
        if passkeys.is_empty() {
            return Err(PasskeyError::State);
        }
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| PasskeyError::Config(e.to_string()))?;
        let options = serde_json::to_value(options).map_err(|_| PasskeyError::State)?;
        Ok((options, state_bytes(&state)?))
    }

    /// Checks an answer to [`start_authentication`](Self::start_authentication): the
    /// credential it used, updated (counter, backup state).
    pub fn finish_authentication(
        &self,
        assertion: &Assertion,
        state: &[u8],
        credential: &StoredPasskey,
    ) -> Result<StoredPasskey, PasskeyError> {
        let state: PasskeyAuthentication =
            serde_json::from_slice(state).map_err(|_| PasskeyError::State)?;
        let mut passkey: Passkey =
            serde_json::from_str(&credential.credential).map_err(|_| PasskeyError::State)?;
        let result = self
            .webauthn
            .finish_passkey_authentication(&assertion.0, &state)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        if !result.user_verified() {
            return Err(PasskeyError::Rejected("no user verification".into()));
        }
        if passkey.update_credential(&result).is_none() {
            return Err(PasskeyError::Rejected(
                "the assertion is for another credential".into(),
            ));
        }
        stored(&passkey)
    }
}

fn state_bytes(state: &impl serde::Serialize) -> Result<Vec<u8>, PasskeyError> {
    serde_json::to_vec(state).map_err(|_| PasskeyError::State)
}

fn stored(passkey: &Passkey) -> Result<StoredPasskey, PasskeyError> {
    let value = serde_json::to_value(passkey).map_err(|_| PasskeyError::State)?;
    let synced = value
        .pointer("/cred/backup_eligible")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(StoredPasskey {
        credential_id: BASE64URL_NOPAD.encode(passkey.cred_id()),
        credential: value.to_string(),
        synced,
    })
}

/// The user handle of a user id (a UUID in text form).
pub fn user_handle(user_id: &str) -> Option<Uuid> {
    Uuid::parse_str(user_id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp() -> PasskeyRp {
        let origin = Url::parse("https://id.example.com").unwrap_or_else(|_| unreachable!());
        match PasskeyRp::new("example.com", &origin, "Latchkey") {
            Ok(rp) => rp,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn an_ip_address_is_not_a_relying_party_id() {
        let origin = Url::parse("http://127.0.0.1:8080").unwrap_or_else(|_| unreachable!());
        assert!(matches!(
            PasskeyRp::new("127.0.0.1", &origin, "Latchkey"),
            Err(PasskeyError::Config(_))
        ));
    }

    #[test]
    fn the_relying_party_id_must_cover_the_origin() {
        let origin = Url::parse("https://id.example.com").unwrap_or_else(|_| unreachable!());
        assert!(PasskeyRp::new("other.example", &origin, "Latchkey").is_err());
        assert_eq!(rp().rp_id(), "example.com");
    }

    #[test]
    fn registration_asks_for_a_discoverable_credential_with_user_verification() {
        let user = Uuid::new_v4();
        let (options, state) = match rp().start_registration(user, "ann", "Ann", &[]) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let sel = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(sel["residentKey"], "required");
        assert_eq!(sel["requireResidentKey"], true);
        assert_eq!(sel["userVerification"], "required");
        assert_eq!(options["publicKey"]["rp"]["id"], "example.com");
        assert_eq!(
            options["publicKey"]["user"]["id"],
            BASE64URL_NOPAD.encode(user.as_bytes())
        );
        assert!(!state.is_empty());
    }

    #[test]
    fn discoverable_options_leave_the_mediation_to_the_page() {
        let (options, _) = match rp().start_discoverable() {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        assert!(options.get("mediation").is_none());
        assert_eq!(options["publicKey"]["userVerification"], "required");
        assert!(options["publicKey"]["challenge"].is_string());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let rp = rp();
        for bad in ["", "{}", "null", "[1,2]", "{\"id\":1}"] {
            assert!(Assertion::parse(bad).is_err(), "{bad}");
            assert!(rp.finish_registration(bad, b"{}").is_err(), "{bad}");
        }
        let huge = "x".repeat(MAX_RESPONSE_LEN + 1);
        assert!(matches!(
            Assertion::parse(&huge),
            Err(PasskeyError::Malformed)
        ));
    }
}
