//! Failed sign-ins, counted per key. An attempt is admitted and counted in one
//! transaction (one writer: nothing can come between the count and the insert).

use anyhow::Context;
use sqlx::SqlitePool;
use uuid::Uuid;

use super::rows::ms;
use crate::store::{LoginAdmission, LoginAttempt};

pub(super) async fn admit(
    writer: &SqlitePool,
    attempt: &LoginAttempt<'_>,
) -> anyhow::Result<LoginAdmission> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .context("Failed to begin counting a sign-in")?;
    for (key, limit) in attempt.limits {
        let failures: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM login_failures WHERE key = $1 AND failed_at > $2",
        )
        .bind(key)
        .bind(ms(attempt.since))
        .fetch_one(&mut *tx)
        .await
        .context("Failed to count failed sign-ins")?;
        if failures >= *limit {
            return Ok(LoginAdmission::Throttled);
        }
    }
    for (key, _) in attempt.limits {
        sqlx::query("INSERT INTO login_failures (key, failed_at, attempt_id) VALUES ($1, $2, $3)")
            .bind(key)
            .bind(ms(attempt.now))
            .bind(attempt.id)
            .execute(&mut *tx)
            .await
            .context("Failed to count a sign-in")?;
    }
    // Only the last few minutes count; a day is kept, and older failures go.
    sqlx::query("DELETE FROM login_failures WHERE failed_at < $1")
        .bind(ms(attempt.now - chrono::Duration::days(1)))
        .execute(&mut *tx)
        .await
        .context("Failed to forget old failed sign-ins")?;
    tx.commit().await.context("Failed to count a sign-in")?;
    Ok(LoginAdmission::Admitted)
}

pub(super) async fn forget(writer: &SqlitePool, id: Uuid, clear: &[String]) -> anyhow::Result<()> {
    sqlx::query(
        "DELETE FROM login_failures
         WHERE attempt_id = $1 OR key IN (SELECT value FROM json_each($2))",
    )
    .bind(id)
    .bind(serde_json::to_string(clear)?)
    .execute(writer)
    .await
    .context("Failed to forget a sign-in attempt")?;
    Ok(())
}
