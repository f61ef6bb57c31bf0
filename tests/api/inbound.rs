//! What comes back, through the pipeline (`newsletter bounces ingest`, as an MTA's pipe
//! runs it): a hard bounce, a complaint, an auto-reply and a mail to the unsubscribe
//! address each do what they should to the copy's recipient, and only to them; soft
//! bounces count and decay; the suppression list holds, lets a sign-up through once a
//! month, and is lifted by confirming after a bounce; an issue pauses itself.

use crate::on_both_backends;
use crate::support::{
    Backend, TestApp,
    returns::{
        BOUNCES, app_with_bounces, complaint, copy_to, dsn, ingest, ingest_with, out_of_office,
        unsubscribe_mail,
    },
    smtp::ReceivedMail,
    wait_until,
};

on_both_backends!(
    four_copies_come_back_four_ways_and_each_does_its_own_thing,
    soft_bounces_of_different_copies_add_up_to_a_hard_one,
    a_suppressed_address_signs_up_again_once_a_month_and_confirming_lifts_a_bounce,
    an_issue_pauses_itself_when_its_bounces_pass_the_threshold,
    erasing_a_person_keeps_their_suppression_but_not_their_words,
);

async fn take(app: &TestApp, raw: &str) {
    let out = ingest(&app.db.url, BOUNCES, raw).await;
    assert!(
        out.status.success(),
        "ingest failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn four_copies_come_back_four_ways_and_each_does_its_own_thing(backend: Backend) {
    let app = app_with_bounces(backend, |_| {}).await;
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
    take(&app, &bounce).await;
    take(&app, &complaint(copy_to(&copies, "angry@example.org"))).await;
    take(&app, &out_of_office(copy_to(&copies, "away@example.org"))).await;
    take(
        &app,
        &unsubscribe_mail(copy_to(&copies, "leaving@example.org")),
    )
    .await;
    // The MTA retries a message it is not sure went in: it is taken once.
    take(&app, &bounce).await;

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
    assert_eq!(db.count("SELECT count(*) FROM inbound_messages").await, 4);
    assert_eq!(
        db.texts("SELECT outcome FROM inbound_messages ORDER BY received_at")
            .await,
        ["ended", "ended", "ignored", "ended"].map(|s| Some(s.to_owned()))
    );
    // The ledger says what ended each, how, and from which issue, with the evidence.
    let ledger = db
        .texts(
            "SELECT e.kind || ' ' || e.method FROM consent_events e
             WHERE e.inbound_id IS NOT NULL AND e.issue_id IS NOT NULL ORDER BY e.occurred_at",
        )
        .await;
    assert_eq!(
        ledger,
        ["bounce mail", "complaint mail", "unsubscribe mailto"].map(|s| Some(s.to_owned()))
    );
    assert_eq!(
        db.texts("SELECT m.status_code FROM consent_events e JOIN inbound_messages m ON m.id = e.inbound_id WHERE e.kind = 'bounce'").await,
        [Some("5.1.1".to_owned())]
    );
    // A bounce and a complaint suppress the address; leaving does not.
    assert_eq!(
        db.texts("SELECT reason FROM suppressions ORDER BY reason")
            .await,
        [Some("bounce".to_owned()), Some("complaint".to_owned())]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM suppressions WHERE domain = 'example.org'")
            .await,
        2,
        "kept by keyed hash, with the domain"
    );

    let stats = app.stats(&token, &winter).await;
    assert_eq!(
        [
            &stats["hard_bounces"],
            &stats["soft_bounces"],
            &stats["complaints"],
            &stats["unsubscribed"]
        ],
        [1, 0, 1, 1],
        "the issue's report counts each: {stats}"
    );
    assert_eq!(app.issue_status(&token, &winter).await, "sent");
    app.send_issue(&token, "Spring news").await;
    let spring = app.smtp().wait_for_subject("Spring news", 1).await;
    assert_eq!(spring[0].to, ["away@example.org"]);
    wait_until("the spring issue has gone out", || async {
        db.count("SELECT count(*) FROM issues WHERE status = 'sent'")
            .await
            == 2
    })
    .await;
    assert_eq!(
        app.smtp().wait_for_subject("Spring news", 1).await.len(),
        1,
        "only the person still subscribed gets the next issue"
    );
}

async fn soft_bounces_of_different_copies_add_up_to_a_hard_one(backend: Backend) {
    let app = app_with_bounces(backend, |_| {}).await;
    app.confirmed_subscriber("full@example.org").await;
    let token = app.api_token("ci").await;
    let env = [("SOFT_BOUNCE_LIMIT", "2"), ("SOFT_BOUNCE_DAYS", "30")];
    let db = app.db.inspect().await;
    let status = || async {
        db.texts("SELECT status FROM subscriptions").await[0]
            .clone()
            .unwrap()
    };

    app.send_issue(&token, "First").await;
    let first = app.smtp().wait_for_subject("First", 1).await.remove(0);
    let full = |copy: &ReceivedMail| dsn(copy, "5.2.2", "552 5.2.2 Mailbox full");
    for _ in 0..2 {
        // Two reports of the same copy are one soft bounce.
        let out = ingest_with(&app.db.url, BOUNCES, &full(&first), &env).await;
        assert!(out.status.success());
    }
    assert_eq!(
        status().await,
        "confirmed",
        "one soft bounce is counted, no more"
    );
    assert_eq!(
        db.texts("SELECT outcome FROM inbound_messages").await,
        [Some("counted".to_owned()), Some("counted".to_owned())]
    );

    wait_until("the first issue is sent", || async {
        db.count("SELECT count(*) FROM issues WHERE status = 'sent'")
            .await
            == 1
    })
    .await;
    app.send_issue(&token, "Second").await;
    let second = app.smtp().wait_for_subject("Second", 1).await.remove(0);
    let out = ingest_with(&app.db.url, BOUNCES, &full(&second), &env).await;
    assert!(out.status.success());
    assert_eq!(
        status().await,
        "bounced",
        "the second copy's soft bounce makes two"
    );
    assert_eq!(db.count("SELECT count(*) FROM suppressions").await, 1);
}

async fn a_suppressed_address_signs_up_again_once_a_month_and_confirming_lifts_a_bounce(
    backend: Backend,
) {
    let app = app_with_bounces(backend, |_| {}).await;
    app.confirmed_subscriber("jo@example.org").await;
    app.confirmed_subscriber("sam@example.org").await;
    let token = app.api_token("ci").await;
    app.send_issue(&token, "Winter news").await;
    let copies = app.smtp().wait_for_subject("Winter news", 2).await;
    take(
        &app,
        &dsn(
            copy_to(&copies, "jo@example.org"),
            "5.1.1",
            "550 5.1.1 unknown user",
        ),
    )
    .await;
    take(&app, &complaint(copy_to(&copies, "sam@example.org"))).await;
    let db = app.db.inspect().await;
    let confirmations = || async {
        db.count("SELECT count(*) FROM outbox WHERE kind = 'confirmation'")
            .await
    };
    assert_eq!(confirmations().await, 2);

    // Signing up again: one confirmation mail each, past the suppression ...
    app.sign_up("jo@example.org").await;
    app.sign_up("sam@example.org").await;
    let again = app
        .smtp()
        .wait_for_subject("Confirm your subscription to In Partnership", 4)
        .await;
    let latest = |to: &str| {
        again
            .iter()
            .rfind(|m| m.to == [to])
            .unwrap()
            .confirmation_token()
    };
    let (jo_token, sam_token) = (latest("jo@example.org"), latest("sam@example.org"));
    assert_eq!(confirmations().await, 4);
    // ... and no more this month, whatever they (or a bot) do.
    app.sign_up("jo@example.org").await;
    app.sign_up("sam@example.org").await;
    assert_eq!(confirmations().await, 4);

    // Jo confirms: the mailbox works, the bounce is lifted, issues go to Jo again.
    app.confirm(&jo_token).await;
    // Sam confirms too, but a complaint is lifted only by staff: no issue goes to Sam.
    app.confirm(&sam_token).await;
    assert_eq!(
        db.texts("SELECT reason FROM suppressions").await,
        [Some("complaint".to_owned())],
        "a complaint stays until staff lift it"
    );
    assert_eq!(
        db.texts(
            "SELECT change || ' ' || changed_by FROM suppression_changes WHERE change = 'lifted'"
        )
        .await,
        [Some("lifted confirmation".to_owned())]
    );
    wait_until("the first issue is sent", || async {
        db.count("SELECT count(*) FROM issues WHERE status = 'sent'")
            .await
            == 1
    })
    .await;
    assert_eq!(
        db.count("SELECT count(*) FROM subscriptions WHERE status = 'confirmed'")
            .await,
        2
    );
    let spring = app.send_issue(&token, "Spring news").await;
    assert_eq!(
        app.smtp().wait_for_subject("Spring news", 1).await[0].to,
        ["jo@example.org"]
    );
    wait_until("the spring issue has gone out", || async {
        app.issue_status(&token, &spring).await == "sent"
    })
    .await;
    assert_eq!(app.smtp().wait_for_subject("Spring news", 1).await.len(), 1);
    assert_eq!(
        db.texts("SELECT status || ': ' || last_error FROM deliveries WHERE status = 'skipped'")
            .await,
        [Some(
            "skipped: Not sent: the address is on the suppression list".to_owned()
        )],
        "the worker checks the list before every copy"
    );
}

async fn an_issue_pauses_itself_when_its_bounces_pass_the_threshold(backend: Backend) {
    // Two copies an hour: the issue is still sending when the bounce comes back.
    let app = app_with_bounces(backend, |settings| settings.mail.rate_per_hour = 2).await;
    for person in ["a@example.org", "b@example.org", "c@example.org"] {
        app.confirmed_subscriber(person).await;
    }
    let token = app.api_token("ci").await;
    let id = app.send_issue(&token, "Winter news").await;
    let copies = app.smtp().wait_for_subject("Winter news", 2).await;
    let env = [("BREAKER_MIN_COPIES", "2")];
    let out = ingest_with(
        &app.db.url,
        BOUNCES,
        &dsn(&copies[0], "5.1.1", "550 5.1.1 no such user"),
        &env,
    )
    .await;
    assert!(out.status.success());

    let issue: serde_json::Value = app
        .api(reqwest::Method::GET, &format!("/api/issues/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(issue["status"], "paused");
    let reason = issue["paused_reason"].as_str().unwrap();
    assert!(reason.contains("1 of the 2 copies"), "{reason}");

    let resumed = app
        .api(
            reqwest::Method::POST,
            &format!("/api/issues/{id}/resume"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), reqwest::StatusCode::OK);
    let resumed: serde_json::Value = resumed.json().await.unwrap();
    assert_eq!(resumed["status"], "sending");
    assert_eq!(resumed["paused_reason"], serde_json::Value::Null);
}

async fn erasing_a_person_keeps_their_suppression_but_not_their_words(backend: Backend) {
    let app = app_with_bounces(backend, |_| {}).await;
    app.confirmed_subscriber("jo@example.org").await;
    let token = app.api_token("ci").await;
    app.send_issue(&token, "Winter news").await;
    let copy = app
        .smtp()
        .wait_for_subject("Winter news", 1)
        .await
        .remove(0);
    take(
        &app,
        &dsn(&copy, "5.1.1", "550 5.1.1 <jo@example.org> unknown"),
    )
    .await;
    let db = app.db.inspect().await;
    let jo = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "jo@example.org",
        )
        .await;

    // The ledger shows the evidence.
    let admin = app.staff("admin@example.org", "admin").await;
    let page = app
        .staff_get(&admin, &format!("/admin/subscribers/{jo}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Winter news: 5.1.1: 550 5.1.1"), "{page}");
    assert!(
        page.contains("stays there, kept only as a keyed"),
        "the erasure text says so"
    );

    let erased = app
        .staff_post(&admin, &format!("/admin/subscribers/{jo}/erase"), &[])
        .await;
    assert!(erased.status().is_redirection(), "{}", erased.status());
    assert_eq!(
        db.count("SELECT count(*) FROM suppressions WHERE subscriber_id IS NULL")
            .await,
        1,
        "the suppression stays, linked to nobody"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM inbound_messages WHERE raw IS NULL AND diagnostic IS NULL")
            .await,
        1,
        "the bounce keeps its kind and code, not its words"
    );
    assert!(
        !db.dump().await.contains("jo@example.org"),
        "the address is gone"
    );

    // Jo (or someone with Jo's old address) signs up again: one mail a month.
    let confirmations = || async {
        db.count("SELECT count(*) FROM outbox WHERE kind = 'confirmation' AND status <> 'skipped'")
            .await
    };
    let before = confirmations().await;
    app.sign_up("jo@example.org").await;
    app.sign_up("jo@example.org").await;
    assert_eq!(confirmations().await, before + 1);
}

/// The MTA is told to try again later when the database cannot be reached, so that the
/// message is not lost.
#[tokio::test]
async fn the_pipe_says_try_again_later_when_the_database_is_down() {
    let raw = "From: someone@example.org\r\nSubject: hello\r\n\r\nhi\r\n";
    let out = ingest("postgres://postgres@127.0.0.1:1/nowhere", BOUNCES, raw).await;
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("try again later"));
}
