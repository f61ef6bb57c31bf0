//! The bounce mailbox over IMAP, against a real Dovecot: what is delivered into it is
//! taken by the running service (woken by IDLE), acted on, and moved to `Processed` or
//! `Unrecognised`, never deleted; TLS is checked against the CA it is told to trust.

use std::time::Duration;

use newsletter::inbound::imap::ImapSettings;

use crate::on_both_backends;
use crate::support::{
    Backend,
    dovecot::Dovecot,
    returns::{
        BOUNCES, app_with_bounces, complaint, copy_to, dsn, out_of_office, unsubscribe_mail,
    },
    wait_until,
};

on_both_backends!(an_issue_to_four_comes_back_four_ways_through_the_mailbox,);

fn imap_settings(dovecot: &Dovecot, implicit_tls: bool) -> ImapSettings {
    ImapSettings::parse(
        &dovecot.url(implicit_tls),
        Some(dovecot.ca_file()),
        None,
        Duration::from_secs(1),
    )
    .unwrap()
}

async fn an_issue_to_four_comes_back_four_ways_through_the_mailbox(backend: Backend) {
    let dovecot = Dovecot::start().await;
    let imap = imap_settings(&dovecot, true);
    let app = app_with_bounces(backend, |settings| settings.bounce_imap = Some(imap)).await;
    let people = [
        "gone@example.org",
        "angry@example.org",
        "away@example.org",
        "leaving@example.org",
    ];
    for person in people {
        app.confirmed_subscriber(person).await;
    }
    let token = app.api_token("ci").await;
    let winter = app.send_issue(&token, "Winter news").await;
    let copies = app.smtp().wait_for_subject("Winter news", 4).await;

    let bounce = dsn(
        copy_to(&copies, "gone@example.org"),
        "5.1.1",
        "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
    );
    let human = "From: someone@example.net\r\nTo: bounces@news.example.org\r\nSubject: A question\r\n\r\nHow do I advertise in the newsletter?\r\n".to_owned();
    dovecot
        .deliver(&[
            bounce.clone(),
            complaint(copy_to(&copies, "angry@example.org")),
            out_of_office(copy_to(&copies, "away@example.org")),
            unsubscribe_mail(copy_to(&copies, "leaving@example.org")),
            human,
        ])
        .await;
    dovecot.wait_for("Processed", 4).await;
    dovecot.wait_for("Unrecognised", 1).await;
    assert_eq!(dovecot.count("INBOX").await, 0);
    assert_eq!(
        dovecot.subjects("Unrecognised").await,
        ["Subject: A question"]
    );

    let db = app.db.inspect().await;
    let statuses = db
        .texts(
            "SELECT s.email || ' ' || sub.status FROM subscriptions sub
             JOIN subscribers s ON s.id = sub.subscriber_id ORDER BY s.email",
        )
        .await;
    assert_eq!(
        statuses,
        [
            "angry@example.org complained",
            "away@example.org confirmed",
            "gone@example.org bounced",
            "leaving@example.org unsubscribed",
        ]
        .map(|s| Some(s.to_owned()))
    );
    assert_eq!(
        db.count("SELECT count(*) FROM inbound_messages WHERE source = 'imap' AND outcome = 'unrecognised'")
            .await,
        1,
        "what was not understood is kept, with the raw message"
    );

    // The issue's report shows each.
    let stats = app.stats(&token, &winter).await;
    assert_eq!(
        [
            &stats["hard_bounces"],
            &stats["complaints"],
            &stats["unsubscribed"]
        ],
        [1, 1, 1],
        "{stats}"
    );

    // The same bounce delivered twice (a relay's retry) is moved, and taken once.
    dovecot.deliver(&[bounce]).await;
    dovecot.wait_for("Processed", 5).await;
    assert_eq!(db.count("SELECT count(*) FROM inbound_messages").await, 5);

    wait_until("the winter issue is sent", || async {
        db.count("SELECT count(*) FROM issues WHERE status = 'sent'")
            .await
            == 1
    })
    .await;
    app.send_issue(&token, "Spring news").await;
    let spring = app.smtp().wait_for_subject("Spring news", 1).await;
    assert_eq!(spring[0].to, ["away@example.org"]);
}

/// `newsletter bounces fetch`: one pass over the mailbox, with the settings an operator
/// gives it.
async fn fetch(db_url: &str, url: &str, ca_file: Option<&std::path::Path>) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsletter"));
    command
        .args(["bounces", "fetch"])
        .env("DATABASE_URL", db_url)
        .env("SECRET_KEY", crate::support::SECRET_KEY)
        .env("BOUNCE_ADDRESS", BOUNCES)
        .env("BOUNCE_IMAP_URL", url)
        .env("RUST_LOG", "warn");
    if let Some(ca_file) = ca_file {
        command.env("BOUNCE_IMAP_CA_FILE", ca_file);
    }
    command.output().await.unwrap()
}

/// STARTTLS on `imap://`, and TLS that trusts only what it should: without the private
/// CA the server's certificate is refused, and so is a wrong password.
#[tokio::test]
async fn the_mailbox_is_reached_with_starttls_and_checked_certificates() {
    let dovecot = Dovecot::start().await;
    let db = crate::support::TestDatabase::create(&Backend::Sqlite).await;
    let message = "From: someone@example.net\r\nSubject: hello\r\n\r\nhi\r\n".to_owned();
    dovecot.deliver(&[message]).await;

    let untrusted = fetch(&db.url, &dovecot.url(true), None).await;
    assert!(!untrusted.status.success());
    let error = String::from_utf8_lossy(&untrusted.stderr);
    assert!(error.contains("TLS"), "{error}");
    assert_eq!(dovecot.count("INBOX").await, 1, "nothing was taken");

    let wrong = dovecot
        .url(false)
        .replace(crate::support::dovecot::PASSWORD, "wrong");
    let refused = fetch(&db.url, &wrong, Some(&dovecot.ca_file())).await;
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("refused the sign-in"), "{error}");
    assert!(
        !error.contains("wrong"),
        "the password is never shown: {error}"
    );

    let taken = fetch(&db.url, &dovecot.url(false), Some(&dovecot.ca_file())).await;
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let said: serde_json::Value = serde_json::from_slice(&taken.stdout).unwrap();
    assert_eq!(said["taken"], 1);
    assert_eq!(dovecot.count("Unrecognised").await, 1);
}
