//! How this backend reads and writes values: its time encoding, how it reads each kind
//! of column (the row mappers are `store/mapping.rs`, shared), and how it binds batches.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Postgres, Row, query::Query};

use crate::audience::segment::{Filter, Param};
use crate::issues::IssueStatus;
use crate::store::{SendOutcome, mapping::Columns};
use uuid::Uuid;

/// Statuses as the array of their names that `= ANY(...)` reads.
pub(super) fn status_names(statuses: &[IssueStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

/// The query with a segment's values bound, after the placeholders it has already bound.
pub(super) fn bind_filter<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    filter: &Filter,
) -> Query<'q, Postgres, PgArguments> {
    for param in &filter.params {
        query = match param {
            Param::Text(text) => query.bind(*text),
            Param::Time(at) => query.bind(*at),
        };
    }
    query
}

/// Binds the columns that outcomes set, as the arrays a batch update unnests after its
/// key arrays.
pub(super) fn bind_outcomes<'q, 'a>(
    query: Query<'q, Postgres, PgArguments>,
    outcomes: impl Iterator<Item = &'a SendOutcome>,
) -> Query<'q, Postgres, PgArguments> {
    let columns: Vec<_> = outcomes.map(SendOutcome::columns).collect();
    query
        .bind(columns.iter().map(|c| c.status).collect::<Vec<_>>())
        .bind(columns.iter().map(|c| c.sent_at).collect::<Vec<_>>())
        .bind(
            columns
                .iter()
                .map(|c| c.reply.map(str::to_owned))
                .collect::<Vec<_>>(),
        )
        .bind(
            columns
                .iter()
                .map(|c| c.next_attempt_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            columns
                .iter()
                .map(|c| c.error.map(str::to_owned))
                .collect::<Vec<_>>(),
        )
}

impl Columns for PgRow {
    fn text(&self, column: &str) -> anyhow::Result<String> {
        Ok(self.try_get(column)?)
    }
    fn maybe_text(&self, column: &str) -> anyhow::Result<Option<String>> {
        Ok(self.try_get(column)?)
    }
    fn id(&self, column: &str) -> anyhow::Result<Uuid> {
        Ok(self.try_get(column)?)
    }
    fn maybe_id(&self, column: &str) -> anyhow::Result<Option<Uuid>> {
        Ok(self.try_get(column)?)
    }
    fn number(&self, column: &str) -> anyhow::Result<i64> {
        Ok(self.try_get(column)?)
    }
    fn maybe_number(&self, column: &str) -> anyhow::Result<Option<i64>> {
        Ok(self.try_get(column)?)
    }
    fn small_number(&self, column: &str) -> anyhow::Result<i32> {
        Ok(self.try_get(column)?)
    }
    fn flag(&self, column: &str) -> anyhow::Result<bool> {
        Ok(self.try_get(column)?)
    }
    fn maybe_bytes(&self, column: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.try_get(column)?)
    }
    /// Times are `timestamptz`.
    fn time(&self, column: &str) -> anyhow::Result<DateTime<Utc>> {
        Ok(self.try_get(column)?)
    }
    fn maybe_time(&self, column: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        Ok(self.try_get(column)?)
    }
}
