//! The kinds of mail and the template variables each one provides. It depends on nothing, so
//! the templates and the queue both use it without depending on each other.

/// Which message; each has a template (subject, text, HTML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// Vars: `link`, `expires_in_minutes`.
    VerifyEmail,
    /// Someone tried to sign up with an address that has an account. Vars: `reset_link`
    /// (may be empty).
    SignupExisting,
    /// Vars: `link`, `expires_in_minutes`.
    PasswordReset,
    /// Vars: `link` (may be empty when no app URL is configured), `code`,
    /// `expires_in_minutes`.
    MagicLink,
    /// Vars: `link`, `expires_in_minutes`.
    Invite,
    /// The password was changed or reset. No vars.
    PasswordChanged,
    /// A second factor was added or removed. Vars: `change` (a sentence: "An authenticator
    /// app was added.").
    MfaChanged,
    /// A recovery code was used to sign in. Vars: `codes_left`.
    RecoveryCodeUsed,
}

impl MailKind {
    pub const ALL: [MailKind; 8] = [
        MailKind::VerifyEmail,
        MailKind::SignupExisting,
        MailKind::PasswordReset,
        MailKind::MagicLink,
        MailKind::Invite,
        MailKind::PasswordChanged,
        MailKind::MfaChanged,
        MailKind::RecoveryCodeUsed,
    ];

    /// The base name of the template files (`<name>.subject`, `<name>.txt`, `<name>.html`).
    pub fn template_name(self) -> &'static str {
        match self {
            MailKind::VerifyEmail => "verify_email",
            MailKind::SignupExisting => "signup_existing",
            MailKind::PasswordReset => "password_reset",
            MailKind::MagicLink => "magic_link",
            MailKind::Invite => "invite",
            MailKind::PasswordChanged => "password_changed",
            MailKind::MfaChanged => "mfa_changed",
            MailKind::RecoveryCodeUsed => "recovery_code_used",
        }
    }

    /// The variables of this kind, besides `email`, `display_name` and `product_name`.
    pub fn vars(self) -> &'static [&'static str] {
        match self {
            MailKind::VerifyEmail | MailKind::PasswordReset | MailKind::Invite => {
                &["link", "expires_in_minutes"]
            }
            MailKind::SignupExisting => &["reset_link"],
            MailKind::MagicLink => &["link", "code", "expires_in_minutes"],
            MailKind::PasswordChanged => &[],
            MailKind::MfaChanged => &["change"],
            MailKind::RecoveryCodeUsed => &["codes_left"],
        }
    }
}
