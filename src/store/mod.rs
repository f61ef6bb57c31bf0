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

pub use migrations::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, migrator};

use crate::{
    budgets::{BudgetKeys, BudgetScope, Budgets},
    domain::NewSubscriber,
    import::{ImportRecord, ImportRow, Mode, RowStatus},
    issues::{
        ArchiveChange, DraftDeletion, Issue, IssueChange, IssueContent, IssueStatus, NewIssue,
    },
    staff::StaffUser,
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

/// A mail for the outbox, ready to be written in the same transaction as its cause.
#[derive(Clone, Debug)]
pub struct NewOutboxMail {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    /// The template's context, as JSON; nothing secret.
    pub payload: String,
}

/// A sign-in attempt to count: its keys (who, from where) with the most failures each
/// may have since `since`.
#[derive(Clone, Debug)]
pub struct LoginAttempt<'a> {
    pub id: Uuid,
    pub limits: &'a [(String, i64)],
    pub since: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginAdmission {
    Admitted,
    /// A key has had too many failures: the password is not checked.
    Throttled,
}

/// Confirmation mails for one address in 24 hours, at most (sign-ups and imports).
pub const RESEND_CAP: i64 = 3;

/// A confirmation mail and its token: what asks a person to confirm a subscription.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub token_hash: [u8; 32],
    pub token_expires_at: DateTime<Utc>,
    /// The mail; its token is derived from the key and the mail's id when it is built.
    /// The store addresses it to the subscriber's address as first typed (one person
    /// per mailbox), not to `recipient`, which may be another case of it.
    pub mail: NewOutboxMail,
}

/// Everything a sign-up writes, decided before the transaction starts; the store only
/// decides, from what it finds, which parts apply.
#[derive(Clone, Debug)]
pub struct SignupRequest {
    pub new_subscriber_id: Uuid,
    pub event_id: Uuid,
    pub subscriber: NewSubscriber,
    pub list_id: Uuid,
    pub invitation: Invitation,
    /// For someone already subscribed: a short "you are already subscribed" mail with
    /// their way out, sent instead of a confirmation (at most `resend_cap` a day).
    pub reminder: NewOutboxMail,
    pub consent: ConsentContext,
    pub wording_version: &'static str,
    pub wording_hash: String,
    pub now: DateTime<Utc>,
    /// At most this many confirmation mails for one subscription in 24 hours.
    pub resend_cap: i64,
    /// The random part of the sign-up form's token: each works once.
    pub form_nonce: [u8; 16],
    /// What this sign-up counts against, and the limits (see `budgets.rs`).
    pub budget_keys: BudgetKeys,
    pub budgets: Budgets,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A confirmation mail is in the outbox.
    ConfirmationQueued,
    /// Already confirmed: an "already subscribed" mail is in the outbox.
    ReminderQueued,
    /// Already confirmed, and reminded often enough in the last 24 hours: nothing sent.
    AlreadyConfirmed,
    /// Pending, but enough confirmation mails went out in the last 24 hours.
    ResendCapReached,
    /// The form's token was used before: nothing stored.
    FormTokenUsed,
    /// A budget on confirmation mails is spent: nothing stored or sent.
    OverBudget(BudgetScope),
}

#[derive(Clone, Debug)]
pub struct ConfirmRequest {
    pub token_hash: [u8; 32],
    pub event_id: Uuid,
    pub consent: ConsentContext,
    pub now: DateTime<Utc>,
    /// Queued when the subscription is confirmed now; the store addresses it to the
    /// subscriber (its `recipient` is not used).
    pub welcome: NewOutboxMail,
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

/// One person of an import, checked, with the ids their rows will have.
#[derive(Clone, Debug)]
pub struct ImportedPerson {
    /// The row's line in the file, to record its outcome.
    pub line: i64,
    pub subscriber: NewSubscriber,
    pub new_subscriber_id: Uuid,
    pub event_id: Uuid,
    /// Their confirmation mail, when the import sends one.
    pub invitation: Option<Invitation>,
}

/// A batch of an import, applied in one transaction.
#[derive(Clone, Debug)]
pub struct ImportBatch<'a> {
    pub import_id: Uuid,
    pub list_id: Uuid,
    pub mode: Mode,
    pub now: DateTime<Utc>,
    pub people: &'a [ImportedPerson],
}

/// A claimed outbox row: the worker holds its lease until it records an outcome.
#[derive(Clone, Debug)]
pub struct OutboxMail {
    pub id: Uuid,
    /// Whom the mail concerns, when it concerns a subscriber.
    pub subscriber_id: Option<Uuid>,
    pub kind: String,
    pub recipient: String,
    pub payload: String,
    /// A token sealed by an earlier version, for a mail queued before an upgrade.
    pub sealed_secret: Option<Vec<u8>>,
    /// Including this one.
    pub attempts: i32,
}

/// What became of one attempt to send a mail.
#[derive(Clone, Debug)]
pub enum SendOutcome {
    Sent {
        reply: String,
        at: DateTime<Utc>,
    },
    Retry {
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    Failed {
        error: String,
    },
    /// Not sent, and not to be: the recipient left after the issue started.
    Skipped,
}

#[derive(Clone, Debug)]
pub struct OutboxResult {
    pub id: Uuid,
    pub outcome: SendOutcome,
}

#[derive(Clone, Debug)]
pub struct DeliveryResult {
    pub issue_id: Uuid,
    pub subscriber_id: Uuid,
    pub outcome: SendOutcome,
}

/// An outcome as the columns it sets: both backends write a batch of these in one
/// statement, for the outbox and for deliveries alike.
pub(crate) struct OutcomeColumns<'a> {
    pub status: &'static str,
    pub sent_at: Option<DateTime<Utc>>,
    pub reply: Option<&'a str>,
    /// `None` keeps the row's current value.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub error: Option<&'a str>,
}

impl SendOutcome {
    pub(crate) fn columns(&self) -> OutcomeColumns<'_> {
        let mut columns = OutcomeColumns {
            status: "sent",
            sent_at: None,
            reply: None,
            next_attempt_at: None,
            error: None,
        };
        match self {
            SendOutcome::Sent { reply, at } => {
                columns.sent_at = Some(*at);
                columns.reply = Some(reply);
            }
            SendOutcome::Retry {
                error,
                next_attempt_at,
            } => {
                columns.status = "queued";
                columns.next_attempt_at = Some(*next_attempt_at);
                columns.error = Some(error);
            }
            SendOutcome::Failed { error } => {
                columns.status = "failed";
                columns.error = Some(error);
            }
            SendOutcome::Skipped => columns.status = "skipped",
        }
        columns
    }
}

/// A claimed delivery: one recipient of one issue, leased to the worker.
#[derive(Clone, Debug)]
pub struct DeliveryJob {
    pub issue_id: Uuid,
    pub subscriber_id: Uuid,
    pub list_id: Uuid,
    pub email: String,
    /// Still confirmed for the issue's list (they may have left since it started).
    pub still_subscribed: bool,
    /// Including this one.
    pub attempts: i32,
}

/// An issue's numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct IssueStats {
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
    /// Queued, being sent, or waiting for a retry.
    pub pending: i64,
    /// Left the list after the issue started, before their copy went.
    pub skipped: i64,
    /// Not sent because the issue was cancelled.
    pub cancelled: i64,
    /// Unsubscribed through a link in this issue.
    pub unsubscribed: i64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the backend's migrations.
    async fn migrate(&self) -> anyhow::Result<()>;
    /// A round trip to the database, for `/health`.
    async fn ping(&self) -> anyhow::Result<()>;
    async fn list_by_slug(&self, slug: &str) -> anyhow::Result<Option<MailingList>>;
    /// Every list's slug, in order.
    async fn list_slugs(&self) -> anyhow::Result<Vec<String>>;
    async fn default_list(&self) -> anyhow::Result<MailingList> {
        self.list_by_slug(DEFAULT_LIST)
            .await?
            .ok_or_else(|| anyhow::anyhow!("The list {DEFAULT_LIST:?} is missing"))
    }
    /// The secret key an earlier version kept in the database, if it is still there.
    async fn legacy_secret_key(&self) -> anyhow::Result<Option<String>>;
    /// Deletes that key so that no trace of it is left in the database files.
    async fn forget_legacy_secret_key(&self) -> anyhow::Result<()>;
    /// The ids of every key that has signed here (never the keys themselves).
    async fn signing_key_ids(&self) -> anyhow::Result<Vec<String>>;
    async fn record_signing_key_id(&self, id: &str) -> anyhow::Result<()>;

    async fn record_signup(&self, signup: &SignupRequest) -> anyhow::Result<SignupOutcome>;
    async fn confirm_subscription(
        &self,
        confirm: &ConfirmRequest,
    ) -> anyhow::Result<ConfirmOutcome>;
    /// Puts a test copy in the outbox for `requested_by`, unless they have asked for
    /// `limit` since `since` already: false then, and nothing is queued.
    async fn queue_test_copy(
        &self,
        mail: &NewOutboxMail,
        requested_by: &str,
        limit: i64,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
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
    /// When the next mail is due (outbox or delivery), or a lease runs out.
    async fn next_mail_due(&self) -> anyhow::Result<Option<DateTime<Utc>>>;

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

    /// Adds a staff user with this password hash; false if the address is taken.
    async fn create_staff_user(
        &self,
        user: &StaffUser,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
    /// The staff user with this (normalised) address, and their password hash.
    async fn staff_login(&self, email: &str) -> anyhow::Result<Option<(StaffUser, String)>>;
    async fn create_session(
        &self,
        token_hash: &[u8; 32],
        user_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// Every staff user, by address, with when they were added.
    async fn staff_users(&self) -> anyhow::Result<Vec<(StaffUser, DateTime<Utc>)>>;
    /// Removes a staff user and ends their sessions; false if there is no such user.
    async fn delete_staff_user(&self, id: Uuid) -> anyhow::Result<bool>;
    /// Every API token's name, when it was made, and when it was revoked, newest first.
    async fn api_tokens(
        &self,
    ) -> anyhow::Result<Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)>>;
    /// Whose unexpired session this is.
    async fn session_user(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StaffUser>>;
    async fn delete_session(&self, token_hash: &[u8; 32]) -> anyhow::Result<()>;
    /// Counts a sign-in attempt under each of its keys, unless a key has reached its
    /// limit: in one step, before the password is checked, so that parallel attempts
    /// cannot outrun the limits. An attempt counts as failed until it is forgotten.
    async fn admit_login(&self, attempt: &LoginAttempt<'_>) -> anyhow::Result<LoginAdmission>;
    /// Takes back an attempt that succeeded (or was never checked), and forgets every
    /// failure under the keys `clear`.
    async fn forget_login_attempt(&self, id: Uuid, clear: &[String]) -> anyhow::Result<()>;

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
    /// Records an import and its rows, with their verdicts.
    async fn create_import(&self, import: &ImportRecord, rows: &[ImportRow]) -> anyhow::Result<()>;
    async fn import(&self, id: Uuid) -> anyhow::Result<Option<ImportRecord>>;
    /// The list's imports, newest first.
    async fn imports(&self, list_id: Uuid) -> anyhow::Result<Vec<ImportRecord>>;
    /// How many of an import's rows have each status.
    async fn import_counts(&self, id: Uuid) -> anyhow::Result<Vec<(RowStatus, i64)>>;
    /// A page of an import's rows after line `after_line`, in the file's order, with
    /// `status` if given.
    async fn import_rows(
        &self,
        id: Uuid,
        status: Option<RowStatus>,
        after_line: i64,
        offset: u32,
        limit: u32,
    ) -> anyhow::Result<Vec<ImportRow>>;
    /// Marks the import applied, if it was not: false if it was (so one click, or one
    /// instance, applies it).
    async fn start_import(&self, id: Uuid, now: DateTime<Utc>) -> anyhow::Result<bool>;
    /// Deletes an import that was never applied, with its rows; false if there is none.
    async fn discard_import(&self, id: Uuid) -> anyhow::Result<bool>;
    /// Sign-ups turned away by each budget since `since`.
    async fn budget_refusals(
        &self,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(BudgetScope, i64)>>;
    /// Deletes budget counts and used form tokens older than `cutoff`.
    async fn delete_signup_records_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()>;
    /// Deletes the rows of imports made before `cutoff`, and imports never applied.
    async fn delete_import_rows_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()>;
    /// Imports a batch of people (see `import::outcome`) and records each row's outcome.
    async fn import_subscribers(&self, batch: &ImportBatch<'_>) -> anyhow::Result<()>;

    /// Sign-ups and unsubscribes per UTC day since `since`: (day, sign-ups, unsubscribes).
    async fn daily_signups_and_unsubscribes(
        &self,
        list_id: Uuid,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(chrono::NaiveDate, i64, i64)>>;

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
    ) -> anyhow::Result<IssueChange>;

    /// Moves an issue from one of `from` to `to` (setting `send_at` when given).
    async fn transition_issue(
        &self,
        id: Uuid,
        from: &[IssueStatus],
        to: IssueStatus,
        send_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssueChange>;
    /// Deletes a draft; anything later is refused.
    async fn delete_draft(&self, id: Uuid) -> anyhow::Result<DraftDeletion>;
    /// Withdraws a sent issue from the public archive or puts it back, and records who
    /// did it and when (only when that changes anything).
    async fn change_archive(&self, change: &ArchiveChange<'_>) -> anyhow::Result<IssueChange>;
    /// Starts every scheduled issue that is due: one conditional update moves it to
    /// `sending` (so one instance wins), and in the same transaction one delivery per
    /// confirmed subscriber is inserted. Returns how many issues started.
    async fn start_due_issues(&self, now: DateTime<Utc>) -> anyhow::Result<usize>;
    /// When the next scheduled issue is due.
    async fn next_issue_due(&self) -> anyhow::Result<Option<DateTime<Utc>>>;
    /// Leases up to `limit` due deliveries of issues that are sending.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<DeliveryJob>>;
    /// Records a batch's outcomes in one statement.
    async fn record_delivery_results(&self, results: &[DeliveryResult]) -> anyhow::Result<()>;
    /// Marks as sent every sending issue with nothing left to send.
    async fn finish_sent_issues(&self, now: DateTime<Utc>) -> anyhow::Result<()>;
    async fn issue_stats(&self, id: Uuid) -> anyhow::Result<IssueStats>;
    /// When each unsubscribe through a link in this issue happened, oldest first.
    async fn issue_unsubscribe_times(&self, id: Uuid) -> anyhow::Result<Vec<DateTime<Utc>>>;
    /// Up to `limit` of the issue's failed copies: the address and the relay's reply.
    async fn failed_deliveries(
        &self,
        id: Uuid,
        limit: u32,
    ) -> anyhow::Result<Vec<(String, String)>>;

    async fn close(&self);
}

/// An import's rows counted by status, as both stores read them.
fn import_counts(rows: Vec<(String, i64)>) -> anyhow::Result<Vec<(RowStatus, i64)>> {
    rows.into_iter()
        .map(|(status, count)| {
            let status = RowStatus::parse(&status)
                .ok_or_else(|| anyhow::anyhow!("An imported row has the status {status:?}"))?;
            Ok((status, count))
        })
        .collect()
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
