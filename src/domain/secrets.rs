//! Secret values handed to their owner: tokens issued to a client and single-use secrets
//! sent by mail. Declared with [`crate::secret_newtype!`]: `Debug` never shows them, and
//! they have no `Display` or `Serialize`, so a response body exposes them explicitly.

crate::secret_newtype! {
    /// An access token (a signed JWT) as issued to a client.
    pub struct AccessTokenText;
}

crate::secret_newtype! {
    /// A refresh token (`lkrt_...`) as issued to a client.
    pub struct RefreshTokenText;
}

crate::secret_newtype! {
    /// An ID token (a signed JWT about the user) as issued to a client.
    pub struct IdTokenText;
}

crate::secret_newtype! {
    /// The secret of an emailed single-use token: the value in a link, or a magic-link code.
    pub struct MailedSecret;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_and_mailed_secrets_never_print_their_value() {
        let access = AccessTokenText::new("eyJhbGciOi.hunter2.sig");
        let refresh = RefreshTokenText::new("lkrt_hunter2");
        let mailed = MailedSecret::new("hunter2-link");
        let printed = format!("{access:?} {refresh:?} {mailed:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(
            printed,
            "AccessTokenText([redacted]) RefreshTokenText([redacted]) MailedSecret([redacted])"
        );
        assert_eq!(refresh.expose_secret(), "lkrt_hunter2");
    }
}
