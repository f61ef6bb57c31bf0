//! `ImportStore`: the preview (an import and its rows with their verdicts), applying it
//! a batch at a time, and forgetting old reports.

use chrono::{Duration, Utc};
use newsletter::{
    audience::import::{ImportRecord, ImportRow, Mode, RowStatus},
    audience::subscription::SubscriptionStatus,
    store::{ImportBatch, ImportStart, ImportedPerson, Removal},
};
use uuid::Uuid;

use super::{Opened, confirmed, invitation, now, open, person, subscriber};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    an_import_is_previewed_applied_once_and_reported,
    an_invite_import_sends_confirmations_and_never_resubscribes,
    unapplied_imports_are_discarded_and_old_reports_forgotten,
);

fn record(opened: &Opened, mode: Mode, created_at: chrono::DateTime<Utc>) -> ImportRecord {
    ImportRecord {
        id: Uuid::now_v7(),
        list_id: opened.list_id,
        created_by: "admin@example.org".into(),
        file_name: "people.csv".into(),
        source_note: "Members who asked at the AGM".into(),
        mode,
        created_at,
        applied_at: None,
    }
}

fn row(line: i64, email: &str, status: RowStatus) -> ImportRow {
    ImportRow {
        line,
        email: email.into(),
        name: "Sam Jones".into(),
        organisation: String::new(),
        locality: String::new(),
        status,
        reason: (status == RowStatus::Refused).then(|| "Not an email address.".into()),
    }
}

fn imported(line: i64, email: &str, invite: bool) -> ImportedPerson {
    ImportedPerson {
        line,
        subscriber: person(email),
        new_subscriber_id: Uuid::now_v7(),
        event_id: Uuid::now_v7(),
        invitation: invite.then(|| invitation(email, now())),
    }
}

async fn an_import_is_previewed_applied_once_and_reported(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    confirmed(&opened, "already@example.org").await;
    let import = record(&opened, Mode::Confirmed, now());
    let rows = [
        row(2, "new@example.org", RowStatus::Ready),
        row(3, "already@example.org", RowStatus::Ready),
        row(4, "not an address", RowStatus::Refused),
    ];
    store.create_import(&import, &rows).await.unwrap();
    assert_eq!(
        store.import(import.id).await.unwrap().unwrap().mode,
        Mode::Confirmed
    );
    assert_eq!(store.imports(opened.list_id).await.unwrap().len(), 1);
    let counts = store.import_counts(import.id).await.unwrap();
    assert_eq!(
        counts.present().collect::<Vec<_>>(),
        [(RowStatus::Ready, 2), (RowStatus::Refused, 1)]
    );
    assert_eq!(counts.total(), 3);
    let refused = store
        .import_rows(import.id, Some(RowStatus::Refused), 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(refused, [rows[2].clone()]);
    let after_first = store.import_rows(import.id, None, 2, 0, 10).await.unwrap();
    assert_eq!(
        after_first.iter().map(|r| r.line).collect::<Vec<_>>(),
        [3, 4]
    );

    let now = now();
    assert_eq!(
        store.start_import(import.id, now).await.unwrap(),
        ImportStart::Started
    );
    assert_eq!(
        store.start_import(import.id, now).await.unwrap(),
        ImportStart::AlreadyStarted,
        "one click, one instance"
    );
    let people = [
        imported(2, "new@example.org", false),
        imported(3, "already@example.org", false),
    ];
    store
        .import_subscribers(&ImportBatch {
            import_id: import.id,
            list_id: opened.list_id,
            mode: Mode::Confirmed,
            now,
            people: &people,
        })
        .await
        .unwrap();
    let report = store.import_rows(import.id, None, 0, 0, 10).await.unwrap();
    let verdicts: Vec<RowStatus> = report.iter().map(|r| r.status).collect();
    assert_eq!(
        verdicts,
        [RowStatus::Added, RowStatus::Unchanged, RowStatus::Refused]
    );
    let new = subscriber(&opened, "new@example.org").await;
    assert_eq!(new.status, SubscriptionStatus::Confirmed);
    let ledger = store.consent_ledger(new.id).await.unwrap();
    assert_eq!(ledger[0].kind, "import");
    assert_eq!(ledger[0].import_id, Some(import.id));
    assert_eq!(
        ledger[0].import_note.as_deref(),
        Some("Members who asked at the AGM")
    );
}

async fn an_invite_import_sends_confirmations_and_never_resubscribes(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let left = confirmed(&opened, "left@example.org").await;
    store
        .unsubscribe(&newsletter::store::UnsubscribeRequest {
            token: newsletter::tokens::UnsubscribeToken {
                subscriber_id: left.id,
                list_id: opened.list_id,
                issue_id: None,
            },
            everything: false,
            consent: super::consent(newsletter::store::ConsentMethod::Link),
            now: now(),
        })
        .await
        .unwrap();
    // What was queued so far (their own confirmations) is out of the way.
    store
        .claim_outbox(uuid::Uuid::nil(), now(), now() + Duration::minutes(5), 10)
        .await
        .unwrap();
    let import = record(&opened, Mode::Invite, now());
    let rows = [
        row(2, "invited@example.org", RowStatus::Ready),
        row(3, "left@example.org", RowStatus::Ready),
    ];
    store.create_import(&import, &rows).await.unwrap();
    let now = now();
    let people = [
        imported(2, "invited@example.org", true),
        imported(3, "left@example.org", true),
    ];
    store
        .import_subscribers(&ImportBatch {
            import_id: import.id,
            list_id: opened.list_id,
            mode: Mode::Invite,
            now,
            people: &people,
        })
        .await
        .unwrap();
    let report = store.import_rows(import.id, None, 0, 0, 10).await.unwrap();
    assert_eq!(report[0].status, RowStatus::Invited);
    assert_eq!(
        report[1].status,
        RowStatus::Refused,
        "{:?}",
        report[1].reason
    );
    assert_eq!(
        subscriber(&opened, "left@example.org").await.status,
        SubscriptionStatus::Unsubscribed
    );
    assert_eq!(
        subscriber(&opened, "invited@example.org").await.status,
        SubscriptionStatus::Pending
    );
    let mails = store
        .claim_outbox(uuid::Uuid::nil(), now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    let to: Vec<&str> = mails
        .iter()
        .filter(|m| m.kind == "confirmation")
        .map(|m| m.recipient.as_str())
        .collect();
    assert_eq!(to, ["invited@example.org"]);
}

async fn unapplied_imports_are_discarded_and_old_reports_forgotten(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let fresh = record(&opened, Mode::Confirmed, now());
    store
        .create_import(&fresh, &[row(2, "a@example.org", RowStatus::Ready)])
        .await
        .unwrap();
    assert_eq!(
        store.discard_import(fresh.id).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(
        store.discard_import(fresh.id).await.unwrap(),
        Removal::NotFound
    );
    assert!(store.import(fresh.id).await.unwrap().is_none());

    let old = record(&opened, Mode::Confirmed, now() - Duration::days(40));
    store
        .create_import(&old, &[row(2, "b@example.org", RowStatus::Ready)])
        .await
        .unwrap();
    store.start_import(old.id, now()).await.unwrap();
    assert_eq!(
        store.discard_import(old.id).await.unwrap(),
        Removal::NotFound,
        "an applied import is kept"
    );
    store
        .delete_import_rows_before(now() - Duration::days(30))
        .await
        .unwrap();
    assert!(
        store
            .import_rows(old.id, None, 0, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store.import(old.id).await.unwrap().is_some(),
        "its record stays"
    );
}
