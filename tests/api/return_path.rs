//! Each copy's own return address (VERP): with `BOUNCE_ADDRESS` set, the envelope of
//! every mail names the copy it carries, signed, so that a bounce can be put down to it.

use newsletter::{
    inbound::return_path::{CopyRef, Returned},
    keys::KeyRing,
};

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, SmtpServer, TestApp};

on_both_backends!(
    every_copy_goes_out_with_a_return_address_that_names_it,
    without_a_bounce_mailbox_mail_returns_to_its_sender,
);

const BOUNCES: &str = "bounces@news.example.org";

async fn every_copy_goes_out_with_a_return_address_that_names_it(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let mut app = TestApp::spawn_with(
        backend,
        |settings| settings.bounce_address = Some(BOUNCES.into()),
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);
    let ring = KeyRing::new(SECRET_KEY, &[]);

    app.confirmed_subscriber("jo@example.org").await;
    let db = app.db.inspect().await;
    let confirmation_id = db
        .id("SELECT id FROM outbox WHERE kind = $1", "confirmation")
        .await;
    let confirmation = app
        .smtp()
        .wait_for_mail_to(
            "jo@example.org",
            "Confirm your subscription to In Partnership",
        )
        .await;
    assert!(
        confirmation.from.starts_with("bounces+o"),
        "{}",
        confirmation.from
    );
    assert_eq!(
        Returned::from_address(&confirmation.from, BOUNCES, &ring),
        Some(Returned::Bounce(CopyRef::Outbox {
            id: confirmation_id
        }))
    );
    assert_eq!(
        confirmation.header("From").as_deref(),
        Some("\"In Partnership\" <newsletter@localhost>"),
        "what a person sees is unchanged"
    );

    let token = app.api_token("ci").await;
    app.send_issue(&token, "Winter 2026").await;
    let copy = &app.smtp().wait_for_subject("Winter 2026", 1).await[0];
    let jo = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "jo@example.org",
        )
        .await;
    let delivery = CopyRef::Delivery {
        issue_number: 1,
        subscriber_id: jo,
    };
    assert_eq!(
        Returned::from_address(&copy.from, BOUNCES, &ring),
        Some(Returned::Bounce(delivery)),
        "{}",
        copy.from
    );
    // The Message-ID names the copy too, for a bounce that quotes it but lost the
    // envelope.
    let message_id = copy.header("Message-ID").unwrap();
    assert_eq!(
        CopyRef::from_message_id(&message_id, &ring),
        Some(delivery),
        "{message_id}"
    );
    // Leaving by mail: the List-Unsubscribe mailto is the copy's unsubscribe address.
    let list_unsubscribe = copy.header("List-Unsubscribe").unwrap();
    let mailto = list_unsubscribe
        .split("<mailto:")
        .nth(1)
        .and_then(|rest| rest.split('?').next())
        .unwrap();
    assert_eq!(
        Returned::from_address(mailto, BOUNCES, &ring),
        Some(Returned::Unsubscribe(delivery)),
        "{list_unsubscribe}"
    );
    let local = copy.from.split('@').next().unwrap();
    assert!(local.len() <= 64, "SMTP's limit: {}", copy.from);
}

async fn without_a_bounce_mailbox_mail_returns_to_its_sender(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("jo@example.org").await;
    let confirmation = app
        .smtp()
        .wait_for_mail_to(
            "jo@example.org",
            "Confirm your subscription to In Partnership",
        )
        .await;
    assert_eq!(confirmation.from, "newsletter@localhost");
}
