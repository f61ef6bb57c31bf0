//! A person's own page: who they are, and the changes they make there (their details,
//! the lists they are on), each recorded in the ledger.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ConsentContext;
use crate::audience::preferences::ListChanges;
use crate::audience::subscriber::{Locality, Organisation, SubscriberName};

/// A subscriber, as they are whatever their lists.
#[derive(Clone, Debug, serde::Serialize)]
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

#[async_trait]
pub trait PreferenceStore: Send + Sync {
    async fn person(&self, id: Uuid) -> anyhow::Result<Option<Person>>;
    /// Applies the change in one transaction; a list already as asked is left alone
    /// (and no event is recorded for it).
    async fn change_preferences(&self, change: &PreferenceChange) -> anyhow::Result<()>;
    /// Records that the person downloaded what we hold about them.
    async fn record_export(
        &self,
        subscriber_id: Uuid,
        ledger_list: Uuid,
        consent: &ConsentContext,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
}
