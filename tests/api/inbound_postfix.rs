//! Real DSNs from a real MTA: the app sends an issue through Postfix, which bounces the
//! copy to an unknown user with a DSN and tells the sender that the copy to an
//! unreachable host is delayed. Both DSNs come back to the copies' own return
//! addresses; taken through the pipe, one ends a subscription and the other, a warning,
//! changes nothing.

use crate::on_both_backends;
use crate::support::{
    Backend, SmtpServer, TestApp, admin,
    postfix::Postfix,
    returns::{BOUNCES, ingest},
};

on_both_backends!(postfixs_own_dsns_are_read_and_acted_on,);

async fn postfixs_own_dsns_are_read_and_acted_on(backend: Backend) {
    // The bounce mailbox's MX: a recording SMTP server.
    let mailbox = SmtpServer::start().await;
    let postfix = Postfix::start(mailbox.port()).await;
    let app = TestApp::spawn_with(
        backend,
        |settings| settings.bounce_address = Some(BOUNCES.into()),
        &postfix.url(),
    )
    .await;
    // Subscribed by import, so that no confirmation mail goes out to bounce first.
    let people = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        people.path(),
        "email,name\nnosuchuser@postfix.test,Nobody\nfar.away@unreachable.test,Far Away\n",
    )
    .unwrap();
    let imported = admin(
        &app.db.url,
        &[
            "import-subscribers",
            people.path().to_str().unwrap(),
            "--source-note",
            "A test of real DSNs",
            "--mode",
            "confirmed",
        ],
    )
    .await;
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let token = app.api_token("ci").await;
    app.send_issue(&token, "Winter news").await;

    let bounce = mailbox
        .wait_for_subject("Undelivered Mail Returned to Sender", 1)
        .await
        .remove(0);
    let delayed = mailbox
        .wait_for_subject("Delayed Mail (still being retried)", 1)
        .await
        .remove(0);
    assert!(
        bounce.to[0].starts_with("bounces+d"),
        "{:?}\n{}",
        bounce.to,
        postfix.log()
    );
    assert!(delayed.to[0].starts_with("bounces+d"), "{:?}", delayed.to);
    for dsn in [&bounce, &delayed] {
        let out = ingest(&app.db.url, BOUNCES, &dsn.data).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let db = app.db.inspect().await;
    assert_eq!(
        db.texts(
            "SELECT s.email || ' ' || sub.status FROM subscriptions sub
             JOIN subscribers s ON s.id = sub.subscriber_id ORDER BY s.email"
        )
        .await,
        [
            Some("far.away@unreachable.test confirmed".to_owned()),
            Some("nosuchuser@postfix.test bounced".to_owned()),
        ]
    );
    assert_eq!(
        db.texts(
            "SELECT kind || ' ' || outcome || ' ' || status_code FROM inbound_messages
             WHERE issue_id IS NOT NULL ORDER BY kind"
        )
        .await,
        [
            Some("hard ended 5.1.1".to_owned()),
            Some("warning ignored 4.4.1".to_owned()),
        ],
        "both are put down to their copies"
    );
}
