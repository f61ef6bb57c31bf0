//! Rows to values and values to columns: the time encoding and the row mappers, once.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::audience::import::rules::{self, ImportRecord, ImportRow, RowStatus};
use crate::audience::subscription::SubscriptionStatus;
use crate::issues::{Issue, IssueStatus, Withdrawal};
use crate::staff::{Role, StaffUser};
use crate::store::{SendOutcome, SubscriberSummary};

/// Statuses as the JSON array of their names that `json_each` reads.
pub(super) fn status_names(statuses: &[IssueStatus]) -> String {
    let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    serde_json::Value::from(names).to_string()
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

pub(super) fn issue_from_row(row: &SqliteRow) -> anyhow::Result<Issue> {
    Ok(Issue {
        id: row.try_get("id")?,
        list_slug: row.try_get("list_slug")?,
        subject: row.try_get("subject")?,
        preheader: row.try_get("preheader")?,
        body_markdown: row.try_get("body_markdown")?,
        template: row.try_get("template")?,
        status: IssueStatus::parse(row.try_get("status")?)?,
        send_at: row.try_get::<Option<i64>, _>("send_at")?.map(from_ms),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(from_ms),
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        withdrawn: match row.try_get::<Option<i64>, _>("withdrawn_at")? {
            Some(at) => Some(Withdrawal {
                at: from_ms(at),
                by: row.try_get("withdrawn_by")?,
            }),
            None => None,
        },
    })
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A staff user from a row with `id`, `email` and `role`.
pub(super) fn staff_user(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<StaffUser> {
    Ok(StaffUser {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: Role::parse(row.try_get("role")?)?,
    })
}

pub(super) fn import_record(row: &SqliteRow) -> anyhow::Result<ImportRecord> {
    Ok(ImportRecord {
        id: row.try_get("id")?,
        list_id: row.try_get("list_id")?,
        created_by: row.try_get("created_by")?,
        file_name: row.try_get("file_name")?,
        source_note: row.try_get("source_note")?,
        mode: rules::Mode::parse(row.try_get("mode")?).context("An import has an unknown mode")?,
        created_at: from_ms(row.try_get("created_at")?),
        applied_at: row.try_get::<Option<i64>, _>("applied_at")?.map(from_ms),
    })
}

pub(super) fn import_row(row: &SqliteRow) -> anyhow::Result<ImportRow> {
    Ok(ImportRow {
        line: row.try_get("line")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        organisation: row.try_get("organisation")?,
        locality: row.try_get("locality")?,
        status: RowStatus::parse(row.try_get("status")?)
            .context("An imported row has an unknown status")?,
        reason: row.try_get("reason")?,
    })
}

pub(super) fn subscriber_summary(
    row: &sqlx::sqlite::SqliteRow,
) -> anyhow::Result<SubscriberSummary> {
    Ok(SubscriberSummary {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        organisation: row.try_get("organisation")?,
        locality: row.try_get("locality")?,
        status: SubscriptionStatus::parse(row.try_get("status")?)?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}
