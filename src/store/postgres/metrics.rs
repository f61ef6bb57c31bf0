//! The database's side of `/metrics`, read beside the work.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PostgresStore;
use crate::store::metrics::{
    MetricsSnapshot, MetricsStore, PoolUse, QueueState, issue_copies, sql,
};

#[async_trait]
impl MetricsStore for PostgresStore {
    async fn metrics_snapshot(&self, now: DateTime<Utc>) -> anyhow::Result<MetricsSnapshot> {
        let db = &self.pool;
        let ledger = sqlx::query_as(sql::LEDGER)
            .fetch_all(db)
            .await
            .context("Failed to count the ledger's events")?;
        let returns = sqlx::query_as(sql::RETURNS)
            .fetch_all(db)
            .await
            .context("Failed to count what came back")?;
        let subscriptions = sqlx::query_as(sql::SUBSCRIPTIONS)
            .fetch_all(db)
            .await
            .context("Failed to count subscriptions")?;
        let mut queues = Vec::with_capacity(2);
        for (queue, sql) in [
            ("outbox", sql::OUTBOX_QUEUE),
            ("deliveries", sql::DELIVERY_QUEUE),
        ] {
            let (due, later, in_flight, oldest_due): (i64, i64, i64, Option<DateTime<Utc>>) =
                sqlx::query_as(sql)
                    .bind(now)
                    .fetch_one(db)
                    .await
                    .with_context(|| format!("Failed to measure the {queue} queue"))?;
            queues.push(QueueState {
                queue,
                due,
                later,
                in_flight,
                oldest_due,
            });
        }
        let issues = sqlx::query_as(sql::ISSUES)
            .fetch_all(db)
            .await
            .context("Failed to count the sending issues' copies")?;
        Ok(MetricsSnapshot {
            ledger,
            returns,
            subscriptions,
            queues,
            issues: issue_copies(issues),
        })
    }

    fn pool_use(&self) -> Vec<PoolUse> {
        vec![PoolUse {
            pool: "main",
            open: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }]
    }
}
