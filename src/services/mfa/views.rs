//! What the second-factor use cases answer with (the JSON API's bodies).

use serde::Serialize;

use crate::clock::rfc3339;
use crate::domain::MfaFactor;

/// A factor as its owner (or an operator) sees it: never its secret.
#[derive(Debug, Clone, Serialize)]
pub struct FactorView {
    pub id: String,
    /// `totp` or `passkey`.
    pub kind: &'static str,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl FactorView {
    pub fn of(f: &MfaFactor) -> Self {
        Self {
            id: f.id.as_str().to_owned(),
            kind: f.kind.as_str(),
            name: f.name.clone(),
            created_at: rfc3339(f.confirmed_at.unwrap_or(f.created_at)),
            last_used_at: f.last_used_at.map(rfc3339),
        }
    }
}

/// `GET /api/v1/me/mfa`.
#[derive(Debug, Clone, Serialize)]
pub struct MfaOverview {
    pub factors: Vec<FactorView>,
    pub recovery_codes_left: i64,
}

/// A started enrolment: what the user scans or types into their app. The secret is shown
/// here once; it is stored sealed.
#[derive(Serialize)]
pub struct TotpEnrolment {
    pub id: String,
    pub name: String,
    /// Base32, for typing in.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code (SVG).
    pub qr_svg: String,
    /// Seconds left to confirm it.
    pub expires_in: i64,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A new set of recovery codes, shown this once.
#[derive(Serialize)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCodes([redacted])")
    }
}

/// A started passkey registration: the options for `navigator.credentials.create` (binary
/// values in base64url) and the sealed ceremony the answer is sent back with.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyRegistrationStart {
    pub ceremony: String,
    pub options: serde_json::Value,
    /// Seconds left to finish it.
    pub expires_in: i64,
}
