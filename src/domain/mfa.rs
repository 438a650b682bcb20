//! Second factors: a user's enrolled TOTP authenticators and passkeys (`MfaFactor`), each
//! pending until its enrolment is confirmed.

use super::{UserId, ValidationError};
use crate::clock::UnixTime;

crate::string_newtype! {
    /// A factor's id (UUID, text form).
    pub struct FactorId;
}

impl FactorId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        uuid::Uuid::parse_str(raw)
            .map(|u| Self(u.to_string()))
            .map_err(|_| ValidationError::new("factor_id", "must be a UUID"))
    }

    /// For values read back from our own storage.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

/// What kind of second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    /// A time-based one-time password (RFC 6238) from an authenticator app.
    Totp,
    /// A WebAuthn credential.
    Passkey,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::Passkey => "passkey",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "totp" => Some(FactorKind::Totp),
            "passkey" => Some(FactorKind::Passkey),
            _ => None,
        }
    }
}

/// The longest name a factor may have, in characters.
pub const MAX_FACTOR_NAME_CHARS: usize = 64;

/// One of a user's second factors.
#[derive(Clone)]
pub struct MfaFactor {
    pub id: FactorId,
    pub user_id: UserId,
    pub kind: FactorKind,
    /// The user's label, e.g. "Authenticator app".
    pub name: String,
    /// TOTP: the shared secret, sealed under the master key.
    pub secret_enc: Option<Vec<u8>>,
    /// TOTP: the id of the key that sealed `secret_enc`.
    pub enc_key_id: Option<String>,
    /// Passkey: the serialized credential.
    pub credential: Option<String>,
    /// Passkey: the credential id (unique across users).
    pub credential_id: Option<String>,
    /// `None` while the enrolment is pending.
    pub confirmed_at: Option<UnixTime>,
    /// TOTP: the highest time step accepted so far (a code of it or earlier is refused).
    pub last_step: i64,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

impl std::fmt::Debug for MfaFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaFactor")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field(
                "secret_enc",
                &self.secret_enc.as_ref().map(|_| "[redacted]"),
            )
            .field("enc_key_id", &self.enc_key_id)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "[redacted]"),
            )
            .field("credential_id", &self.credential_id)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

impl MfaFactor {
    /// Whether the enrolment was confirmed (the factor counts for sign-in).
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }

    /// A factor's name as the user typed it: trimmed, 1 to 64 characters, none of them a
    /// control character.
    pub fn validate_name(raw: &str) -> Result<String, ValidationError> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 {
            return Err(ValidationError::new("name", "must not be empty"));
        }
        if chars > MAX_FACTOR_NAME_CHARS {
            return Err(ValidationError::new(
                "name",
                format!("must be at most {MAX_FACTOR_NAME_CHARS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor() -> MfaFactor {
        MfaFactor {
            id: FactorId::generate(),
            user_id: UserId::generate(),
            kind: FactorKind::Totp,
            name: "Phone".into(),
            secret_enc: Some(vec![0xde, 0xad, 0xbe, 0xef]),
            enc_key_id: Some("mk1".into()),
            credential: Some("credential-json-secret".into()),
            credential_id: None,
            confirmed_at: None,
            last_step: 0,
            created_at: 1,
            last_used_at: None,
        }
    }

    #[test]
    fn factor_ids_are_uuids() {
        let id = FactorId::generate();
        assert_eq!(FactorId::parse(id.as_str()), Ok(id));
        assert_eq!(
            FactorId::parse("6F9619FF-8B86-D011-B42D-00C04FC964FF")
                .map(FactorId::into_string)
                .ok()
                .as_deref(),
            Some("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
            "the canonical text form"
        );
        assert!(FactorId::parse("not-a-uuid").is_err());
        assert!(FactorId::parse("").is_err());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [FactorKind::Totp, FactorKind::Passkey] {
            assert_eq!(FactorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(FactorKind::parse("TOTP"), None);
        assert_eq!(FactorKind::parse("sms"), None);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            MfaFactor::validate_name("  Authenticator app \n"),
            Ok("Authenticator app".into())
        );
        assert_eq!(
            MfaFactor::validate_name("Clé de Zoë 🔑"),
            Ok("Clé de Zoë 🔑".into())
        );
        let longest = "é".repeat(64);
        assert_eq!(MfaFactor::validate_name(&longest), Ok(longest.clone()));
        assert!(MfaFactor::validate_name(&format!("{longest}x")).is_err());
        for bad in ["", "   ", "a\u{0}b", "tab\there", "line\nbreak", "\u{7f}"] {
            assert!(MfaFactor::validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_prints_the_secret_or_the_credential() {
        let f = factor();
        let printed = format!("{f:?}");
        assert!(!printed.contains("222, 173"), "{printed}");
        assert!(!printed.contains("credential-json-secret"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
        assert!(printed.contains("Phone"), "{printed}");
    }
}
