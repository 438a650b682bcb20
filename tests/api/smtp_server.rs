//! A real SMTP server on loopback for the mail tests (no mock of the mail layer): EHLO/HELO,
//! AUTH PLAIN and LOGIN, STARTTLS or implicit TLS (certificates from a throw-away CA made
//! with rcgen), MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT. Every
//! accepted message is kept with its envelope and a small MIME parse (multipart/alternative,
//! quoted-printable, base64, RFC 2047 headers), so tests can read the link in the text part.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

mod mime;

use mime::{decode_words, header, parse_mail};

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Unfolded, in order; values as sent (RFC 2047 words not decoded).
    pub headers: Vec<(String, String)>,
    /// The decoded `Subject`.
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// The message as received, after dot-unstuffing.
    pub raw: String,
    /// Whether the session was encrypted when the message was sent.
    pub tls: bool,
    /// The user the session authenticated as.
    pub authenticated_as: Option<String>,
}

impl ReceivedMail {
    /// Parses a message outside SMTP (an `.eml` file, say); the envelope is left empty.
    pub fn parse(raw: &str) -> Self {
        parse_mail(
            raw.replace("\r\n", "\n").replace('\n', "\r\n"),
            String::new(),
            Vec::new(),
            false,
            None,
        )
    }

    /// The first header called `name` (case-insensitive), raw.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The first header called `name`, with RFC 2047 encoded words decoded.
    pub fn decoded_header(&self, name: &str) -> Option<String> {
        self.header(name).map(decode_words)
    }

    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or_default()
    }

    pub fn html(&self) -> &str {
        self.html.as_deref().unwrap_or_default()
    }

    /// The first word of the text part that starts with `prefix` (such as a URL).
    pub fn find(&self, prefix: &str) -> Option<String> {
        self.text()
            .split_whitespace()
            .find(|w| w.starts_with(prefix))
            .map(str::to_owned)
    }
}

#[derive(Default)]
struct State {
    messages: Vec<ReceivedMail>,
    /// Messages still to refuse with a 451 at the end of DATA.
    refuse_next: usize,
    refused: usize,
    auth_failures: usize,
    /// Per recipient, how many messages `wait_for` has handed out.
    taken: HashMap<String, usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    Plain,
    StartTls,
    Implicit,
}

struct Config {
    auth: Option<(String, String)>,
    tls: TlsMode,
    acceptor: Option<TlsAcceptor>,
}

/// A throw-away certificate authority and a server certificate for `localhost` and
/// `127.0.0.1`.
pub struct TestCa {
    pub ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Latchkey test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        );
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone()], key)
        .unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        }
    }
}

/// How to start a server.
#[derive(Default)]
pub struct SmtpServerBuilder {
    auth: Option<(String, String)>,
    tls: Option<(TlsMode, Arc<TestCa>)>,
}

impl SmtpServerBuilder {
    /// Requires AUTH PLAIN or LOGIN with these credentials before MAIL FROM.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Offers STARTTLS (AUTH is offered only after it).
    pub fn starttls(mut self, ca: Arc<TestCa>) -> Self {
        self.tls = Some((TlsMode::StartTls, ca));
        self
    }

    /// TLS from the first byte, like port 465.
    pub fn implicit_tls(mut self, ca: Arc<TestCa>) -> Self {
        self.tls = Some((TlsMode::Implicit, ca));
        self
    }

    pub async fn start(self) -> SmtpServer {
        let (tls, acceptor) = match self.tls {
            Some((mode, ca)) => (mode, Some(TlsAcceptor::from(ca.server.clone()))),
            None => (TlsMode::Plain, None),
        };
        let config = Arc::new(Config {
            auth: self.auth,
            tls,
            acceptor,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let task = {
            let state = state.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (config, state) = (config.clone(), state.clone());
                    tokio::spawn(async move {
                        let _ = session(stream, config, state).await;
                    });
                }
            })
        };
        SmtpServer { port, state, task }
    }
}

/// The running server; stops when dropped.
pub struct SmtpServer {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    pub fn builder() -> SmtpServerBuilder {
        SmtpServerBuilder::default()
    }

    /// Plain SMTP, no AUTH.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// Plain SMTP requiring AUTH with these credentials.
    pub async fn with_auth(user: &str, password: &str) -> Self {
        Self::builder().auth(user, password).start().await
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Refuses the next `n` messages with `451 4.3.0` (transient) at the end of DATA.
    pub fn refuse_next(&self, n: usize) {
        self.state.lock().unwrap().refuse_next = n;
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Messages accepted for `addr`.
    pub fn count_to(&self, addr: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .messages
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(addr)))
            .count()
    }

    /// Messages refused with a 451 so far.
    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    pub fn auth_failures(&self) -> usize {
        self.state.lock().unwrap().auth_failures
    }

    /// The next message for `to` not handed out yet, in arrival order; panics after
    /// `timeout`.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + timeout;
        let key = to.to_ascii_lowercase();
        loop {
            {
                let mut state = self.state.lock().unwrap();
                let n = state.taken.get(&key).copied().unwrap_or(0);
                let next = state
                    .messages
                    .iter()
                    .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(to)))
                    .nth(n)
                    .cloned();
                if let Some(m) = next {
                    state.taken.insert(key, n + 1);
                    return m;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no message for {to} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = BufReader<Box<dyn Io>>;

async fn reply(conn: &mut Conn, text: &str) -> std::io::Result<()> {
    conn.write_all(text.as_bytes()).await?;
    conn.write_all(b"\r\n").await?;
    conn.flush().await
}

/// One line without its CRLF; `None` at end of stream.
async fn read_line(conn: &mut Conn) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if conn.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The address inside `<...>` after `FROM:` / `TO:`, ignoring parameters.
fn path_arg(arg: &str, prefix: &str) -> Option<String> {
    let rest = arg.get(..prefix.len())?;
    if !rest.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let start = rest.find('<')?;
    let end = rest.find('>')?;
    Some(rest[start + 1..end].to_owned())
}

#[derive(Default)]
struct Transaction {
    helo: bool,
    user: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

async fn session(
    stream: TcpStream,
    config: Arc<Config>,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let mut secure = config.tls == TlsMode::Implicit;
    let io: Box<dyn Io> = match (&config.acceptor, secure) {
        (Some(acceptor), true) => Box::new(acceptor.accept(stream).await?),
        _ => Box::new(stream),
    };
    let mut conn: Conn = BufReader::new(io);
    reply(&mut conn, "220 localhost ESMTP latchkey test server").await?;
    let mut t = Transaction::default();
    while let Some(line) = read_line(&mut conn).await? {
        let (verb, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let arg = arg.trim();
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                t = Transaction {
                    helo: true,
                    user: t.user.take(),
                    ..Transaction::default()
                };
                let mut lines = vec!["localhost greets you".to_owned(), "8BITMIME".to_owned()];
                if config.tls == TlsMode::StartTls && !secure {
                    lines.push("STARTTLS".into());
                }
                if config.auth.is_some() && (secure || config.tls == TlsMode::Plain) {
                    lines.push("AUTH PLAIN LOGIN".into());
                }
                lines.push("SIZE 10485760".into());
                let last = lines.len() - 1;
                let text: Vec<String> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
                    .collect();
                reply(&mut conn, &text.join("\r\n")).await?;
            }
            "HELO" => {
                t.helo = true;
                reply(&mut conn, "250 localhost").await?;
            }
            "STARTTLS" => {
                let Some(acceptor) = config.acceptor.clone().filter(|_| !secure) else {
                    reply(&mut conn, "502 5.5.1 STARTTLS not available").await?;
                    continue;
                };
                reply(&mut conn, "220 2.0.0 Ready to start TLS").await?;
                let inner = conn.into_inner();
                let tls: Box<dyn Io> = Box::new(acceptor.accept(inner).await?);
                conn = BufReader::new(tls);
                secure = true;
                t = Transaction::default();
            }
            "AUTH" => {
                let Some((user, password)) = config.auth.clone() else {
                    reply(&mut conn, "502 5.5.1 AUTH not available").await?;
                    continue;
                };
                let given = auth_exchange(&mut conn, arg).await?;
                if given == Some((user.clone(), password)) {
                    t.user = Some(user);
                    reply(&mut conn, "235 2.7.0 Authentication successful").await?;
                } else {
                    state.lock().unwrap().auth_failures += 1;
                    reply(&mut conn, "535 5.7.8 Authentication credentials invalid").await?;
                }
            }
            "MAIL" => {
                if !t.helo {
                    reply(&mut conn, "503 5.5.1 EHLO first").await?;
                } else if config.auth.is_some() && t.user.is_none() {
                    reply(&mut conn, "530 5.7.0 Authentication required").await?;
                } else if let Some(from) = path_arg(arg, "FROM:") {
                    t.mail_from = Some(from);
                    t.rcpt_to.clear();
                    reply(&mut conn, "250 2.1.0 OK").await?;
                } else {
                    reply(&mut conn, "501 5.5.4 Syntax: MAIL FROM:<address>").await?;
                }
            }
            "RCPT" => {
                if t.mail_from.is_none() {
                    reply(&mut conn, "503 5.5.1 MAIL first").await?;
                } else if let Some(to) = path_arg(arg, "TO:") {
                    t.rcpt_to.push(to);
                    reply(&mut conn, "250 2.1.5 OK").await?;
                } else {
                    reply(&mut conn, "501 5.5.4 Syntax: RCPT TO:<address>").await?;
                }
            }
            "DATA" => {
                if t.rcpt_to.is_empty() {
                    reply(&mut conn, "503 5.5.1 RCPT first").await?;
                    continue;
                }
                reply(&mut conn, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut lines = Vec::new();
                loop {
                    let Some(line) = read_line(&mut conn).await? else {
                        return Ok(());
                    };
                    if line == "." {
                        break;
                    }
                    lines.push(line.strip_prefix('.').map(str::to_owned).unwrap_or(line));
                }
                let raw = lines.join("\r\n");
                let refuse = {
                    let mut s = state.lock().unwrap();
                    if s.refuse_next > 0 {
                        s.refuse_next -= 1;
                        s.refused += 1;
                        true
                    } else {
                        let mail = parse_mail(
                            raw,
                            t.mail_from.take().unwrap_or_default(),
                            std::mem::take(&mut t.rcpt_to),
                            secure,
                            t.user.clone(),
                        );
                        s.messages.push(mail);
                        false
                    }
                };
                t.mail_from = None;
                t.rcpt_to.clear();
                if refuse {
                    reply(&mut conn, "451 4.3.0 Try again later").await?;
                } else {
                    reply(&mut conn, "250 2.0.0 OK: queued").await?;
                }
            }
            "RSET" => {
                t.mail_from = None;
                t.rcpt_to.clear();
                reply(&mut conn, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut conn, "250 2.0.0 OK").await?,
            "QUIT" => {
                reply(&mut conn, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut conn, "500 5.5.2 Command not recognised").await?,
        }
    }
    Ok(())
}

fn b64_text(s: &str) -> Option<String> {
    B64.decode(s.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// The (user, password) of an AUTH PLAIN or AUTH LOGIN exchange.
async fn auth_exchange(conn: &mut Conn, arg: &str) -> std::io::Result<Option<(String, String)>> {
    let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
    match mechanism.to_ascii_uppercase().as_str() {
        "PLAIN" => {
            let response = if initial.is_empty() {
                reply(conn, "334 ").await?;
                read_line(conn).await?.unwrap_or_default()
            } else {
                initial.to_owned()
            };
            Ok(b64_text(&response).and_then(|s| {
                let mut parts = s.split('\0');
                let _authzid = parts.next()?;
                Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
            }))
        }
        "LOGIN" => {
            let user = if initial.is_empty() {
                reply(conn, "334 VXNlcm5hbWU6").await?;
                read_line(conn).await?.unwrap_or_default()
            } else {
                initial.to_owned()
            };
            reply(conn, "334 UGFzc3dvcmQ6").await?;
            let password = read_line(conn).await?.unwrap_or_default();
            Ok(b64_text(&user).zip(b64_text(&password)))
        }
        _ => Ok(None),
    }
}
