//! Sign-up budgets and used form tokens, inside the sign-up's transaction. The budget
//! rows are locked (in one order, so two sign-ups cannot deadlock) before they are
//! read, so that instances sharing the database count each mail once.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

use super::PostgresStore;
use crate::audience::budgets::{BudgetKeys, BudgetScope, Budgets, Refusals};
use crate::sending::rate::{Grant, RateLimits, Windows};
use crate::store::BudgetStore;

/// Marks the form token's random part used; false if it was used before.
pub(super) async fn use_form_token(
    conn: &mut PgConnection,
    nonce: &[u8],
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO used_form_tokens (nonce, used_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(nonce)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("Failed to record the form token")?;
    Ok(inserted.rows_affected() == 1)
}

/// The budget another confirmation mail would overrun, counting the refusal if so.
pub(super) async fn overrun(
    conn: &mut PgConnection,
    keys: &BudgetKeys,
    budgets: &Budgets,
) -> anyhow::Result<Option<BudgetScope>> {
    let rows = sqlx::query(
        "SELECT scope, mails FROM signup_budgets
         WHERE window_start = $1
           AND ((scope = 'total' AND key = '') OR (scope = 'domain' AND key = $2)
                OR (scope = 'client' AND key = $3))
         ORDER BY scope, key
         FOR UPDATE",
    )
    .bind(keys.window_start)
    .bind(&keys.domain)
    .bind(&keys.client)
    .fetch_all(&mut *conn)
    .await
    .context("Failed to read the sign-up budgets")?;
    let used = rows
        .iter()
        .map(|row| {
            let scope: String = row.try_get("scope")?;
            let scope = BudgetScope::parse(&scope).context("An unknown budget scope")?;
            Ok((scope, row.try_get("mails")?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let over = budgets.overrun(&used);
    if let Some(scope) = over {
        sqlx::query(
            "INSERT INTO signup_budgets (scope, key, window_start, refused) VALUES ($1, $2, $3, 1)
             ON CONFLICT (scope, key, window_start) DO UPDATE SET refused = signup_budgets.refused + 1",
        )
        .bind(scope.as_str())
        .bind(keys.key(scope))
        .bind(keys.window_start)
        .execute(&mut *conn)
        .await
        .context("Failed to count a refused sign-up")?;
    }
    Ok(over)
}

/// Counts a confirmation mail against each budget.
pub(super) async fn count_mail(conn: &mut PgConnection, keys: &BudgetKeys) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO signup_budgets (scope, key, window_start, mails)
         VALUES ('total', '', $1, 1), ('domain', $2, $1, 1), ('client', $3, $1, 1)
         ON CONFLICT (scope, key, window_start) DO UPDATE SET mails = signup_budgets.mails + 1",
    )
    .bind(keys.window_start)
    .bind(&keys.domain)
    .bind(&keys.client)
    .execute(&mut *conn)
    .await
    .context("Failed to count a confirmation mail")?;
    Ok(())
}

/// Makes the hour's budget rows exist, outside any transaction, so that the sign-up's
/// transaction only locks rows (inserting them there could deadlock two sign-ups).
pub(super) async fn ensure_rows(pool: &PgPool, keys: &BudgetKeys) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO signup_budgets (scope, key, window_start)
         VALUES ('total', '', $1), ('domain', $2, $1), ('client', $3, $1)
         ON CONFLICT DO NOTHING",
    )
    .bind(keys.window_start)
    .bind(&keys.domain)
    .bind(&keys.client)
    .execute(pool)
    .await
    .context("Failed to make the sign-up budgets")?;
    Ok(())
}

pub(super) async fn refusals(pool: &PgPool, since: DateTime<Utc>) -> anyhow::Result<Refusals> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT scope, sum(refused)::bigint FROM signup_budgets
         WHERE window_start >= $1 AND refused > 0 GROUP BY scope",
    )
    .bind(since)
    .fetch_all(pool)
    .await
    .context("Failed to read the refused sign-ups")?;
    Refusals::from_rows(rows)
}

pub(super) async fn delete_before(pool: &PgPool, cutoff: DateTime<Utc>) -> anyhow::Result<()> {
    for sql in [
        "DELETE FROM signup_budgets WHERE window_start < $1",
        "DELETE FROM used_form_tokens WHERE used_at < $1",
    ] {
        sqlx::query(sql)
            .bind(cutoff)
            .execute(pool)
            .await
            .context("Failed to delete old sign-up budgets")?;
    }
    Ok(())
}

#[async_trait]
impl BudgetStore for PostgresStore {
    async fn budget_refusals(&self, since: DateTime<Utc>) -> anyhow::Result<Refusals> {
        refusals(&self.pool, since).await
    }

    async fn delete_signup_records_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()> {
        delete_before(&self.pool, cutoff).await
    }

    async fn take_send_budget(
        &self,
        now: DateTime<Utc>,
        wanted: u32,
        limits: RateLimits,
    ) -> anyhow::Result<Grant> {
        let windows = Windows::at(now);
        // In one transaction: both rows locked, in one order, so instances take from the windows in turn.
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin taking from the send budget")?;
        sqlx::query(
            "INSERT INTO send_budget (period, starts, used) VALUES ('hour', $1, 0), ('second', $2, 0)
             ON CONFLICT DO NOTHING",
        )
        .bind(windows.hour)
        .bind(windows.second)
        .execute(&mut *tx)
        .await
        .context("Failed to open the send budget's windows")?;
        let used: Vec<(String, i64)> = sqlx::query_as(
            "SELECT period, used FROM send_budget
             WHERE (period = 'hour' AND starts = $1) OR (period = 'second' AND starts = $2)
             ORDER BY period FOR UPDATE",
        )
        .bind(windows.hour)
        .bind(windows.second)
        .fetch_all(&mut *tx)
        .await
        .context("Failed to read the send budget")?;
        let of = |period: &str| {
            used.iter()
                .find(|(p, _)| p == period)
                .map_or(0, |(_, n)| *n)
        };
        let (hour, second) = (of("hour"), of("second"));
        let granted = limits.grant(wanted, second, hour, now);
        if granted > 0 {
            sqlx::query(
                "UPDATE send_budget SET used = used + $3
                 WHERE (period = 'hour' AND starts = $1) OR (period = 'second' AND starts = $2)",
            )
            .bind(windows.hour)
            .bind(windows.second)
            .bind(i64::from(granted))
            .execute(&mut *tx)
            .await
            .context("Failed to take from the send budget")?;
        }
        sqlx::query(
            "DELETE FROM send_budget
             WHERE (period = 'second' AND starts < $2 - 60) OR (period = 'hour' AND starts < $1 - 7200)",
        )
        .bind(windows.hour)
        .bind(windows.second)
        .execute(&mut *tx)
        .await
        .context("Failed to forget old send budget windows")?;
        tx.commit()
            .await
            .context("Failed to take from the send budget")?;
        Ok(match granted {
            0 => Grant::WaitUntil(limits.next_window(now, hour)),
            n => Grant::Copies(n),
        })
    }

    async fn return_send_budget(&self, taken_at: DateTime<Utc>, unused: u32) -> anyhow::Result<()> {
        let windows = Windows::at(taken_at);
        sqlx::query(
            "UPDATE send_budget SET used = greatest(used - $3, 0)
             WHERE (period = 'hour' AND starts = $1) OR (period = 'second' AND starts = $2)",
        )
        .bind(windows.hour)
        .bind(windows.second)
        .bind(i64::from(unused))
        .execute(&self.pool)
        .await
        .context("Failed to give back to the send budget")?;
        Ok(())
    }
}
