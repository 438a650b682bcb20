//! Mail adapters: the built-in templates and their operator overrides, the SMTP transport
//! (lettre) and the development outbox. `startup` picks one; services see only
//! `MailTransport`.

mod message;
mod outbox;
mod smtp;
mod templates;

pub use message::build_message;
pub use outbox::OutboxTransport;
pub use smtp::{SmtpSetupError, SmtpTransport};
pub use templates::{builtin_source, load_templates, TemplateLoadError};
