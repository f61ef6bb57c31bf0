//! `SignupStore` under load: sign-ups that arrive together (one batch, or several) do
//! what they would one after another. The form token works once, the budgets and the
//! day's cap count every mail before them, and case variants of one new address are
//! one person.

use futures_util::future::join_all;
use newsletter::{
    audience::budgets::{BudgetScope, Budgets, Refusals},
    audience::subscription::{RESEND_CAP, SignupOutcome},
};

use super::{now, open, signup, subscriber};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    sign_ups_at_once_do_what_they_would_one_after_another,
    two_instances_keep_the_day_s_cap_between_them,
);

async fn sign_ups_at_once_do_what_they_would_one_after_another(backend: Backend) {
    let opened = open(backend).await;
    let store = &opened.store;
    let now = now();
    let variants = [
        "Jo@example.org",
        "JO@example.org",
        "jo@EXAMPLE.org",
        "jO@example.org",
    ];
    let mut requests = Vec::new();
    for round in 0..3 {
        for email in variants {
            requests.push(signup(opened.list_id, email, now));
        }
        for n in 0..20 {
            let email = format!("person{round}-{n}@example.org");
            let mut request = signup(opened.list_id, &email, now);
            request.budgets = Budgets {
                per_client: 0,
                per_domain: 0,
                total: 30,
            };
            requests.push(request);
        }
    }
    let mut replay = signup(opened.list_id, "replay@example.org", now);
    replay.form_nonce = requests[0].form_nonce;
    requests.insert(1, replay);

    let outcomes: Vec<SignupOutcome> = join_all(requests.iter().map(|r| store.record_signup(r)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let of = |email: &str| -> Vec<SignupOutcome> {
        requests
            .iter()
            .zip(&outcomes)
            .filter(|(r, _)| r.subscriber.email.key() == email)
            .map(|(_, o)| *o)
            .collect()
    };
    let queued = |outcomes: &[SignupOutcome]| {
        outcomes
            .iter()
            .filter(|o| **o == SignupOutcome::ConfirmationQueued)
            .count()
    };

    // The form token worked once: for the first who sent it.
    assert_eq!(of("replay@example.org"), [SignupOutcome::FormTokenUsed]);
    // One person, asked three times (the day's cap), then no more.
    let jo = of("jo@example.org");
    assert_eq!(jo.len(), 12);
    assert_eq!(queued(&jo), RESEND_CAP as usize, "{jo:?}");
    assert!(jo.iter().all(|o| matches!(
        o,
        SignupOutcome::ConfirmationQueued | SignupOutcome::ResendCapReached
    )));
    // The total budget of 30 counts Jo's three mails too.
    let strangers: Vec<SignupOutcome> = requests
        .iter()
        .zip(&outcomes)
        .filter(|(r, _)| r.subscriber.email.as_str().starts_with("person"))
        .map(|(_, o)| *o)
        .collect();
    let refused = strangers
        .iter()
        .filter(|o| **o == SignupOutcome::OverBudget(BudgetScope::Total))
        .count();
    assert_eq!(queued(&strangers) + refused, 60);
    assert!(
        queued(&strangers) >= 27 && queued(&strangers) <= 30,
        "{strangers:?}"
    );
    assert_eq!(
        store
            .subscribers_after(opened.list_id, "", 1000)
            .await
            .unwrap()
            .len(),
        1 + queued(&strangers),
        "Jo, and the strangers the budget let in: nothing stored for the rest"
    );
    let refusals = store
        .budget_refusals(now - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        refusals,
        Refusals {
            client: 0,
            domain: 0,
            total: refused as i64
        }
    );
}

/// Two instances on one database, each taking sign-ups of one address at once: each
/// batch sees what the other committed while it waited for its locks, so the address
/// is still asked at most three times a day.
async fn two_instances_keep_the_day_s_cap_between_them(backend: Backend) {
    let opened = open(backend).await;
    let other = newsletter::store::connect(&opened.db.url, 4).await.unwrap();
    let now = now();
    // Pending already, with one mail: two more at most.
    let first = signup(opened.list_id, "pat@example.org", now);
    opened.store.record_signup(&first).await.unwrap();
    let requests: Vec<_> = (0..24)
        .map(|_| signup(opened.list_id, "pat@example.org", now))
        .collect();
    let outcomes = join_all(requests.iter().enumerate().map(|(i, r)| {
        let store = if i % 2 == 0 { &opened.store } else { &other };
        store.record_signup(r)
    }))
    .await;
    let queued = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(SignupOutcome::ConfirmationQueued)))
        .count();
    assert_eq!(queued, RESEND_CAP as usize - 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(
        o,
        Ok(SignupOutcome::ConfirmationQueued | SignupOutcome::ResendCapReached)
    )));
    subscriber(&opened, "pat@example.org").await;
}
