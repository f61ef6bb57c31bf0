//! Failed sign-ins, counted per key. An attempt is admitted and counted in one
//! transaction that holds an advisory lock on each of its keys (taken in one order), so
//! parallel attempts, on any instance, are counted one after another.

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{LoginAdmission, LoginAttempt};

pub(super) async fn admit(
    pool: &PgPool,
    attempt: &LoginAttempt<'_>,
) -> anyhow::Result<LoginAdmission> {
    let mut tx = pool
        .begin()
        .await
        .context("Failed to begin counting a sign-in")?;
    let mut keys: Vec<&str> = attempt.limits.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *tx)
            .await
            .context("Failed to lock a sign-in key")?;
    }
    for (key, limit) in attempt.limits {
        let failures: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM login_failures WHERE key = $1 AND failed_at > $2",
        )
        .bind(key)
        .bind(attempt.since)
        .fetch_one(&mut *tx)
        .await
        .context("Failed to count failed sign-ins")?;
        if failures >= *limit {
            return Ok(LoginAdmission::Throttled);
        }
    }
    sqlx::query(
        "INSERT INTO login_failures (key, failed_at, attempt_id)
         SELECT k, $2, $3 FROM UNNEST($1::text[]) AS t(k)",
    )
    .bind(
        attempt
            .limits
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(attempt.now)
    .bind(attempt.id)
    .execute(&mut *tx)
    .await
    .context("Failed to count a sign-in")?;
    // Only the last few minutes count; a day is kept, and older failures go.
    sqlx::query("DELETE FROM login_failures WHERE failed_at < $1")
        .bind(attempt.now - chrono::Duration::days(1))
        .execute(&mut *tx)
        .await
        .context("Failed to forget old failed sign-ins")?;
    tx.commit().await.context("Failed to count a sign-in")?;
    Ok(LoginAdmission::Admitted)
}

pub(super) async fn forget(pool: &PgPool, id: Uuid, clear: &[String]) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE attempt_id = $1 OR key = ANY($2)")
        .bind(id)
        .bind(clear)
        .execute(pool)
        .await
        .context("Failed to forget a sign-in attempt")?;
    Ok(())
}
