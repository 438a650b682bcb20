//! The claims of the access tokens Latchkey signs.

use crate::clock::UnixTime;

/// RFC 9068 access-token claims.
#[derive(serde::Serialize)]
pub(super) struct AccessClaims<'a> {
    pub(super) iss: &'a str,
    pub(super) sub: &'a str,
    pub(super) aud: &'a str,
    pub(super) exp: UnixTime,
    pub(super) iat: UnixTime,
    pub(super) nbf: UnixTime,
    pub(super) jti: String,
    pub(super) client_id: &'a str,
    /// The refresh-token family (session) the token belongs to, for revocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sid: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(super) scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) roles: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) permissions: Option<&'a [String]>,
}
