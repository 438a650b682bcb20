//! MFA policies (issue 15): whether a second factor is required of everyone, of nobody, or
//! of those a role or a client names.

/// The server-wide setting `mfa.required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MfaRequirement {
    /// No new second factors may be enrolled. Factors already enrolled are still asked for
    /// (fail closed), and roles or clients that require one still do.
    Off,
    /// Users choose; roles and clients may require a second factor.
    #[default]
    Optional,
    /// Every user must sign in with a second factor.
    Required,
}

impl MfaRequirement {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "off" => Some(Self::Off),
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    /// Whether users may enrol new second factors.
    pub fn allows_enrolment(self) -> bool {
        self != Self::Off
    }
}

/// What a user covered by a policy and without a second factor may do, at `now`, when first
/// asked at `first_asked` with a grace period of `grace` seconds: set it up later (within the
/// grace period), or not.
pub fn within_grace(first_asked: i64, grace: i64, now: i64) -> bool {
    grace > 0 && now < first_asked.saturating_add(grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_reads_its_three_values_and_nothing_else() {
        for v in ["off", "optional", "required"] {
            assert_eq!(
                MfaRequirement::parse(v).map(MfaRequirement::as_str),
                Some(v)
            );
        }
        assert_eq!(MfaRequirement::parse("Required"), None);
        assert_eq!(MfaRequirement::default(), MfaRequirement::Optional);
        assert!(!MfaRequirement::Off.allows_enrolment());
    }

    #[test]
    fn the_grace_period_counts_from_the_first_time_asked() {
        assert!(!within_grace(100, 0, 100));
        assert!(within_grace(100, 60, 100));
        assert!(within_grace(100, 60, 159));
        assert!(!within_grace(100, 60, 160));
    }
}
