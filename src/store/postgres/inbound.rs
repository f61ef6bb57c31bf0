//! Messages that came back: stored and acted on in one transaction (the rules are
//! `inbound::verdict`'s), and listed for staff.

use anyhow::Context;
use async_trait::async_trait;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::PostgresStore;
use crate::inbound::Kind;
use crate::inbound::return_path::CopyRef;
use crate::inbound::verdict::{self, Ending};
use crate::store::{
    InboundFilter, InboundRecord, InboundStore, InboundSummary, KnownCopy, Taken, mapping,
};

#[async_trait]
impl InboundStore for PostgresStore {
    async fn known_copy(&self, copy: &CopyRef) -> anyhow::Result<Option<KnownCopy>> {
        let row = match copy {
            CopyRef::Delivery {
                issue_number,
                subscriber_id,
            } => sqlx::query(
                "SELECT i.id AS issue_id, i.list_id, s.id AS subscriber_id, NULL::uuid AS outbox_id,
                        s.email AS recipient
                 FROM issues i
                 JOIN deliveries d ON d.issue_id = i.id AND d.subscriber_id = $2
                 JOIN subscribers s ON s.id = d.subscriber_id
                 WHERE i.number = $1",
            )
            .bind(i64::from(*issue_number))
            .bind(subscriber_id),
            CopyRef::Outbox { id } => sqlx::query(
                "SELECT NULL::uuid AS issue_id, NULL::uuid AS list_id, o.subscriber_id, o.id AS outbox_id,
                        coalesce(s.email, o.recipient) AS recipient
                 FROM outbox o LEFT JOIN subscribers s ON s.id = o.subscriber_id
                 WHERE o.id = $1",
            )
            .bind(id),
        }
        .fetch_optional(&self.pool)
        .await
        .context("Failed to look up the copy a message is about")?;
        row.map(|row| mapping::known_copy(&row)).transpose()
    }

    #[tracing::instrument(skip_all, fields(kind = record.reading.kind.as_str()))]
    async fn record_inbound(&self, record: &InboundRecord) -> anyhow::Result<Taken> {
        let now = record.received_at;
        let reading = &record.reading;
        let copy = record.copy.as_ref();
        let issue_id = copy.and_then(|c| c.issue.map(|(id, _)| id));
        let address_key = record.address_keys.first();
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin storing an inbound message")?;
        let stored = sqlx::query(
            "INSERT INTO inbound_messages (id, received_at, source, dedupe_key, kind, outcome,
               status_code, diagnostic, recipients, message_id, read_as, issue_id,
               subscriber_id, outbox_id, address_key, raw)
             VALUES ($1, $2, $3, $4, $5, 'ignored', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(record.id)
        .bind(now)
        .bind(&record.source)
        .bind(&record.dedupe_key[..])
        .bind(reading.kind.as_str())
        .bind(reading.status.as_deref())
        .bind(reading.diagnostic.as_deref())
        .bind(serde_json::to_string(&reading.recipients)?)
        .bind(reading.message_id.as_deref())
        .bind(reading.read_as)
        .bind(issue_id)
        .bind(copy.and_then(|c| c.subscriber_id))
        .bind(copy.and_then(|c| c.outbox_id))
        .bind(address_key.map(|k| &k[..]))
        .bind(&record.raw)
        .execute(&mut *tx)
        .await
        .context("Failed to store an inbound message")?;
        if stored.rows_affected() == 0 {
            return Ok(Taken::Duplicate);
        }
        let earlier_soft: i64 = match address_key {
            Some(key) if reading.kind == Kind::Soft => sqlx::query_scalar(
                "SELECT count(DISTINCT coalesce(issue_id, outbox_id)) FROM inbound_messages
                 WHERE address_key = $1 AND kind = 'soft' AND received_at > $2 AND id <> $3
                   AND coalesce(issue_id, outbox_id) IS DISTINCT FROM coalesce($4, $5)",
            )
            .bind(&key[..])
            .bind(now - record.soft.window)
            .bind(record.id)
            .bind(issue_id)
            .bind(copy.and_then(|c| c.outbox_id))
            .fetch_one(&mut *tx)
            .await
            .context("Failed to count the address's soft bounces")?,
            _ => 0,
        };
        let (outcome, ending) = verdict::decide(
            reading.kind,
            address_key.is_some(),
            earlier_soft,
            &record.soft,
        );
        sqlx::query("UPDATE inbound_messages SET outcome = $2 WHERE id = $1")
            .bind(record.id)
            .bind(outcome.as_str())
            .execute(&mut *tx)
            .await
            .context("Failed to record what an inbound message did")?;
        let mut paused_issue = false;
        if let (Some(ending), Some(copy), Some(key)) = (ending, copy, address_key) {
            end_subscriptions(&mut tx, record, copy, ending).await?;
            if let Some(reason) = ending.suppression() {
                super::suppressions::suppress(
                    &mut tx,
                    &record.address_keys,
                    key,
                    copy.subscriber_id,
                    &copy.recipient,
                    reason,
                    Some(record.id),
                    &record.source,
                    now,
                )
                .await?;
            }
            if let Some(issue_id) = issue_id.filter(|_| ending != Ending::Unsubscribed) {
                paused_issue = trip_breaker(&mut tx, record, issue_id).await?;
            }
        }
        tx.commit()
            .await
            .context("Failed to commit an inbound message")?;
        Ok(Taken::Stored {
            outcome,
            paused_issue,
        })
    }

    async fn inbound_messages(
        &self,
        filter: InboundFilter,
        limit: u32,
    ) -> anyhow::Result<Vec<InboundSummary>> {
        let (condition, issue) = match filter {
            InboundFilter::Returns => ("m.outcome IN ('ended', 'counted')", None),
            InboundFilter::NeedsAPerson => ("m.outcome IN ('unattributed', 'unrecognised')", None),
            InboundFilter::Issue(id) => (
                "m.issue_id = $2 AND m.kind IN ('hard', 'soft', 'complaint', 'unsubscribe')",
                Some(id),
            ),
        };
        // Only our own constant text is joined here.
        let sql = format!(
            "SELECT m.id, m.received_at, m.source, m.kind, m.outcome, m.status_code,
                    m.diagnostic, m.recipients, m.read_as, m.issue_id, m.subscriber_id,
                    s.email
             FROM inbound_messages m LEFT JOIN subscribers s ON s.id = m.subscriber_id
             WHERE {condition} ORDER BY m.received_at DESC, m.id DESC LIMIT $1"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit));
        if let Some(issue) = issue {
            query = query.bind(issue);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .context("Failed to list inbound messages")?;
        rows.iter().map(mapping::inbound_summary).collect()
    }

    async fn inbound_raw(&self, id: Uuid) -> anyhow::Result<Option<Vec<u8>>> {
        let raw: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT raw FROM inbound_messages WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .context("Failed to read an inbound message")?;
        Ok(raw.flatten())
    }
}

/// Ends the subscriptions an ending ends (a bounce or complaint: all of the person's
/// active ones; an unsubscribe: the copy's list), each with its ledger event.
async fn end_subscriptions(
    conn: &mut PgConnection,
    record: &InboundRecord,
    copy: &KnownCopy,
    ending: Ending,
) -> anyhow::Result<()> {
    let Some(subscriber_id) = copy.subscriber_id else {
        return Ok(());
    };
    let only_list = match ending {
        Ending::Unsubscribed => copy.issue.map(|(_, list)| list),
        Ending::Bounced | Ending::Complained => None,
    };
    let (status, event) = ending.status_and_event();
    let method = match ending {
        Ending::Unsubscribed => crate::store::ConsentMethod::Mailto,
        _ => record.method,
    };
    let lists: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE subscriptions SET status = $2, unsubscribed_at = $3, updated_at = $3
         WHERE subscriber_id = $1 AND status IN ('pending', 'confirmed')
           AND ($4::uuid IS NULL OR list_id = $4)
         RETURNING list_id",
    )
    .bind(subscriber_id)
    .bind(status)
    .bind(record.received_at)
    .bind(only_list)
    .fetch_all(&mut *conn)
    .await
    .context("Failed to end the subscriptions")?;
    for list_id in lists {
        sqlx::query(
            "INSERT INTO consent_events
               (id, subscriber_id, list_id, kind, method, occurred_at, issue_id, inbound_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(subscriber_id)
        .bind(list_id)
        .bind(event)
        .bind(method.as_str())
        .bind(record.received_at)
        .bind(copy.issue.map(|(id, _)| id))
        .bind(record.id)
        .execute(&mut *conn)
        .await
        .context("Failed to record the ending in the ledger")?;
    }
    Ok(())
}

/// Pauses the issue if it is sending and its bounces or complaints now pass the
/// breaker's thresholds; returns whether it paused.
async fn trip_breaker(
    conn: &mut PgConnection,
    record: &InboundRecord,
    issue_id: Uuid,
) -> anyhow::Result<bool> {
    // Only an issue still sending can pause; one that has gone out is not counted again.
    let sending: Option<String> =
        sqlx::query_scalar("SELECT status FROM issues WHERE id = $1 AND status = 'sending'")
            .bind(issue_id)
            .fetch_optional(&mut *conn)
            .await
            .context("Failed to read the issue's status")?;
    if sending.is_none() {
        return Ok(false);
    }
    let row = sqlx::query(
        "SELECT
           (SELECT count(*) FROM deliveries WHERE issue_id = $1 AND status = 'sent') AS sent,
           (SELECT count(DISTINCT subscriber_id) FROM inbound_messages
            WHERE issue_id = $1 AND outcome = 'ended' AND kind IN ('hard', 'soft')) AS hard,
           (SELECT count(DISTINCT subscriber_id) FROM inbound_messages
            WHERE issue_id = $1 AND kind = 'complaint') AS complaints",
    )
    .bind(issue_id)
    .fetch_one(&mut *conn)
    .await
    .context("Failed to count the issue's bounces")?;
    let Some(reason) = record.breaker.trips(
        row.try_get("sent")?,
        row.try_get("hard")?,
        row.try_get("complaints")?,
    ) else {
        return Ok(false);
    };
    let paused = sqlx::query(
        "UPDATE issues SET status = 'paused', paused_reason = $2, updated_at = $3
         WHERE id = $1 AND status = 'sending'",
    )
    .bind(issue_id)
    .bind(&reason)
    .bind(record.received_at)
    .execute(&mut *conn)
    .await
    .context("Failed to pause the issue")?;
    if paused.rows_affected() > 0 {
        tracing::warn!(%issue_id, %reason, "An issue paused itself");
    }
    Ok(paused.rows_affected() > 0)
}
