//! Messages that come back, made for a copy a test app sent: a DSN from the receiving
//! system, an ARF complaint, an out-of-office reply, a person's mail to the copy's
//! unsubscribe address. Each goes to the address the copy names (its envelope sender,
//! or its `List-Unsubscribe` mailto), as a real one would.

use super::{
    Backend, TestApp,
    smtp::{ReceivedMail, SmtpServer},
};

/// The bounce mailbox of the tests' apps.
pub const BOUNCES: &str = "bounces@news.example.org";

/// A test app with `BOUNCE_ADDRESS` set (and what `customise` sets), sending to a test
/// SMTP server that records every copy.
pub async fn app_with_bounces(
    backend: Backend,
    customise: impl FnOnce(&mut newsletter::settings::Settings),
) -> TestApp {
    let smtp = SmtpServer::start().await;
    let mut app = TestApp::spawn_with(
        backend,
        |settings| {
            settings.bounce_address = Some(BOUNCES.into());
            customise(settings);
        },
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);
    app
}

/// The copy that went to `address`.
pub fn copy_to<'a>(copies: &'a [ReceivedMail], address: &str) -> &'a ReceivedMail {
    copies
        .iter()
        .find(|copy| copy.to == [address])
        .unwrap_or_else(|| panic!("no copy to {address}"))
}

/// A Postfix-style DSN saying `status` for the copy's recipient.
pub fn dsn(copy: &ReceivedMail, status: &str, words: &str) -> String {
    let recipient = &copy.to[0];
    let message_id = copy.header("Message-ID").unwrap_or_default();
    let action = if status.starts_with('4') {
        "delayed"
    } else {
        "failed"
    };
    format!(
        "Return-Path: <>\r\n\
         Delivered-To: {return_path}\r\n\
         From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
         To: {return_path}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Auto-Submitted: auto-replied\r\n\
         Message-Id: <{unique}@mx.example.net>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         Your message could not be delivered.\r\n\
         \r\n\
         --B\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.net\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: {action}\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; {words}\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         To: {recipient}\r\n\
         Message-ID: {message_id}\r\n\
         \r\n\
         --B--\r\n",
        return_path = copy.from,
        unique = uuid::Uuid::now_v7().simple(),
    )
}

/// An RFC 5965 abuse report from the recipient's provider.
pub fn complaint(copy: &ReceivedMail) -> String {
    let recipient = &copy.to[0];
    let message_id = copy.header("Message-ID").unwrap_or_default();
    format!(
        "From: feedback@fbl.example.net\r\n\
         To: {return_path}\r\n\
         Subject: Complaint about a message\r\n\
         Message-Id: <{unique}@fbl.example.net>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\
         \r\n\
         --F\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         A user reported this message as spam.\r\n\
         \r\n\
         --F\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: ExampleFBL/1.0\r\n\
         Version: 1\r\n\
         Original-Rcpt-To: {recipient}\r\n\
         \r\n\
         --F\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         To: {recipient}\r\n\
         Message-ID: {message_id}\r\n\
         \r\n\
         --F--\r\n",
        return_path = copy.from,
        unique = uuid::Uuid::now_v7().simple(),
    )
}

/// An out-of-office reply from the recipient.
pub fn out_of_office(copy: &ReceivedMail) -> String {
    format!(
        "From: {recipient}\r\n\
         To: {return_path}\r\n\
         Subject: Out of office: {subject}\r\n\
         Auto-Submitted: auto-replied\r\n\
         Message-Id: <{unique}@example.org>\r\n\
         \r\n\
         I am away until Monday.\r\n",
        recipient = copy.to[0],
        return_path = copy.from,
        subject = copy.header("Subject").unwrap_or_default(),
        unique = uuid::Uuid::now_v7().simple(),
    )
}

/// The recipient's own mail to the copy's `List-Unsubscribe` mailto address.
pub fn unsubscribe_mail(copy: &ReceivedMail) -> String {
    let header = copy.header("List-Unsubscribe").unwrap_or_default();
    let address = header
        .split("mailto:")
        .nth(1)
        .and_then(|rest| rest.split(['?', '>']).next())
        .expect("the copy has a mailto unsubscribe address");
    format!(
        "From: {recipient}\r\n\
         To: {address}\r\n\
         Subject: unsubscribe\r\n\
         Message-Id: <{unique}@example.org>\r\n\
         \r\n\
         Please take me off.\r\n",
        recipient = copy.to[0],
        unique = uuid::Uuid::now_v7().simple(),
    )
}

/// Runs `newsletter bounces ingest` with `raw` on its standard input, against the test
/// app's database and key, as an MTA's pipe would.
pub async fn ingest(db_url: &str, bounce_address: &str, raw: &str) -> std::process::Output {
    ingest_with(db_url, bounce_address, raw, &[]).await
}

pub async fn ingest_with(
    db_url: &str,
    bounce_address: &str,
    raw: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    use std::io::Write;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_newsletter"));
    command
        .args(["bounces", "ingest"])
        .env("DATABASE_URL", db_url)
        .env("SECRET_KEY", super::SECRET_KEY)
        .env("BOUNCE_ADDRESS", bounce_address)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let raw = raw.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("the newsletter binary did not run");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(raw.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}
