//! A batch of sign-ups decided together, for a store that writes them with a few
//! multi-row statements (PostgreSQL's group commit): what the database holds is read
//! once for the whole batch, with its rows locked; each sign-up is then decided in
//! order on that state as the ones before it left it; and what they write is gathered
//! for the statements. The rules are the ones each sign-up follows on its own (the
//! form token, the budgets, the suppression list, `signup_plan`), so two sign-ups of
//! one address in a batch do what they would one after the other.

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use super::{KnownSubscriber, NewOutboxMail, SignupRequest};
use crate::audience::budgets::{BudgetKeys, BudgetScope};
use crate::audience::subscription::{SignupAction, SignupOutcome, signup_plan};
use crate::audience::suppression::admits_confirmation;

/// One budget's row: its scope, key and hour.
pub(crate) type BudgetRow = (BudgetScope, String, DateTime<Utc>);

/// The budgets a sign-up counts against, in the order they are checked (and were
/// always checked: by scope name).
pub(crate) fn budget_rows(keys: &BudgetKeys) -> [BudgetRow; 3] {
    [BudgetScope::Client, BudgetScope::Domain, BudgetScope::Total]
        .map(|scope| (scope, keys.key(scope).to_owned(), keys.window_start))
}

/// Someone the database knows, as a sign-up needs them.
#[derive(Clone, Debug)]
pub(crate) struct Person {
    /// Their address as first typed: the one mailed.
    pub email: String,
    pub known: KnownSubscriber,
    /// "Already subscribed" mails sent to them in the last 24 hours.
    pub reminders: i64,
    /// Where they are in `Decided::new_people`, if this batch adds them.
    pub added: Option<usize>,
}

/// What the database holds that a batch depends on, read with its rows locked.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The form tokens that were first used by this batch (the rest were used before).
    pub fresh_nonces: HashSet<[u8; 16]>,
    /// Confirmation mails counted against each budget row so far.
    pub budgets: HashMap<BudgetRow, i64>,
    /// The suppression entries of the addresses' keys, and when each last let a mail past.
    pub suppressions: HashMap<Vec<u8>, Option<DateTime<Utc>>>,
    /// The people already known, by `SubscriberEmail::key`.
    pub people: HashMap<String, Person>,
}

/// A sign-up that invites: a pending subscription, a token and a consent event for
/// each of `lists`.
#[derive(Debug)]
pub(crate) struct Invited<'a> {
    pub req: &'a SignupRequest,
    pub subscriber: Uuid,
    pub lists: Vec<Uuid>,
}

/// A mail for the outbox: a confirmation or an "already subscribed".
#[derive(Debug)]
pub(crate) struct Mail<'a> {
    pub mail: &'a NewOutboxMail,
    pub recipient: String,
    pub subscriber: Uuid,
    pub at: DateTime<Utc>,
    pub past_suppression: bool,
}

/// Someone the batch adds: as the first sign-up of their address typed it, with the
/// details of the last (what one sign-up after another would have kept).
#[derive(Debug)]
pub(crate) struct NewPerson<'a> {
    pub first: &'a SignupRequest,
    pub details: &'a SignupRequest,
}

/// What a batch writes, and each sign-up's outcome in order.
#[derive(Debug, Default)]
pub(crate) struct Decided<'a> {
    pub outcomes: Vec<SignupOutcome>,
    pub new_people: Vec<NewPerson<'a>>,
    /// People already known whose details are replaced by those typed: the last
    /// sign-up of each.
    pub details: Vec<(Uuid, &'a SignupRequest)>,
    pub invited: Vec<Invited<'a>>,
    pub mails: Vec<Mail<'a>>,
    /// Suppression entries a mail goes past: (key, subscriber, when).
    pub admitted: Vec<(Vec<u8>, Uuid, DateTime<Utc>)>,
    /// (mails, refused) to add to each budget row.
    pub budgets: HashMap<BudgetRow, (i64, i64)>,
}

/// Decides every sign-up of the batch in order, on what was found.
pub(crate) fn decide<'a>(requests: &[&'a SignupRequest], mut found: Found) -> Decided<'a> {
    let mut decided = Decided::default();
    for req in requests {
        let outcome = decide_one(req, &mut found, &mut decided);
        decided.outcomes.push(outcome);
    }
    decided
}

fn decide_one<'a>(
    req: &'a SignupRequest,
    found: &mut Found,
    decided: &mut Decided<'a>,
) -> SignupOutcome {
    if !found.fresh_nonces.remove(&req.form_nonce) {
        return SignupOutcome::FormTokenUsed;
    }
    let rows = budget_rows(&req.budget_keys);
    let used: Vec<(BudgetScope, i64)> = rows
        .iter()
        .map(|row| (row.0, found.budgets.get(row).copied().unwrap_or(0)))
        .collect();
    if let Some(scope) = req.budgets.overrun(&used) {
        let row = rows.into_iter().find(|row| row.0 == scope);
        decided
            .budgets
            .entry(row.expect("a scope checked"))
            .or_default()
            .1 += 1;
        return SignupOutcome::OverBudget(scope);
    }
    let entry = req
        .suppression_keys
        .iter()
        .find_map(|key| found.suppressions.get_key_value(&key[..]));
    let past_suppression = match entry {
        Some((_, last)) if !admits_confirmation(*last, req.now) => {
            return SignupOutcome::Suppressed;
        }
        Some((key, _)) => Some(key.clone()),
        None => None,
    };

    let person = found
        .people
        .entry(req.subscriber.email.key())
        .or_insert_with(|| {
            decided.new_people.push(NewPerson {
                first: req,
                details: req,
            });
            Person {
                email: req.subscriber.email.as_str().to_owned(),
                known: KnownSubscriber::new(req.new_subscriber_id, Vec::new(), false, 0)
                    .expect("no statuses to parse"),
                reminders: 0,
                added: Some(decided.new_people.len() - 1),
            }
        });
    let subscriber = person.known.id;
    let plan = signup_plan(
        &person.known.statuses_of(&req.list_ids),
        person.known.confirmed_anywhere,
        person.known.recent,
        req.resend_cap,
    );
    let (mail, outcome) = match plan.action {
        SignupAction::Nothing => return SignupOutcome::ResendCapReached,
        SignupAction::Remind if person.reminders >= req.resend_cap => {
            return SignupOutcome::AlreadyConfirmed;
        }
        SignupAction::Remind => {
            person.reminders += 1;
            (&req.reminder, SignupOutcome::ReminderQueued)
        }
        SignupAction::Invite => {
            match (plan.keep_details_typed, person.added) {
                (false, _) => {}
                (true, Some(added)) => decided.new_people[added].details = req,
                (true, None) => {
                    decided.details.retain(|(id, _)| *id != subscriber);
                    decided.details.push((subscriber, req));
                }
            }
            person.known.invited(&plan.lists);
            decided.invited.push(Invited {
                req,
                subscriber,
                lists: plan.lists,
            });
            (&req.invitation.mail, SignupOutcome::ConfirmationQueued)
        }
    };
    decided.mails.push(Mail {
        mail,
        recipient: person.email.clone(),
        subscriber,
        at: req.now,
        past_suppression: past_suppression.is_some(),
    });
    if let Some(key) = past_suppression {
        found.suppressions.insert(key.clone(), Some(req.now));
        decided.admitted.push((key, subscriber, req.now));
    }
    for row in rows {
        *found.budgets.entry(row.clone()).or_default() += 1;
        decided.budgets.entry(row).or_default().0 += 1;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::budgets::Budgets;
    use crate::audience::subscriber::{NewSubscriber, SubscriberEmail, SubscriberName};
    use crate::audience::subscription::SubscriptionStatus;
    use crate::store::{ConsentContext, ConsentMethod, Invitation};

    const LIST: Uuid = Uuid::from_u128(1);

    fn mail(kind: &str) -> NewOutboxMail {
        NewOutboxMail {
            id: Uuid::now_v7(),
            kind: kind.into(),
            recipient: String::new(),
            payload: "{}".into(),
        }
    }

    fn signup(email: &str, nonce: u8) -> SignupRequest {
        let now = Utc::now();
        SignupRequest {
            new_subscriber_id: Uuid::now_v7(),
            subscriber: NewSubscriber {
                email: SubscriberEmail::parse(email).unwrap(),
                name: SubscriberName::parse("Sam").unwrap(),
                organisation: None,
                locality: None,
            },
            list_ids: vec![LIST],
            invitation: Invitation {
                token_hash: [nonce; 32],
                token_expires_at: now,
                mail: mail("confirmation"),
            },
            reminder: mail("already_subscribed"),
            consent: ConsentContext {
                method: ConsentMethod::Form,
                ip: None,
                user_agent: None,
            },
            wording_version: "v1".into(),
            wording_hash: "h".into(),
            now,
            resend_cap: 3,
            form_nonce: [nonce; 16],
            budget_keys: BudgetKeys::new("192.0.2.0".into(), email, now),
            budgets: Budgets {
                per_client: 0,
                per_domain: 0,
                total: 0,
            },
            suppression_keys: vec![[9; 32]],
        }
    }

    /// The total budget's row that `req` counts against.
    fn total_row(req: &SignupRequest) -> BudgetRow {
        (
            BudgetScope::Total,
            String::new(),
            req.budget_keys.window_start,
        )
    }

    /// Every form token of `requests` is fresh.
    fn fresh(requests: &[&SignupRequest]) -> Found {
        Found {
            fresh_nonces: requests.iter().map(|r| r.form_nonce).collect(),
            ..Found::default()
        }
    }

    #[test]
    fn one_address_signing_up_again_in_the_batch_is_one_new_person_within_the_cap() {
        let requests: Vec<SignupRequest> = (1..=5)
            .map(|n| signup(["Jo@example.org", "JO@example.org"][n % 2], n as u8))
            .collect();
        let batch: Vec<&SignupRequest> = requests.iter().collect();
        let decided = decide(&batch, fresh(&batch));
        use SignupOutcome::*;
        let expected = [
            ConfirmationQueued,
            ConfirmationQueued,
            ConfirmationQueued,
            ResendCapReached,
            ResendCapReached,
        ];
        assert_eq!(decided.outcomes, expected);
        assert_eq!(decided.new_people.len(), 1);
        let added = &decided.new_people[0];
        assert_eq!(added.first.new_subscriber_id, requests[0].new_subscriber_id);
        assert_eq!(
            added.details.form_nonce, requests[2].form_nonce,
            "the last typed"
        );
        assert!(
            decided.details.is_empty(),
            "a new person is added as last typed"
        );
        assert!(
            decided.mails.iter().all(|m| m.recipient == "JO@example.org"
                && m.subscriber == requests[0].new_subscriber_id)
        );
        let total = total_row(&requests[0]);
        assert_eq!(decided.budgets[&total], (3, 0));
    }

    #[test]
    fn a_form_token_works_once_in_the_batch_as_before_it() {
        let first = signup("a@example.org", 1);
        let again = signup("b@example.org", 1);
        let used = signup("c@example.org", 2);
        let batch = [&first, &again, &used];
        let decided = decide(&batch, fresh(&batch[..1]));
        use SignupOutcome::*;
        assert_eq!(
            decided.outcomes,
            [ConfirmationQueued, FormTokenUsed, FormTokenUsed]
        );
        assert_eq!(decided.new_people.len(), 1);
    }

    #[test]
    fn the_budget_counts_the_mails_of_the_batch_before_it() {
        let mut requests: Vec<SignupRequest> = (1..=3)
            .map(|n| signup(&format!("p{n}@example.org"), n))
            .collect();
        for req in &mut requests {
            req.budgets.total = 5;
        }
        let batch: Vec<&SignupRequest> = requests.iter().collect();
        let mut found = fresh(&batch);
        let total = total_row(&requests[0]);
        found.budgets.insert(total.clone(), 4);
        let decided = decide(&batch, found);
        use SignupOutcome::*;
        assert_eq!(
            decided.outcomes,
            [
                ConfirmationQueued,
                OverBudget(BudgetScope::Total),
                OverBudget(BudgetScope::Total)
            ]
        );
        assert_eq!(decided.budgets[&total], (1, 2));
        assert_eq!(
            decided.new_people.len(),
            1,
            "nothing stored for the refused"
        );
    }

    #[test]
    fn a_suppressed_address_has_one_mail_a_month_and_a_confirmed_one_a_reminder() {
        let confirmed = signup("known@example.org", 1);
        let suppressed = signup("gone@example.org", 2);
        let suppressed_again = signup("gone@example.org", 3);
        let batch = [&confirmed, &suppressed, &suppressed_again];
        let mut found = fresh(&batch);
        found.suppressions.insert(vec![9; 32], None);
        let id = Uuid::now_v7();
        let statuses = vec![(LIST, SubscriptionStatus::Confirmed.as_str().to_owned())];
        found.people.insert(
            "known@example.org".into(),
            Person {
                email: "Known@example.org".into(),
                known: KnownSubscriber::new(id, statuses, true, 0).unwrap(),
                reminders: 0,
                added: None,
            },
        );
        let decided = decide(&batch, found);
        use SignupOutcome::*;
        // The first goes past the entry (all three share its key here): the rest wait a month.
        assert_eq!(decided.outcomes, [ReminderQueued, Suppressed, Suppressed]);
        assert_eq!(decided.admitted.len(), 1);
        assert!(decided.mails[0].past_suppression);
        assert_eq!(decided.mails[0].recipient, "Known@example.org");
        assert!(decided.invited.is_empty() && decided.details.is_empty());
    }
}
