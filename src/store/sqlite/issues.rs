//! Issues: their content and the states they move through.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    SqliteStore,
    rows::status_names,
    rows::{from_ms, ms},
};
use crate::issues::{
    ArchiveChange, DEFAULT_TEMPLATE, DraftDeletion, Issue, IssueChange, IssueContent, IssueStatus,
    IssueTransition, NewIssue,
};
use crate::store::IssueStore;
use crate::store::mapping;

/// The columns of an `Issue`, with its list's slug.
macro_rules! issue_select {
    () => {
        "SELECT i.id, l.slug AS list_slug, i.subject, i.preheader, i.body_markdown, i.template,
                i.status, i.send_at, i.finished_at, i.created_at, i.updated_at,
                i.withdrawn_at, i.withdrawn_by, i.number, i.paused_reason,
                i.template_version, i.brand_version, i.sent_anyway_by, i.sent_anyway_at, i.segment
         FROM issues i JOIN lists l ON l.id = i.list_id"
    };
}

#[async_trait]
impl IssueStore for SqliteStore {
    async fn create_issue(&self, issue: &NewIssue) -> anyhow::Result<Issue> {
        let content = &issue.content;
        sqlx::query(
            // One writer: the next number cannot be taken twice.
            "INSERT INTO issues (id, list_id, subject, preheader, body_markdown, template, created_at, updated_at, number, segment)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, (SELECT coalesce(max(number), 0) + 1 FROM issues), $8)",
        )
        .bind(issue.id)
        .bind(issue.list_id)
        .bind(content.subject.as_deref().unwrap_or_default())
        .bind(content.preheader.as_deref().unwrap_or_default())
        .bind(content.body_markdown.as_deref().unwrap_or_default())
        .bind(content.template.as_deref().unwrap_or(DEFAULT_TEMPLATE))
        .bind(ms(issue.now))
        .bind(content.segment.clone().flatten().map(|s| s.to_json()))
        .execute(&self.writer)
        .await
        .context("Failed to store the issue")?;
        self.issue(issue.id)
            .await?
            .context("The new issue is missing")
    }

    async fn issues(&self) -> anyhow::Result<Vec<Issue>> {
        let rows = sqlx::query(concat!(issue_select!(), " ORDER BY i.created_at DESC"))
            .fetch_all(&self.reader)
            .await
            .context("Failed to list the issues")?;
        rows.iter().map(mapping::issue).collect()
    }

    async fn issue(&self, id: Uuid) -> anyhow::Result<Option<Issue>> {
        let row = sqlx::query(concat!(issue_select!(), " WHERE i.id = $1"))
            .bind(id)
            .fetch_optional(&self.writer)
            .await
            .context("Failed to load the issue")?;
        row.as_ref().map(mapping::issue).transpose()
    }

    async fn update_issue(
        &self,
        id: Uuid,
        changes: &IssueContent,
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssueChange> {
        let updated = sqlx::query(
            "UPDATE issues SET
               subject = coalesce($2, subject),
               preheader = coalesce($3, preheader),
               body_markdown = coalesce($4, body_markdown),
               template = coalesce($5, template),
               updated_at = $6,
               segment = CASE WHEN $8 THEN $9 ELSE segment END,
               list_id = coalesce($10, list_id)
             WHERE id = $1 AND status IN (SELECT value FROM json_each($7))",
        )
        .bind(id)
        .bind(changes.subject.as_deref())
        .bind(changes.preheader.as_deref())
        .bind(changes.body_markdown.as_deref())
        .bind(changes.template.as_deref())
        .bind(ms(now))
        .bind(status_names(IssueStatus::EDITABLE))
        .bind(changes.segment.is_some())
        .bind(changes.segment.clone().flatten().map(|s| s.to_json()))
        .bind(changes.list_id)
        .execute(&self.writer)
        .await
        .context("Failed to update the issue")?;
        let applied = updated.rows_affected() > 0;
        Ok(IssueChange::after(self.issue(id).await?, applied))
    }

    async fn delete_draft(&self, id: Uuid) -> anyhow::Result<DraftDeletion> {
        super::issue_archive::delete_draft(self, id).await
    }

    async fn record_sent_anyway(
        &self,
        id: Uuid,
        by: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE issues SET sent_anyway_by = $2, sent_anyway_at = $3 WHERE id = $1")
            .bind(id)
            .bind(by)
            .bind(ms(at))
            .execute(&self.writer)
            .await
            .context("Failed to record who sent an issue despite its preflight")?;
        Ok(())
    }

    async fn change_archive(&self, change: &ArchiveChange<'_>) -> anyhow::Result<IssueChange> {
        super::issue_archive::change(self, change).await
    }

    async fn transition_issue(
        &self,
        id: Uuid,
        transition: IssueTransition,
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssueChange> {
        let to = transition.to();
        let mut tx = self
            .writer
            .begin()
            .await
            .context("Failed to start changing the issue's status")?;
        let changed = sqlx::query(
            "UPDATE issues SET status = $2, send_at = coalesce($3, send_at), updated_at = $4,
               paused_reason = NULL
             WHERE id = $1 AND status IN (SELECT value FROM json_each($5))",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(transition.send_at().map(ms))
        .bind(ms(now))
        .bind(status_names(transition.from()))
        .execute(&mut *tx)
        .await
        .context("Failed to change the issue's status")?;
        if changed.rows_affected() > 0 && to == IssueStatus::Cancelled {
            // Nobody else gets this issue: its unsent copies are cancelled with it.
            sqlx::query(
                "UPDATE deliveries SET status = 'cancelled' WHERE issue_id = $1 AND status = 'queued'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("Failed to cancel the issue's unsent copies")?;
        }
        tx.commit()
            .await
            .context("Failed to commit the issue's status")?;
        let applied = changed.rows_affected() > 0;
        Ok(IssueChange::after(self.issue(id).await?, applied))
    }

    async fn next_issue_due(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT min(send_at) FROM issues WHERE status = 'scheduled'")
                .fetch_one(&self.reader)
                .await
                .context("Failed to read when the next issue is due")?;
        Ok(next.map(from_ms))
    }
}
