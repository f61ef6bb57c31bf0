//! Budgets on confirmation mails: what they turned away, and forgetting old counts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audience::budgets::Refusals;

#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Sign-ups turned away by each budget since `since`.
    async fn budget_refusals(&self, since: DateTime<Utc>) -> anyhow::Result<Refusals>;
    /// Deletes budget counts and used form tokens older than `cutoff`.
    async fn delete_signup_records_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()>;
}
