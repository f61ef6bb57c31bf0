//! Budgets: on confirmation mails (what they turned away, and forgetting old counts),
//! and the relay's rate limits, shared by every instance (`sending::rate`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audience::budgets::Refusals;
use crate::sending::rate::{Grant, RateLimits};

#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Sign-ups turned away by each budget since `since`.
    async fn budget_refusals(&self, since: DateTime<Utc>) -> anyhow::Result<Refusals>;
    /// Deletes budget counts and used form tokens older than `cutoff`.
    async fn delete_signup_records_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()>;
    /// Takes up to `wanted` issue copies from the windows `now` falls in, in one
    /// transaction, as `limits.grant` allows (and forgets windows long past).
    async fn take_send_budget(
        &self,
        now: DateTime<Utc>,
        wanted: u32,
        limits: RateLimits,
    ) -> anyhow::Result<Grant>;
    /// Gives back `unused` copies taken at `taken_at` and not sent.
    async fn return_send_budget(&self, taken_at: DateTime<Utc>, unused: u32) -> anyhow::Result<()>;
}
