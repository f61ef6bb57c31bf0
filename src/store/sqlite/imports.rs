//! Imports of subscribers: the preview (the import and its rows with their verdicts),
//! and applying it a batch at a time.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;
use uuid::Uuid;

use super::{SqliteStore, rows::ms, signups::find_or_add_subscriber};
use crate::audience::import::rules::{self, ImportCounts, ImportRecord, ImportRow, RowStatus};
use crate::store::mapping;
use crate::store::{ImportBatch, ImportStart, ImportStore, ImportedPerson, Removal};

/// The columns of an `ImportRecord`.
macro_rules! import_select {
    () => {
        "SELECT id, list_id, created_by, file_name, source_note, mode, created_at, applied_at
         FROM imports"
    };
}

/// One person of an import, inside the batch's transaction.
pub(super) async fn import_person(
    conn: &mut SqliteConnection,
    batch: &ImportBatch<'_>,
    person: &ImportedPerson,
) -> anyhow::Result<()> {
    let now = ms(batch.now);
    let known =
        find_or_add_subscriber(conn, person.new_subscriber_id, &person.subscriber, now).await?;
    let subscriber_id = known.id;
    let (outcome, reason) = rules::outcome(known.status(batch.list_id), known.recent, batch.mode);
    let sql = match outcome {
        RowStatus::Added => Some(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, confirmed_at, updated_at)
             VALUES ($1, $2, 'confirmed', $3, $3, $3)
             ON CONFLICT (subscriber_id, list_id)
             DO UPDATE SET status = 'confirmed', confirmed_at = $3, updated_at = $3;
             INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, import_id)
             VALUES ($4, $1, $2, 'import', 'import', $3, $5)",
        ),
        RowStatus::Invited => Some(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
             VALUES ($1, $2, 'pending', $3, $3)
             ON CONFLICT (subscriber_id, list_id) DO NOTHING;
             INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, import_id)
             VALUES ($4, $1, $2, 'signup', 'import', $3, $5);
             INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at)
             VALUES ($6, $1, $2, $3, $7);
             INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
             VALUES ($8, $9, (SELECT email FROM subscribers WHERE id = $1), $1, $11, $3, $3)",
        ),
        _ => None,
    };
    if let Some(sql) = sql {
        let mut query = sqlx::query(sql)
            .bind(subscriber_id)
            .bind(batch.list_id)
            .bind(now)
            .bind(person.event_id)
            .bind(batch.import_id);
        if outcome == RowStatus::Invited {
            let invitation = person
                .invitation
                .as_ref()
                .context("An invitation to import has no mail")?;
            query = query
                .bind(&invitation.token_hash[..])
                .bind(ms(invitation.token_expires_at))
                .bind(invitation.mail.id)
                .bind(&invitation.mail.kind)
                .bind(&invitation.mail.recipient)
                .bind(&invitation.mail.payload);
        }
        query
            .execute(&mut *conn)
            .await
            .context("Failed to import a subscriber")?;
    }
    sqlx::query(
        // A note from reading the file (a locality left out) stays unless there is a reason now.
        "UPDATE import_rows SET status = $3, reason = coalesce($4, reason) WHERE import_id = $1 AND line = $2",
    )
    .bind(batch.import_id)
    .bind(person.line)
    .bind(outcome.as_str())
    .bind(reason)
    .execute(&mut *conn)
    .await
    .context("Failed to record an imported row's outcome")?;
    Ok(())
}

#[async_trait]
impl ImportStore for SqliteStore {
    async fn create_import(&self, import: &ImportRecord, rows: &[ImportRow]) -> anyhow::Result<()> {
        let mut tx = self
            .writer
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
        .bind(ms(import.created_at))
        .execute(&mut *tx)
        .await
        .context("Failed to store the import")?;
        for row in rows {
            sqlx::query(
                "INSERT INTO import_rows
                   (import_id, line, email, name, organisation, locality, status, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(import.id)
            .bind(row.line)
            .bind(&row.email)
            .bind(&row.name)
            .bind(&row.organisation)
            .bind(&row.locality)
            .bind(row.status.as_str())
            .bind(row.reason.as_deref())
            .execute(&mut *tx)
            .await
            .context("Failed to store an imported row")?;
        }
        tx.commit().await.context("Failed to commit the import")
    }

    async fn import(&self, id: Uuid) -> anyhow::Result<Option<ImportRecord>> {
        let row = sqlx::query(concat!(import_select!(), " WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
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
        .fetch_all(&self.reader)
        .await
        .context("Failed to read the imports")?;
        rows.iter().map(mapping::import_record).collect()
    }

    async fn import_counts(&self, id: Uuid) -> anyhow::Result<ImportCounts> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM import_rows WHERE import_id = $1 GROUP BY status",
        )
        .bind(id)
        .fetch_all(&self.reader)
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
             WHERE import_id = $1 AND ($2 IS NULL OR status = $2) AND line > $5
             ORDER BY line LIMIT $3 OFFSET $4",
        )
        .bind(id)
        .bind(status.map(RowStatus::as_str))
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .bind(after_line)
        .fetch_all(&self.writer)
        .await
        .context("Failed to read an import's rows")?;
        rows.iter().map(mapping::import_row).collect()
    }

    async fn start_import(&self, id: Uuid, now: DateTime<Utc>) -> anyhow::Result<ImportStart> {
        let started =
            sqlx::query("UPDATE imports SET applied_at = $2 WHERE id = $1 AND applied_at IS NULL")
                .bind(id)
                .bind(ms(now))
                .execute(&self.writer)
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
            .execute(&self.writer)
            .await
            .context("Failed to discard the import")?;
        Ok(Removal::of(deleted.rows_affected()))
    }

    async fn delete_import_rows_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query(
            "DELETE FROM import_rows WHERE import_id IN
               (SELECT id FROM imports WHERE created_at < $1);
             DELETE FROM imports WHERE created_at < $1 AND applied_at IS NULL",
        )
        .bind(ms(cutoff))
        .execute(&self.writer)
        .await
        .context("Failed to delete old import rows")?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(rows = batch.people.len()))]
    async fn import_subscribers(&self, batch: &ImportBatch<'_>) -> anyhow::Result<()> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Failed to begin the import's transaction")?;
        for person in batch.people {
            import_person(&mut tx, batch, person).await?;
        }
        tx.commit().await.context("Failed to commit the import")
    }
}
