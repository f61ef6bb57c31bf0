//! The store's contract, aggregate by aggregate, driven directly against each backend
//! (no HTTP, no worker): what a third backend, or a rewrite of one, must do. Each file
//! is one aggregate's checklist, named as the trait and the backends' files are.

mod imports;
mod issues;
mod keys_and_lists;
mod outbox;
mod signups_at_once;
mod staff;
mod subscriptions;

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use newsletter::{
    audience::{
        budgets::{BudgetKeys, Budgets},
        subscriber::{NewSubscriber, SubscriberEmail, SubscriberName},
        subscription::{ConfirmOutcome, RESEND_CAP},
    },
    sending::outbox::{ALREADY_SUBSCRIBED, CONFIRMATION, WELCOME},
    store::{
        self, ConfirmRequest, ConsentContext, ConsentMethod, Invitation, NewOutboxMail,
        SignupRequest, Store, SubscriberSummary,
    },
    tokens::random_bytes,
};
use uuid::Uuid;

use crate::support::{Backend, TestDatabase};

/// The time now, to the millisecond: what both backends keep of a time (PostgreSQL
/// keeps microseconds, SQLite milliseconds), so that a time read back equals it.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// A migrated store of its own, and the database under it (dropped after it).
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub list_id: Uuid,
    pub db: TestDatabase,
}

pub async fn open(backend: Backend) -> Opened {
    let db = TestDatabase::create(&backend).await;
    let store = store::connect(&db.url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let list_id = store.default_list().await.unwrap().id;
    Opened { store, list_id, db }
}

pub fn person(email: &str) -> NewSubscriber {
    NewSubscriber {
        email: SubscriberEmail::parse(email).unwrap(),
        name: SubscriberName::parse("Sam Jones").unwrap(),
        organisation: None,
        locality: None,
    }
}

pub fn mail(kind: &str, recipient: &str) -> NewOutboxMail {
    NewOutboxMail {
        id: Uuid::now_v7(),
        kind: kind.into(),
        recipient: recipient.into(),
        payload: "{}".into(),
    }
}

pub fn consent(method: ConsentMethod) -> ConsentContext {
    ConsentContext {
        method,
        ip: Some("192.0.2.1".into()),
        user_agent: Some("contract test".into()),
    }
}

pub fn invitation(email: &str, now: DateTime<Utc>) -> Invitation {
    Invitation {
        token_hash: random_bytes(),
        token_expires_at: now + Duration::days(7),
        mail: mail(CONFIRMATION, email),
    }
}

/// A sign-up from the form, with no budget in the way.
pub fn signup(list_id: Uuid, email: &str, now: DateTime<Utc>) -> SignupRequest {
    SignupRequest {
        new_subscriber_id: Uuid::now_v7(),
        subscriber: person(email),
        list_ids: vec![list_id],
        invitation: invitation(email, now),
        reminder: mail(ALREADY_SUBSCRIBED, email),
        consent: consent(ConsentMethod::Form),
        wording_version: "v-test".into(),
        wording_hash: "hash".into(),
        now,
        resend_cap: RESEND_CAP,
        form_nonce: random_bytes(),
        budget_keys: BudgetKeys::new("192.0.2.0".into(), email, now),
        budgets: Budgets {
            per_client: 0,
            per_domain: 0,
            total: 0,
        },
        suppression_keys: newsletter::keys::KeyRing::new(crate::support::SECRET_KEY, &[])
            .address_keys(email),
    }
}

/// A confirmed subscriber with this address: signed up, and their link followed.
pub async fn confirmed(opened: &Opened, email: &str) -> SubscriberSummary {
    let now = now();
    let request = signup(opened.list_id, email, now);
    opened.store.record_signup(&request).await.unwrap();
    let confirmed = opened
        .store
        .confirm_subscription(&ConfirmRequest {
            token_hash: request.invitation.token_hash,
            consent: consent(ConsentMethod::Link),
            now,
            welcome: mail(WELCOME, email),
        })
        .await
        .unwrap();
    assert_eq!(confirmed, ConfirmOutcome::Confirmed);
    subscriber(opened, email).await
}

/// The list's subscriber with this address.
pub async fn subscriber(opened: &Opened, email: &str) -> SubscriberSummary {
    opened
        .store
        .subscribers_after(opened.list_id, "", 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.email == email)
        .unwrap_or_else(|| panic!("{email} is not on the list"))
}
