//! Sending an issue: each confirmed subscriber gets it once, with the headers a mail
//! client needs to offer one-click unsubscribe; the relay's refusals, a dropped
//! connection, a crashed worker, a second instance, pause, resume and cancel.

use std::collections::HashMap;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Fault, TestApp, wait_until};

on_both_backends!(
    an_issue_reaches_each_confirmed_subscriber_once_and_one_click_leaves,
    refusals_are_retried_or_failed_per_recipient,
    commands_are_pipelined_only_where_the_relay_offers_it,
    a_relay_that_hangs_up_mid_batch_loses_no_one,
    a_worker_that_dies_mid_send_is_taken_over,
    someone_who_leaves_after_the_issue_starts_is_skipped,
    two_instances_deliver_each_copy_once,
    pause_stops_resume_carries_on_cancel_ends,
    an_hourly_limit_leaves_the_rest_queued,
    a_template_that_cannot_render_is_refused_at_schedule_time,
    wrong_state_changes_are_409,
);

/// Confirmed subscribers a@, b@, c@; d@ pending; e@ confirmed then unsubscribed.
async fn audience(app: &TestApp) {
    for who in ["a", "b", "c", "e"] {
        app.confirmed_subscriber(&format!("{who}@example.org"))
            .await;
    }
    app.sign_up("d@example.org").await;
    let db = app.db.inspect().await;
    db.execute(
        "UPDATE subscriptions SET status = 'unsubscribed' WHERE subscriber_id IN
           (SELECT id FROM subscribers WHERE email = 'e@example.org')",
    )
    .await;
}

fn recipients(mails: &[crate::support::smtp::ReceivedMail]) -> Vec<String> {
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    to
}

async fn wait_for_status(app: &TestApp, token: &str, id: &str, status: &str) {
    wait_until(&format!("the issue is {status}"), || async {
        app.issue_status(token, id).await == status
    })
    .await;
}

async fn an_issue_reaches_each_confirmed_subscriber_once_and_one_click_leaves(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    audience(&app).await;
    let token = app.api_token("ci").await;

    let first = app.send_issue(&token, "Winter 2026").await;

    app.smtp().wait_for_subject("Winter 2026", 3).await;
    wait_for_status(&app, &token, &first, "sent").await;
    let mails = app.smtp().with_subject("Winter 2026");
    assert_eq!(
        recipients(&mails),
        ["a@example.org", "b@example.org", "c@example.org"]
    );
    let mut message_ids = Vec::new();
    for mail in &mails {
        let list_unsubscribe = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
        assert!(
            list_unsubscribe.starts_with("<http://newsletter.test/unsubscribe?token="),
            "{list_unsubscribe}"
        );
        assert!(list_unsubscribe.contains(">, <mailto:newsletter@localhost?subject=unsubscribe"));
        assert_eq!(
            mail.header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        assert_eq!(
            mail.header("List-Id").as_deref(),
            Some("In Partnership <in-partnership.localhost>")
        );
        assert!(mail.header("Date").is_some());
        message_ids.push(mail.header("Message-ID").expect("Message-ID"));
        let body = mail.decoded();
        assert!(body.contains("News from the partnership"));
        assert!(body.contains(">Unsubscribe</a>"));
        assert!(body.contains("Content-Type: text/plain"));
    }
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(message_ids.len(), 3, "every Message-ID is unique");
    assert_eq!(
        app.stats(&token, &first).await,
        json!({"recipients": 3, "sent": 3, "failed": 0, "pending": 0, "skipped": 0, "cancelled": 0, "unsubscribed": 0,
               "hard_bounces": 0, "soft_bounces": 0, "complaints": 0})
    );

    // b@ presses their mail client's unsubscribe button: RFC 8058's POST to the header's URL.
    let b = mails.iter().find(|m| m.to == ["b@example.org"]).unwrap();
    let url = b.header("List-Unsubscribe").unwrap();
    let url = url[1..url.find('>').unwrap()].replace("http://newsletter.test", &app.address);
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let second = app.send_issue(&token, "Spring 2027").await;
    app.smtp().wait_for_subject("Spring 2027", 2).await;
    wait_for_status(&app, &token, &second, "sent").await;
    assert_eq!(
        recipients(&app.smtp().with_subject("Spring 2027")),
        ["a@example.org", "c@example.org"]
    );
    assert_eq!(app.stats(&token, &first).await["unsubscribed"], 1);
    assert_eq!(app.stats(&token, &second).await["unsubscribed"], 0);
}

async fn refusals_are_retried_or_failed_per_recipient(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    audience(&app).await;
    let token = app.api_token("ci").await;
    let smtp = app.smtp();
    smtp.fail_recipient_times(
        "a@example.org",
        Fault::Reply(451, "4.7.1 Try again later"),
        1,
    );
    smtp.fail_recipient("b@example.org", Fault::Reply(550, "5.1.1 Mailbox unknown"));

    let id = app.send_issue(&token, "Refusals").await;

    wait_for_status(&app, &token, &id, "sent").await;
    assert_eq!(
        recipients(&smtp.with_subject("Refusals")),
        ["a@example.org", "c@example.org"]
    );
    let stats = app.stats(&token, &id).await;
    assert_eq!(
        (stats["sent"].clone(), stats["failed"].clone()),
        (json!(2), json!(1))
    );
    let db = app.db.inspect().await;
    let error = db
        .texts("SELECT last_error FROM deliveries WHERE status = 'failed'")
        .await
        .remove(0)
        .unwrap();
    assert!(error.contains("Mailbox unknown"), "{error}");
    assert_eq!(
        db.count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND attempts = 2")
            .await,
        1,
        "a@ went on the second attempt"
    );
}

/// RFC 2920: MAIL, RCPT and DATA go in one write to a relay that offers PIPELINING, and
/// one at a time to one that does not.
async fn commands_are_pipelined_only_where_the_relay_offers_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    audience(&app).await;
    let token = app.api_token("ci").await;
    let smtp = app.smtp();
    let id = app.send_issue(&token, "Pipelined").await;
    wait_for_status(&app, &token, &id, "sent").await;
    let mails = smtp
        .commands()
        .iter()
        .filter(|c| c.starts_with("MAIL"))
        .count();
    assert_eq!(recipients(&smtp.with_subject("Pipelined")).len(), 3);
    assert_eq!(smtp.pipelined_mails(), mails, "every MAIL came pipelined");

    // A relay that stops offering it: new connections send one command at a time.
    smtp.refuse_pipelining();
    smtp.close_connections().await;
    let pipelined = smtp.pipelined_mails();
    let id = app.send_issue(&token, "One at a time").await;
    wait_for_status(&app, &token, &id, "sent").await;
    assert_eq!(
        recipients(&smtp.with_subject("One at a time")),
        ["a@example.org", "b@example.org", "c@example.org"]
    );
    assert_eq!(smtp.pipelined_mails(), pipelined, "none came pipelined");

    // A relay that refuses the second EHLO we say (to read its extensions) still gets
    // the mail, one command at a time.
    smtp.refuse_second_ehlo();
    smtp.close_connections().await;
    let id = app.send_issue(&token, "Strict relay").await;
    wait_for_status(&app, &token, &id, "sent").await;
    assert_eq!(recipients(&smtp.with_subject("Strict relay")).len(), 3);
    assert_eq!(smtp.pipelined_mails(), pipelined);
}

async fn a_relay_that_hangs_up_mid_batch_loses_no_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    audience(&app).await;
    let token = app.api_token("ci").await;
    app.smtp().fail_next(Fault::HangUp);

    let id = app.send_issue(&token, "Hang-up").await;

    wait_for_status(&app, &token, &id, "sent").await;
    assert_eq!(
        recipients(&app.smtp().with_subject("Hang-up")),
        ["a@example.org", "b@example.org", "c@example.org"]
    );
}

/// An app that serves pages but sends nothing, the audience (whose mail a helper
/// instance sent and then stopped), and an issue that the test has started itself:
/// its deliveries exist and nobody is sending them.
async fn started_without_a_worker(
    backend: Backend,
    subject: &str,
) -> (
    TestApp,
    String,
    String,
    std::sync::Arc<dyn newsletter::store::Store>,
) {
    let smtp = crate::support::SmtpServer::start().await;
    let mut app = TestApp::spawn_with(
        backend,
        |s| {
            s.mail.worker = false;
            s.scheduler_interval = std::time::Duration::from_secs(3600);
        },
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);
    let helper = app.another_instance().await;
    audience(&app).await;
    let db = app.db.inspect().await;
    wait_until("the audience's mail has gone", || async {
        db.count("SELECT count(*) FROM outbox WHERE status <> 'sent'")
            .await
            == 0
    })
    .await;
    helper.stop().await;
    let token = app.api_token("ci").await;
    let issue = app
        .create_issue(
            &token,
            json!({"subject": subject, "body_markdown": "News."}),
        )
        .await;
    let id = issue["id"].as_str().unwrap().to_owned();
    // Scheduled behind the app's back, so its scheduler is not woken to start it.
    app.db
        .inspect()
        .await
        .execute("UPDATE issues SET status = 'scheduled', send_at = created_at")
        .await;
    let store = newsletter::store::connect(&app.db.url, 2).await.unwrap();
    assert_eq!(store.start_due_issues(Utc::now()).await.unwrap(), 1);
    (app, token, id, store)
}

async fn a_worker_that_dies_mid_send_is_taken_over(backend: Backend) {
    let (app, token, id, store) = started_without_a_worker(backend, "Crash").await;
    // A worker claims two copies with a one-second lease, then dies without sending.
    let now = Utc::now();
    let claimed = store
        .claim_deliveries(
            uuid::Uuid::nil(),
            now,
            now + chrono::Duration::seconds(1),
            2,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);

    let _new_worker = app.another_instance().await;

    wait_for_status(&app, &token, &id, "sent").await;
    assert_eq!(
        recipients(&app.smtp().with_subject("Crash")),
        ["a@example.org", "b@example.org", "c@example.org"],
        "the two leased copies went once their lease ran out, and nobody twice"
    );
}

async fn someone_who_leaves_after_the_issue_starts_is_skipped(backend: Backend) {
    let (app, token, id, _store) = started_without_a_worker(backend, "Leaving").await;
    app.db
        .inspect()
        .await
        .execute(
            "UPDATE subscriptions SET status = 'unsubscribed' WHERE subscriber_id IN
               (SELECT id FROM subscribers WHERE email = 'b@example.org')",
        )
        .await;

    let _worker = app.another_instance().await;

    wait_for_status(&app, &token, &id, "sent").await;
    assert_eq!(
        recipients(&app.smtp().with_subject("Leaving")),
        ["a@example.org", "c@example.org"]
    );
    let stats = app.stats(&token, &id).await;
    assert_eq!(
        (stats["sent"].clone(), stats["skipped"].clone()),
        (json!(2), json!(1))
    );
}

async fn two_instances_deliver_each_copy_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..30 {
        app.confirmed_subscriber(&format!("reader{i}@example.org"))
            .await;
    }
    let _second = app.another_instance().await;
    let token = app.api_token("ci").await;

    let id = app.send_issue(&token, "Shared").await;

    wait_for_status(&app, &token, &id, "sent").await;
    let mails = app.smtp().with_subject("Shared");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for to in recipients(&mails) {
        *counts.entry(to).or_default() += 1;
    }
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

async fn pause_stops_resume_carries_on_cancel_ends(backend: Backend) {
    let smtp = crate::support::SmtpServer::start().await;
    // Two copies a second, so there is time to pause mid-send.
    let mut app = TestApp::spawn_with(backend, |s| s.mail.rate_per_second = 2, &smtp.url()).await;
    app.smtp = Some(smtp);
    for i in 0..6 {
        app.confirmed_subscriber(&format!("p{i}@example.org")).await;
    }
    let token = app.api_token("ci").await;
    let id = app.send_issue(&token, "Paused").await;
    app.smtp().wait_for_subject("Paused", 1).await;

    let paused = app
        .api(Method::POST, &format!("/api/issues/{id}/pause"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), StatusCode::OK);
    // Nothing of a paused issue can be claimed: new copies stop at once.
    let store = newsletter::store::connect(&app.db.url, 2).await.unwrap();
    let now = Utc::now();
    assert!(
        store
            .claim_deliveries(
                uuid::Uuid::nil(),
                now,
                now + chrono::Duration::minutes(5),
                100
            )
            .await
            .unwrap()
            .is_empty()
    );
    let resumed = app
        .api(Method::POST, &format!("/api/issues/{id}/resume"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::OK);
    wait_for_status(&app, &token, &id, "sent").await;
    let mails = app.smtp().with_subject("Paused");
    let mut to = recipients(&mails);
    to.dedup();
    assert_eq!(to.len(), 6, "everyone once: {:?}", recipients(&mails));
    assert_eq!(mails.len(), 6);

    // Cancel stops an issue for good.
    let second = app.send_issue(&token, "Cancelled").await;
    app.smtp().wait_for_subject("Cancelled", 1).await;
    let cancelled = app
        .api(
            Method::POST,
            &format!("/api/issues/{second}/cancel"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    let now = Utc::now();
    assert!(
        store
            .claim_deliveries(
                uuid::Uuid::nil(),
                now,
                now + chrono::Duration::minutes(5),
                100
            )
            .await
            .unwrap()
            .is_empty()
    );
    let again = app
        .api(
            Method::POST,
            &format!("/api/issues/{second}/resume"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(app.issue_status(&token, &second).await, "cancelled");
    // The copies that never went are counted as cancelled, not left pending; those
    // already on their way when it was cancelled finish.
    wait_until("the copies in flight are recorded", || async {
        app.stats(&token, &second).await["pending"] == 0
    })
    .await;
    let stats = app.stats(&token, &second).await;
    let sent = app.smtp().with_subject("Cancelled").len();
    assert_eq!(stats["sent"], sent);
    assert_eq!(stats["cancelled"], 6 - sent);
    assert!(sent < 6, "the cancel came after everyone had it: {stats}");
}

/// With an hourly limit reached, the rest of an issue stays queued: claiming it would
/// leave it waiting under a lease that runs out before the hour does.
async fn an_hourly_limit_leaves_the_rest_queued(backend: Backend) {
    let smtp = crate::support::SmtpServer::start().await;
    let mut app = TestApp::spawn_with(backend, |s| s.mail.rate_per_hour = 2, &smtp.url()).await;
    app.smtp = Some(smtp);
    audience(&app).await;
    let token = app.api_token("ci").await;

    let id = app.send_issue(&token, "Rationed").await;
    app.smtp().wait_for_subject("Rationed", 2).await;

    let db = app.db.inspect().await;
    wait_until("two copies are recorded as sent", || async {
        app.stats(&token, &id).await["sent"] == 2
    })
    .await;
    assert_eq!(
        db.count("SELECT count(*) FROM deliveries WHERE status = 'queued' AND attempts = 0")
            .await,
        1
    );
    assert_eq!(app.smtp().with_subject("Rationed").len(), 2);
}

async fn a_template_that_cannot_render_is_refused_at_schedule_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let issue = app
        .create_issue(
            &token,
            json!({"subject": "Broken", "body_markdown": "News."}),
        )
        .await;
    let id = issue["id"].as_str().unwrap();
    // A template that has since been removed from the installation.
    app.db
        .inspect()
        .await
        .execute("UPDATE issues SET template = 'retired'")
        .await;

    let response = app
        .api(Method::POST, &format!("/api/issues/{id}/schedule"), &token)
        .json(&json!({"send_at": "2030-01-01T09:00:00Z"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("retired"),
        "{error}"
    );
    assert_eq!(app.issue_status(&token, id).await, "draft");
}

async fn wrong_state_changes_are_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.api_token("ci").await;
    let issue = app
        .create_issue(
            &token,
            json!({"subject": "States", "body_markdown": "News."}),
        )
        .await;
    let id = issue["id"].as_str().unwrap();
    let post = |action: &str, body: Value| {
        app.api(Method::POST, &format!("/api/issues/{id}/{action}"), &token)
            .json(&body)
            .send()
    };

    for action in ["pause", "resume"] {
        let response = post(action, json!({})).await.unwrap();
        assert_eq!(response.status(), StatusCode::CONFLICT, "{action} a draft");
        assert!(
            response.json::<Value>().await.unwrap()["error"]
                .as_str()
                .unwrap()
                .starts_with("This issue is draft")
        );
    }
    let bad_time = post("schedule", json!({"send_at": "next Tuesday"}))
        .await
        .unwrap();
    assert_eq!(bad_time.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let later = post("schedule", json!({"send_at": "2030-06-01T09:00:00+01:00"}))
        .await
        .unwrap();
    assert_eq!(later.status(), StatusCode::OK);
    let scheduled: Value = later.json().await.unwrap();
    assert_eq!(scheduled["status"], "scheduled");
    assert_eq!(scheduled["send_at"], "2030-06-01T08:00:00Z");
    assert_eq!(
        post("cancel", json!({})).await.unwrap().status(),
        StatusCode::OK
    );
    let cancelled_again = post("cancel", json!({})).await.unwrap();
    assert_eq!(cancelled_again.status(), StatusCode::CONFLICT);
    let patch = app
        .api(Method::PATCH, &format!("/api/issues/{id}"), &token)
        .json(&json!({"subject": "Too late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::CONFLICT);
}
