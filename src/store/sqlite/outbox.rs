//! The outbox: mails written in the same transaction as their cause, claimed by the
//! worker under a lease, and their outcomes.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    SqliteStore,
    rows::{from_ms, ms, outcomes_json},
};
use crate::store::mapping;
use crate::store::{NewOutboxMail, OutboxMail, OutboxResult, OutboxStore, TestCopy};

#[async_trait]
impl OutboxStore for SqliteStore {
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
        .bind(ms(now))
        .bind(ms(since))
        .bind(limit)
        .execute(&self.writer)
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
        // One statement, on the one writer: no two claims can overlap.
        let rows = sqlx::query(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $2,
               claimed_by = $4
             WHERE id IN (
               SELECT id FROM outbox WHERE status = 'sending' AND lease_until <= $1
               UNION ALL
               SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1
               LIMIT $3)
             RETURNING id, subscriber_id, kind, recipient, payload, sealed_secret, attempts,
                       past_suppression, claimed_by",
        )
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(i64::from(limit))
        .bind(worker)
        .fetch_all(&self.writer)
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
        .bind(ms(lease_until))
        .execute(&self.writer)
        .await
        .context("Failed to renew the outbox leases")?;
        Ok(renewed.rows_affected())
    }

    async fn record_outbox_results(&self, results: &[OutboxResult]) -> anyhow::Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let rows = outcomes_json(results.iter().map(|r| {
            (
                serde_json::json!({
                    "id": r.id.simple().to_string(),
                    "worker": r.claimed_by.simple().to_string(),
                }),
                &r.outcome,
            )
        }));
        sqlx::query(
            "UPDATE outbox SET
               status = r.value ->> 'status',
               sent_at = r.value ->> 'sent_at',
               smtp_reply = r.value ->> 'reply',
               last_error = r.value ->> 'error',
               next_attempt_at = coalesce(r.value ->> 'next_attempt_at', next_attempt_at),
               sealed_secret = CASE WHEN r.value ->> 'status' = 'queued' THEN sealed_secret END,
               lease_until = NULL,
               claimed_by = NULL
             FROM json_each($1) AS r
             WHERE outbox.id = unhex(r.value ->> 'id')
               AND outbox.claimed_by = unhex(r.value ->> 'worker')",
        )
        .bind(rows)
        .execute(&self.writer)
        .await
        .context("Failed to record the outbox results")?;
        Ok(())
    }

    async fn next_mail_due(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT min(t) FROM (
               SELECT min(next_attempt_at) AS t FROM outbox WHERE status = 'queued'
               UNION ALL
               SELECT min(lease_until) FROM outbox WHERE status = 'sending'
               UNION ALL
               SELECT (SELECT min(next_attempt_at) FROM deliveries d
                       WHERE d.issue_id = i.id AND d.status = 'queued')
               FROM issues i WHERE i.status = 'sending'
               UNION ALL
               SELECT (SELECT min(lease_until) FROM deliveries d
                       WHERE d.issue_id = i.id AND d.status = 'sending')
               FROM issues i WHERE i.status = 'sending')",
        )
        .fetch_one(&self.reader)
        .await
        .context("Failed to read when the next mail is due")?;
        Ok(next.map(from_ms))
    }
}
