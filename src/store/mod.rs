//! Storage. One trait per aggregate speaks in domain terms (the file of the same name
//! here holds it with the requests, rows and outcomes it speaks in); `Store` is all of
//! them, so `Arc<dyn Store>` is the whole database. `sqlite/` and `postgres/` each write
//! their own SQL, one file per aggregate with the same names on both sides, and
//! `connect` picks one from the `DATABASE_URL` scheme. Each operation that must be
//! atomic is one method, and one transaction.

mod accounts;
mod brand;
mod budgets;
mod deliveries;
mod imports;
mod inbound;
mod issues;
mod keys;
#[cfg(test)]
mod layers;
mod lists;
mod mapping;
mod media;
pub mod metrics;
mod migrations;
mod outbox;
mod postgres;
mod preferences;
mod signup_batch;
mod signups;
mod sqlite;
mod staff;
mod subscriptions;
mod suppressions;
mod templates;

use std::sync::Arc;

use anyhow::{Context, bail};
use async_trait::async_trait;

pub use accounts::{
    AccountStore, LinkPurpose, LinkQueued, NewStaffLink, PendingInvitation, StaffLink, TwoFactor,
};
pub use brand::{BrandStore, NewBrand};
pub use budgets::BudgetStore;
pub use deliveries::{DeliveryJob, DeliveryResult, DeliveryStore, FailedCopy, IssueStats};
pub use imports::{ImportBatch, ImportStart, ImportStore, ImportedPerson};
pub use inbound::{InboundFilter, InboundRecord, InboundStore, InboundSummary, KnownCopy, Taken};
pub use issues::IssueStore;
pub use keys::KeyStore;
pub use lists::{DEFAULT_LIST, ListStore, MailingList};
pub use media::{MediaFile, MediaItem, MediaStore, NewMedia};
pub use migrations::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, migrator};
pub use outbox::{NewOutboxMail, OutboxMail, OutboxResult, OutboxStore, SendOutcome, TestCopy};
pub use preferences::{
    LinkFor, LinkOutcome, LinkRequest, Person, PersonDetails, PreferenceChange, PreferenceStore,
};
pub(crate) use signups::KnownSubscriber;
pub use signups::{ConfirmRequest, Invitation, SignupRequest, SignupStore};
pub use staff::{
    ApiTokenRecord, LoginAdmission, LoginAttempt, StaffLogin, StaffMember, StaffStore,
};
pub use subscriptions::{
    ConsentContext, ConsentMethod, ConsentRecord, DayCounts, SubscriberCounts, SubscriberPage,
    SubscriberQuery, SubscriberSummary, SubscriptionStore, UnsubscribeRequest,
};
pub use suppressions::{
    NewSuppression, SuppressionChange, SuppressionEntry, SuppressionPage, SuppressionStore,
};
pub use templates::{NewTemplateVersion, TemplateStore, TemplateVersionInfo};

/// The whole database: every aggregate's operations, and the database's own.
#[async_trait]
pub trait Store:
    ListStore
    + KeyStore
    + SignupStore
    + SubscriptionStore
    + BudgetStore
    + ImportStore
    + OutboxStore
    + IssueStore
    + DeliveryStore
    + StaffStore
    + InboundStore
    + SuppressionStore
    + MediaStore
    + BrandStore
    + TemplateStore
    + PreferenceStore
    + AccountStore
    + metrics::MetricsStore
    + Send
    + Sync
    + 'static
{
    /// Applies the backend's migrations.
    async fn migrate(&self) -> anyhow::Result<()>;
    /// A round trip to the database, for `/health`.
    async fn ping(&self) -> anyhow::Result<()>;
    /// The newest migration applied (`None`: none, a new database).
    async fn schema_version(&self) -> anyhow::Result<Option<i64>>;
    async fn close(&self);
}

/// What became of adding something that a unique name or address guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Creation {
    Created,
    /// The name or address is taken: nothing was added.
    Taken,
}

/// What became of removing (or ending) something that may not be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    Removed,
    NotFound,
}

impl Removal {
    fn of(rows_affected: u64) -> Self {
        if rows_affected > 0 {
            Removal::Removed
        } else {
            Removal::NotFound
        }
    }
}

/// An insert's result: a unique constraint that refused it means the name is taken.
fn creation<T>(
    inserted: Result<T, sqlx::Error>,
    failure: &'static str,
) -> anyhow::Result<Creation> {
    match inserted {
        Ok(_) => Ok(Creation::Created),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Creation::Taken),
        Err(err) => Err(err).context(failure),
    }
}

/// Opens the database named by `url` (`sqlite:` or `postgres:`), without migrating.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(
            postgres::PostgresStore::connect(url, max_connections).await?,
        ))
    } else {
        bail!("DATABASE_URL must start with sqlite: or postgres:")
    }
}
