//! Delivering the confirmation mail through a relay that misbehaves: temporary
//! refusals are retried, permanent ones recorded, and a relay that is down loses nothing.

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{Backend, Fault, SmtpServer, TestApp, wait_until};

on_both_backends!(
    a_451_is_retried_and_delivered,
    a_550_fails_the_mail_and_keeps_the_reply,
    a_relay_that_hangs_up_is_retried,
    a_relay_that_is_down_loses_no_sign_up,
    retries_stop_at_the_limit,
    a_sign_up_wakes_the_worker_at_once,
    connections_are_reused_and_replaced_when_the_relay_closes_them,
);

async fn a_451_is_retried_and_delivered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.smtp()
        .fail_next(Fault::Reply(451, "4.7.1 Greylisted, try again later"));

    assert_eq!(
        app.sign_up("grey@example.org").await.status(),
        StatusCode::OK
    );

    let mails = app.smtp().wait_for(1).await;
    assert_eq!(mails[0].to, vec!["grey@example.org"]);
    assert_eq!(app.smtp().rcpt_attempts(), 2);
    let db = app.db.inspect().await;
    wait_until("the mail is recorded as sent", || async {
        db.count("SELECT count(*) FROM outbox WHERE status = 'sent' AND attempts = 2")
            .await
            == 1
    })
    .await;
    assert_eq!(
        db.texts("SELECT smtp_reply FROM outbox").await,
        vec![Some("250 2.0.0 Ok: queued as TEST1".to_owned())]
    );
    // The link in the mail that finally went out works.
    assert_eq!(
        app.confirm(&mails[0].confirmation_token()).await.status(),
        StatusCode::OK
    );
}

async fn a_550_fails_the_mail_and_keeps_the_reply(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.smtp().fail_recipient(
        "nobody@example.org",
        Fault::Reply(550, "5.1.1 No such user here"),
    );

    assert_eq!(
        app.sign_up("nobody@example.org").await.status(),
        StatusCode::OK
    );

    let db = app.db.inspect().await;
    wait_until("the mail is recorded as failed", || async {
        db.count("SELECT count(*) FROM outbox WHERE status = 'failed'")
            .await
            == 1
    })
    .await;
    let error = db
        .texts("SELECT last_error FROM outbox")
        .await
        .remove(0)
        .unwrap();
    assert!(error.contains("550"), "{error}");
    assert_eq!(
        error.matches("No such user here").count(),
        1,
        "the relay's words once: {error}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE attempts = 1")
            .await,
        1
    );
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE sealed_secret IS NULL")
            .await,
        1
    );
    assert!(app.smtp().received().is_empty());
    // The sign-up itself stands: they can ask again.
    assert_eq!(db.count("SELECT count(*) FROM subscriptions").await, 1);
}

async fn a_relay_that_hangs_up_is_retried(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.smtp().fail_next(Fault::HangUp);

    app.sign_up("hangup@example.org").await;

    let mails = app.smtp().wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["hangup@example.org"]);
    let db = app.db.inspect().await;
    wait_until("the mail is recorded as sent", || async {
        db.count("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .await
            == 1
    })
    .await;
}

async fn a_relay_that_is_down_loses_no_sign_up(backend: Backend) {
    // A port with nothing listening on it, for now.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut app = TestApp::spawn_with(backend, |_| {}, &format!("smtp://127.0.0.1:{port}")).await;

    let response = app.sign_up("patient@example.org").await;
    assert_eq!(response.status(), StatusCode::OK);
    let db = app.db.inspect().await;
    wait_until("a delivery attempt has failed", || async {
        db.count("SELECT count(*) FROM outbox WHERE status = 'queued' AND attempts >= 1 AND last_error IS NOT NULL")
            .await
            == 1
    })
    .await;

    // The relay comes back.
    app.smtp = Some(SmtpServer::start_on(port).await);

    let mails = app.smtp().wait_for(1).await;
    assert_eq!(mails[0].to, vec!["patient@example.org"]);
    assert_eq!(
        app.confirm(&mails[0].confirmation_token()).await.status(),
        StatusCode::OK
    );
}

async fn retries_stop_at_the_limit(backend: Backend) {
    let smtp = SmtpServer::start().await;
    smtp.fail_recipient("busy@example.org", Fault::Reply(452, "4.2.2 Mailbox full"));
    let mut app = TestApp::spawn_with(backend, |s| s.mail.max_attempts = 3, &smtp.url()).await;
    app.smtp = Some(smtp);

    app.sign_up("busy@example.org").await;

    let db = app.db.inspect().await;
    wait_until("the mail is given up", || async {
        db.count("SELECT count(*) FROM outbox WHERE status = 'failed' AND attempts = 3")
            .await
            == 1
    })
    .await;
    assert_eq!(app.smtp().rcpt_attempts(), 3);
    let error = db
        .texts("SELECT last_error FROM outbox")
        .await
        .remove(0)
        .unwrap();
    assert!(error.contains("Mailbox full"), "{error}");
}

async fn a_sign_up_wakes_the_worker_at_once(backend: Backend) {
    // With nothing due, the worker would sleep for an hour: only the wake-up that a
    // sign-up sends can get this mail out before the test's deadline.
    let smtp = SmtpServer::start().await;
    let mut app = TestApp::spawn_with(
        backend,
        |s| s.mail.poll_interval = std::time::Duration::from_secs(3600),
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);
    // Let the worker finish its first (empty) look and go to sleep.
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM outbox").await, 0);

    app.sign_up("prompt@example.org").await;

    let mails = app.smtp().wait_for(1).await;
    assert_eq!(mails[0].to, vec!["prompt@example.org"]);
}

async fn connections_are_reused_and_replaced_when_the_relay_closes_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (n, email) in ["one@example.org", "two@example.org", "three@example.org"]
        .iter()
        .enumerate()
    {
        app.sign_up(email).await;
        app.smtp().wait_for(n + 1).await;
    }
    assert_eq!(app.smtp().connections(), 1, "one connection for all three");

    app.smtp().close_connections().await;
    app.sign_up("four@example.org").await;

    let mails = app.smtp().wait_for(4).await;
    assert_eq!(mails[3].to, vec!["four@example.org"]);
    assert_eq!(app.smtp().connections(), 2);
    let db = app.db.inspect().await;
    wait_until(
        "every mail is recorded as sent at the first attempt",
        || async {
            db.count("SELECT count(*) FROM outbox WHERE status = 'sent' AND attempts = 1")
                .await
                == 4
        },
    )
    .await;
}
