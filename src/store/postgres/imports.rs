//! Imports of subscribers: the preview (the import and its rows with their verdicts),
//! and applying it a batch at a time.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::PostgresStore;
use crate::audience::import::rules::{self, ImportCounts, ImportRecord, ImportRow, RowStatus};
use crate::audience::subscriber::mailbox_key;
use crate::audience::subscription::SubscriptionStatus;
use crate::store::mapping;
use crate::store::{ImportBatch, ImportStart, ImportStore, Removal};

/// The columns of an `ImportRecord`.
macro_rules! import_select {
    () => {
        "SELECT id, list_id, created_by, file_name, source_note, mode, created_at, applied_at
         FROM imports"
    };
}

#[async_trait]
impl ImportStore for PostgresStore {
    async fn create_import(&self, import: &ImportRecord, rows: &[ImportRow]) -> anyhow::Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin storing the import")?;
        sqlx::query(
            "INSERT INTO imports (id, list_id, created_by, file_name, source_note, mode, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(import.id)
        .bind(import.list_id)
        .bind(&import.created_by)
        .bind(&import.file_name)
        .bind(&import.source_note)
        .bind(import.mode.as_str())
        .bind(import.created_at)
        .execute(&mut *tx)
        .await
        .context("Failed to store the import")?;
        for chunk in rows.chunks(5000) {
            let column = |f: fn(&ImportRow) -> &str| -> Vec<&str> { chunk.iter().map(f).collect() };
            sqlx::query(
                "INSERT INTO import_rows
                   (import_id, line, email, name, organisation, locality, status, reason)
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[],
                                          $6::text[], $7::text[], $8::text[])",
            )
            .bind(import.id)
            .bind(chunk.iter().map(|r| r.line).collect::<Vec<_>>())
            .bind(column(|r| &r.email))
            .bind(column(|r| &r.name))
            .bind(column(|r| &r.organisation))
            .bind(column(|r| &r.locality))
            .bind(column(|r| r.status.as_str()))
            .bind(
                chunk
                    .iter()
                    .map(|r| r.reason.as_deref())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await
            .context("Failed to store the imported rows")?;
        }
        tx.commit().await.context("Failed to commit the import")
    }

    async fn import(&self, id: Uuid) -> anyhow::Result<Option<ImportRecord>> {
        let row = sqlx::query(concat!(import_select!(), " WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .context("Failed to read an import")?;
        row.as_ref().map(mapping::import_record).transpose()
    }

    async fn imports(&self, list_id: Uuid) -> anyhow::Result<Vec<ImportRecord>> {
        let rows = sqlx::query(concat!(
            import_select!(),
            " WHERE list_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(list_id)
        .fetch_all(&self.pool)
        .await
        .context("Failed to read the imports")?;
        rows.iter().map(mapping::import_record).collect()
    }

    async fn import_counts(&self, id: Uuid) -> anyhow::Result<ImportCounts> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM import_rows WHERE import_id = $1 GROUP BY status",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .context("Failed to count an import's rows")?;
        ImportCounts::from_rows(rows)
    }

    async fn import_rows(
        &self,
        id: Uuid,
        status: Option<RowStatus>,
        after_line: i64,
        offset: u32,
        limit: u32,
    ) -> anyhow::Result<Vec<ImportRow>> {
        let rows = sqlx::query(
            "SELECT line, email, name, organisation, locality, status, reason FROM import_rows
             WHERE import_id = $1 AND ($2::text IS NULL OR status = $2) AND line > $5
             ORDER BY line LIMIT $3 OFFSET $4",
        )
        .bind(id)
        .bind(status.map(RowStatus::as_str))
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .bind(after_line)
        .fetch_all(&self.pool)
        .await
        .context("Failed to read an import's rows")?;
        rows.iter().map(mapping::import_row).collect()
    }

    async fn start_import(&self, id: Uuid, now: DateTime<Utc>) -> anyhow::Result<ImportStart> {
        let started =
            sqlx::query("UPDATE imports SET applied_at = $2 WHERE id = $1 AND applied_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await
                .context("Failed to start the import")?;
        Ok(if started.rows_affected() == 1 {
            ImportStart::Started
        } else {
            ImportStart::AlreadyStarted
        })
    }

    async fn discard_import(&self, id: Uuid) -> anyhow::Result<Removal> {
        let deleted = sqlx::query("DELETE FROM imports WHERE id = $1 AND applied_at IS NULL")
            .bind(id)
            .execute(&self.pool)
            .await
            .context("Failed to discard the import")?;
        Ok(Removal::of(deleted.rows_affected()))
    }

    async fn delete_import_rows_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query(
            "WITH old_rows AS (
               DELETE FROM import_rows WHERE import_id IN
                 (SELECT id FROM imports WHERE created_at < $1)
             )
             DELETE FROM imports WHERE created_at < $1 AND applied_at IS NULL",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await
        .context("Failed to delete old import rows")?;
        Ok(())
    }

    /// A handful of statements per batch, whatever its size: the people go in as arrays.
    #[tracing::instrument(skip_all, fields(rows = batch.people.len()))]
    async fn import_subscribers(&self, batch: &ImportBatch<'_>) -> anyhow::Result<()> {
        let people = batch.people;
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin the import's transaction")?;
        let emails: Vec<&str> = people.iter().map(|p| p.subscriber.email.as_str()).collect();
        sqlx::query(
            "INSERT INTO subscribers (id, email, name, organisation, locality, created_at, updated_at)
             SELECT id, email, name, organisation, locality, $6, $6
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
               AS t(id, email, name, organisation, locality)
             ON CONFLICT (email_key) DO NOTHING",
        )
        .bind(people.iter().map(|p| p.new_subscriber_id).collect::<Vec<_>>())
        .bind(&emails)
        .bind(
            people
                .iter()
                .map(|p| p.subscriber.name.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            people
                .iter()
                .map(|p| p.subscriber.organisation.as_ref().map(|o| o.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(
            people
                .iter()
                .map(|p| p.subscriber.locality.map(|l| l.slug()))
                .collect::<Vec<_>>(),
        )
        .bind(batch.now)
        .execute(&mut *tx)
        .await
        .context("Failed to store the imported subscribers")?;

        let found: Vec<(String, Uuid, Option<String>, i64)> = sqlx::query_as(
            "SELECT s.email_key, s.id, sub.status,
               (SELECT count(DISTINCT t.token_hash) FROM confirmation_tokens t
                WHERE t.subscriber_id = s.id AND t.created_at > $3) AS recent
             FROM subscribers s
             LEFT JOIN subscriptions sub ON sub.subscriber_id = s.id AND sub.list_id = $2
             WHERE s.email_key = ANY($1)
             ORDER BY s.id
             FOR UPDATE OF s",
        )
        .bind(emails.iter().map(|e| mailbox_key(e)).collect::<Vec<_>>())
        .bind(batch.list_id)
        .bind(batch.now - Duration::hours(24))
        .fetch_all(&mut *tx)
        .await
        .context("Failed to read the imported subscriptions")?;
        let found = found
            .into_iter()
            .map(|(email, id, status, recent)| {
                let status = status
                    .as_deref()
                    .map(SubscriptionStatus::parse)
                    .transpose()?;
                Ok((email, (id, status, recent)))
            })
            .collect::<anyhow::Result<std::collections::HashMap<_, _>>>()?;

        let (mut added, mut invited) = (Vec::new(), Vec::new());
        let mut outcomes = Vec::with_capacity(people.len());
        for person in people {
            let (subscriber_id, status, recent) = found
                .get(&person.subscriber.email.key())
                .context("An imported subscriber was not stored")?;
            let (outcome, reason) = rules::outcome(*status, *recent, batch.mode);
            match (outcome, &person.invitation) {
                (RowStatus::Added, _) => added.push((*subscriber_id, person.event_id)),
                (RowStatus::Invited, Some(invitation)) => {
                    invited.push((*subscriber_id, person.event_id, invitation))
                }
                (RowStatus::Invited, None) => anyhow::bail!("An invitation to import has no mail"),
                _ => {}
            }
            outcomes.push((person.line, outcome.as_str(), reason));
        }

        if !added.is_empty() {
            sqlx::query(
                "WITH subscription AS (
                   INSERT INTO subscriptions
                     (subscriber_id, list_id, status, created_at, confirmed_at, updated_at)
                   SELECT s, $2, 'confirmed', $3, $3, $3 FROM UNNEST($1::uuid[]) AS t(s)
                   ON CONFLICT (subscriber_id, list_id)
                   DO UPDATE SET status = 'confirmed', confirmed_at = $3, updated_at = $3
                 )
                 INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, import_id)
                 SELECT e, s, $2, 'import', 'import', $3, $4
                 FROM UNNEST($5::uuid[], $1::uuid[]) AS t(e, s)",
            )
            .bind(added.iter().map(|a| a.0).collect::<Vec<_>>())
            .bind(batch.list_id)
            .bind(batch.now)
            .bind(batch.import_id)
            .bind(added.iter().map(|a| a.1).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .context("Failed to subscribe the imported people")?;
        }
        if !invited.is_empty() {
            sqlx::query(
                "WITH subscription AS (
                   INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
                   SELECT s, $2, 'pending', $3, $3 FROM UNNEST($1::uuid[]) AS t(s)
                   ON CONFLICT (subscriber_id, list_id) DO NOTHING
                 ), consent AS (
                   INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, import_id)
                   SELECT e, s, $2, 'signup', 'import', $3, $4
                   FROM UNNEST($5::uuid[], $1::uuid[]) AS t(e, s)
                 ), token AS (
                   INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at)
                   SELECT h, s, $2, $3, x FROM UNNEST($6::bytea[], $1::uuid[], $7::timestamptz[]) AS t(h, s, x)
                 )
                 INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
                 SELECT i, k, (SELECT email FROM subscribers WHERE id = s), s, p, $3, $3
                 FROM UNNEST($8::uuid[], $9::text[], $10::text[], $1::uuid[], $11::text[])
                   AS t(i, k, r, s, p)",
            )
            .bind(invited.iter().map(|i| i.0).collect::<Vec<_>>())
            .bind(batch.list_id)
            .bind(batch.now)
            .bind(batch.import_id)
            .bind(invited.iter().map(|i| i.1).collect::<Vec<_>>())
            .bind(invited.iter().map(|i| i.2.token_hash.to_vec()).collect::<Vec<_>>())
            .bind(invited.iter().map(|i| i.2.token_expires_at).collect::<Vec<_>>())
            .bind(invited.iter().map(|i| i.2.mail.id).collect::<Vec<_>>())
            .bind(invited.iter().map(|i| i.2.mail.kind.as_str()).collect::<Vec<_>>())
            .bind(invited.iter().map(|i| i.2.mail.recipient.as_str()).collect::<Vec<_>>())
            .bind(invited.iter().map(|i| i.2.mail.payload.as_str()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .context("Failed to invite the imported people")?;
        }
        sqlx::query(
            // A note from reading the file (a locality left out) stays unless there is
            // a reason now.
            "UPDATE import_rows r SET status = t.status, reason = coalesce(t.reason, r.reason)
             FROM UNNEST($2::bigint[], $3::text[], $4::text[]) AS t(line, status, reason)
             WHERE r.import_id = $1 AND r.line = t.line",
        )
        .bind(batch.import_id)
        .bind(outcomes.iter().map(|o| o.0).collect::<Vec<_>>())
        .bind(outcomes.iter().map(|o| o.1).collect::<Vec<_>>())
        .bind(outcomes.iter().map(|o| o.2).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("Failed to record the imported rows' outcomes")?;
        tx.commit().await.context("Failed to commit the import")
    }
}
