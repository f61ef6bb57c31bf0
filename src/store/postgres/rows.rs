//! Rows to values and values to columns: the time encoding and the row mappers, once.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Postgres, Row, query::Query};

use crate::audience::import::rules::{self, ImportRecord, ImportRow, RowStatus};
use crate::audience::subscription::SubscriptionStatus;
use crate::issues::{Issue, IssueStatus, Withdrawal};
use crate::staff::{Role, StaffUser};
use crate::store::{SendOutcome, SubscriberSummary};

/// Statuses as the array of their names that `= ANY(...)` reads.
pub(super) fn status_names(statuses: &[IssueStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
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

pub(super) fn issue_from_row(row: &PgRow) -> anyhow::Result<Issue> {
    Ok(Issue {
        id: row.try_get("id")?,
        list_slug: row.try_get("list_slug")?,
        subject: row.try_get("subject")?,
        preheader: row.try_get("preheader")?,
        body_markdown: row.try_get("body_markdown")?,
        template: row.try_get("template")?,
        status: IssueStatus::parse(row.try_get("status")?)?,
        send_at: row.try_get("send_at")?,
        finished_at: row.try_get("finished_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        withdrawn: match row.try_get::<Option<DateTime<Utc>>, _>("withdrawn_at")? {
            Some(at) => Some(Withdrawal {
                at,
                by: row.try_get("withdrawn_by")?,
            }),
            None => None,
        },
    })
}

/// A staff user from a row with `id`, `email` and `role`.
pub(super) fn staff_user(row: &sqlx::postgres::PgRow) -> anyhow::Result<StaffUser> {
    Ok(StaffUser {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: Role::parse(row.try_get("role")?)?,
    })
}

pub(super) fn import_record(row: &PgRow) -> anyhow::Result<ImportRecord> {
    Ok(ImportRecord {
        id: row.try_get("id")?,
        list_id: row.try_get("list_id")?,
        created_by: row.try_get("created_by")?,
        file_name: row.try_get("file_name")?,
        source_note: row.try_get("source_note")?,
        mode: rules::Mode::parse(row.try_get("mode")?).context("An import has an unknown mode")?,
        created_at: row.try_get("created_at")?,
        applied_at: row.try_get("applied_at")?,
    })
}

pub(super) fn import_row(row: &PgRow) -> anyhow::Result<ImportRow> {
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

pub(super) fn subscriber_summary(row: &sqlx::postgres::PgRow) -> anyhow::Result<SubscriberSummary> {
    Ok(SubscriberSummary {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        organisation: row.try_get("organisation")?,
        locality: row.try_get("locality")?,
        status: SubscriptionStatus::parse(row.try_get("status")?)?,
        created_at: row.try_get("created_at")?,
    })
}
