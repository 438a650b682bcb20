//! Human and JSON output for CLI commands.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::domain::LoggedAuditEvent;
use crate::services::{ClientView, InviteView, KeyView, RoleView, RotationView, UserView};

pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("latchkey: cannot render JSON: {e}"),
    }
}

pub trait Human {
    fn human(&self) -> String;
}

/// Prints `value` as JSON with `--json`, else in its human form.
pub fn emit<T: Serialize + Human>(as_json: bool, value: &T) {
    if as_json {
        json(value)
    } else {
        println!("{}", value.human())
    }
}

impl<T: Human> Human for Vec<T> {
    fn human(&self) -> String {
        if self.is_empty() {
            return "(none)".into();
        }
        self.iter().map(Human::human).collect::<Vec<_>>().join("\n")
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl Human for UserView {
    fn human(&self) -> String {
        format!(
            "{}  {}  active={} verified={} roles=[{}]{}",
            self.id,
            self.email.as_deref().unwrap_or("(no email)"),
            yes_no(self.is_active),
            yes_no(self.email_verified),
            self.roles.join(","),
            self.display_name
                .as_deref()
                .map(|d| format!("  \"{d}\""))
                .unwrap_or_default()
        )
    }
}

impl Human for RoleView {
    fn human(&self) -> String {
        format!(
            "{}  permissions=[{}]{}",
            self.name,
            self.permissions.join(","),
            if self.require_mfa {
                "  require-mfa"
            } else {
                ""
            }
        )
    }
}

impl Human for ClientView {
    fn human(&self) -> String {
        let mut line = format!(
            "{}  {}  {}  enabled={} grants=[{}] scopes=[{}]",
            self.client_id,
            self.name,
            self.kind,
            yes_no(self.enabled),
            self.grant_types.join(","),
            self.scopes.join(",")
        );
        if !self.redirect_uris.is_empty() {
            line.push_str(&format!(
                " redirect_uris=[{}]",
                self.redirect_uris.join(",")
            ));
        }
        if self.first_party {
            line.push_str(" first-party");
        }
        if self.require_mfa {
            line.push_str(" require-mfa");
        }
        line
    }
}

impl Human for KeyView {
    fn human(&self) -> String {
        let when = match (&self.activate_at, &self.retired_at, &self.activated_at) {
            (Some(at), _, _) => format!("  activates {at}"),
            (None, Some(at), _) => format!("  retired {at}"),
            (None, None, Some(at)) => format!("  active since {at}"),
            _ => String::new(),
        };
        let access = if self.signs_access_tokens {
            "  signs access tokens"
        } else {
            ""
        };
        format!(
            "{}  {}  {}  created {}{when}{access}",
            self.kid, self.alg, self.state, self.created_at
        )
    }
}

impl Human for RotationView {
    fn human(&self) -> String {
        self.rotated.human()
    }
}

impl Human for InviteView {
    fn human(&self) -> String {
        format!(
            "invitation for {} (roles: {}), valid until {}\nlink: {}",
            self.email,
            if self.roles.is_empty() {
                "none".to_owned()
            } else {
                self.roles.join(", ")
            },
            self.expires_at,
            self.link
        )
    }
}

impl Human for LoggedAuditEvent {
    fn human(&self) -> String {
        let e = &self.event;
        let mut line = format!("{:>6}  {}  {:<26}", self.id, rfc3339(e.at), e.event);
        for (k, v) in [
            ("user", &e.user_id),
            ("client", &e.client_id),
            ("ip", &e.ip),
            ("agent", &e.user_agent),
        ] {
            if let Some(v) = v {
                line.push_str(&format!(" {k}={v:?}"));
            }
        }
        if !e.detail.is_empty() {
            line.push(' ');
            line.push_str(&serde_json::Value::Object(e.detail.clone()).to_string());
        }
        line
    }
}
