use super::ValidationError;

crate::string_newtype! {
    /// An email address, normalised: trimmed and lower-cased as a whole, so that lookups are
    /// case-insensitive and one mailbox maps to one account.
    pub struct Email;
}

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let err = |m: &str| ValidationError::new("email", m);
        if s.is_empty() {
            return Err(err("must not be empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(err("must be at most 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("must not contain whitespace or control characters"));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(err("must contain '@'"));
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(err("has an invalid local part"));
        }
        if domain.is_empty()
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || domain.starts_with('-')
        {
            return Err(err("has an invalid domain"));
        }
        Ok(Self(s.to_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_to_lower_case() {
        let e = Email::parse("  Alice@Example.COM ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.as_str(), "alice@example.com");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@example.com",
            "alice@.com",
            "a@b..c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
