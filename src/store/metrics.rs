//! What `GET /metrics` reads from the database at each scrape (see `crate::metrics`).
//! Instances that share a database share these numbers: each reports the same.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The database's side of the metrics, read in one go.
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    /// Consent ledger events: `(kind, method, count)`, such as `("signup", "form", 12)`.
    pub ledger: Vec<(String, String, i64)>,
    /// Messages that came back, by what they were: `(kind, count)` (`hard`, `soft`...).
    pub returns: Vec<(String, i64)>,
    /// Subscriptions: `(list slug, status, count)`.
    pub subscriptions: Vec<(String, String, i64)>,
    /// The outbox (single mails) and the deliveries of issues that are sending.
    pub queues: Vec<QueueState>,
    /// Each issue that is sending or paused: its copies by status.
    pub issues: Vec<IssueCopies>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueState {
    /// `outbox` or `deliveries`.
    pub queue: &'static str,
    /// Waiting, and due now.
    pub due: i64,
    /// Waiting for a later attempt (a retry's back-off).
    pub later: i64,
    /// Claimed by a worker (under a lease).
    pub in_flight: i64,
    /// When the longest-waiting due row fell due.
    pub oldest_due: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueCopies {
    pub number: i64,
    /// The issue's status (`sending` or `paused`).
    pub status: String,
    /// `(copy status, count)`: queued, sending, sent, failed, skipped, cancelled.
    pub copies: Vec<(String, i64)>,
}

/// A connection pool's use at this moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUse {
    /// Which pool: `main` (PostgreSQL), `writer` or `reader` (SQLite).
    pub pool: &'static str,
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

#[async_trait]
pub trait MetricsStore: Send + Sync {
    async fn metrics_snapshot(&self, now: DateTime<Utc>) -> anyhow::Result<MetricsSnapshot>;
    /// The connection pools' use; no query.
    fn pool_use(&self) -> Vec<PoolUse>;
}

/// The queries, the same on both backends (`$1` is now).
pub(crate) mod sql {
    pub const LEDGER: &str =
        "SELECT kind, method, count(*) FROM consent_events GROUP BY kind, method";
    pub const RETURNS: &str = "SELECT kind, count(*) FROM inbound_messages GROUP BY kind";
    pub const SUBSCRIPTIONS: &str = "SELECT l.slug, s.status, count(*)
         FROM subscriptions s JOIN lists l ON l.id = s.list_id GROUP BY l.slug, s.status";
    /// Of one queue: its rows waiting and due, waiting for later, and claimed, and when
    /// the oldest due row fell due.
    pub const OUTBOX_QUEUE: &str = "SELECT
           count(*) FILTER (WHERE status = 'queued' AND next_attempt_at <= $1),
           count(*) FILTER (WHERE status = 'queued' AND next_attempt_at > $1),
           count(*) FILTER (WHERE status = 'sending'),
           min(next_attempt_at) FILTER (WHERE status = 'queued' AND next_attempt_at <= $1)
         FROM outbox WHERE status IN ('queued', 'sending')";
    pub const DELIVERY_QUEUE: &str = "SELECT
           count(*) FILTER (WHERE d.status = 'queued' AND d.next_attempt_at <= $1),
           count(*) FILTER (WHERE d.status = 'queued' AND d.next_attempt_at > $1),
           count(*) FILTER (WHERE d.status = 'sending'),
           min(d.next_attempt_at) FILTER (WHERE d.status = 'queued' AND d.next_attempt_at <= $1)
         FROM issues i JOIN deliveries d ON d.issue_id = i.id
         WHERE i.status = 'sending' AND d.status IN ('queued', 'sending')";
    pub const ISSUES: &str = "SELECT i.number, i.status, d.status, count(*)
         FROM issues i JOIN deliveries d ON d.issue_id = i.id
         WHERE i.status IN ('sending', 'paused')
         GROUP BY i.number, i.status, d.status ORDER BY i.number, d.status";
}

/// Sorts rows of `(issue number, issue status, copy status, count)` into issues.
pub(crate) fn issue_copies(rows: Vec<(i64, String, String, i64)>) -> Vec<IssueCopies> {
    let mut issues: Vec<IssueCopies> = Vec::new();
    for (number, status, copy_status, count) in rows {
        match issues.last_mut() {
            Some(last) if last.number == number => last.copies.push((copy_status, count)),
            _ => issues.push(IssueCopies {
                number,
                status,
                copies: vec![(copy_status, count)],
            }),
        }
    }
    issues
}
