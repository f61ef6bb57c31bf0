//! Joining: a sign-up (a person, their pending subscription, the token and the
//! confirmation mail, in one transaction) and its confirmation.

use crate::audience::subscription::{
    ConfirmOutcome, SignupAction, SignupOutcome, SubscriptionStatus, combined_outcome,
    confirmation, signup_plan,
};
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::PostgresStore;
use crate::store::{ConfirmRequest, KnownSubscriber, SignupRequest, SignupStore};

/// Everything a sign-up that sends a mail writes, in one statement: a pending
/// subscription to each list it asks about that is new, a token row and a consent
/// event for each, the details typed (when `$16`), and the confirmation mail.
const INVITE: &str = "WITH chosen AS (
       SELECT * FROM UNNEST($2::uuid[], $6::uuid[]) AS c(list_id, event_id)
     ), subscription AS (
       INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
       SELECT $1, list_id, 'pending', $3, $3 FROM chosen
       ON CONFLICT (subscriber_id, list_id) DO NOTHING
     ), details AS (
       UPDATE subscribers SET name = $13, organisation = $14, locality = $15, updated_at = $3
       WHERE id = $1 AND $16
     ), token AS (
       INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at)
       SELECT $4, $1, list_id, $3, $5 FROM chosen
     ), consent AS (
       INSERT INTO consent_events
         (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent, wording_version, wording_hash)
       SELECT event_id, $1, list_id, 'signup', $7, $3, $8, $9, $10, $11 FROM chosen
     )
     INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
     VALUES ($12, $17, (SELECT email FROM subscribers WHERE id = $1), $1, $18, $3, $3)";

/// Someone already subscribed who signs up again is reminded, at most a cap a day: one
/// statement, so the count and the insert cannot be split.
const REMIND: &str =
    "INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
     SELECT $1, $2, s.email, s.id, $3, $4, $4 FROM subscribers s
     WHERE s.id = $5
       AND (SELECT count(*) FROM outbox o
            WHERE o.subscriber_id = $5 AND o.kind = $2 AND o.created_at > $6) < $7";

#[async_trait]
impl SignupStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn record_signup(&self, req: &SignupRequest) -> anyhow::Result<SignupOutcome> {
        let person = &req.subscriber;
        super::budgets::ensure_rows(&self.pool, &req.budget_keys).await?;
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin the sign-up transaction")?;
        if !super::budgets::use_form_token(&mut tx, &req.form_nonce, req.now).await? {
            tx.commit().await.context("Failed to commit the sign-up")?;
            return Ok(SignupOutcome::FormTokenUsed);
        }
        if let Some(scope) =
            super::budgets::overrun(&mut tx, &req.budget_keys, &req.budgets).await?
        {
            tx.commit().await.context("Failed to commit the sign-up")?;
            return Ok(SignupOutcome::OverBudget(scope));
        }
        let suppression =
            super::suppressions::admission(&mut tx, &req.suppression_keys, req.now).await?;
        let past_suppression = match suppression {
            Some((_, false)) => {
                tx.commit().await.context("Failed to commit the sign-up")?;
                return Ok(SignupOutcome::Suppressed);
            }
            Some((key, true)) => Some(key),
            None => None,
        };

        // Two sign-ups of one new address at once: the second INSERT waits for the
        // first to commit and then does nothing; the row lock below orders the rest.
        // The housekeeping may delete a long-expired sign-up of this address between
        // the two statements (it locks the row first): then the row is gone when the
        // lock is ours, and the second try inserts it afresh.
        let mut row = None;
        for _ in 0..2 {
            sqlx::query(
                "INSERT INTO subscribers (id, email, name, organisation, locality, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (email_key) DO NOTHING",
            )
            .bind(req.new_subscriber_id)
            .bind(person.email.as_str())
            .bind(person.name.as_str())
            .bind(person.organisation.as_ref().map(|o| o.as_str()))
            .bind(person.locality.map(|l| l.slug()))
            .bind(req.now)
            .execute(&mut *tx)
            .await
            .context("Failed to store the subscriber")?;
            row = sqlx::query(
                "SELECT s.id,
                   (SELECT count(DISTINCT t.token_hash) FROM confirmation_tokens t
                    WHERE t.subscriber_id = s.id AND t.created_at > $2) AS recent,
                   EXISTS (SELECT 1 FROM subscriptions c
                           WHERE c.subscriber_id = s.id AND c.status = 'confirmed') AS confirmed_anywhere
                 FROM subscribers s
                 WHERE s.email_key = lower($1 COLLATE \"C\")
                 FOR UPDATE OF s",
            )
            .bind(person.email.as_str())
            .bind(req.now - Duration::hours(24))
            .fetch_optional(&mut *tx)
            .await
            .context("Failed to read the subscriber")?;
            if row.is_some() {
                break;
            }
        }
        let row = row.context("The subscriber row vanished twice during a sign-up")?;
        let subscriber_id: Uuid = row.try_get("id")?;
        let statuses = sqlx::query_as::<_, (Uuid, String)>(
            "SELECT list_id, status FROM subscriptions WHERE subscriber_id = $1",
        )
        .bind(subscriber_id)
        .fetch_all(&mut *tx)
        .await
        .context("Failed to read the subscriptions")?;
        let known = KnownSubscriber::new(
            subscriber_id,
            statuses,
            row.try_get("confirmed_anywhere")?,
            row.try_get("recent")?,
        )?;
        let plan = signup_plan(
            &known.statuses_of(&req.list_ids),
            known.confirmed_anywhere,
            known.recent,
            req.resend_cap,
        );

        match plan.action {
            SignupAction::Invite => {}
            SignupAction::Nothing => {
                tx.commit().await.context("Failed to commit the sign-up")?;
                return Ok(SignupOutcome::ResendCapReached);
            }
            SignupAction::Remind => {
                let queued = sqlx::query(REMIND)
                    .bind(req.reminder.id)
                    .bind(&req.reminder.kind)
                    .bind(&req.reminder.payload)
                    .bind(req.now)
                    .bind(subscriber_id)
                    .bind(req.now - Duration::hours(24))
                    .bind(req.resend_cap)
                    .execute(&mut *tx)
                    .await
                    .context("Failed to queue the already-subscribed mail")?;
                let outcome = if queued.rows_affected() > 0 {
                    if let Some(key) = &past_suppression {
                        super::suppressions::admitted(
                            &mut tx,
                            key,
                            subscriber_id,
                            req.reminder.id,
                            req.now,
                        )
                        .await?;
                    }
                    super::budgets::count_mail(&mut tx, &req.budget_keys).await?;
                    SignupOutcome::ReminderQueued
                } else {
                    SignupOutcome::AlreadyConfirmed
                };
                tx.commit().await.context("Failed to commit the sign-up")?;
                return Ok(outcome);
            }
        };
        let mail = &req.invitation.mail;
        let events: Vec<Uuid> = plan.lists.iter().map(|_| Uuid::now_v7()).collect();
        sqlx::query(INVITE)
            .bind(subscriber_id)
            .bind(&plan.lists)
            .bind(req.now)
            .bind(&req.invitation.token_hash[..])
            .bind(req.invitation.token_expires_at)
            .bind(&events)
            .bind(req.consent.method.as_str())
            .bind(req.consent.ip.as_deref())
            .bind(req.consent.user_agent.as_deref())
            .bind(&req.wording_version)
            .bind(&req.wording_hash)
            .bind(mail.id)
            .bind(person.name.as_str())
            .bind(person.organisation.as_ref().map(|o| o.as_str()))
            .bind(person.locality.map(|l| l.slug()))
            .bind(plan.keep_details_typed)
            .bind(&mail.kind)
            .bind(&mail.payload)
            .execute(&mut *tx)
            .await
            .context("Failed to store the tokens, consent events and confirmation mail")?;
        if let Some(key) = &past_suppression {
            super::suppressions::admitted(&mut tx, key, subscriber_id, mail.id, req.now).await?;
        }
        super::budgets::count_mail(&mut tx, &req.budget_keys).await?;
        tx.commit().await.context("Failed to commit the sign-up")?;
        Ok(SignupOutcome::ConfirmationQueued)
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
