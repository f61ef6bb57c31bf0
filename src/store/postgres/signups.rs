//! Joining: a sign-up (a person, their pending subscription, the token and the
//! confirmation mail, in one transaction) and its confirmation. Sign-ups are written in
//! batches (`signup_batch.rs`).

use crate::audience::subscription::{
    ConfirmOutcome, SignupOutcome, SubscriptionStatus, combined_outcome, confirmation,
};
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::PostgresStore;
use crate::store::{ConfirmRequest, SignupRequest, SignupStore};

#[async_trait]
impl SignupStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn record_signup(&self, req: &SignupRequest) -> anyhow::Result<SignupOutcome> {
        self.signups.record(req).await
    }

    async fn delete_expired_signups(
        &self,
        expired_before: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<u64> {
        // Never confirmed on any list, and no link left that works.
        const EXPIRED: &str = "EXISTS (SELECT 1 FROM subscriptions p WHERE p.subscriber_id = s.id)
             AND NOT EXISTS (SELECT 1 FROM subscriptions p
                             WHERE p.subscriber_id = s.id AND p.status <> 'pending')
             AND NOT EXISTS (SELECT 1 FROM confirmation_tokens t
                             WHERE t.subscriber_id = s.id AND t.expires_at >= $1)";
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin deleting expired sign-ups")?;
        // Lock them first, skipping any a sign-up holds; then check again in a new
        // statement, which sees every sign-up that committed before the locks were
        // taken (later ones wait for this transaction).
        let candidates: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT s.id FROM subscribers s WHERE {EXPIRED} FOR UPDATE OF s SKIP LOCKED"
        )))
        .bind(expired_before)
        .fetch_all(&mut *tx)
        .await
        .context("Failed to find the sign-ups never confirmed")?;
        let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM subscribers s WHERE s.id = ANY($2) AND {EXPIRED}"
        )))
        .bind(expired_before)
        .bind(&candidates)
        .execute(&mut *tx)
        .await
        .context("Failed to delete the sign-ups never confirmed")?;
        tx.commit()
            .await
            .context("Failed to commit deleting expired sign-ups")?;
        Ok(deleted.rows_affected())
    }

    async fn token_lists(&self, token_hash: &[u8; 32]) -> anyhow::Result<Vec<Uuid>> {
        sqlx::query_scalar(
            "SELECT list_id FROM confirmation_tokens WHERE token_hash = $1 ORDER BY list_id",
        )
        .bind(&token_hash[..])
        .fetch_all(&self.pool)
        .await
        .context("Failed to read a confirmation token's lists")
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_subscription(&self, req: &ConfirmRequest) -> anyhow::Result<ConfirmOutcome> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin the confirmation transaction")?;
        let rows = sqlx::query(
            "SELECT t.subscriber_id, t.list_id, t.expires_at, t.used_at, sub.status
             FROM confirmation_tokens t
             JOIN subscriptions sub ON sub.subscriber_id = t.subscriber_id AND sub.list_id = t.list_id
             WHERE t.token_hash = $1
             ORDER BY t.list_id
             FOR UPDATE OF t, sub",
        )
        .bind(&req.token_hash[..])
        .fetch_all(&mut *tx)
        .await
        .context("Failed to look up the confirmation token")?;
        let mut outcomes = Vec::with_capacity(rows.len());
        let mut confirmed_now = None;
        for row in &rows {
            let subscriber_id: Uuid = row.try_get("subscriber_id")?;
            let list_id: Uuid = row.try_get("list_id")?;
            let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
            let used_at: Option<DateTime<Utc>> = row.try_get("used_at")?;
            let status = SubscriptionStatus::parse(row.try_get("status")?)?;
            let decided = confirmation(status, used_at.is_some(), expires_at <= req.now);
            outcomes.push(decided.outcome);
            if let Some(kind) = decided.event {
                sqlx::query(
                    "WITH confirmed AS (
                       UPDATE subscriptions SET status = 'confirmed', confirmed_at = $3, updated_at = $3
                       WHERE subscriber_id = $1 AND list_id = $2
                     )
                     INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent)
                     VALUES ($4, $1, $2, $5, $6, $3, $7, $8)",
                )
                .bind(subscriber_id)
                .bind(list_id)
                .bind(req.now)
                .bind(Uuid::now_v7())
                .bind(kind.as_str())
                .bind(req.consent.method.as_str())
                .bind(req.consent.ip.as_deref())
                .bind(req.consent.user_agent.as_deref())
                .execute(&mut *tx)
                .await
                .context("Failed to confirm the subscription")?;
                confirmed_now = Some(subscriber_id);
            }
            if decided.uses_token {
                sqlx::query(
                    "UPDATE confirmation_tokens SET used_at = $3 WHERE token_hash = $1 AND list_id = $2",
                )
                .bind(&req.token_hash[..])
                .bind(list_id)
                .bind(req.now)
                .execute(&mut *tx)
                .await
                .context("Failed to mark the token used")?;
            }
        }
        if let Some(subscriber_id) = confirmed_now {
            // A mailbox that confirms works: a bounce no longer stands against it.
            super::suppressions::lift_on_confirming(&mut tx, subscriber_id, req.now).await?;
            sqlx::query(
                "INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
                 SELECT $1, $2, email, id, $3, $4, $4 FROM subscribers WHERE id = $5",
            )
            .bind(req.welcome.id)
            .bind(&req.welcome.kind)
            .bind(&req.welcome.payload)
            .bind(req.now)
            .bind(subscriber_id)
            .execute(&mut *tx)
            .await
            .context("Failed to queue the welcome mail")?;
        }
        tx.commit()
            .await
            .context("Failed to commit the confirmation")?;
        Ok(combined_outcome(outcomes))
    }
}
