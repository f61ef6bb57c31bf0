//! Issues: their content and the states they move through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::issues::{
    ArchiveChange, DraftDeletion, Issue, IssueChange, IssueContent, IssueTransition, NewIssue,
};

#[async_trait]
pub trait IssueStore: Send + Sync {
    async fn create_issue(&self, issue: &NewIssue) -> anyhow::Result<Issue>;
    /// Every issue, newest first.
    async fn issues(&self) -> anyhow::Result<Vec<Issue>>;
    async fn issue(&self, id: Uuid) -> anyhow::Result<Option<Issue>>;
    /// Applies the fields present in `changes`, if the issue is still editable.
    async fn update_issue(
        &self,
        id: Uuid,
        changes: &IssueContent,
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssueChange>;
    /// Moves an issue along `transition`, if its status now allows it (see
    /// `IssueTransition::from`); cancelling also cancels its unsent copies.
    async fn transition_issue(
        &self,
        id: Uuid,
        transition: IssueTransition,
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssueChange>;
    /// Deletes a draft; anything later is refused.
    async fn delete_draft(&self, id: Uuid) -> anyhow::Result<DraftDeletion>;
    /// Withdraws a sent issue from the public archive or puts it back, and records who
    /// did it and when (only when that changes anything).
    async fn change_archive(&self, change: &ArchiveChange<'_>) -> anyhow::Result<IssueChange>;
    /// Records that `by` scheduled the issue despite the preflight's problems.
    async fn record_sent_anyway(&self, id: Uuid, by: &str, at: DateTime<Utc>)
    -> anyhow::Result<()>;
    /// When the next scheduled issue is due.
    async fn next_issue_due(&self) -> anyhow::Result<Option<DateTime<Utc>>>;
}
