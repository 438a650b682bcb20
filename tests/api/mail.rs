//! Outgoing mail end to end: the real `Mailer`, the lettre SMTP adapter (or the outbox) and
//! a real SMTP server on loopback (`smtp_server`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use latchkey::config::Settings;
use latchkey::domain::Email;
use latchkey::mail_transport::{load_templates, SmtpTransport};
use latchkey::services::{Mail, MailError, MailKind, MailStats, Mailer, MailerOptions};
use latchkey::startup::build_mailer;

use crate::smtp_server::{ReceivedMail, SmtpServer, TestCa};

const WAIT: Duration = Duration::from_secs(10);
const FROM: &str = "Latchkey Test <no-reply@id.example.com>";

fn settings(pairs: &[(&str, String)]) -> Settings {
    Settings::load(None, pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// SMTP to the test server on 127.0.0.1, plain (`none`) unless `extra` says otherwise.
fn smtp_settings(port: u16, extra: &[(&str, String)]) -> Settings {
    let mut pairs = vec![
        ("LATCHKEY_MAIL_TRANSPORT", "smtp".to_owned()),
        ("LATCHKEY_MAIL_FROM", FROM.to_owned()),
        ("LATCHKEY_SMTP_HOST", "127.0.0.1".to_owned()),
        ("LATCHKEY_SMTP_PORT", port.to_string()),
        ("LATCHKEY_SMTP_SECURITY", "none".to_owned()),
        ("LATCHKEY_SMTP_TIMEOUT_MS", "5000".to_owned()),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k, v.clone()));
    }
    settings(&pairs)
}

/// The real SMTP adapter behind a queue that retries quickly.
fn quick_retry_mailer(settings: &Settings, max_attempts: u32) -> Mailer {
    let templates = load_templates(settings.mail.templates_dir.as_deref()).unwrap();
    let transport = Arc::new(SmtpTransport::new(&settings.mail, 2).unwrap());
    Mailer::start(
        templates,
        transport,
        MailerOptions {
            from: settings.mail.from.clone(),
            max_attempts,
            retry_delay: Duration::from_millis(50),
            ..MailerOptions::default()
        },
    )
}

fn mail(kind: MailKind, to: &str, vars: &[(&'static str, &str)]) -> Mail {
    Mail {
        kind,
        to: Email::parse(to).unwrap(),
        display_name: Some("Ann Example".into()),
        vars: vars.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    }
}

/// A kind, its template values and the subject it should arrive with.
type Case = (
    MailKind,
    &'static [(&'static str, &'static str)],
    &'static str,
);

fn assert_well_formed(m: &ReceivedMail, to: &str) {
    assert_eq!(m.mail_from, "no-reply@id.example.com");
    assert_eq!(m.rcpt_to, vec![to.to_owned()]);
    let from = m.decoded_header("From").unwrap();
    assert!(
        from.contains("Latchkey Test") && from.contains("<no-reply@id.example.com>"),
        "{from}"
    );
    let to_header = m.decoded_header("To").unwrap();
    assert!(to_header.contains(&format!("<{to}>")), "{to_header}");
    let date = m.header("Date").unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc2822(date).is_ok(),
        "Date: {date}"
    );
    let id = m.header("Message-ID").unwrap();
    assert!(
        id.starts_with('<') && id.ends_with("@id.example.com>"),
        "Message-ID: {id}"
    );
    assert!(m
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));
    assert!(m.text.is_some() && m.html.is_some(), "both parts");
    assert!(m.html().contains("<html") && m.html().contains("</html>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mail_kind_arrives_over_smtp_with_its_subject_headers_and_both_parts() {
    let server = SmtpServer::start().await;
    let mailer = build_mailer(&smtp_settings(server.port(), &[])).unwrap();
    let to = "ann@example.com";
    const LINK: &str = "https://id.example.com/verify?token=lk_vt_abc&client_id=web";
    let link = LINK;
    let cases: [Case; 6] = [
        (
            MailKind::VerifyEmail,
            &[("link", LINK), ("expires_in_minutes", "1440")],
            "Confirm your email address for Latchkey",
        ),
        (
            MailKind::SignupExisting,
            &[("reset_link", LINK)],
            "You already have a Latchkey account",
        ),
        (
            MailKind::PasswordReset,
            &[("link", LINK), ("expires_in_minutes", "60")],
            "Reset your Latchkey password",
        ),
        (
            MailKind::MagicLink,
            &[
                ("link", LINK),
                ("code", "493201"),
                ("expires_in_minutes", "15"),
            ],
            "Sign in to Latchkey",
        ),
        (
            MailKind::Invite,
            &[("link", LINK), ("expires_in_minutes", "10080")],
            "You are invited to Latchkey",
        ),
        (
            MailKind::PasswordChanged,
            &[],
            "Your Latchkey password was changed",
        ),
    ];
    for (kind, vars, subject) in cases {
        mailer.enqueue(mail(kind, to, vars)).unwrap();
        let m = server.wait_for(to, WAIT).await;
        assert_eq!(m.subject, subject, "{kind:?}");
        assert_well_formed(&m, to);
        assert!(m.text().starts_with("Hello Ann Example,"), "{kind:?}");
        assert!(m.text().contains(to), "{kind:?}: the address is named");
        if kind == MailKind::PasswordChanged {
            assert_eq!(m.find("https://"), None);
        } else {
            // The link survives the transfer encoding intact, raw in text and escaped in HTML.
            assert_eq!(m.find("https://id.example.com/").as_deref(), Some(link));
            assert!(m.html().contains(
                "href=\"https://id.example.com/verify?token=lk_vt_abc&amp;client_id=web\""
            ));
        }
        for (name, value) in vars
            .iter()
            .filter(|(n, _)| n.ends_with("minutes") || *n == "code")
        {
            assert!(m.text().contains(value), "{kind:?}: {name}");
            assert!(m.html().contains(value), "{kind:?}: {name}");
        }
    }
    assert!(mailer.drain(WAIT).await);
    assert_eq!(
        mailer.stats(),
        MailStats {
            delivered: 6,
            failed: 0,
            retried: 0
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_with_optional_links_left_empty_reads_well_without_them() {
    let server = SmtpServer::start().await;
    let mailer = build_mailer(&smtp_settings(server.port(), &[])).unwrap();
    let to = "bob@example.com";
    let mut magic = mail(
        MailKind::MagicLink,
        to,
        &[
            ("link", ""),
            ("code", "771204"),
            ("expires_in_minutes", "15"),
        ],
    );
    magic.display_name = None;
    mailer.enqueue(magic).unwrap();
    let m = server.wait_for(to, WAIT).await;
    assert!(m.text().starts_with("Hello,"), "{}", m.text());
    assert!(m.text().contains("enter this code:") && m.text().contains("771204"));
    assert!(!m.text().contains("open this link") && !m.html().contains("href"));
    mailer
        .enqueue(mail(MailKind::SignupExisting, to, &[("reset_link", "")]))
        .unwrap();
    let m = server.wait_for(to, WAIT).await;
    assert!(m.text().contains("ask for a reset on the sign-in page"));
    assert_eq!(m.find("https://"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_display_name_is_escaped_in_html_and_cannot_inject_headers() {
    let server = SmtpServer::start().await;
    let mailer = build_mailer(&smtp_settings(server.port(), &[])).unwrap();
    let to = "mallory@example.com";
    let hostile = "<script>alert(\"x\")</script> & Co\r\nBcc: victim@example.com";
    let mut m = mail(
        MailKind::VerifyEmail,
        to,
        &[
            ("link", "https://id.example.com/v?t=1"),
            ("expires_in_minutes", "5"),
        ],
    );
    m.display_name = Some(hostile.into());
    mailer.enqueue(m).unwrap();
    let got = server.wait_for(to, WAIT).await;
    assert!(got
        .html()
        .contains("Hello &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co"));
    assert!(!got.html().contains("<script>"));
    assert!(got.text().contains("<script>alert(\"x\")</script> & Co"));
    assert_eq!(got.rcpt_to, vec![to.to_owned()]);
    assert!(got.header("Bcc").is_none(), "{:?}", got.headers);
    let to_header = got.decoded_header("To").unwrap();
    assert!(to_header.ends_with(&format!("<{to}>")), "{to_header}");
    assert!(!to_header.contains('\n') && !to_header.contains('\r'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_override_replaces_that_file_only_and_gets_the_product_name() {
    let server = SmtpServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("password_reset.subject"),
        "{{ product_name }}: new password for {{ email }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("password_reset.txt"),
        "Reset at {{ link }} within {{ expires_in_minutes }} min.\n",
    )
    .unwrap();
    let s = smtp_settings(
        server.port(),
        &[
            ("LATCHKEY_MAIL_TEMPLATES_DIR", path(dir.path())),
            ("LATCHKEY_MAIL_PRODUCT_NAME", "Acme ID".into()),
        ],
    );
    let mailer = build_mailer(&s).unwrap();
    let to = "carol@example.com";
    let vars = [
        ("link", "https://acme.example/reset/lk_rs_1"),
        ("expires_in_minutes", "60"),
    ];
    mailer
        .enqueue(mail(MailKind::PasswordReset, to, &vars))
        .unwrap();
    let m = server.wait_for(to, WAIT).await;
    assert_eq!(m.subject, "Acme ID: new password for carol@example.com");
    assert_eq!(
        m.text().trim_end(),
        "Reset at https://acme.example/reset/lk_rs_1 within 60 min."
    );
    // The HTML part was not overridden: the built-in one, with the product name.
    assert!(m.html().contains("Acme ID") && m.html().contains("Choose a new password"));
    mailer
        .enqueue(mail(MailKind::PasswordChanged, to, &[]))
        .unwrap();
    assert_eq!(
        server.wait_for(to, WAIT).await.subject,
        "Your Acme ID password was changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_placeholder_in_a_template_override_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("invite.html"),
        "<p>Join {{ product_name }}: {{ invite_url }}</p>",
    )
    .unwrap();
    let s = smtp_settings(25, &[("LATCHKEY_MAIL_TEMPLATES_DIR", path(dir.path()))]);
    let e = build_mailer(&s).err().map(|e| format!("{e:#}")).unwrap();
    assert!(
        e.contains("invite.html") && e.contains("unknown placeholder `invite_url`"),
        "{e}"
    );
    let missing = smtp_settings(
        25,
        &[(
            "LATCHKEY_MAIL_TEMPLATES_DIR",
            path(&dir.path().join("nowhere")),
        )],
    );
    assert!(build_mailer(&missing).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_sent_with_smtp_auth_when_the_relay_requires_it() {
    let server = SmtpServer::with_auth("relay-user", "relay-pass-1").await;
    let s = smtp_settings(
        server.port(),
        &[
            ("LATCHKEY_SMTP_USERNAME", "relay-user".into()),
            ("LATCHKEY_SMTP_PASSWORD", "relay-pass-1".into()),
        ],
    );
    let mailer = build_mailer(&s).unwrap();
    let to = "dave@example.com";
    mailer
        .enqueue(mail(MailKind::PasswordChanged, to, &[]))
        .unwrap();
    let m = server.wait_for(to, WAIT).await;
    assert_eq!(m.authenticated_as.as_deref(), Some("relay-user"));
    assert!(!format!("{s:?} {mailer:?}").contains("relay-pass-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_smtp_credentials_are_a_permanent_failure_and_not_retried() {
    let server = SmtpServer::with_auth("relay-user", "relay-pass-1").await;
    let s = smtp_settings(
        server.port(),
        &[
            ("LATCHKEY_SMTP_USERNAME", "relay-user".into()),
            ("LATCHKEY_SMTP_PASSWORD", "wrong".into()),
        ],
    );
    let mailer = quick_retry_mailer(&s, 3);
    mailer
        .enqueue(mail(MailKind::PasswordChanged, "erin@example.com", &[]))
        .unwrap();
    assert!(mailer.drain(WAIT).await);
    assert_eq!(
        mailer.stats(),
        MailStats {
            delivered: 0,
            failed: 1,
            retried: 0
        }
    );
    assert_eq!(server.auth_failures(), 1);
    assert_eq!(server.count_to("erin@example.com"), 0);
    // Without credentials at all, a relay that requires AUTH refuses permanently too.
    let mailer = quick_retry_mailer(&smtp_settings(server.port(), &[]), 3);
    mailer
        .enqueue(mail(MailKind::PasswordChanged, "erin@example.com", &[]))
        .unwrap();
    assert!(mailer.drain(WAIT).await);
    assert_eq!(mailer.stats().failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_refusal_is_retried_and_then_delivered() {
    let server = SmtpServer::start().await;
    server.refuse_next(2);
    let mailer = quick_retry_mailer(&smtp_settings(server.port(), &[]), 3);
    let to = "frank@example.com";
    mailer
        .enqueue(mail(
            MailKind::Invite,
            to,
            &[
                ("link", "https://id.example.com/i/1"),
                ("expires_in_minutes", "60"),
            ],
        ))
        .unwrap();
    assert!(mailer.drain(WAIT).await);
    assert_eq!(server.refused(), 2);
    assert_eq!(server.count_to(to), 1);
    assert_eq!(
        mailer.stats(),
        MailStats {
            delivered: 1,
            failed: 0,
            retried: 2
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_refused_on_every_attempt_is_given_up_after_the_last_one() {
    let server = SmtpServer::start().await;
    server.refuse_next(10);
    let mailer = quick_retry_mailer(&smtp_settings(server.port(), &[]), 3);
    mailer
        .enqueue(mail(MailKind::PasswordChanged, "gina@example.com", &[]))
        .unwrap();
    assert!(mailer.drain(WAIT).await);
    assert_eq!(server.refused(), 3);
    assert_eq!(
        mailer.stats(),
        MailStats {
            delivered: 0,
            failed: 1,
            retried: 2
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mail_queue_refuses_with_queue_full_and_drain_gives_up_at_its_timeout() {
    // A relay that accepts connections and never greets: every delivery hangs until the
    // SMTP timeout, so the queue fills up.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let s = smtp_settings(port, &[("LATCHKEY_MAIL_QUEUE_CAPACITY", "2".into())]);
    let mailer = build_mailer(&s).unwrap();
    let results: Vec<_> = (0..20)
        .map(|_| mailer.enqueue(mail(MailKind::PasswordChanged, "hal@example.com", &[])))
        .collect();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(MailError::QueueFull)))
        .count();
    // At most: 2 queued, a few in flight, one held by the worker.
    assert!(refused >= 20 - 2 - 4 - 1, "{refused} refused");
    let started = std::time::Instant::now();
    assert!(!mailer.drain(Duration::from_millis(300)).await);
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_until_queued_mail_is_delivered() {
    let server = SmtpServer::start().await;
    let mailer = build_mailer(&smtp_settings(server.port(), &[])).unwrap();
    for i in 0..8 {
        mailer
            .enqueue(mail(
                MailKind::PasswordChanged,
                &format!("user{i}@example.com"),
                &[],
            ))
            .unwrap();
    }
    assert!(mailer.drain(WAIT).await);
    // No waiting here: drain returned only once all eight were accepted by the relay.
    assert_eq!(server.messages().len(), 8);
    assert_eq!(mailer.stats().delivered, 8);
    assert!(
        mailer.drain(Duration::from_millis(10)).await,
        "nothing pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_transport_writes_a_parseable_eml_file_in_a_private_folder() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let s = settings(&[
        ("LATCHKEY_MAIL_OUTBOX_DIR", path(&outbox)),
        ("LATCHKEY_MAIL_FROM", FROM.to_owned()),
    ]);
    let mailer = build_mailer(&s).unwrap();
    assert_eq!(mailer.transport_name(), "outbox");
    let link = "https://id.example.com/verify?token=lk_vt_outbox";
    mailer
        .enqueue(mail(
            MailKind::VerifyEmail,
            "ivy@example.com",
            &[("link", link), ("expires_in_minutes", "30")],
        ))
        .unwrap();
    assert!(mailer.drain(WAIT).await);
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "eml"));
    let m = ReceivedMail::parse(&std::fs::read_to_string(&files[0]).unwrap());
    assert_eq!(m.subject, "Confirm your email address for Latchkey");
    assert_eq!(m.find("https://").as_deref(), Some(link));
    assert!(m.header("Message-ID").is_some() && m.header("Date").is_some());
    assert!(m
        .decoded_header("To")
        .unwrap()
        .contains("<ivy@example.com>"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&outbox), 0o700);
        assert_eq!(mode(&files[0]), 0o600);
    }
}

fn write_ca(ca: &TestCa, dir: &Path) -> String {
    let file = dir.join("ca.pem");
    std::fs::write(&file, &ca.ca_pem).unwrap();
    path(&file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_required_starttls_to_a_relay_with_a_private_ca() {
    let ca = Arc::new(TestCa::new());
    let server = SmtpServer::builder()
        .starttls(ca.clone())
        .auth("relay-user", "relay-pass-1")
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let s = smtp_settings(
        server.port(),
        &[
            ("LATCHKEY_SMTP_SECURITY", "starttls".into()),
            ("LATCHKEY_SMTP_CA_FILE", write_ca(&ca, dir.path())),
            ("LATCHKEY_SMTP_USERNAME", "relay-user".into()),
            ("LATCHKEY_SMTP_PASSWORD", "relay-pass-1".into()),
        ],
    );
    let mailer = build_mailer(&s).unwrap();
    let to = "jo@example.com";
    mailer
        .enqueue(mail(MailKind::PasswordChanged, to, &[]))
        .unwrap();
    let m = server.wait_for(to, WAIT).await;
    assert!(m.tls, "sent after STARTTLS");
    assert_eq!(m.authenticated_as.as_deref(), Some("relay-user"));
    assert_well_formed(&m, to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_implicit_tls_and_an_untrusted_certificate_is_a_permanent_failure() {
    let ca = Arc::new(TestCa::new());
    let server = SmtpServer::builder().implicit_tls(ca.clone()).start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = smtp_settings(
        server.port(),
        &[
            ("LATCHKEY_SMTP_SECURITY", "tls".into()),
            ("LATCHKEY_SMTP_CA_FILE", write_ca(&ca, dir.path())),
        ],
    );
    let mailer = build_mailer(&s).unwrap();
    let to = "kim@example.com";
    mailer
        .enqueue(mail(MailKind::PasswordChanged, to, &[]))
        .unwrap();
    assert!(server.wait_for(to, WAIT).await.tls);
    // Without the private CA, only the public web roots are trusted: refused, not retried.
    let untrusted = smtp_settings(server.port(), &[("LATCHKEY_SMTP_SECURITY", "tls".into())]);
    let mailer = quick_retry_mailer(&untrusted, 3);
    mailer
        .enqueue(mail(MailKind::PasswordChanged, to, &[]))
        .unwrap();
    assert!(mailer.drain(WAIT).await);
    assert_eq!(
        mailer.stats(),
        MailStats {
            delivered: 0,
            failed: 1,
            retried: 0
        }
    );
    assert_eq!(server.count_to(to), 1);
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}
