//! Deliveries: one row per recipient of an issue, queued when it starts, claimed
//! by the worker, counted for the issue's numbers.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    PostgresStore,
    rows::{bind_filter, bind_outcomes},
};
use crate::audience::segment::{self, Segment};
use crate::store::mapping;
use crate::store::{DeliveryJob, DeliveryResult, DeliveryStore, FailedCopy, IssueStats};
use sqlx::Row;

#[async_trait]
impl DeliveryStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn start_due_issues(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let due: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM issues WHERE status = 'scheduled' AND send_at <= $1 ORDER BY send_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .context("Failed to find the issues that are due")?;
        let mut started = 0;
        for id in due {
            let clock = std::time::Instant::now();
            let mut tx = self
                .pool
                .begin()
                .await
                .context("Failed to begin starting an issue")?;
            let moved = sqlx::query(
                "UPDATE issues SET status = 'sending', started_at = $2, updated_at = $2,
                     template_version = (SELECT max(t.version) FROM template_versions t
                                         WHERE t.name = issues.template),
                     brand_version = (SELECT max(b.version) FROM brand_versions b)
                 WHERE id = $1 AND status = 'scheduled' AND send_at <= $2
                 RETURNING list_id, segment",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .context("Failed to start the issue")?;
            let Some(moved) = moved else {
                continue; // another instance started it
            };
            // Read with the issue's row taken: the segment it starts with is the one
            // its copies are made from.
            let segment = match moved
                .try_get::<Option<String>, _>("segment")?
                .map(|json| Segment::from_json(&json))
                .transpose()
            {
                Ok(segment) => segment,
                Err(err) => {
                    // Sending to the wrong people is worse than not sending: it stays
                    // scheduled (this transaction is undone), and the others start.
                    tracing::error!(issue = %id, error = %format!("{err:#}"), "Issue not started");
                    continue;
                }
            };
            let audience = segment::audience(segment.as_ref(), 3);
            // The condition is our own text; every value in it is bound.
            let query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO deliveries (issue_id, subscriber_id, next_attempt_at)
                 SELECT $1, sub.subscriber_id, $2 {}",
                audience.condition
            )))
            .bind(id)
            .bind(now)
            .bind(moved.try_get::<Uuid, _>("list_id")?);
            let recipients = bind_filter(query, &audience)
                .execute(&mut *tx)
                .await
                .context("Failed to queue the issue's deliveries")?;
            tx.commit()
                .await
                .context("Failed to commit starting the issue")?;
            tracing::info!(
                issue = %id,
                recipients = recipients.rows_affected(),
                queued_in_ms = clock.elapsed().as_millis() as u64,
                "Issue started"
            );
            started += 1;
        }
        Ok(started)
    }

    async fn claim_deliveries(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<DeliveryJob>> {
        // Issue by issue, each through its own queue index: one scan with the two
        // conditions OR-ed walked the table past every row already sent.
        let rows = sqlx::query(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = $2,
               claimed_by = $4
             WHERE (issue_id, subscriber_id) IN (
               SELECT d.issue_id, d.subscriber_id FROM issues i CROSS JOIN LATERAL (
                 SELECT issue_id, subscriber_id FROM deliveries
                 WHERE issue_id = i.id AND status = 'sending' AND lease_until <= $1
                 LIMIT $3 FOR UPDATE SKIP LOCKED) d
               WHERE i.status = 'sending'
               UNION ALL
               SELECT d.issue_id, d.subscriber_id FROM issues i CROSS JOIN LATERAL (
                 SELECT issue_id, subscriber_id FROM deliveries
                 WHERE issue_id = i.id AND status = 'queued' AND next_attempt_at <= $1
                 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) d
               WHERE i.status = 'sending'
               LIMIT $3)
             RETURNING issue_id, subscriber_id, attempts, claimed_by,
               (SELECT list_id FROM issues WHERE id = deliveries.issue_id) AS list_id,
               coalesce((SELECT email FROM subscribers WHERE id = deliveries.subscriber_id), '') AS email,
               coalesce((SELECT sub.status = 'confirmed'
                         FROM subscriptions sub JOIN issues i ON i.list_id = sub.list_id
                         WHERE i.id = deliveries.issue_id AND sub.subscriber_id = deliveries.subscriber_id),
                        false) AS still_subscribed",
        )
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .bind(worker)
        .fetch_all(&self.pool)
        .await
        .context("Failed to claim deliveries")?;
        rows.iter().map(mapping::delivery_job).collect()
    }

    async fn renew_delivery_leases(
        &self,
        worker: Uuid,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let renewed = sqlx::query(
            "UPDATE deliveries SET lease_until = $2 WHERE claimed_by = $1 AND status = 'sending'",
        )
        .bind(worker)
        .bind(lease_until)
        .execute(&self.pool)
        .await
        .context("Failed to renew the deliveries leases")?;
        Ok(renewed.rows_affected())
    }

    async fn record_delivery_results(&self, results: &[DeliveryResult]) -> anyhow::Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let query = sqlx::query(
            "UPDATE deliveries t SET
               status = r.status,
               sent_at = r.sent_at,
               smtp_reply = r.reply,
               last_error = r.error,
               next_attempt_at = coalesce(r.next_attempt_at, t.next_attempt_at),
               lease_until = NULL,
               claimed_by = NULL
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::timestamptz[], $7::text[], $8::uuid[])
               AS r (issue_id, subscriber_id, status, sent_at, reply, next_attempt_at, error, worker)
             WHERE t.issue_id = r.issue_id AND t.subscriber_id = r.subscriber_id
               AND t.claimed_by = r.worker",
        )
        .bind(results.iter().map(|r| r.issue_id).collect::<Vec<_>>())
        .bind(results.iter().map(|r| r.subscriber_id).collect::<Vec<_>>());
        bind_outcomes(query, results.iter().map(|r| &r.outcome))
            .bind(results.iter().map(|r| r.claimed_by).collect::<Vec<_>>())
            .execute(&self.pool)
            .await
            .context("Failed to record the deliveries results")?;
        Ok(())
    }

    async fn finish_sent_issues(&self, now: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE issues SET status = 'sent', finished_at = $1, updated_at = $1
             WHERE status = 'sending'
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.issue_id = issues.id AND d.status = 'queued')
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.issue_id = issues.id AND d.status = 'sending')",
        )
        .bind(now)
        .execute(&self.pool)
        .await
        .context("Failed to mark finished issues as sent")?;
        Ok(())
    }

    async fn issue_unsubscribe_times(&self, id: Uuid) -> anyhow::Result<Vec<DateTime<Utc>>> {
        let times: Vec<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT occurred_at FROM consent_events
             WHERE issue_id = $1 AND kind = 'unsubscribe' ORDER BY occurred_at",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .context("Failed to read the issue's unsubscribes")?;
        Ok(times)
    }

    async fn failed_deliveries(&self, id: Uuid, limit: u32) -> anyhow::Result<Vec<FailedCopy>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.email, coalesce(d.last_error, '') FROM deliveries d
             JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.issue_id = $1 AND d.status = 'failed'
             ORDER BY s.email LIMIT $2",
        )
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .context("Failed to read the issue's failed copies")?;
        Ok(rows
            .into_iter()
            .map(|(email, reply)| FailedCopy { email, reply })
            .collect())
    }

    async fn issue_stats(&self, id: Uuid) -> anyhow::Result<IssueStats> {
        let row = sqlx::query(
            "SELECT count(*) AS recipients,
               coalesce(sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
               coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
               coalesce(sum(CASE WHEN status IN ('queued', 'sending') THEN 1 ELSE 0 END), 0) AS pending,
               coalesce(sum(CASE WHEN status = 'skipped' THEN 1 ELSE 0 END), 0) AS skipped,
               coalesce(sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), 0) AS cancelled,
               (SELECT count(*) FROM consent_events
                WHERE issue_id = $1 AND kind = 'unsubscribe') AS unsubscribed,
               (SELECT count(DISTINCT subscriber_id) FROM inbound_messages
                WHERE issue_id = $1 AND kind = 'hard') AS hard_bounces,
               (SELECT count(DISTINCT subscriber_id) FROM inbound_messages
                WHERE issue_id = $1 AND kind = 'soft') AS soft_bounces,
               (SELECT count(DISTINCT subscriber_id) FROM inbound_messages
                WHERE issue_id = $1 AND kind = 'complaint') AS complaints
             FROM deliveries WHERE issue_id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .context("Failed to count the issue's deliveries")?;
        mapping::issue_stats(&row)
    }
}
