//! Storage. One `Store` trait speaks in domain terms; `sqlite.rs` and `postgres.rs`
//! each write their own SQL, and `connect` picks one from the `DATABASE_URL` scheme.
//! Each operation that must be atomic is one method, and one transaction.

mod migrations;
mod postgres;
mod sqlite;

use std::sync::Arc;

use anyhow::bail;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use migrations::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

use crate::{
    domain::NewSubscriber,
    issues::{Issue, IssueContent, IssueUpdate, NewIssue},
    tokens::UnsubscribeToken,
};

/// The slug of the list every sign-up joins, created by the first migration.
pub const DEFAULT_LIST: &str = "in-partnership";

/// The newsletter everyone signs up to, created by the first migration.
#[derive(Clone, Debug)]
pub struct MailingList {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

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
}

impl ConsentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentMethod::Form => "form",
            ConsentMethod::Api => "api",
            ConsentMethod::Link => "link",
            ConsentMethod::OneClick => "one-click",
        }
    }
}

/// A mail for the outbox, ready to be written in the same transaction as its cause.
#[derive(Clone, Debug)]
pub struct NewOutboxMail {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    /// The template's context, as JSON; nothing secret.
    pub payload: String,
    /// A token sealed with the secret key (see `tokens.rs`).
    pub sealed_secret: Option<Vec<u8>>,
}

/// Everything a sign-up writes, decided before the transaction starts; the store only
/// decides, from what it finds, which parts apply.
#[derive(Clone, Debug)]
pub struct SignupRequest {
    pub new_subscriber_id: Uuid,
    pub event_id: Uuid,
    pub subscriber: NewSubscriber,
    pub list_id: Uuid,
    pub token_hash: [u8; 32],
    pub token_expires_at: DateTime<Utc>,
    pub mail: NewOutboxMail,
    pub consent: ConsentContext,
    pub wording_version: &'static str,
    pub wording_hash: String,
    pub now: DateTime<Utc>,
    /// At most this many confirmation mails for one subscription in 24 hours.
    pub resend_cap: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A confirmation mail is in the outbox.
    ConfirmationQueued,
    /// Already confirmed: nothing to send.
    AlreadyConfirmed,
    /// Pending, but enough confirmation mails went out in the last 24 hours.
    ResendCapReached,
}

#[derive(Clone, Debug)]
pub struct ConfirmRequest {
    pub token_hash: [u8; 32],
    pub event_id: Uuid,
    pub consent: ConsentContext,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Confirmed,
    /// The subscription was confirmed before (a second click, or another link).
    AlreadyConfirmed,
    /// The token was used and the subscription has since changed: links are single use.
    Used,
    Expired,
    Unknown,
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

/// A claimed outbox row: the worker holds its lease until it records an outcome.
#[derive(Clone, Debug)]
pub struct OutboxMail {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub payload: String,
    pub sealed_secret: Option<Vec<u8>>,
    /// Including this one.
    pub attempts: i32,
}

#[derive(Clone, Debug)]
pub enum OutboxResult {
    Sent {
        id: Uuid,
        reply: String,
        at: DateTime<Utc>,
    },
    Retry {
        id: Uuid,
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    Failed {
        id: Uuid,
        error: String,
    },
}

/// An outcome as the columns it sets: both backends write a batch of these in one
/// statement.
pub(crate) struct OutboxUpdate<'a> {
    pub id: Uuid,
    pub status: &'static str,
    pub sent_at: Option<DateTime<Utc>>,
    pub reply: Option<&'a str>,
    /// `None` keeps the row's current value.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub error: Option<&'a str>,
}

impl OutboxResult {
    pub(crate) fn update(&self) -> OutboxUpdate<'_> {
        match self {
            OutboxResult::Sent { id, reply, at } => OutboxUpdate {
                id: *id,
                status: "sent",
                sent_at: Some(*at),
                reply: Some(reply),
                next_attempt_at: None,
                error: None,
            },
            OutboxResult::Retry {
                id,
                error,
                next_attempt_at,
            } => OutboxUpdate {
                id: *id,
                status: "queued",
                sent_at: None,
                reply: None,
                next_attempt_at: Some(*next_attempt_at),
                error: Some(error),
            },
            OutboxResult::Failed { id, error } => OutboxUpdate {
                id: *id,
                status: "failed",
                sent_at: None,
                reply: None,
                next_attempt_at: None,
                error: Some(error),
            },
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the backend's migrations.
    async fn migrate(&self) -> anyhow::Result<()>;
    /// A round trip to the database, for `/health`.
    async fn ping(&self) -> anyhow::Result<()>;
    async fn list_by_slug(&self, slug: &str) -> anyhow::Result<Option<MailingList>>;
    async fn default_list(&self) -> anyhow::Result<MailingList> {
        self.list_by_slug(DEFAULT_LIST)
            .await?
            .ok_or_else(|| anyhow::anyhow!("The list {DEFAULT_LIST:?} is missing"))
    }
    /// The stored secret key, or `candidate` stored as it if there is none yet (every
    /// instance sharing a database ends up with the same one).
    async fn secret_key(&self, candidate: &str) -> anyhow::Result<String>;

    async fn record_signup(&self, signup: &SignupRequest) -> anyhow::Result<SignupOutcome>;
    async fn confirm_subscription(
        &self,
        confirm: &ConfirmRequest,
    ) -> anyhow::Result<ConfirmOutcome>;
    /// Ends a subscription and records who asked, how, and from which issue.
    async fn unsubscribe(&self, request: &UnsubscribeRequest)
    -> anyhow::Result<UnsubscribeOutcome>;

    /// Takes up to `limit` rows that are due (or whose lease has run out) and leases
    /// them until `lease_until`.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<OutboxMail>>;
    /// Records a batch's outcomes in one statement. The sealed token goes with every
    /// outcome but a retry.
    async fn record_outbox_results(&self, results: &[OutboxResult]) -> anyhow::Result<()>;
    /// When the next queued row is due, if any row is queued.
    async fn next_outbox_due(&self) -> anyhow::Result<Option<DateTime<Utc>>>;

    /// Stores a new API token's hash under `name`; false if a live token has that name.
    async fn create_api_token(
        &self,
        id: Uuid,
        name: &str,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
    /// Revokes the live token called `name`; false if there is none.
    async fn revoke_api_token(&self, name: &str, now: DateTime<Utc>) -> anyhow::Result<bool>;
    /// The name of the live token with this hash.
    async fn api_token_name(&self, token_hash: &[u8; 32]) -> anyhow::Result<Option<String>>;

    async fn create_issue(&self, issue: &NewIssue) -> anyhow::Result<Issue>;
    /// Every issue, newest first.
    async fn issues(&self) -> anyhow::Result<Vec<Issue>>;
    async fn issue(&self, id: Uuid) -> anyhow::Result<Option<Issue>>;
    /// Applies the fields present in `changes`, if the issue is still editable.
    async fn update_issue(
        &self,
        id: Uuid,
        changes: &IssueContent,
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssueUpdate>;

    async fn close(&self);
}

/// Whether an insert failed on a unique constraint.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
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
