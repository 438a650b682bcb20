//! The small MIME parse of received mail: headers, multipart/alternative, quoted-printable,
//! base64, RFC 2047 encoded words.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::ReceivedMail;

pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn split_entity(s: &str) -> (&str, &str) {
    if let Some(body) = s.strip_prefix("\r\n") {
        return ("", body);
    }
    match s.find("\r\n\r\n") {
        Some(i) => (&s[..i], &s[i + 4..]),
        None => (s, ""),
    }
}

fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(line);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// The `name=` parameter of a header value such as a Content-Type.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn decode_qp(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1..i + 3) == Some(b"\r\n") {
                i += 3;
                continue;
            }
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let Some(byte) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn decode_transfer(body: &str, encoding: Option<&str>) -> String {
    let bytes = match encoding.map(str::to_ascii_lowercase).as_deref() {
        Some("base64") => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            B64.decode(compact).unwrap()
        }
        Some("quoted-printable") => decode_qp(body),
        _ => body.as_bytes().to_vec(),
    };
    String::from_utf8(bytes).unwrap()
}

/// Fills `text` and `html` from an entity and, for multiparts, its parts.
fn walk(
    headers: &[(String, String)],
    body: &str,
    text: &mut Option<String>,
    html: &mut Option<String>,
) {
    let content_type = header(headers, "Content-Type").unwrap_or("text/plain");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime.starts_with("multipart/") {
        let boundary = param(content_type, "boundary").unwrap();
        let delimiter = format!("--{boundary}");
        for segment in body.split(delimiter.as_str()).skip(1) {
            if segment.starts_with("--") {
                break;
            }
            let segment = segment.split_once("\r\n").map(|(_, s)| s).unwrap_or("");
            let segment = segment.strip_suffix("\r\n").unwrap_or(segment);
            let (head, part_body) = split_entity(segment);
            walk(&parse_headers(head), part_body, text, html);
        }
        return;
    }
    let decoded = decode_transfer(body, header(headers, "Content-Transfer-Encoding"));
    match mime.as_str() {
        "text/plain" if text.is_none() => *text = Some(decoded),
        "text/html" if html.is_none() => *html = Some(decoded),
        _ => {}
    }
}

pub(super) fn parse_mail(
    raw: String,
    mail_from: String,
    rcpt_to: Vec<String>,
    tls: bool,
    authenticated_as: Option<String>,
) -> ReceivedMail {
    let (head, body) = split_entity(&raw);
    let headers = parse_headers(head);
    let (mut text, mut html) = (None, None);
    walk(&headers, body, &mut text, &mut html);
    let subject = header(&headers, "Subject")
        .map(decode_words)
        .unwrap_or_default();
    ReceivedMail {
        mail_from,
        rcpt_to,
        subject,
        text,
        html,
        headers,
        raw,
        tls,
        authenticated_as,
    }
}

/// One RFC 2047 encoded word at the start of `s`: its bytes and its length.
fn encoded_word(s: &str) -> Option<(Vec<u8>, usize)> {
    let inner = s.strip_prefix("=?")?;
    let charset_end = inner.find('?')?;
    let rest = &inner[charset_end + 1..];
    let encoding = rest.chars().next()?.to_ascii_uppercase();
    let rest = rest.get(1..)?.strip_prefix('?')?;
    let end = rest.find("?=")?;
    let payload = &rest[..end];
    let bytes = match encoding {
        'B' => B64.decode(payload).ok()?,
        'Q' => decode_qp(&payload.replace('_', " ")),
        _ => return None,
    };
    Some((bytes, 2 + charset_end + 1 + 2 + end + 2))
}

/// A header value with its RFC 2047 encoded words decoded (whitespace between adjacent
/// words dropped).
pub(super) fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut rest = value;
    while let Some(i) = rest.find("=?") {
        match encoded_word(&rest[i..]) {
            Some((bytes, len)) => {
                let between = &rest[..i];
                if pending.is_empty() || !between.trim().is_empty() {
                    out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
                    out.push_str(between);
                }
                pending.extend(bytes);
                rest = &rest[i + len..];
            }
            None => {
                out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
                out.push_str(&rest[..i + 2]);
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(&pending));
    out.push_str(rest);
    out
}
