//! Subscriptions and their consent ledger: leaving, erasure, and what staff read
//! about the people on a list.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::tokens::UnsubscribeToken;

/// How a consent event came about: the request's origin and the wording shown.
#[derive(Clone, Debug)]
pub struct ConsentContext {
    pub method: ConsentMethod,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentMethod {
    Form,
    Api,
    Link,
    /// RFC 8058: the mail client's own unsubscribe button.
    OneClick,
    /// Staff, in the web UI.
    Admin,
}

impl ConsentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentMethod::Form => "form",
            ConsentMethod::Api => "api",
            ConsentMethod::Link => "link",
            ConsentMethod::OneClick => "one-click",
            ConsentMethod::Admin => "admin",
        }
    }
}

/// A subscriber of a list, as staff see them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SubscriberSummary {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub organisation: Option<String>,
    pub locality: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// One entry of a subscriber's consent ledger.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConsentRecord {
    pub kind: String,
    pub method: String,
    pub occurred_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub wording_version: Option<String>,
    /// The issue whose link it came from.
    pub issue_subject: Option<String>,
    /// The import that made it, and the lawful basis the importer gave.
    pub import_id: Option<Uuid>,
    pub import_note: Option<String>,
}

#[derive(Clone, Debug)]
pub struct UnsubscribeRequest {
    pub token: UnsubscribeToken,
    pub event_id: Uuid,
    pub consent: ConsentContext,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsubscribeOutcome {
    Unsubscribed,
    AlreadyUnsubscribed,
    /// No such subscription (the person's data may have been erased).
    NotSubscribed,
}

#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Ends a subscription and records who asked, how, and from which issue.
    async fn unsubscribe(&self, request: &UnsubscribeRequest)
    -> anyhow::Result<UnsubscribeOutcome>;
    /// How many of the list's subscribers are in each status (pending, confirmed,
    /// unsubscribed), in that order.
    async fn subscriber_counts(&self, list_id: Uuid) -> anyhow::Result<Vec<(String, i64)>>;
    /// A page of the list's subscribers, by address, whose address, name or
    /// organisation contains `search`; and how many match in all.
    async fn subscribers(
        &self,
        list_id: Uuid,
        search: &str,
        offset: u32,
        limit: u32,
    ) -> anyhow::Result<(Vec<SubscriberSummary>, i64)>;
    async fn subscriber(
        &self,
        id: Uuid,
        list_id: Uuid,
    ) -> anyhow::Result<Option<SubscriberSummary>>;
    /// The next `limit` subscribers of the list after the address `after`, by address:
    /// a whole list can be read a page at a time, however long it is.
    async fn subscribers_after(
        &self,
        list_id: Uuid,
        after: &str,
        limit: u32,
    ) -> anyhow::Result<Vec<SubscriberSummary>>;
    /// Everything the subscriber agreed to or withdrew, oldest first.
    async fn consent_ledger(&self, subscriber_id: Uuid) -> anyhow::Result<Vec<ConsentRecord>>;
    /// Removes the subscriber's personal data everywhere it is kept (their row, the
    /// ledger's IPs and user agents, queued mail, relay replies that may quote the
    /// address), ends their subscriptions, and records the erasure. False if unknown.
    async fn erase_subscriber(
        &self,
        id: Uuid,
        list_id: Uuid,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
    /// The status on the list of each of these addresses that has a subscription.
    async fn subscription_statuses(
        &self,
        list_id: Uuid,
        emails: &[String],
    ) -> anyhow::Result<Vec<(String, String)>>;
    /// Sign-ups and unsubscribes per UTC day since `since`: (day, sign-ups, unsubscribes).
    async fn daily_signups_and_unsubscribes(
        &self,
        list_id: Uuid,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(chrono::NaiveDate, i64, i64)>>;
}
