//! The claims of the access tokens Latchkey signs (RFC 9068): built here when a token is
//! issued, and read back when one is presented (crypto verifies their signature, issuer and
//! validity window).

use crate::clock::UnixTime;
use crate::crypto::RegisteredClaims;
use crate::domain::{ClientId, FamilyId, PresentedAccessToken, Principal, Scope, Subject, UserId};

/// RFC 9068 access-token claims.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub nbf: UnixTime,
    pub jti: String,
    pub client_id: String,
    /// The refresh-token family (session) the token belongs to, for revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Absent when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Present (maybe empty) on a user's token, absent on a client's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

impl AccessTokenClaims {
    /// Whether the token was issued to a client for itself (client_credentials: no user
    /// claims, and the subject is the client), not to a user.
    pub fn is_client_token(&self) -> bool {
        self.roles.is_none() && self.sub == self.client_id
    }

    /// The caller a verified token authenticates. `None` when it names no valid client
    /// (verification already refuses such a token: its client cannot be found).
    pub fn principal(&self) -> Option<Principal> {
        let client_id = ClientId::parse(&self.client_id).ok()?;
        let subject = match UserId::parse(&self.sub) {
            Ok(id) if !self.is_client_token() => Subject::User(id),
            _ => Subject::Client,
        };
        Some(Principal {
            subject,
            client_id,
            session: self.sid.clone().map(FamilyId::from_trusted),
            scope: self
                .scope
                .as_deref()
                .and_then(|s| Scope::parse(s).ok())
                .unwrap_or_default(),
            token: PresentedAccessToken {
                jti: self.jti.clone(),
                expires_at: self.exp,
            },
        })
    }
}

impl RegisteredClaims for AccessTokenClaims {
    fn issuer(&self) -> &str {
        &self.iss
    }

    fn expires_at(&self) -> i64 {
        self.exp
    }

    fn not_before(&self) -> i64 {
        self.nbf
    }

    fn issued_at(&self) -> i64 {
        self.iat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://id".into(),
            sub: "u1".into(),
            aud: "api".into(),
            exp: 200,
            iat: 100,
            nbf: 100,
            jti: "j1".into(),
            client_id: "web".into(),
            sid: Some("s1".into()),
            scope: Some("a b".into()),
            roles: Some(vec!["r".into()]),
            permissions: Some(vec![]),
        }
    }

    /// The signed payload: the claims in this order, the optional ones left out when absent.
    #[test]
    fn serialized_in_order_without_absent_claims() {
        let user = serde_json::to_string(&claims()).unwrap_or_default();
        assert_eq!(
            user,
            r#"{"iss":"https://id","sub":"u1","aud":"api","exp":200,"iat":100,"nbf":100,"jti":"j1","client_id":"web","sid":"s1","scope":"a b","roles":["r"],"permissions":[]}"#
        );
        let client = AccessTokenClaims {
            sub: "web".into(),
            sid: None,
            scope: None,
            roles: None,
            permissions: None,
            ..claims()
        };
        assert!(client.is_client_token());
        assert_eq!(
            serde_json::to_string(&client).unwrap_or_default(),
            r#"{"iss":"https://id","sub":"web","aud":"api","exp":200,"iat":100,"nbf":100,"jti":"j1","client_id":"web"}"#
        );
    }
}
