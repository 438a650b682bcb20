//! The password policy: configurable rules, all on by default, that report every rule a
//! password breaks (not only the first), so a sign-up form can show them all at once.
//!
//! Rules: minimum length (characters), maximum length (bytes, checked first and alone, so a
//! megabyte "password" costs nothing), not too similar to the user's email, username or
//! display name, not entirely numeric, not one of the 30,000 most common passwords (shipped:
//! `common_passwords.txt`). A breach-corpus check needs a hash and a file, so it lives
//! outside the domain and reports through `breached`.

use std::collections::HashSet;
use std::sync::OnceLock;

/// One broken rule: a stable code for programs and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyViolation {
    pub rule: &'static str,
    pub message: String,
}

/// What the password must not resemble.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswordContext<'a> {
    pub email: Option<&'a str>,
    pub username: Option<&'a str>,
    pub display_name: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// In characters.
    pub min_length: usize,
    /// In bytes.
    pub max_length: usize,
    pub reject_similar: bool,
    pub reject_numeric: bool,
    pub reject_common: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 12,
            max_length: 1024,
            reject_similar: true,
            reject_numeric: true,
            reject_common: true,
        }
    }
}

/// Django's threshold for "too similar" (1.0 = identical).
const MAX_SIMILARITY: f64 = 0.7;

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Whether the password (case-insensitively) is one of the 30,000 most common.
pub fn is_common_password(password: &str) -> bool {
    common_passwords().contains(password.trim().to_lowercase().as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// 1.0 for identical strings, 0.0 for nothing in common.
fn similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    1.0 - edit_distance(&a, &b) as f64 / longest as f64
}

/// The value and its alphanumeric parts, lower-cased (`alice.smith@example.com` ->
/// `alice.smith@example.com`, `alice`, `smith`, `example`, `com`).
fn parts(value: &str) -> Vec<String> {
    let lower = value.to_lowercase();
    let mut out: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    out.push(lower);
    out
}

impl PasswordPolicy {
    /// Every rule the password breaks; empty when it is acceptable. `breached` is the answer
    /// of the (optional) breach-corpus check.
    pub fn check(
        &self,
        password: &str,
        context: &PasswordContext<'_>,
        breached: bool,
    ) -> Vec<PolicyViolation> {
        if password.len() > self.max_length {
            return vec![PolicyViolation {
                rule: "too_long",
                message: format!("must be at most {} bytes", self.max_length),
            }];
        }
        let mut out = Vec::new();
        if password.chars().count() < self.min_length {
            out.push(PolicyViolation {
                rule: "too_short",
                message: format!("must be at least {} characters", self.min_length),
            });
        }
        if self.reject_similar && self.too_similar(password, context) {
            out.push(PolicyViolation {
                rule: "too_similar",
                message: "is too similar to the email address, username or display name".into(),
            });
        }
        if self.reject_numeric
            && !password.is_empty()
            && password.chars().all(|c| c.is_ascii_digit())
        {
            out.push(PolicyViolation {
                rule: "entirely_numeric",
                message: "must not be entirely numeric".into(),
            });
        }
        if self.reject_common && is_common_password(password) {
            out.push(PolicyViolation {
                rule: "too_common",
                message: "is one of the most common passwords".into(),
            });
        }
        if breached {
            out.push(PolicyViolation {
                rule: "breached",
                message: "appears in a list of passwords exposed in data breaches".into(),
            });
        }
        out
    }

    fn too_similar(&self, password: &str, context: &PasswordContext<'_>) -> bool {
        let password = password.to_lowercase();
        [context.email, context.username, context.display_name]
            .into_iter()
            .flatten()
            .flat_map(parts)
            .filter(|part| part.chars().count() >= 3)
            .any(|part| {
                (part.chars().count() >= 4 && password.contains(&part))
                    || similarity(&password, &part) >= MAX_SIMILARITY
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: &[PolicyViolation]) -> Vec<&'static str> {
        v.iter().map(|v| v.rule).collect()
    }

    fn alice() -> PasswordContext<'static> {
        PasswordContext {
            email: Some("alice.smith@example.com"),
            username: Some("asmith"),
            display_name: Some("Alice Smith"),
        }
    }

    #[test]
    fn a_good_password_passes_every_rule() {
        let p = PasswordPolicy::default();
        assert!(p
            .check("correct horse battery staple", &alice(), false)
            .is_empty());
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let p = PasswordPolicy::default();
        assert_eq!(
            rules(&p.check("12345678", &alice(), true)),
            ["too_short", "entirely_numeric", "too_common", "breached"]
        );
        assert_eq!(
            rules(&p.check("Password", &alice(), false)),
            ["too_short", "too_common"]
        );
    }

    #[test]
    fn passwords_like_the_users_names_are_too_similar() {
        let p = PasswordPolicy::default();
        for pw in [
            "alice.smith2024",
            "Smith-Family!",
            "asmith12",
            "example.com!!",
        ] {
            assert!(
                rules(&p.check(pw, &alice(), false)).contains(&"too_similar"),
                "{pw}"
            );
        }
        assert!(p.check("unrelated phrase here", &alice(), false).is_empty());
        let off = PasswordPolicy {
            reject_similar: false,
            ..PasswordPolicy::default()
        };
        assert!(off.check("alice.smith2024", &alice(), false).is_empty());
    }

    #[test]
    fn overlong_passwords_are_refused_before_anything_else() {
        let p = PasswordPolicy::default();
        let huge = "a".repeat(1025);
        assert_eq!(rules(&p.check(&huge, &alice(), true)), ["too_long"]);
        assert!(p.check(&"ab9!".repeat(256), &alice(), false).is_empty());
    }

    #[test]
    fn the_common_list_has_thirty_thousand_entries_and_ignores_case() {
        assert_eq!(common_passwords().len(), 30_000);
        assert!(is_common_password("QWERTY"));
        assert!(is_common_password("iloveyou"));
        assert!(!is_common_password("correct horse battery staple"));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let p = PasswordPolicy {
            min_length: 10,
            ..PasswordPolicy::default()
        };
        assert!(rules(&p.check("ééééééééé", &alice(), false)).contains(&"too_short"));
        assert!(!rules(&p.check("éééééééééé", &alice(), false)).contains(&"too_short"));
    }

    #[test]
    fn edit_distance_is_levenshtein() {
        let d = |a: &str, b: &str| {
            edit_distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("same", "same"), 0);
    }
}
