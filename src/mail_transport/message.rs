//! A rendered mail as an RFC 5322 message: From, To, Subject, Date, Message-ID and a
//! multipart/alternative body (text, then HTML). The SMTP transport sends these bytes and
//! the outbox writes them.

use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

use crate::services::{RenderedMail, TransportError};

/// Builds the message; an invalid sender or recipient is a permanent failure.
pub fn build_message(msg: &RenderedMail) -> Result<Message, TransportError> {
    let from: Mailbox = msg
        .from
        .parse()
        .map_err(|e| TransportError::Permanent(format!("invalid sender mailbox: {e}")))?;
    let address: Address = msg
        .to
        .as_str()
        .parse()
        .map_err(|e| TransportError::Permanent(format!("invalid recipient address: {e}")))?;
    let to = Mailbox::new(msg.to_name.as_deref().map(header_safe), address);
    let message_id = format!(
        "<{}@{}>",
        uuid::Uuid::new_v4().simple(),
        from.email.domain()
    );
    Message::builder()
        .from(from)
        .to(to)
        .subject(header_safe(&msg.subject))
        .date_now()
        .message_id(Some(message_id))
        .multipart(MultiPart::alternative_plain_html(
            msg.text.expose_secret().to_owned(),
            msg.html.expose_secret().to_owned(),
        ))
        .map_err(|e| TransportError::Permanent(format!("cannot build the message: {e}")))
}

/// A header value on one line: control characters (CR, LF, ...) become spaces.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}
