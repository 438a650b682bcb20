//! The policy every new password must meet (operator-set, sign-up, change, reset), with the
//! optional breach corpus: one place, used by the admin and account use cases.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::BreachCorpus;
use crate::domain::{PasswordContext, PasswordPolicy, PolicyViolation};

pub struct PasswordRules {
    policy: PasswordPolicy,
    breach_corpus: Arc<BreachCorpus>,
}

impl PasswordRules {
    pub fn new(policy: PasswordPolicy, breach_corpus: Arc<BreachCorpus>) -> Self {
        Self {
            policy,
            breach_corpus,
        }
    }

    /// Passwords longer than this (bytes) are refused before any hashing.
    pub fn max_length(&self) -> usize {
        self.policy.max_length
    }

    /// Every rule the password breaks; empty when it is acceptable.
    pub fn violations(
        &self,
        password: &SecretString,
        context: &PasswordContext<'_>,
    ) -> Vec<PolicyViolation> {
        let p = password.expose_secret();
        let breached = p.len() <= self.policy.max_length && self.breach_corpus.contains(p);
        self.policy.check(p, context, breached)
    }
}
