//! `IssueStore` and `DeliveryStore`: an issue's content and states, its start (one
//! delivery per confirmed subscriber), the copies claimed and recorded, and its numbers.

use chrono::Duration;
use newsletter::{
    issues::{
        ArchiveChange, DraftDeletion, Issue, IssueChange, IssueContent, IssueStatus,
        IssueTransition, NewIssue,
    },
    store::{ConsentMethod, DeliveryResult, IssueStats, SendOutcome, Store, UnsubscribeRequest},
    tokens::UnsubscribeToken,
};
use uuid::Uuid;

use super::{Opened, confirmed, consent, now, open, signup};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    content_changes_only_while_draft_or_scheduled,
    a_due_issue_starts_once_with_a_copy_per_confirmed_subscriber,
    copies_are_claimed_recorded_and_counted_and_the_issue_finishes,
    pausing_holds_copies_and_cancelling_cancels_them,
    only_drafts_are_deleted_and_only_sent_issues_withdrawn,
    a_renewed_lease_holds_and_a_dead_workers_copies_are_taken_first,
);

async fn draft(opened: &Opened, subject: &str) -> Issue {
    let issue = opened
        .store
        .create_issue(&NewIssue {
            id: Uuid::now_v7(),
            list_id: opened.list_id,
            content: IssueContent {
                subject: Some(subject.into()),
                preheader: None,
                body_markdown: Some("Hello.".into()),
                template: None,
                segment: None,
                list_id: None,
            },
            now: now(),
        })
        .await
        .unwrap();
    assert_eq!(issue.status, IssueStatus::Draft);
    issue
}

async fn changed(store: &dyn Store, id: Uuid, transition: IssueTransition) -> IssueChange {
    store.transition_issue(id, transition, now()).await.unwrap()
}

fn status(change: IssueChange) -> Result<IssueStatus, IssueStatus> {
    match change {
        IssueChange::Changed(issue) => Ok(issue.status),
        IssueChange::Refused(status) => Err(status),
        IssueChange::NotFound => panic!("the issue is missing"),
    }
}

/// An issue that has started: scheduled a moment ago, and started.
async fn started(opened: &Opened, subject: &str) -> Issue {
    let issue = draft(opened, subject).await;
    let now = now();
    let schedule = IssueTransition::Schedule(now - Duration::seconds(1));
    status(changed(opened.store.as_ref(), issue.id, schedule).await).unwrap();
    assert_eq!(opened.store.start_due_issues(now).await.unwrap(), 1);
    opened.store.issue(issue.id).await.unwrap().unwrap()
}

async fn content_changes_only_while_draft_or_scheduled(backend: Backend) {
    let opened = open(backend).await;
    let store = opened.store.as_ref();
    let issue = draft(&opened, "Spring").await;
    assert_eq!(issue.template, newsletter::issues::DEFAULT_TEMPLATE);
    let edit = |subject: &str| IssueContent {
        subject: Some(subject.into()),
        ..IssueContent::default()
    };
    let now = now();
    let IssueChange::Changed(edited) = store
        .update_issue(issue.id, &edit("Summer"), now)
        .await
        .unwrap()
    else {
        panic!("a draft is editable");
    };
    assert_eq!(
        (edited.subject.as_str(), edited.body_markdown.as_str()),
        ("Summer", "Hello.")
    );

    let at = now + Duration::days(1);
    let scheduled = changed(store, issue.id, IssueTransition::Schedule(at)).await;
    assert_eq!(status(scheduled), Ok(IssueStatus::Scheduled));
    assert_eq!(
        store.issue(issue.id).await.unwrap().unwrap().send_at,
        Some(at)
    );
    assert!(matches!(
        store
            .update_issue(issue.id, &edit("Autumn"), now)
            .await
            .unwrap(),
        IssueChange::Changed(_)
    ));
    assert_eq!(
        status(changed(store, issue.id, IssueTransition::Pause).await),
        Err(IssueStatus::Scheduled),
        "only a sending issue pauses"
    );
    assert!(matches!(
        store
            .update_issue(Uuid::now_v7(), &edit("x"), now)
            .await
            .unwrap(),
        IssueChange::NotFound
    ));

    let sending = started(&opened, "Winter").await;
    assert_eq!(sending.status, IssueStatus::Sending);
    assert!(matches!(
        store
            .update_issue(sending.id, &edit("Too late"), now)
            .await
            .unwrap(),
        IssueChange::Refused(IssueStatus::Sending)
    ));
    let listed: Vec<Uuid> = store.issues().await.unwrap().iter().map(|i| i.id).collect();
    assert_eq!(listed, [sending.id, issue.id], "newest first");
}

async fn a_due_issue_starts_once_with_a_copy_per_confirmed_subscriber(backend: Backend) {
    let opened = open(backend).await;
    let store = opened.store.as_ref();
    confirmed(&opened, "one@example.org").await;
    confirmed(&opened, "two@example.org").await;
    store
        .record_signup(&signup(opened.list_id, "pending@example.org", now()))
        .await
        .unwrap();
    let issue = draft(&opened, "Spring").await;
    let at = now() + Duration::minutes(10);
    status(changed(store, issue.id, IssueTransition::Schedule(at)).await).unwrap();
    assert_eq!(store.next_issue_due().await.unwrap(), Some(at));
    assert_eq!(
        store
            .start_due_issues(at - Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.start_due_issues(at).await.unwrap(), 1);
    assert_eq!(store.start_due_issues(at).await.unwrap(), 0, "once");
    assert_eq!(store.next_issue_due().await.unwrap(), None);
    let stats = store.issue_stats(issue.id).await.unwrap();
    assert_eq!((stats.recipients, stats.pending), (2, 2), "confirmed only");
    let due = store.next_mail_due().await.unwrap();
    assert!(
        due.is_some_and(|due| due <= at),
        "its copies are due: {due:?}"
    );
}

async fn copies_are_claimed_recorded_and_counted_and_the_issue_finishes(backend: Backend) {
    let opened = open(backend).await;
    let store = opened.store.as_ref();
    for email in ["ok@example.org", "bad@example.org", "left@example.org"] {
        confirmed(&opened, email).await;
    }
    let issue = started(&opened, "Spring").await;
    let left = super::subscriber(&opened, "left@example.org").await;
    store
        .unsubscribe(&UnsubscribeRequest {
            token: UnsubscribeToken {
                subscriber_id: left.id,
                list_id: opened.list_id,
                issue_id: Some(issue.id),
            },
            everything: false,
            consent: consent(ConsentMethod::OneClick),
            now: now(),
        })
        .await
        .unwrap();

    let now = now();
    let jobs = store
        .claim_deliveries(uuid::Uuid::nil(), now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 3);
    assert!(
        store
            .claim_deliveries(uuid::Uuid::nil(), now, now, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    let results: Vec<DeliveryResult> = jobs
        .iter()
        .map(|job| {
            assert_eq!(job.list_id, opened.list_id);
            assert_eq!(job.attempts, 1);
            assert_eq!(job.still_subscribed, job.email != "left@example.org");
            DeliveryResult {
                issue_id: job.issue_id,
                subscriber_id: job.subscriber_id,
                claimed_by: job.claimed_by,
                outcome: match job.email.as_str() {
                    "ok@example.org" => SendOutcome::Sent {
                        reply: "250 ok".into(),
                        at: now,
                    },
                    "bad@example.org" => SendOutcome::Failed {
                        error: "550 no such user".into(),
                    },
                    _ => SendOutcome::Skipped,
                },
            }
        })
        .collect();
    store.finish_sent_issues(now).await.unwrap();
    assert_eq!(
        store.issue(issue.id).await.unwrap().unwrap().status,
        IssueStatus::Sending,
        "not while copies are out"
    );
    store.record_delivery_results(&results).await.unwrap();
    store.finish_sent_issues(now).await.unwrap();
    let sent = store.issue(issue.id).await.unwrap().unwrap();
    assert_eq!(sent.status, IssueStatus::Sent);
    assert!(sent.finished_at.is_some());
    assert_eq!(
        store.issue_stats(issue.id).await.unwrap(),
        IssueStats {
            recipients: 3,
            sent: 1,
            failed: 1,
            pending: 0,
            skipped: 1,
            cancelled: 0,
            unsubscribed: 1,
            ..IssueStats::default()
        }
    );
    let failed = store.failed_deliveries(issue.id, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].email.as_str(), failed[0].reply.as_str()),
        ("bad@example.org", "550 no such user")
    );
    assert_eq!(
        store.issue_unsubscribe_times(issue.id).await.unwrap().len(),
        1
    );
}

async fn pausing_holds_copies_and_cancelling_cancels_them(backend: Backend) {
    let opened = open(backend).await;
    let store = opened.store.as_ref();
    confirmed(&opened, "one@example.org").await;
    confirmed(&opened, "two@example.org").await;
    let issue = started(&opened, "Spring").await;
    assert_eq!(
        status(changed(store, issue.id, IssueTransition::Pause).await),
        Ok(IssueStatus::Paused)
    );
    let now = now();
    assert!(
        store
            .claim_deliveries(uuid::Uuid::nil(), now, now + Duration::minutes(5), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing goes while paused"
    );
    assert_eq!(
        status(changed(store, issue.id, IssueTransition::Resume).await),
        Ok(IssueStatus::Sending)
    );
    let one = store
        .claim_deliveries(uuid::Uuid::nil(), now, now + Duration::minutes(5), 1)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        status(changed(store, issue.id, IssueTransition::Cancel).await),
        Ok(IssueStatus::Cancelled)
    );
    let stats = store.issue_stats(issue.id).await.unwrap();
    assert_eq!(
        (stats.cancelled, stats.pending),
        (1, 1),
        "the queued copy is cancelled; the one being sent is left to finish"
    );
    assert_eq!(
        status(changed(store, issue.id, IssueTransition::Cancel).await),
        Err(IssueStatus::Cancelled)
    );
}

async fn only_drafts_are_deleted_and_only_sent_issues_withdrawn(backend: Backend) {
    let opened = open(backend).await;
    let store = opened.store.as_ref();
    let doomed = draft(&opened, "Typo").await;
    assert_eq!(
        store.delete_draft(doomed.id).await.unwrap(),
        DraftDeletion::Deleted
    );
    assert_eq!(
        store.delete_draft(doomed.id).await.unwrap(),
        DraftDeletion::NotFound
    );

    let issue = started(&opened, "Spring").await; // nobody to send to
    store.finish_sent_issues(now()).await.unwrap();
    assert_eq!(
        store.delete_draft(issue.id).await.unwrap(),
        DraftDeletion::Refused(IssueStatus::Sent)
    );
    let change = |withdraw| ArchiveChange {
        id: Uuid::now_v7(),
        issue_id: issue.id,
        withdraw,
        by: "admin@example.org",
        at: now(),
    };
    let IssueChange::Changed(withdrawn) = store.change_archive(&change(true)).await.unwrap() else {
        panic!("a sent issue can be withdrawn");
    };
    assert_eq!(withdrawn.withdrawn.unwrap().by, "admin@example.org");
    let mut again = change(true);
    again.by = "someone-else@example.org";
    let IssueChange::Changed(still) = store.change_archive(&again).await.unwrap() else {
        panic!("withdrawing twice is no change, and no refusal");
    };
    assert_eq!(
        still.withdrawn.unwrap().by,
        "admin@example.org",
        "the first stands"
    );
    let IssueChange::Changed(back) = store.change_archive(&change(false)).await.unwrap() else {
        panic!("a withdrawn issue can be put back");
    };
    assert!(back.withdrawn.is_none());
    let other = draft(&opened, "Draft").await;
    let mut on_draft = change(true);
    on_draft.issue_id = other.id;
    assert!(matches!(
        store.change_archive(&on_draft).await.unwrap(),
        IssueChange::Refused(IssueStatus::Draft)
    ));
}

async fn a_renewed_lease_holds_and_a_dead_workers_copies_are_taken_first(backend: Backend) {
    let opened = open(backend).await;
    let store = opened.store.as_ref();
    for n in 0..6 {
        confirmed(&opened, &format!("reader{n}@example.org")).await;
    }
    started(&opened, "Leased").await;
    let (alive, dead, heir) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let t0 = now();
    let lease = Duration::seconds(10);
    let held_by_alive = store
        .claim_deliveries(alive, t0, t0 + lease, 2)
        .await
        .unwrap();
    let held_by_dead = store
        .claim_deliveries(dead, t0, t0 + lease, 2)
        .await
        .unwrap();
    assert_eq!((held_by_alive.len(), held_by_dead.len()), (2, 2));
    // The live one renews; the dead one cannot. Renewing touches only its own rows.
    let t1 = t0 + Duration::seconds(8);
    assert_eq!(
        store
            .renew_delivery_leases(alive, t1 + lease)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.renew_delivery_leases(heir, t1 + lease).await.unwrap(),
        0
    );

    // Past the dead one's lease: its copies come first, then the two never claimed,
    // and never the live one's.
    let t2 = t0 + lease + Duration::seconds(1);
    let first = store
        .claim_deliveries(heir, t2, t2 + lease, 2)
        .await
        .unwrap();
    let ids = |jobs: &[newsletter::store::DeliveryJob]| {
        let mut ids: Vec<Uuid> = jobs.iter().map(|j| j.subscriber_id).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(&first),
        ids(&held_by_dead),
        "the dead worker's copies first"
    );
    assert!(first.iter().all(|job| job.attempts == 2));
    let rest = store
        .claim_deliveries(heir, t2, t2 + lease, 10)
        .await
        .unwrap();
    assert_eq!(
        rest.len(),
        2,
        "the two never claimed, and not the live worker's"
    );
    assert!(rest.iter().all(|job| job.attempts == 1));
    // The dead worker's rows are the heir's now: its renewals keep them.
    assert_eq!(
        store.renew_delivery_leases(dead, t2 + lease).await.unwrap(),
        0
    );
    assert_eq!(
        store.renew_delivery_leases(heir, t2 + lease).await.unwrap(),
        4
    );
    // An outcome the first owner writes late is not written over the heir's claim;
    // the heir's own is.
    let outcome = |claimed_by: Uuid, outcome: SendOutcome| DeliveryResult {
        issue_id: first[0].issue_id,
        subscriber_id: first[0].subscriber_id,
        claimed_by,
        outcome,
    };
    let retry = SendOutcome::Retry {
        error: "451 later".into(),
        next_attempt_at: t2,
    };
    store
        .record_delivery_results(&[outcome(dead, retry)])
        .await
        .unwrap();
    assert_eq!(
        store.renew_delivery_leases(heir, t2 + lease).await.unwrap(),
        4
    );
    let sent = SendOutcome::Sent {
        reply: "250 ok".into(),
        at: t2,
    };
    store
        .record_delivery_results(&[outcome(heir, sent)])
        .await
        .unwrap();
    assert_eq!(
        store.renew_delivery_leases(heir, t2 + lease).await.unwrap(),
        3
    );
}
