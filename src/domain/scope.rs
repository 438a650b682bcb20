use std::collections::BTreeSet;

use super::ValidationError;

/// Scopes OpenID Connect defines: a client registered for the authorization code grant may
/// ask for them whatever its API scopes (`offline_access` only with refresh tokens).
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// An OAuth scope: a set of space-delimited tokens (RFC 6749 §3.3), kept sorted and unique.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    const MAX_TOKENS: usize = 64;
    const MAX_TOKEN_LEN: usize = 128;

    /// Parses a space-delimited scope string. `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let mut set = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            Self::check_token(token)?;
            set.insert(token.to_owned());
        }
        if set.len() > Self::MAX_TOKENS {
            return Err(ValidationError::new("scope", "has too many scope tokens"));
        }
        Ok(Self(set))
    }

    /// Builds a scope from individual tokens (CLI input); each must be a valid scope token.
    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, ValidationError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined: Vec<String> = tokens.into_iter().map(|s| s.as_ref().to_owned()).collect();
        for t in &joined {
            if t.is_empty() || t.contains(' ') {
                return Err(ValidationError::new(
                    "scope",
                    format!("invalid scope token {t:?}"),
                ));
            }
        }
        Self::parse(&joined.join(" "))
    }

    fn check_token(token: &str) -> Result<(), ValidationError> {
        let ok = token.len() <= Self::MAX_TOKEN_LEN
            && token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok {
            Ok(())
        } else {
            Err(ValidationError::new(
                "scope",
                format!("invalid scope token {token:?}"),
            ))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens present in both scopes.
    pub fn intersection(&self, other: &Scope) -> Scope {
        Scope(self.0.intersection(&other.0).cloned().collect())
    }

    /// Every token of either.
    pub fn union(&self, other: &Scope) -> Scope {
        Scope(self.0.union(&other.0).cloned().collect())
    }

    /// This scope without `token`.
    pub fn without(&self, token: &str) -> Scope {
        let mut set = self.0.clone();
        set.remove(token);
        Scope(set)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The space-delimited wire form.
    pub fn to_wire(&self) -> String {
        self.0
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_a_sorted_set() {
        let s = Scope::parse("b a  b").unwrap_or_default();
        assert_eq!(s.to_wire(), "a b");
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
    }

    #[test]
    fn subset_checks_follow_set_semantics() {
        let all = Scope::parse("a b c").unwrap_or_default();
        assert!(Scope::parse("a c").unwrap_or_default().is_subset_of(&all));
        assert!(!Scope::parse("a d").unwrap_or_default().is_subset_of(&all));
    }
}
