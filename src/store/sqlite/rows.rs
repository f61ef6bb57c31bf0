//! How this backend reads and writes values: its time encoding, how it reads each kind
//! of column (the row mappers are `store/mapping.rs`, shared), and how it binds batches.

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row, Sqlite, query::Query};

use crate::audience::segment::{Filter, Param};
use crate::issues::IssueStatus;
use crate::store::{SendOutcome, mapping::Columns};
use uuid::Uuid;

/// Statuses as the JSON array of their names that `json_each` reads.
pub(super) fn status_names(statuses: &[IssueStatus]) -> String {
    let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    serde_json::Value::from(names).to_string()
}

/// The query with a segment's values bound, after the placeholders it has already bound.
pub(super) fn bind_filter<'q>(
    mut query: Query<'q, Sqlite, SqliteArguments>,
    filter: &Filter,
) -> Query<'q, Sqlite, SqliteArguments> {
    for param in &filter.params {
        query = match param {
            Param::Text(text) => query.bind(*text),
            Param::Time(at) => query.bind(ms(*at)),
        };
    }
    query
}

/// Outcomes as the JSON array the batch updates read with `json_each`: each row's key
/// fields, and the columns its outcome sets (ids as hex, times as milliseconds).
pub(super) fn outcomes_json<'a>(
    rows: impl Iterator<Item = (serde_json::Value, &'a SendOutcome)>,
) -> String {
    let rows: Vec<serde_json::Value> = rows
        .map(|(mut key, outcome)| {
            let columns = outcome.columns();
            key["status"] = columns.status.into();
            key["sent_at"] = columns.sent_at.map(ms).into();
            key["reply"] = columns.reply.into();
            key["next_attempt_at"] = columns.next_attempt_at.map(ms).into();
            key["error"] = columns.error.into();
            key
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// Keys as the JSON array of hex strings that `json_each` reads (and `unhex` turns back).
pub(super) fn keys_json(keys: &[[u8; 32]]) -> String {
    let hex: Vec<String> = keys.iter().map(|k| crate::tokens::to_hex(k)).collect();
    serde_json::Value::from(hex).to_string()
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Columns for SqliteRow {
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
    /// Times are Unix milliseconds.
    fn time(&self, column: &str) -> anyhow::Result<DateTime<Utc>> {
        Ok(from_ms(self.try_get(column)?))
    }
    fn maybe_time(&self, column: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        Ok(self.try_get::<Option<i64>, _>(column)?.map(from_ms))
    }
}
