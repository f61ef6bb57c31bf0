//! Deleting drafts, and taking sent issues out of the public archive and back. Each
//! change is one conditional statement, so the status it depends on cannot change
//! under it; what was refused is read back to say why.

use anyhow::Context;
use uuid::Uuid;

use super::{SqliteStore, rows::ms};
use crate::issues::{ArchiveChange, DraftDeletion, IssueChange, IssueStatus};
use crate::store::IssueStore;

pub(super) async fn delete_draft(store: &SqliteStore, id: Uuid) -> anyhow::Result<DraftDeletion> {
    let deleted = sqlx::query("DELETE FROM issues WHERE id = $1 AND status = $2")
        .bind(id)
        .bind(IssueStatus::Draft.as_str())
        .execute(&store.writer)
        .await
        .context("Failed to delete the draft")?;
    if deleted.rows_affected() > 0 {
        return Ok(DraftDeletion::Deleted);
    }
    Ok(DraftDeletion::refused(store.issue(id).await?))
}

pub(super) async fn change(
    store: &SqliteStore,
    change: &ArchiveChange<'_>,
) -> anyhow::Result<IssueChange> {
    let mut tx = store
        .writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .context("Failed to begin changing the archive")?;
    // Withdrawing needs an issue in the archive; putting back, one withdrawn.
    let changed = sqlx::query(
        "UPDATE issues SET withdrawn_at = $2, withdrawn_by = $3
         WHERE id = $1 AND status = $4 AND (withdrawn_at IS NULL) = $5",
    )
    .bind(change.issue_id)
    .bind(change.withdraw.then_some(ms(change.at)))
    .bind(change.withdraw.then_some(change.by))
    .bind(IssueStatus::Sent.as_str())
    .bind(change.withdraw)
    .execute(&mut *tx)
    .await
    .context("Failed to change the archive")?;
    if changed.rows_affected() > 0 {
        sqlx::query(
            "INSERT INTO issue_archive_changes (id, issue_id, change, changed_by, changed_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(change.id)
        .bind(change.issue_id)
        .bind(if change.withdraw {
            "withdrawn"
        } else {
            "restored"
        })
        .bind(change.by)
        .bind(ms(change.at))
        .execute(&mut *tx)
        .await
        .context("Failed to record the change to the archive")?;
    }
    tx.commit()
        .await
        .context("Failed to commit the change to the archive")?;
    // Already as asked is no change, and no refusal either.
    let issue = store.issue(change.issue_id).await?;
    let archived = issue.as_ref().is_some_and(|i| i.status.is_archived());
    Ok(IssueChange::after(issue, archived))
}
