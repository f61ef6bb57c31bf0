//! `MAIL_RATE_PER_SECOND` and `MAIL_RATE_PER_HOUR` hold for every instance on the
//! database together: two instances that may each send 4 a second send 4 a second
//! between them, not 8.

use std::time::Duration;

use crate::on_both_backends;
use crate::support::{Backend, SmtpServer, TestApp};

on_both_backends!(
    two_instances_keep_to_one_rate_between_them,
    two_instances_keep_to_one_hourly_limit_between_them,
);

async fn confirmed_people(app: &TestApp, token: &str, n: usize) {
    for i in 0..n {
        app.add_confirmed(token, &format!("reader{i}@example.org"))
            .await;
    }
}

async fn two_instances_keep_to_one_rate_between_them(backend: Backend) {
    const RATE: u32 = 4;
    const COPIES: usize = 40;
    let smtp = SmtpServer::start().await;
    let mut app =
        TestApp::spawn_with(backend, |s| s.mail.rate_per_second = RATE, &smtp.url()).await;
    app.smtp = Some(smtp);
    let _second = app
        .another_instance_with(|s| s.mail.rate_per_second = RATE)
        .await;
    let token = app.api_token("rate").await;
    confirmed_people(&app, &token, COPIES).await;
    app.send_issue(&token, "Paced").await;
    let copies = app.smtp().wait_for_subject("Paced", COPIES).await;
    // 40 copies at 4 a second take ten windows of a second, so at least nine seconds
    // from the first to the last; at 4 a second each, two instances would take five.
    let first = copies.iter().map(|c| c.at).min().unwrap();
    let last = copies.iter().map(|c| c.at).max().unwrap();
    let span = last - first;
    assert!(
        span >= Duration::from_secs(8),
        "{COPIES} copies went out in {span:?}: faster than {RATE} a second"
    );
    let mut to: Vec<&String> = copies.iter().map(|c| &c.to[0]).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), COPIES, "each once");
}

async fn two_instances_keep_to_one_hourly_limit_between_them(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let mut app = TestApp::spawn_with(backend, |s| s.mail.rate_per_hour = 5, &smtp.url()).await;
    app.smtp = Some(smtp);
    let _second = app
        .another_instance_with(|s| s.mail.rate_per_hour = 5)
        .await;
    let token = app.api_token("rate").await;
    confirmed_people(&app, &token, 12).await;
    app.send_issue(&token, "Hourly").await;
    app.smtp().wait_for_subject("Hourly", 5).await;
    // Both workers have had their chance at the hour's budget: it is spent.
    let db = app.db.inspect().await;
    crate::support::wait_until("both workers find the hour spent", || async {
        db.count("SELECT count(*) FROM deliveries WHERE status = 'sending'")
            .await
            == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.smtp().with_subject("Hourly").len(), 5);
    assert_eq!(
        db.count("SELECT count(*) FROM deliveries WHERE status = 'queued'")
            .await,
        7
    );
}
