//! Subscriptions and their consent ledger: leaving, erasure, and what staff read
//! about the people on a list.

use crate::audience::subscription::{SubscriptionStatus, UnsubscribeOutcome, erased_address};
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    SqliteStore,
    rows::{bind_filter, ms},
};
use crate::audience::segment::{self, Segment};
use crate::store::mapping;
use crate::store::{
    ConsentMethod, ConsentRecord, DayCounts, Removal, SubscriberCounts, SubscriberPage,
    SubscriberQuery, SubscriberSummary, SubscriptionStore, UnsubscribeRequest,
};
use sqlx::Row;

#[async_trait]
impl SubscriptionStore for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn unsubscribe(&self, req: &UnsubscribeRequest) -> anyhow::Result<UnsubscribeOutcome> {
        let token = &req.token;
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Failed to begin the unsubscribe transaction")?;
        let ended: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = $3, updated_at = $3
             WHERE subscriber_id = $1 AND (list_id = $2 OR $4) AND status IN ('pending', 'confirmed')
             RETURNING list_id",
        )
        .bind(token.subscriber_id)
        .bind(token.list_id)
        .bind(ms(req.now))
        .bind(req.everything)
        .fetch_all(&mut *tx)
        .await
        .context("Failed to end the subscription")?;
        if ended.is_empty() {
            let known: Option<String> = sqlx::query_scalar(
                "SELECT status FROM subscriptions WHERE subscriber_id = $1 AND list_id = $2",
            )
            .bind(token.subscriber_id)
            .bind(token.list_id)
            .fetch_optional(&mut *tx)
            .await
            .context("Failed to read the subscription")?;
            return Ok(match known {
                Some(_) => UnsubscribeOutcome::AlreadyUnsubscribed,
                None => UnsubscribeOutcome::NotSubscribed,
            });
        }
        // Each list left is its own event, each put down to the issue whose link it was.
        for list_id in ended {
            sqlx::query(
                "INSERT INTO consent_events
                   (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent, issue_id)
                 VALUES ($1, $2, $3, 'unsubscribe', $4, $5, $6, $7, $8)",
            )
            .bind(Uuid::now_v7())
            .bind(token.subscriber_id)
            .bind(list_id)
            .bind(req.consent.method.as_str())
            .bind(ms(req.now))
            .bind(req.consent.ip.as_deref())
            .bind(req.consent.user_agent.as_deref())
            .bind(token.issue_id)
            .execute(&mut *tx)
            .await
            .context("Failed to record the unsubscribe")?;
        }
        tx.commit()
            .await
            .context("Failed to commit the unsubscribe")?;
        Ok(UnsubscribeOutcome::Unsubscribed)
    }

    async fn subscriptions_of(
        &self,
        subscriber_id: Uuid,
    ) -> anyhow::Result<Vec<(Uuid, SubscriptionStatus)>> {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT list_id, status FROM subscriptions WHERE subscriber_id = $1 ORDER BY list_id",
        )
        .bind(subscriber_id)
        .fetch_all(&self.reader)
        .await
        .context("Failed to read a subscriber's subscriptions")?;
        rows.into_iter()
            .map(|(list, status)| Ok((list, SubscriptionStatus::parse(&status)?)))
            .collect()
    }

    async fn reach(&self, list_id: Uuid, segment: Option<&Segment>) -> anyhow::Result<i64> {
        let audience = segment::audience(segment, 1);
        // The condition is our own text; every value in it is bound.
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) AS people {}",
            audience.condition
        )))
        .bind(list_id);
        let row = bind_filter(query, &audience)
            .fetch_one(&self.reader)
            .await
            .context("Failed to count the segment")?;
        Ok(row.try_get("people")?)
    }

    async fn subscriber_counts(&self, list_id: Uuid) -> anyhow::Result<SubscriberCounts> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM subscriptions WHERE list_id = $1 GROUP BY status",
        )
        .bind(list_id)
        .fetch_all(&self.reader)
        .await
        .context("Failed to count the subscribers")?;
        SubscriberCounts::from_rows(rows)
    }

    async fn subscribers(&self, query: &SubscriberQuery<'_>) -> anyhow::Result<SubscriberPage> {
        let (pattern, matching) = (query.pattern(), query.matching("LIKE"));
        let next = 4 + matching.params.len();
        // The condition is our own text; every value in it is bound.
        let page = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT s.id, s.email, s.name, s.organisation, s.locality, sub.status, s.created_at
             {} ORDER BY s.email LIMIT ${next} OFFSET ${}",
            matching.condition,
            next + 1
        )))
        .bind(query.list_id)
        .bind(&pattern)
        .bind(query.status());
        let rows = bind_filter(page, &matching)
            .bind(i64::from(query.limit))
            .bind(i64::from(query.offset))
            .fetch_all(&self.reader)
            .await
            .context("Failed to list the subscribers")?;
        let count = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) AS people {}",
            matching.condition
        )))
        .bind(query.list_id)
        .bind(&pattern)
        .bind(query.status());
        let total: i64 = bind_filter(count, &matching)
            .fetch_one(&self.reader)
            .await
            .context("Failed to count the subscribers")?
            .try_get("people")?;
        Ok(SubscriberPage {
            subscribers: rows
                .iter()
                .map(mapping::subscriber_summary)
                .collect::<anyhow::Result<_>>()?,
            total,
        })
    }

    async fn subscriber(
        &self,
        id: Uuid,
        list_id: Uuid,
    ) -> anyhow::Result<Option<SubscriberSummary>> {
        let row = sqlx::query(
            "SELECT s.id, s.email, s.name, s.organisation, s.locality, sub.status, s.created_at
             FROM subscribers s JOIN subscriptions sub ON sub.subscriber_id = s.id
             WHERE s.id = $1 AND sub.list_id = $2",
        )
        .bind(id)
        .bind(list_id)
        .fetch_optional(&self.reader)
        .await
        .context("Failed to read the subscriber")?;
        row.as_ref().map(mapping::subscriber_summary).transpose()
    }

    async fn subscribers_after(
        &self,
        list_id: Uuid,
        after: &str,
        limit: u32,
    ) -> anyhow::Result<Vec<SubscriberSummary>> {
        let rows = sqlx::query(
            "SELECT s.id, s.email, s.name, s.organisation, s.locality, sub.status, s.created_at
             FROM subscribers s JOIN subscriptions sub ON sub.subscriber_id = s.id
             WHERE sub.list_id = $1 AND s.email > $2 AND s.email NOT LIKE $4
             ORDER BY s.email LIMIT $3",
        )
        .bind(list_id)
        .bind(after)
        .bind(i64::from(limit))
        .bind(crate::audience::subscription::ERASED_PATTERN)
        .fetch_all(&self.reader)
        .await
        .context("Failed to read a page of subscribers")?;
        rows.iter().map(mapping::subscriber_summary).collect()
    }

    async fn consent_ledger(&self, subscriber_id: Uuid) -> anyhow::Result<Vec<ConsentRecord>> {
        let rows = sqlx::query(
            "SELECT e.kind, e.method, e.occurred_at, e.ip, e.user_agent, e.wording_version,
                    i.subject AS issue_subject, e.import_id, imp.source_note AS import_note,
                    m.status_code AS evidence_status, m.diagnostic AS evidence_words,
                    l.name AS list_name
             FROM consent_events e JOIN lists l ON l.id = e.list_id
             LEFT JOIN issues i ON i.id = e.issue_id
             LEFT JOIN imports imp ON imp.id = e.import_id
             LEFT JOIN inbound_messages m ON m.id = e.inbound_id
             WHERE e.subscriber_id = $1 ORDER BY e.occurred_at, e.id",
        )
        .bind(subscriber_id)
        .fetch_all(&self.reader)
        .await
        .context("Failed to read the consent ledger")?;
        rows.iter().map(mapping::consent_record).collect()
    }

    async fn erase_subscriber(
        &self,
        id: Uuid,
        method: ConsentMethod,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Removal> {
        let mut tx = self
            .writer
            .begin()
            .await
            .context("Failed to begin the erasure")?;
        // Messages kept for a person to look at that name them.
        sqlx::query(
            "UPDATE inbound_messages SET raw = NULL, diagnostic = NULL, recipients = NULL
             WHERE outcome IN ('unattributed', 'unrecognised') AND raw IS NOT NULL
               AND instr(lower(CAST(raw AS TEXT)), (SELECT email_key FROM subscribers WHERE id = $1)) > 0",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("Failed to erase the messages that name the subscriber")?;
        // Rows of recent imports that name them (refused rows included).
        sqlx::query(
            "DELETE FROM import_rows
             WHERE lower(email) = (SELECT email_key FROM subscribers WHERE id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("Failed to erase the subscriber's imported rows")?;
        let erased = sqlx::query(
            "UPDATE subscribers SET email = $2, name = '', organisation = NULL, locality = NULL,
               updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(erased_address(id))
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .context("Failed to erase the subscriber's details")?;
        if erased.rows_affected() == 0 {
            return Ok(Removal::NotFound);
        }
        let statements = [
            // What came back keeps its kind, status code and copy, not its words.
            "UPDATE inbound_messages SET raw = NULL, diagnostic = NULL, recipients = NULL
             WHERE subscriber_id = $1",
            // The suppression stays (by its keyed hash), no longer linked to them.
            "UPDATE suppressions SET subscriber_id = NULL WHERE subscriber_id = $1",
            "UPDATE subscriptions SET status = 'unsubscribed',
               unsubscribed_at = coalesce(unsubscribed_at, $2), updated_at = $2
             WHERE subscriber_id = $1",
            "UPDATE consent_events SET ip = NULL, user_agent = NULL WHERE subscriber_id = $1",
            "DELETE FROM confirmation_tokens WHERE subscriber_id = $1",
            "UPDATE outbox SET recipient = '', payload = '{}', sealed_secret = NULL,
               smtp_reply = NULL,
               last_error = CASE WHEN status IN ('queued', 'sending')
                            THEN 'Erased before it was sent' END,
               status = CASE WHEN status IN ('queued', 'sending') THEN 'failed' ELSE status END
             WHERE subscriber_id = $1",
            "UPDATE deliveries SET smtp_reply = NULL, last_error = NULL,
               status = CASE WHEN status IN ('queued', 'sending') THEN 'skipped' ELSE status END
             WHERE subscriber_id = $1",
        ];
        for statement in statements {
            sqlx::query(statement)
                .bind(id)
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .context("Failed to erase the subscriber's data")?;
        }
        let lists: Vec<Uuid> =
            sqlx::query_scalar("SELECT list_id FROM subscriptions WHERE subscriber_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .context("Failed to read the erased subscriber's lists")?;
        for list_id in lists {
            sqlx::query(
                "INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at)
                 VALUES ($1, $2, $3, 'erase', $4, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(list_id)
            .bind(method.as_str())
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .context("Failed to record the erasure")?;
        }
        tx.commit().await.context("Failed to commit the erasure")?;
        Ok(Removal::Removed)
    }

    async fn departed_before(
        &self,
        left_before: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<(Uuid, String)>> {
        sqlx::query_as(
            "SELECT s.id, s.email FROM subscribers s
             JOIN subscriptions sub ON sub.subscriber_id = s.id
             WHERE s.email NOT LIKE $3
               -- A sign-up whose link still works may yet be confirmed.
               AND NOT EXISTS (SELECT 1 FROM confirmation_tokens t
                               WHERE t.subscriber_id = s.id AND t.used_at IS NULL
                                 AND t.expires_at >= $1)
             GROUP BY s.id, s.email
             HAVING sum(CASE WHEN sub.status = 'confirmed' THEN 1 ELSE 0 END) = 0
                AND max(sub.updated_at) < $1
             ORDER BY s.id LIMIT $2",
        )
        .bind(ms(left_before))
        .bind(i64::from(limit))
        .bind(crate::audience::subscription::ERASED_PATTERN)
        .fetch_all(&self.reader)
        .await
        .context("Failed to find the people who left every list")
    }

    async fn subscription_statuses(
        &self,
        list_id: Uuid,
        emails: &[String],
    ) -> anyhow::Result<std::collections::HashMap<String, SubscriptionStatus>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.email_key, sub.status
             FROM subscribers s JOIN subscriptions sub ON sub.subscriber_id = s.id
             WHERE sub.list_id = $1 AND s.email_key IN (SELECT lower(value) FROM json_each($2))",
        )
        .bind(list_id)
        .bind(serde_json::to_string(emails)?)
        .fetch_all(&self.reader)
        .await
        .context("Failed to look up subscriptions")?;
        rows.into_iter()
            .map(|(email, status)| Ok((email, SubscriptionStatus::parse(&status)?)))
            .collect()
    }

    async fn daily_signups_and_unsubscribes(
        &self,
        list_id: Uuid,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<DayCounts>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT date(occurred_at / 1000, 'unixepoch') AS day,
               sum(CASE WHEN kind = 'signup' THEN 1 ELSE 0 END),
               sum(CASE WHEN kind = 'unsubscribe' THEN 1 ELSE 0 END)
             FROM consent_events
             WHERE list_id = $1 AND occurred_at >= $2 AND kind IN ('signup', 'unsubscribe')
             GROUP BY 1 ORDER BY 1",
        )
        .bind(list_id)
        .bind(ms(since))
        .fetch_all(&self.reader)
        .await
        .context("Failed to count sign-ups and unsubscribes by day")?;
        DayCounts::from_rows(rows)
    }
}
