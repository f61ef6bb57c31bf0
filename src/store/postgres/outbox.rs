//! The outbox: mails written in the same transaction as their cause, claimed by the
//! worker under a lease, and their outcomes.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PostgresStore, rows::bind_outcomes};
use crate::store::mapping;
use crate::store::{NewOutboxMail, OutboxMail, OutboxResult, OutboxStore, TestCopy};

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn queue_test_copy(
        &self,
        mail: &NewOutboxMail,
        requested_by: &str,
        limit: i64,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<TestCopy> {
        let queued = sqlx::query(
            "INSERT INTO outbox (id, kind, recipient, payload, requested_by, next_attempt_at, created_at)
             SELECT $1, $2, $3, $4, $5, $6, $6
             WHERE (SELECT count(*) FROM outbox WHERE requested_by = $5 AND created_at > $7) < $8",
        )
        .bind(mail.id)
        .bind(&mail.kind)
        .bind(&mail.recipient)
        .bind(&mail.payload)
        .bind(requested_by)
        .bind(now)
        .bind(since)
        .bind(limit)
        .execute(&self.pool)
        .await
        .context("Failed to queue the test copy")?;
        Ok(if queued.rows_affected() == 1 {
            TestCopy::Queued
        } else {
            TestCopy::LimitReached
        })
    }

    async fn claim_outbox(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<OutboxMail>> {
        // A dead worker's rows first, then the queue, each through its own index and
        // stopping at the limit: the two conditions OR-ed and sorted read every due row
        // (7.7 ms a claim with a queue of 5,000 behind it).
        let rows = sqlx::query(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $2,
               claimed_by = $4
             WHERE id IN (
               SELECT id FROM (SELECT id FROM outbox WHERE status = 'sending' AND lease_until <= $1
                               LIMIT $3 FOR UPDATE SKIP LOCKED) dead
               UNION ALL
               SELECT id FROM (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1
                               ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
               LIMIT $3)
             RETURNING id, subscriber_id, kind, recipient, payload, sealed_secret, attempts,
                       past_suppression, claimed_by",
        )
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .bind(worker)
        .fetch_all(&self.pool)
        .await
        .context("Failed to claim outbox rows")?;
        rows.iter().map(mapping::outbox_mail).collect()
    }

    async fn renew_outbox_leases(
        &self,
        worker: Uuid,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let renewed = sqlx::query(
            "UPDATE outbox SET lease_until = $2 WHERE claimed_by = $1 AND status = 'sending'",
        )
        .bind(worker)
        .bind(lease_until)
        .execute(&self.pool)
        .await
        .context("Failed to renew the outbox leases")?;
        Ok(renewed.rows_affected())
    }

    async fn record_outbox_results(&self, results: &[OutboxResult]) -> anyhow::Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let query = sqlx::query(
            "UPDATE outbox t SET
               status = r.status,
               sent_at = r.sent_at,
               smtp_reply = r.reply,
               last_error = r.error,
               next_attempt_at = coalesce(r.next_attempt_at, t.next_attempt_at),
               sealed_secret = CASE WHEN r.status = 'queued' THEN t.sealed_secret END,
               lease_until = NULL,
               claimed_by = NULL
             FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[], $6::text[], $7::uuid[])
               AS r (id, status, sent_at, reply, next_attempt_at, error, worker)
             WHERE t.id = r.id AND t.claimed_by = r.worker",
        )
        .bind(results.iter().map(|r| r.id).collect::<Vec<_>>());
        bind_outcomes(query, results.iter().map(|r| &r.outcome))
            .bind(results.iter().map(|r| r.claimed_by).collect::<Vec<_>>())
            .execute(&self.pool)
            .await
            .context("Failed to record the outbox results")?;
        Ok(())
    }

    async fn next_mail_due(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        sqlx::query_scalar(
            "SELECT least(
               (SELECT min(next_attempt_at) FROM outbox WHERE status = 'queued'),
               (SELECT min(lease_until) FROM outbox WHERE status = 'sending'),
               (SELECT min((SELECT min(next_attempt_at) FROM deliveries d
                            WHERE d.issue_id = i.id AND d.status = 'queued'))
                FROM issues i WHERE i.status = 'sending'),
               (SELECT min((SELECT min(lease_until) FROM deliveries d
                            WHERE d.issue_id = i.id AND d.status = 'sending'))
                FROM issues i WHERE i.status = 'sending'))",
        )
        .fetch_one(&self.pool)
        .await
        .context("Failed to read when the next mail is due")
    }
}
