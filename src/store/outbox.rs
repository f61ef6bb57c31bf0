//! The outbox: mails written in the same transaction as their cause, claimed by the
//! worker under a lease, and their outcomes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A mail for the outbox, ready to be written in the same transaction as its cause.
#[derive(Clone, Debug)]
pub struct NewOutboxMail {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    /// The template's context, as JSON; nothing secret.
    pub payload: String,
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
    /// A sign-up from a suppressed address that was let through (once a month): its
    /// confirmation goes even so.
    pub past_suppression: bool,
    /// The worker it is leased to.
    pub claimed_by: Uuid,
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
    /// Not sent, and not to be: the address is on the suppression list.
    Suppressed,
}

/// What a row not sent to a suppressed address says.
pub const SUPPRESSED: &str = "Not sent: the address is on the suppression list";

#[derive(Clone, Debug)]
pub struct OutboxResult {
    pub id: Uuid,
    /// The worker that claimed it (see `DeliveryResult::claimed_by`).
    pub claimed_by: Uuid,
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
            SendOutcome::Suppressed => {
                columns.status = "skipped";
                columns.error = Some(SUPPRESSED);
            }
        }
        columns
    }
}

/// Whether a test copy was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestCopy {
    Queued,
    /// They asked for enough test copies lately: nothing queued.
    LimitReached,
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Puts a test copy in the outbox for `requested_by`, unless they have asked for
    /// `limit` since `since` already.
    async fn queue_test_copy(
        &self,
        mail: &NewOutboxMail,
        requested_by: &str,
        limit: i64,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<TestCopy>;
    /// Takes up to `limit` rows that are due (or whose lease has run out) and leases
    /// them to `worker` until `lease_until`.
    async fn claim_outbox(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<OutboxMail>>;
    /// Records a batch's outcomes in one statement. The sealed token goes with every
    /// outcome but a retry.
    async fn record_outbox_results(&self, results: &[OutboxResult]) -> anyhow::Result<()>;
    /// Extends the lease of every row `worker` holds to `lease_until`: its heartbeat.
    async fn renew_outbox_leases(
        &self,
        worker: Uuid,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<u64>;
    /// When the next mail is due (outbox or delivery), or a lease runs out.
    async fn next_mail_due(&self) -> anyhow::Result<Option<DateTime<Utc>>>;
}
