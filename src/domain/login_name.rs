use super::Email;

/// What someone typed to name their account when signing in: an email address, or anything
/// else. Something else names no account, but its attempts are throttled all the same, so
/// that guessing does not learn which names are addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginName {
    Email(Email),
    /// Not an address: trimmed and lower-cased, as it is throttled.
    Other(String),
    /// Longer than any account name (`MAX_LEN`): refused before any work.
    TooLong,
}

impl LoginName {
    /// Longer names are refused before any work (an email is at most 254 characters).
    pub const MAX_LEN: usize = 320;

    /// Never fails: what cannot be an address is kept as typed (normalised).
    pub fn parse(raw: &str) -> Self {
        if raw.len() > Self::MAX_LEN {
            return Self::TooLong;
        }
        match Email::parse(raw) {
            Ok(email) => Self::Email(email),
            Err(_) => Self::Other(raw.trim().to_lowercase()),
        }
    }

    /// The address, if the name is one.
    pub fn email(&self) -> Option<&Email> {
        match self {
            Self::Email(e) => Some(e),
            Self::Other(_) | Self::TooLong => None,
        }
    }

    /// The key its attempts are throttled by (`None` for one refused before any work).
    pub fn throttle_key(&self) -> Option<&str> {
        match self {
            Self::Email(e) => Some(e.as_str()),
            Self::Other(s) => Some(s),
            Self::TooLong => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_other_names_and_overlong_ones() {
        let email = LoginName::parse(" Ann@Example.COM ");
        assert_eq!(email.throttle_key(), Some("ann@example.com"));
        assert!(email.email().is_some());
        let other = LoginName::parse("  Ann ");
        assert_eq!(other, LoginName::Other("ann".into()));
        assert_eq!(other.email(), None);
        assert_eq!(LoginName::parse(&"a".repeat(321)), LoginName::TooLong);
        assert_eq!(
            LoginName::parse(&"a".repeat(320))
                .throttle_key()
                .map(str::len),
            Some(320)
        );
    }
}
