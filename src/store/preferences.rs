//! A person's own page: who they are, and the changes they make there (their details,
//! the lists they are on), each recorded in the ledger.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConsentContext, NewOutboxMail};
use crate::audience::budgets::{BudgetKeys, BudgetScope, Budgets};
use crate::audience::preferences::ListChanges;
use crate::audience::subscriber::{Locality, Organisation, SubscriberName};

/// A subscriber, as they are whatever their lists.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Person {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub organisation: Option<String>,
    pub locality: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Their details, as they typed them on the page, checked.
#[derive(Clone, Debug)]
pub struct PersonDetails {
    pub name: SubscriberName,
    pub organisation: Option<Organisation>,
    pub locality: Option<Locality>,
}

#[derive(Clone, Debug)]
pub struct PreferenceChange {
    pub subscriber_id: Uuid,
    /// New details, if they changed; recorded against `ledger_list`.
    pub details: Option<PersonDetails>,
    pub ledger_list: Uuid,
    pub lists: ListChanges,
    pub consent: ConsentContext,
    /// The consent sentence the page showed beside the lists.
    pub wording_version: String,
    pub wording_hash: String,
    pub now: DateTime<Utc>,
}

/// Who a link mail is for.
#[derive(Clone, Debug)]
pub enum LinkFor {
    /// Typed on the site: sent only if it is a subscriber's.
    Address(String),
    /// The person whose page asked.
    Subscriber(Uuid),
}

/// "Email me my link": the mail to queue for the person, and what the request counts
/// against (as a sign-up does, whether or not anything is sent).
#[derive(Clone, Debug)]
pub struct LinkRequest {
    pub to: LinkFor,
    /// Addressed by the store to the subscriber's address as first typed.
    pub mail: NewOutboxMail,
    /// The site's form token; the page's own request has none.
    pub form_nonce: Option<[u8; 16]>,
    pub budget_keys: BudgetKeys,
    pub budgets: Budgets,
    /// Link mails one person is sent at most in 24 hours.
    pub daily_cap: i64,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    Queued,
    /// No subscriber has this address, or they have had their links for today:
    /// nothing sent (and the person is told the same as when it is).
    NotSent,
    FormTokenUsed,
    OverBudget(BudgetScope),
}

#[async_trait]
pub trait PreferenceStore: Send + Sync {
    async fn person(&self, id: Uuid) -> anyhow::Result<Option<Person>>;
    /// The id of the subscriber with this address (by mailbox key), if there is one.
    async fn subscriber_id(&self, email: &str) -> anyhow::Result<Option<Uuid>>;
    /// Applies the change in one transaction; a list already as asked is left alone
    /// (and no event is recorded for it).
    async fn change_preferences(&self, change: &PreferenceChange) -> anyhow::Result<()>;
    /// Queues the link mail for a subscriber, within the sign-up budgets and the
    /// person's daily cap.
    async fn request_preferences_link(&self, request: &LinkRequest) -> anyhow::Result<LinkOutcome>;
    /// Records that the person downloaded what we hold about them.
    async fn record_export(
        &self,
        subscriber_id: Uuid,
        ledger_list: Uuid,
        consent: &ConsentContext,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
}
