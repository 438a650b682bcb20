//! The built-in templates (compiled in from `src/mail_transport/templates/`) and the
//! operator's overrides: a file of the same name in `mail.templates_dir` replaces the
//! built-in one. Every template is parsed at load, so an unknown placeholder stops start-up.

use std::path::{Path, PathBuf};

use crate::services::{MailKind, MailTemplates, TemplateError, TemplateSources};

#[derive(Debug, thiserror::Error)]
pub enum TemplateLoadError {
    #[error("cannot read the mail template {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mail.templates_dir {0} is not a readable folder")]
    NoDir(PathBuf),
    #[error("invalid mail template {0}")]
    Invalid(#[from] TemplateError),
}

/// The built-in template `file` (`verify_email.subject`, `invite.html`, ...).
pub fn builtin_source(file: &str) -> Option<&'static str> {
    Some(match file {
        "verify_email.subject" => include_str!("templates/verify_email.subject"),
        "verify_email.txt" => include_str!("templates/verify_email.txt"),
        "verify_email.html" => include_str!("templates/verify_email.html"),
        "signup_existing.subject" => include_str!("templates/signup_existing.subject"),
        "signup_existing.txt" => include_str!("templates/signup_existing.txt"),
        "signup_existing.html" => include_str!("templates/signup_existing.html"),
        "password_reset.subject" => include_str!("templates/password_reset.subject"),
        "password_reset.txt" => include_str!("templates/password_reset.txt"),
        "password_reset.html" => include_str!("templates/password_reset.html"),
        "magic_link.subject" => include_str!("templates/magic_link.subject"),
        "magic_link.txt" => include_str!("templates/magic_link.txt"),
        "magic_link.html" => include_str!("templates/magic_link.html"),
        "invite.subject" => include_str!("templates/invite.subject"),
        "invite.txt" => include_str!("templates/invite.txt"),
        "invite.html" => include_str!("templates/invite.html"),
        "password_changed.subject" => include_str!("templates/password_changed.subject"),
        "password_changed.txt" => include_str!("templates/password_changed.txt"),
        "password_changed.html" => include_str!("templates/password_changed.html"),
        "mfa_changed.subject" => include_str!("templates/mfa_changed.subject"),
        "mfa_changed.txt" => include_str!("templates/mfa_changed.txt"),
        "mfa_changed.html" => include_str!("templates/mfa_changed.html"),
        "recovery_code_used.subject" => include_str!("templates/recovery_code_used.subject"),
        "recovery_code_used.txt" => include_str!("templates/recovery_code_used.txt"),
        "recovery_code_used.html" => include_str!("templates/recovery_code_used.html"),
        _ => return None,
    })
}

/// The templates: built in, each replaced by `dir/<file>` when that file exists.
pub fn load_templates(dir: Option<&Path>) -> Result<MailTemplates, TemplateLoadError> {
    if let Some(d) = dir {
        if !d.is_dir() {
            return Err(TemplateLoadError::NoDir(d.to_owned()));
        }
    }
    let mut sources = Vec::with_capacity(MailKind::ALL.len());
    for kind in MailKind::ALL {
        let base = kind.template_name();
        sources.push((
            kind,
            TemplateSources {
                subject: read(dir, &format!("{base}.subject"))?,
                text: read(dir, &format!("{base}.txt"))?,
                html: read(dir, &format!("{base}.html"))?,
            },
        ));
    }
    let templates = MailTemplates::parse(&|kind| {
        sources
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| s.clone())
            .unwrap_or(TemplateSources {
                subject: String::new(),
                text: String::new(),
                html: String::new(),
            })
    })?;
    Ok(templates)
}

fn read(dir: Option<&Path>, file: &str) -> Result<String, TemplateLoadError> {
    if let Some(path) = dir.map(|d| d.join(file)).filter(|p| p.exists()) {
        return std::fs::read_to_string(&path)
            .map_err(|source| TemplateLoadError::Read { path, source });
    }
    Ok(builtin_source(file).unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_mail_template_exists_and_parses() {
        for kind in MailKind::ALL {
            for ext in ["subject", "txt", "html"] {
                let file = format!("{}.{ext}", kind.template_name());
                assert!(
                    builtin_source(&file).is_some_and(|s| !s.trim().is_empty()),
                    "{file}"
                );
            }
        }
        assert!(load_templates(None).is_ok());
    }
}
