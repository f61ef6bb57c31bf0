//! Deliveries: one row per recipient of an issue, queued when it starts, claimed
//! by the worker, counted for the issue's numbers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::SendOutcome;

#[derive(Clone, Debug)]
pub struct DeliveryResult {
    pub issue_id: Uuid,
    pub subscriber_id: Uuid,
    /// The worker that claimed it: an outcome is written only while that worker still
    /// holds the row, never over another's claim after its lease ran out.
    pub claimed_by: Uuid,
    pub outcome: SendOutcome,
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
    /// The worker it is leased to.
    pub claimed_by: Uuid,
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
    /// Unsubscribed through a link in this issue (or its unsubscribe address).
    pub unsubscribed: i64,
    /// Recipients whose copy bounced for good, as the receiving system reported later.
    pub hard_bounces: i64,
    /// Recipients whose copy bounced for now (a full mailbox, a refusal by policy).
    pub soft_bounces: i64,
    /// Recipients who reported their copy as spam.
    pub complaints: i64,
}

/// A copy of an issue that could not be delivered: to whom, and the relay's reply.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FailedCopy {
    pub email: String,
    pub reply: String,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Starts every scheduled issue that is due: one conditional update moves it to
    /// `sending` (so one instance wins), and in the same transaction one delivery per
    /// confirmed subscriber is inserted. Returns how many issues started.
    async fn start_due_issues(&self, now: DateTime<Utc>) -> anyhow::Result<usize>;
    /// Leases up to `limit` due deliveries of issues that are sending to `worker`.
    async fn claim_deliveries(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<DeliveryJob>>;
    /// Extends the lease of every delivery `worker` holds to `lease_until`.
    async fn renew_delivery_leases(
        &self,
        worker: Uuid,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<u64>;
    /// Records a batch's outcomes in one statement.
    async fn record_delivery_results(&self, results: &[DeliveryResult]) -> anyhow::Result<()>;
    /// Marks as sent every sending issue with nothing left to send.
    async fn finish_sent_issues(&self, now: DateTime<Utc>) -> anyhow::Result<()>;
    async fn issue_stats(&self, id: Uuid) -> anyhow::Result<IssueStats>;
    /// When each unsubscribe through a link in this issue happened, oldest first.
    async fn issue_unsubscribe_times(&self, id: Uuid) -> anyhow::Result<Vec<DateTime<Utc>>>;
    /// Up to `limit` of the issue's failed copies: the address and the relay's reply.
    async fn failed_deliveries(&self, id: Uuid, limit: u32) -> anyhow::Result<Vec<FailedCopy>>;
}
