//! `OutboxStore`: mails written beside their cause, claimed under a lease, and the
//! outcome of each attempt.

use chrono::Duration;
use newsletter::{
    sending::outbox::ISSUE_TEST,
    store::{OutboxResult, SendOutcome, TestCopy},
};

use super::{mail, now, open, signup};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    a_claim_leases_each_mail_to_one_worker_until_it_runs_out,
    outcomes_are_recorded_and_retries_come_back_when_due,
    test_copies_are_limited_per_person,
);

async fn a_claim_leases_each_mail_to_one_worker_until_it_runs_out(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    for n in 0..3 {
        let email = format!("p{n}@example.org");
        store
            .record_signup(&signup(opened.list_id, &email, now))
            .await
            .unwrap();
    }
    let lease = now + Duration::minutes(5);
    let first = store
        .claim_outbox(uuid::Uuid::nil(), now, lease, 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 2, "no more than the limit");
    assert!(first.iter().all(|m| m.attempts == 1));
    let second = store
        .claim_outbox(uuid::Uuid::nil(), now, lease, 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1, "the leased ones are not claimed again");
    assert!(first.iter().all(|m| m.id != second[0].id));
    assert!(
        store
            .claim_outbox(uuid::Uuid::nil(), now, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_mail_due().await.unwrap(),
        Some(lease),
        "the leases' end"
    );

    let reclaimed = store
        .claim_outbox(uuid::Uuid::nil(), lease, lease + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(reclaimed.len(), 3, "a lease that ran out frees its mail");
    assert!(reclaimed.iter().all(|m| m.attempts == 2));
}

async fn outcomes_are_recorded_and_retries_come_back_when_due(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    for email in [
        "sent@example.org",
        "retry@example.org",
        "failed@example.org",
    ] {
        store
            .record_signup(&signup(opened.list_id, email, now))
            .await
            .unwrap();
    }
    let claimed = store
        .claim_outbox(uuid::Uuid::nil(), now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    let retry_at = now + Duration::minutes(1);
    let results: Vec<OutboxResult> = claimed
        .iter()
        .map(|m| OutboxResult {
            id: m.id,
            claimed_by: m.claimed_by,
            outcome: match m.recipient.as_str() {
                "sent@example.org" => SendOutcome::Sent {
                    reply: "250 ok".into(),
                    at: now,
                },
                "retry@example.org" => SendOutcome::Retry {
                    error: "451 later".into(),
                    next_attempt_at: retry_at,
                },
                _ => SendOutcome::Failed {
                    error: "550 no such user".into(),
                },
            },
        })
        .collect();
    store.record_outbox_results(&results).await.unwrap();
    store.record_outbox_results(&[]).await.unwrap();
    assert_eq!(store.next_mail_due().await.unwrap(), Some(retry_at));
    assert!(
        store
            .claim_outbox(uuid::Uuid::nil(), now, now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_outbox(
            uuid::Uuid::nil(),
            retry_at,
            retry_at + Duration::minutes(5),
            10,
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "only the retry comes back");
    assert_eq!(again[0].recipient, "retry@example.org");
    assert_eq!(again[0].attempts, 2);
}

async fn test_copies_are_limited_per_person(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let since = now - Duration::hours(1);
    let copy = || mail(ISSUE_TEST, "editor@example.org");
    for _ in 0..2 {
        assert_eq!(
            store
                .queue_test_copy(&copy(), "editor@example.org", 2, since, now)
                .await
                .unwrap(),
            TestCopy::Queued
        );
    }
    assert_eq!(
        store
            .queue_test_copy(&copy(), "editor@example.org", 2, since, now)
            .await
            .unwrap(),
        TestCopy::LimitReached
    );
    assert_eq!(
        store
            .queue_test_copy(&copy(), "someone-else@example.org", 2, since, now)
            .await
            .unwrap(),
        TestCopy::Queued,
        "each person has a limit of their own"
    );
    let queued = store
        .claim_outbox(uuid::Uuid::nil(), now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(queued.len(), 3);
    assert!(queued.iter().all(|m| m.subscriber_id.is_none()));
}
