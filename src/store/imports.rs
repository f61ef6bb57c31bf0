//! Imports of subscribers: the preview (the import and its rows with their verdicts),
//! and applying it a batch at a time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Invitation, Removal};
use crate::{
    audience::import::rules::{ImportCounts, ImportRecord, ImportRow, Mode, RowStatus},
    audience::subscriber::NewSubscriber,
};

/// One person of an import, checked, with the ids their rows will have.
#[derive(Clone, Debug)]
pub struct ImportedPerson {
    /// The row's line in the file, to record its outcome.
    pub line: i64,
    pub subscriber: NewSubscriber,
    pub new_subscriber_id: Uuid,
    pub event_id: Uuid,
    /// Their confirmation mail, when the import sends one.
    pub invitation: Option<Invitation>,
}

/// A batch of an import, applied in one transaction.
#[derive(Clone, Debug)]
pub struct ImportBatch<'a> {
    pub import_id: Uuid,
    pub list_id: Uuid,
    pub mode: Mode,
    pub now: DateTime<Utc>,
    pub people: &'a [ImportedPerson],
}

/// Whether this call is the one that applies an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportStart {
    Started,
    /// Applied before, or being applied (another click, another instance).
    AlreadyStarted,
}

#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Records an import and its rows, with their verdicts.
    async fn create_import(&self, import: &ImportRecord, rows: &[ImportRow]) -> anyhow::Result<()>;
    async fn import(&self, id: Uuid) -> anyhow::Result<Option<ImportRecord>>;
    /// The list's imports, newest first.
    async fn imports(&self, list_id: Uuid) -> anyhow::Result<Vec<ImportRecord>>;
    /// How many of an import's rows have each status.
    async fn import_counts(&self, id: Uuid) -> anyhow::Result<ImportCounts>;
    /// A page of an import's rows after line `after_line`, in the file's order, with
    /// `status` if given.
    async fn import_rows(
        &self,
        id: Uuid,
        status: Option<RowStatus>,
        after_line: i64,
        offset: u32,
        limit: u32,
    ) -> anyhow::Result<Vec<ImportRow>>;
    /// Marks the import applied, if it was not (so one click, or one instance, applies
    /// it).
    async fn start_import(&self, id: Uuid, now: DateTime<Utc>) -> anyhow::Result<ImportStart>;
    /// Deletes an import that was never applied, with its rows.
    async fn discard_import(&self, id: Uuid) -> anyhow::Result<Removal>;
    /// Deletes the rows of imports made before `cutoff`, and imports never applied.
    async fn delete_import_rows_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()>;
    /// Imports a batch of people (see `audience::import::rules::outcome`) and records each row's outcome.
    async fn import_subscribers(&self, batch: &ImportBatch<'_>) -> anyhow::Result<()>;
}
