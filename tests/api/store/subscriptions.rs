//! `SignupStore` and `SubscriptionStore`: joining, confirming, leaving, erasure, and
//! what staff read about the people on a list.

use chrono::{Duration, Utc};
use newsletter::{
    audience::budgets::{BudgetScope, Budgets, Refusals},
    audience::erasure,
    audience::subscription::{
        ConfirmOutcome, RESEND_CAP, SignupOutcome, SubscriptionStatus, UnsubscribeOutcome,
        is_erased_address,
    },
    store::{
        ConfirmRequest, ConsentMethod, Removal, SubscriberCounts, SubscriberQuery,
        UnsubscribeRequest,
    },
    tokens::UnsubscribeToken,
};
use uuid::Uuid;

use super::{consent, mail, now, open, signup, subscriber};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    a_sign_up_is_pending_until_its_link_confirms_it,
    signing_up_again_reminds_or_resends_within_the_caps,
    a_form_token_works_once_and_budgets_stop_sign_ups,
    links_expire_are_single_use_and_unknown_ones_say_so,
    leaving_is_recorded_once_and_coming_back_is_a_resubscribe,
    erasure_leaves_no_personal_data,
    staff_search_and_read_the_list,
    sign_ups_never_confirmed_are_deleted_after_their_grace,
    people_who_left_long_ago_are_reduced_to_their_ledger_and_a_suppression,
);

fn confirm(token_hash: [u8; 32], now: chrono::DateTime<Utc>) -> ConfirmRequest {
    ConfirmRequest {
        token_hash,
        consent: consent(ConsentMethod::Link),
        now,
        welcome: mail(newsletter::sending::outbox::WELCOME, ""),
    }
}

fn leave(token: UnsubscribeToken) -> UnsubscribeRequest {
    UnsubscribeRequest {
        token,
        everything: false,
        consent: consent(ConsentMethod::OneClick),
        now: now(),
    }
}

async fn a_sign_up_is_pending_until_its_link_confirms_it(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let request = signup(opened.list_id, "Sam@Example.org", now);
    assert_eq!(
        store.record_signup(&request).await.unwrap(),
        SignupOutcome::ConfirmationQueued
    );
    let sam = subscriber(&opened, "Sam@example.org").await;
    assert_eq!(sam.status, SubscriptionStatus::Pending);
    let queued = store
        .claim_outbox(uuid::Uuid::nil(), now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, "confirmation");
    assert_eq!(
        queued[0].recipient, "Sam@example.org",
        "as typed, domain lower-cased"
    );
    assert_eq!(queued[0].subscriber_id, Some(sam.id));

    let token = request.invitation.token_hash;
    assert_eq!(
        store
            .confirm_subscription(&confirm(token, now))
            .await
            .unwrap(),
        ConfirmOutcome::Confirmed
    );
    assert_eq!(
        store
            .confirm_subscription(&confirm(token, now))
            .await
            .unwrap(),
        ConfirmOutcome::AlreadyConfirmed,
        "a second click"
    );
    let welcome = store
        .claim_outbox(uuid::Uuid::nil(), now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(welcome.len(), 1, "one welcome, however many clicks");
    assert_eq!(welcome[0].recipient, "Sam@example.org");
    assert_eq!(
        store.subscriber_counts(opened.list_id).await.unwrap(),
        SubscriberCounts {
            pending: 0,
            confirmed: 1,
            unsubscribed: 0,
            bounced: 0,
            complained: 0,
        }
    );
    let ledger = store.consent_ledger(sam.id).await.unwrap();
    let kinds: Vec<_> = ledger.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["signup", "confirm"]);
    assert_eq!(ledger[0].wording_version.as_deref(), Some("v-test"));
    assert_eq!(ledger[1].method, "link");
}

async fn signing_up_again_reminds_or_resends_within_the_caps(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let pending = |n| {
        signup(
            opened.list_id,
            "pending@example.org",
            now + Duration::seconds(n),
        )
    };
    for n in 0..RESEND_CAP {
        assert_eq!(
            store.record_signup(&pending(n)).await.unwrap(),
            SignupOutcome::ConfirmationQueued
        );
    }
    assert_eq!(
        store.record_signup(&pending(9)).await.unwrap(),
        SignupOutcome::ResendCapReached
    );

    let first = signup(opened.list_id, "kept@example.org", now);
    store.record_signup(&first).await.unwrap();
    store
        .confirm_subscription(&confirm(first.invitation.token_hash, now))
        .await
        .unwrap();
    let again = |n| {
        signup(
            opened.list_id,
            "kept@example.org",
            now + Duration::seconds(n),
        )
    };
    for n in 0..RESEND_CAP {
        assert_eq!(
            store.record_signup(&again(n)).await.unwrap(),
            SignupOutcome::ReminderQueued
        );
    }
    assert_eq!(
        store.record_signup(&again(9)).await.unwrap(),
        SignupOutcome::AlreadyConfirmed
    );
    let kept = subscriber(&opened, "kept@example.org").await;
    assert_eq!(
        kept.status,
        SubscriptionStatus::Confirmed,
        "never back to pending"
    );
}

async fn a_form_token_works_once_and_budgets_stop_sign_ups(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let first = signup(opened.list_id, "one@example.org", now);
    store.record_signup(&first).await.unwrap();
    let mut replay = signup(opened.list_id, "two@example.org", now);
    replay.form_nonce = first.form_nonce;
    assert_eq!(
        store.record_signup(&replay).await.unwrap(),
        SignupOutcome::FormTokenUsed
    );

    let limited = |email: &str| {
        let mut request = signup(opened.list_id, email, now);
        request.budgets = Budgets {
            per_client: 0,
            per_domain: 0,
            total: 2,
        };
        request
    };
    assert_eq!(
        store
            .record_signup(&limited("three@example.org"))
            .await
            .unwrap(),
        SignupOutcome::ConfirmationQueued
    );
    assert_eq!(
        store
            .record_signup(&limited("four@example.org"))
            .await
            .unwrap(),
        SignupOutcome::OverBudget(BudgetScope::Total)
    );
    assert_eq!(
        store
            .subscriber_counts(opened.list_id)
            .await
            .unwrap()
            .pending,
        2,
        "nothing stored for the refused ones"
    );
    let refusals = store
        .budget_refusals(now - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        refusals,
        Refusals {
            client: 0,
            domain: 0,
            total: 1
        }
    );
}

async fn links_expire_are_single_use_and_unknown_ones_say_so(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let request = signup(opened.list_id, "late@example.org", now);
    store.record_signup(&request).await.unwrap();
    let token = request.invitation.token_hash;
    let later = request.invitation.token_expires_at + Duration::seconds(1);
    assert_eq!(
        store
            .confirm_subscription(&confirm(token, later))
            .await
            .unwrap(),
        ConfirmOutcome::Expired
    );
    assert_eq!(
        store
            .confirm_subscription(&confirm([7; 32], now))
            .await
            .unwrap(),
        ConfirmOutcome::Unknown
    );
    // A fresh link confirms; the person leaves; the old, used link is then refused.
    let fresh = signup(opened.list_id, "late@example.org", now);
    store.record_signup(&fresh).await.unwrap();
    let fresh_token = fresh.invitation.token_hash;
    assert_eq!(
        store
            .confirm_subscription(&confirm(fresh_token, now))
            .await
            .unwrap(),
        ConfirmOutcome::Confirmed
    );
    let late = subscriber(&opened, "late@example.org").await;
    store
        .unsubscribe(&leave(UnsubscribeToken {
            subscriber_id: late.id,
            list_id: opened.list_id,
            issue_id: None,
        }))
        .await
        .unwrap();
    assert_eq!(
        store
            .confirm_subscription(&confirm(fresh_token, now))
            .await
            .unwrap(),
        ConfirmOutcome::Used
    );
}

async fn leaving_is_recorded_once_and_coming_back_is_a_resubscribe(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let request = signup(opened.list_id, "leaver@example.org", now);
    store.record_signup(&request).await.unwrap();
    store
        .confirm_subscription(&confirm(request.invitation.token_hash, now))
        .await
        .unwrap();
    let leaver = subscriber(&opened, "leaver@example.org").await;
    let token = UnsubscribeToken {
        subscriber_id: leaver.id,
        list_id: opened.list_id,
        issue_id: None,
    };
    assert_eq!(
        store.unsubscribe(&leave(token)).await.unwrap(),
        UnsubscribeOutcome::Unsubscribed
    );
    assert_eq!(
        store.unsubscribe(&leave(token)).await.unwrap(),
        UnsubscribeOutcome::AlreadyUnsubscribed
    );
    let stranger = UnsubscribeToken {
        subscriber_id: Uuid::now_v7(),
        list_id: opened.list_id,
        issue_id: None,
    };
    assert_eq!(
        store.unsubscribe(&leave(stranger)).await.unwrap(),
        UnsubscribeOutcome::NotSubscribed
    );

    let later = now + Duration::minutes(1);
    let back = signup(opened.list_id, "leaver@example.org", later);
    assert_eq!(
        store.record_signup(&back).await.unwrap(),
        SignupOutcome::ConfirmationQueued
    );
    assert_eq!(
        subscriber(&opened, "leaver@example.org").await.status,
        SubscriptionStatus::Unsubscribed,
        "still out until they confirm"
    );
    store
        .confirm_subscription(&confirm(back.invitation.token_hash, later))
        .await
        .unwrap();
    let kinds: Vec<String> = store
        .consent_ledger(leaver.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["signup", "confirm", "unsubscribe", "signup", "resubscribe"]
    );
    let days = store
        .daily_signups_and_unsubscribes(opened.list_id, now - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(days.iter().map(|d| d.signups).sum::<i64>(), 2);
    assert_eq!(days.iter().map(|d| d.unsubscribes).sum::<i64>(), 1);
}

async fn erasure_leaves_no_personal_data(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    store
        .record_signup(&signup(opened.list_id, "gone@example.org", now))
        .await
        .unwrap();
    let gone = subscriber(&opened, "gone@example.org").await;
    assert_eq!(
        store
            .erase_subscriber(gone.id, ConsentMethod::Admin, now)
            .await
            .unwrap(),
        Removal::Removed
    );
    assert_eq!(
        store
            .erase_subscriber(Uuid::now_v7(), ConsentMethod::Admin, now)
            .await
            .unwrap(),
        Removal::NotFound
    );
    let erased = store
        .subscriber(gone.id, opened.list_id)
        .await
        .unwrap()
        .unwrap();
    assert!(is_erased_address(&erased.email), "{}", erased.email);
    assert_eq!(erased.name, "");
    assert_eq!(erased.status, SubscriptionStatus::Unsubscribed);
    let ledger = store.consent_ledger(gone.id).await.unwrap();
    assert!(
        ledger
            .iter()
            .all(|e| e.ip.is_none() && e.user_agent.is_none())
    );
    assert_eq!(ledger.last().unwrap().kind, "erase");
    let queued = store
        .claim_outbox(uuid::Uuid::nil(), now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert!(
        queued.is_empty(),
        "their confirmation mail is not sent: {queued:?}"
    );
}

async fn staff_search_and_read_the_list(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    for email in ["a_b@example.org", "axb@example.org", "c%d@example.org"] {
        store
            .record_signup(&signup(opened.list_id, email, now))
            .await
            .unwrap();
    }
    let page = store
        .subscribers(&SubscriberQuery::search(opened.list_id, "a_b", 0, 10))
        .await
        .unwrap();
    assert_eq!(page.total, 1, "_ matches itself only");
    assert_eq!(page.subscribers[0].email, "a_b@example.org");
    assert_eq!(
        store
            .subscribers(&SubscriberQuery::search(opened.list_id, "%", 0, 10))
            .await
            .unwrap()
            .total,
        1
    );
    let all = store
        .subscribers(&SubscriberQuery::search(opened.list_id, " ", 0, 2))
        .await
        .unwrap();
    assert_eq!(
        (all.subscribers.len(), all.total),
        (2, 3),
        "a page, and the total"
    );
    let next = store
        .subscribers_after(opened.list_id, &all.subscribers[1].email, 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].email > all.subscribers[1].email);
    let statuses = store
        .subscription_statuses(
            opened.list_id,
            &["AXB@example.org".into(), "nobody@example.org".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        statuses,
        [("axb@example.org".to_owned(), SubscriptionStatus::Pending)].into()
    );
    assert!(
        store
            .subscriber(Uuid::now_v7(), opened.list_id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn sign_ups_never_confirmed_are_deleted_after_their_grace(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let long_ago = now() - Duration::days(30);
    // Signed up 30 days ago and never confirmed: the link expired 23 days ago.
    store
        .record_signup(&signup(opened.list_id, "gone@example.org", long_ago))
        .await
        .unwrap();
    // Signed up then, and asked again yesterday: the newer link has not expired.
    store
        .record_signup(&signup(opened.list_id, "again@example.org", long_ago))
        .await
        .unwrap();
    store
        .record_signup(&signup(
            opened.list_id,
            "again@example.org",
            now() - Duration::days(1),
        ))
        .await
        .unwrap();
    super::confirmed(&opened, "kept@example.org").await;

    let grace = now() - Duration::days(7);
    assert_eq!(store.delete_expired_signups(grace).await.unwrap(), 1);
    assert_eq!(store.delete_expired_signups(grace).await.unwrap(), 0);
    let dump = opened.db.inspect().await.dump().await;
    assert!(
        !dump.contains("gone@example.org"),
        "the never-confirmed address is gone"
    );
    assert!(dump.contains("again@example.org") && dump.contains("kept@example.org"));
    let db = opened.db.inspect().await;
    assert_eq!(
        db.count(
            "SELECT count(*) FROM consent_events WHERE subscriber_id IS NULL AND kind = 'signup'"
        )
        .await,
        1,
        "the sign-up stays in the ledger, anonymised"
    );
}

async fn people_who_left_long_ago_are_reduced_to_their_ledger_and_a_suppression(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let keys = newsletter::keys::KeyRing::new(crate::support::SECRET_KEY, &[]);
    let left_at = |days| UnsubscribeRequest {
        now: now() - Duration::days(days),
        ..leave(UnsubscribeToken {
            subscriber_id: Uuid::nil(),
            list_id: opened.list_id,
            issue_id: None,
        })
    };
    for (email, days) in [("long.gone@example.org", 400), ("lately@example.org", 10)] {
        let person = super::confirmed(&opened, email).await;
        let mut request = left_at(days);
        request.token.subscriber_id = person.id;
        store.unsubscribe(&request).await.unwrap();
    }
    super::confirmed(&opened, "stays@example.org").await;
    // Left, then signed up again and never confirmed: the link died long ago.
    let person = super::confirmed(&opened, "half.back@example.org").await;
    let mut request = left_at(420);
    request.token.subscriber_id = person.id;
    store.unsubscribe(&request).await.unwrap();
    store
        .record_signup(&signup(
            opened.list_id,
            "half.back@example.org",
            now() - Duration::days(400),
        ))
        .await
        .unwrap();

    let cutoff = now() - Duration::days(365);
    let reduce = || erasure::reduce_departed(store.as_ref(), &keys, cutoff, now());
    assert_eq!(reduce().await.unwrap(), 2);
    assert_eq!(
        reduce().await.unwrap(),
        0,
        "the reduced are not found again"
    );
    let dump = opened.db.inspect().await.dump().await;
    assert!(
        !dump.contains("long.gone@example.org"),
        "their details are gone"
    );
    assert!(dump.contains("lately@example.org") && dump.contains("stays@example.org"));
    let db = opened.db.inspect().await;
    assert_eq!(
        db.count(
            "SELECT count(*) FROM consent_events WHERE kind = 'erase' AND method = 'retention'"
        )
        .await,
        2
    );
    assert_eq!(
        db.count("SELECT count(*) FROM consent_events WHERE kind = 'unsubscribe'")
            .await,
        3,
        "the ledger keeps when they left"
    );
    let suppressed = store
        .suppressed(&keys.address_keys("long.gone@example.org"))
        .await
        .unwrap();
    assert_eq!(suppressed.len(), 1, "no import or slip mails them again");

    // Coming back by themselves lifts it.
    super::confirmed(&opened, "long.gone@example.org").await;
    let suppressed = store
        .suppressed(&keys.address_keys("long.gone@example.org"))
        .await
        .unwrap();
    assert!(suppressed.is_empty(), "lifted once they confirmed");
    assert_eq!(
        db.count("SELECT count(*) FROM suppressions WHERE reason = 'left'")
            .await,
        1,
        "the other stays"
    );
}
